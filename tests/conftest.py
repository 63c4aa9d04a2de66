"""Shared fixtures. Real data lives in ../shared/corpora and is optional."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora"
TIPDM = SHARED / "tipdm2020c" / "appeals_labelled_dev.csv"
URGENCY = SHARED / "urgency" / "labels_dev.csv"
DEMO = ROOT / "corpora" / "data" / "demo_appeals.csv"


def need(path: Path):
    if not path.exists():
        pytest.skip(f"{path} is absent (real data from ../shared/corpora is optional on user machines)")
    return path


@pytest.fixture(scope="session")
def demo_frame():
    from corpora.records import read_appeals

    return read_appeals(DEMO).frame


@pytest.fixture(scope="session")
def demo_bundle(tmp_path_factory, demo_frame):
    """A real bundle trained on the shipped corpus (seconds), shared by the tests."""
    from training.train import train_bundle

    out = tmp_path_factory.mktemp("bundle") / "demo"
    return train_bundle(demo_frame, out, evaluate=False, progress=False)


def database_urls() -> list:
    """SQLite always; PostgreSQL when SUQIU_TEST_POSTGRES_URL is set (.ci/run sets it)."""
    return [pytest.param("sqlite", id="sqlite"),
            pytest.param("postgres", id="postgres", marks=pytest.mark.skipif(
                not os.environ.get("SUQIU_TEST_POSTGRES_URL"),
                reason="SUQIU_TEST_POSTGRES_URL not set (.ci/run starts a PostgreSQL server and sets it)"))]


@pytest.fixture(params=database_urls())
def database_url(request, tmp_path):
    """The URL of a new, empty database of each kind (SQLite in ``tmp_path``; PostgreSQL when
    SUQIU_TEST_POSTGRES_URL is set, as a scratch database dropped after the test)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'suqiu.db'}"
        return
    from service.db import create_scratch_database, drop_database

    url = create_scratch_database(os.environ["SUQIU_TEST_POSTGRES_URL"], "t")
    try:
        yield url
    finally:
        drop_database(url)


@contextmanager
def api_env(database_url: str, model_dir, *, raise_server_exceptions: bool = True, **settings):
    """The API on a migrated database with one key per role: (TestClient, keys by role,
    a sessionmaker on the same database). Its model registry is a new, empty directory
    unless ``registry_dir`` is given: no test promotes or rolls back in models/registry."""
    import tempfile

    from fastapi.testclient import TestClient
    from sqlalchemy.orm import sessionmaker

    from service.api import create_app
    from service.auth import ROLES, create_key
    from service.config import Settings
    from service.db import make_engine, upgrade

    upgrade(database_url)
    engine = make_engine(database_url)
    S = sessionmaker(engine)
    with S() as s:
        keys = {role: create_key(s, role=role, name=f"test-{role}") for role in ROLES}
    scratch = tempfile.TemporaryDirectory(prefix="suqiu-registry-")
    settings.setdefault("registry_dir", scratch.name)
    app = create_app(Settings(database_url=database_url, model_dir=model_dir, **settings))
    try:
        with TestClient(app, raise_server_exceptions=raise_server_exceptions) as client:
            yield client, keys, S
    finally:
        engine.dispose()
        scratch.cleanup()


@pytest.fixture(scope="session")
def two_versions(tmp_path_factory, demo_bundle, demo_frame):
    """Two different real bundles to copy into a registry (models/registry.py, ADR 0007):
    ``{"v1": path, "v2": path}``, v1 the demo bundle, v2 trained on another sample of the
    demo corpus; each manifest's version is its directory's name."""
    from models.registry import save_bundle
    from training.train import train_bundle

    root = tmp_path_factory.mktemp("versions")
    other = train_bundle(demo_frame.sample(frac=0.5, random_state=1), root / "train-v2", evaluate=False,
                         progress=False)
    out = {}
    for name, bundle in (("v1", demo_bundle), ("v2", other)):
        extra = {k: v for k, v in bundle.manifest.items()
                 if k not in {"format", "version", "created", "models", "files", "libraries"}}
        out[name] = save_bundle(root / name, bundle.models, version=name, extra=extra).path
    return out


@pytest.fixture
def registry(tmp_path, two_versions):
    """A new registry holding v1 and v2 (no champion yet)."""
    import shutil

    reg = tmp_path / "registry"
    for name, path in two_versions.items():
        shutil.copytree(path, reg / name)
    return reg
