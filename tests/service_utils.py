"""Helpers for service tests: databases to run against and an app with keys."""
from __future__ import annotations

import os

import pytest


def database_urls(tmp_path_factory=None) -> list:
    """SQLite always; PostgreSQL when SUQIU_TEST_POSTGRES_URL is set (.ci/run sets it)."""
    params = [pytest.param("sqlite", id="sqlite")]
    params.append(pytest.param("postgres", id="postgres", marks=pytest.mark.skipif(
        not os.environ.get("SUQIU_TEST_POSTGRES_URL"),
        reason="SUQIU_TEST_POSTGRES_URL not set (.ci/run starts a PostgreSQL server and sets it)")))
    return params


def fresh_url(kind: str, tmp_path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'suqiu.db'}"
    from service.db import create_scratch_database

    return create_scratch_database(os.environ["SUQIU_TEST_POSTGRES_URL"], "t")
