"""Hot swapping of the served model (service/model_watch.py, ADR 0007).

The watcher alone (one poll at a time, on a real database), a group of ingest requests
tagged by one model across a swap, and issue 16's goal against a real server: a promotion
is picked up by a running two-worker service within 10 s with no failed request under load
during the swap, and a rollback restores the previous version.
"""
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import httpx2
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from models.registry import promote, set_current
from service.db import ModelVersion, Prediction, make_engine, upgrade
from service.model_watch import ModelWatcher, load_tagger, stamp

log = logging.getLogger(__name__)  # the goal test's figures, shown with `pytest -rA`


@pytest.fixture
def watched(tmp_path, registry):
    """A state serving v1, the champion, and a watcher of the registry (not started)."""
    promote("v1", by="setup", registry=registry)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    upgrade(url)
    engine = make_engine(url)
    state = SimpleNamespace(tagger=load_tagger(registry / "v1"), sessions=sessionmaker(engine))
    watcher = ModelWatcher(state, registry=registry, interval_s=0.05, serving=stamp(registry / "v1", registry))
    yield state, watcher, registry
    watcher.stop()
    engine.dispose()


def test_a_promotion_is_loaded_registered_and_swapped(watched):
    state, watcher, registry = watched
    assert watcher.check() is False  # nothing changed
    promote("v2", by="t", registry=registry)
    assert watcher.check() is True and state.tagger.version == "v2"
    assert state.tagger.tag(["暖气不热"])[0]["model_version"] == "v2"
    with state.sessions() as s:
        assert s.get(ModelVersion, "v2").path == str(registry.resolve() / "v2")
    assert watcher.check() is False


def test_a_bundle_that_cannot_load_is_logged_once_and_the_old_model_serves(watched, caplog):
    state, watcher, registry = watched
    shutil.copytree(registry / "v2", registry / "v3")
    good = (registry / "v3" / "category.joblib").read_bytes()
    (registry / "v3" / "category.joblib").write_bytes(good + b"\0")
    set_current(registry / "v3", registry)  # what promote() refuses, done by hand
    with caplog.at_level(logging.ERROR, logger="service.model_watch"):
        assert watcher.check() is False and watcher.check() is False
    assert state.tagger.version == "v1"
    (record,) = caplog.records
    assert "model v3 cannot be served (BundleError:" in record.getMessage()
    assert record.getMessage().endswith("still serving v1")
    (registry / "v3" / "category.joblib").write_bytes(good)  # repaired ...
    assert watcher.check() is False  # ... which nothing signals yet
    promote("v3", by="t", registry=registry)  # promoting it again does
    assert watcher.check() is True and state.tagger.version == "v2"  # v3 is a copy of v2


def test_a_database_that_cannot_register_the_version_is_retried(watched):
    state, watcher, registry = watched
    sessions = state.sessions

    def down():
        raise OperationalError("SELECT 1", {}, Exception("database is down"))

    state.sessions = down
    promote("v2", by="t", registry=registry)
    assert watcher.check() is False and state.tagger.version == "v1"
    assert watcher._pending is not None  # loaded once, kept for the retry
    state.sessions = sessions
    assert watcher.check() is True and state.tagger.version == "v2"


def test_the_thread_follows_promotions_and_stops(watched):
    state, watcher, registry = watched
    watcher.start()
    promote("v2", by="t", registry=registry)
    end = time.monotonic() + 20
    while state.tagger.version != "v2" and time.monotonic() < end:
        time.sleep(0.05)
    assert state.tagger.version == "v2"
    watcher.stop()
    assert not watcher._thread.is_alive()


def test_a_group_is_tagged_by_one_model_even_across_a_swap(tmp_path, registry):
    """A group whose tagging fails is tagged again request by request: with the same model
    it started with, though a promotion landed meanwhile (one group, one transaction, one
    model version: service/store.py)."""
    from service.ingest import ingest_group
    from tests.conftest import api_env

    with api_env(f"sqlite:///{tmp_path / 'g.db'}", registry / "v1", hotspots=False) as (client, _, S):
        state = client.app.state
        v1, v2 = state.tagger, load_tagger(registry / "v2")
        calls = []

        class SwapThenFail:
            version = v1.version

            def tag(self, texts, received_at=None):
                calls.append(len(texts))
                if len(calls) == 1:
                    state.tagger = v2  # the watcher swaps while the group is being tagged
                    raise RuntimeError("one appeal of the group cannot be tagged")
                return v1.tag(texts, received_at=received_at)

        state.tagger = SwapThenFail()
        rec = [{"id": f"G-{i}", "time": None, "title": None, "text": text, "district": None, "user": None,
                "channel": None} for i, text in enumerate(["家里暖气不热已经三天了", "请问社保怎么转移"])]
        outcomes = ingest_group(state, [[rec[0]], [rec[1]]])
        assert calls == [2, 1, 1]
        assert [o.error for o in outcomes] == [None, None]
        assert {t["model_version"] for o in outcomes for t in o.tags} == {"v1"}
        with S() as s:
            assert set(s.scalars(select(Prediction.model_version))) == {"v1"}


# --- issue 16's goal: a real two-worker server swapping under load -------------------------------

TEXTS = ["北山区梧桐郡5栋暖气从前天开始就不热了，屋里只有十二度，家里有婴儿", "请问社保怎么转移到外地",
         "国庆去景区，导游强制购物，门票也贵"]


def _server(tmp_path, registry):
    from service.auth import create_key
    from service.bench import free_port

    url = f"sqlite:///{tmp_path / 'swap.db'}"
    upgrade(url)
    engine = make_engine(url)
    with sessionmaker(engine)() as s:
        keys = {role: create_key(s, role=role, name=f"swap-{role}") for role in ("admin", "ingest")}
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUQIU_")}  # not pinned
    env.update(SUQIU_DATABASE_URL=url, SUQIU_REGISTRY_DIR=str(registry), SUQIU_HOTSPOTS="false")
    port = free_port()
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", "2"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    ready, end = 0, time.monotonic() + 90
    while ready < 4 and time.monotonic() < end:  # fresh connections: the workers answer in turn
        try:
            ready = ready + 1 if httpx2.get(base + "/readyz", timeout=2).status_code == 200 else 0
        except httpx2.TransportError:
            time.sleep(0.25)
    if ready < 4:
        proc.terminate()
        raise RuntimeError("server did not become ready: " + (tmp_path / "server.log").read_text(errors="replace"))
    return proc, base, keys, url


def test_a_running_two_worker_service_switches_under_load_and_rolls_back(tmp_path, registry):
    promote("v1", by="setup", registry=registry)
    expected = {}  # version -> what each probe text gets from that version's model
    for v in ("v1", "v2"):
        expected[v] = [(t["category_scores"], t.get("urgency_score")) for t in load_tagger(registry / v).tag(TEXTS)]
    assert expected["v1"] != expected["v2"]  # two different models: mixing them would show
    proc, base, keys, url = _server(tmp_path, registry)
    stop = threading.Event()
    failures, seen = [], []  # seen: (time, thread, version)
    n_threads = 4

    def classify(i):
        with httpx2.Client(base_url=base, headers={"X-API-Key": keys["ingest"]}, timeout=30) as c:
            while not stop.is_set():
                try:
                    r = c.post("/v1/classify", json={"appeals": [{"text": t} for t in TEXTS]})
                    data = r.json()["data"] if r.status_code == 200 else None
                except (httpx2.HTTPError, ValueError) as err:
                    failures.append(repr(err))
                    continue
                if data is None:
                    failures.append(f"HTTP {r.status_code}: {r.text[:200]}")
                    continue
                versions = {t["model_version"] for t in data}
                if len(versions) != 1 or versions - {"v1", "v2"}:
                    failures.append(f"mixed or unknown versions {versions}")
                    continue
                (v,) = versions
                if [(t["category_scores"], t.get("urgency_score")) for t in data] != expected[v]:
                    failures.append(f"tags not those of {v}")
                seen.append((time.monotonic(), i, v))

    def ingest():
        n = 0
        with httpx2.Client(base_url=base, headers={"X-API-Key": keys["ingest"]}, timeout=30) as c:
            while not stop.is_set():
                n += 1
                try:
                    r = c.post("/v1/appeals", json={"appeals": [{"id": f"S-{n}-{k}", "text": t}
                                                                for k, t in enumerate(TEXTS)]})
                except httpx2.HTTPError as err:
                    failures.append(repr(err))
                    continue
                if r.status_code != 200:
                    failures.append(f"ingest HTTP {r.status_code}: {r.text[:200]}")
                elif len({t["model_version"] for t in r.json()["data"]}) != 1:
                    failures.append("an ingest request tagged by two models")

    def switched_to(version, since):
        """Seconds until both workers serve ``version``: fresh-connection /readyz answers
        (the workers take connections in turn) and every load thread's classify answers."""
        streak, end = 0, since + 15
        while time.monotonic() < end:
            ready = httpx2.get(base + "/readyz", timeout=5).json()
            streak = streak + 1 if ready["model_version"] == version and not ready["model_pinned"] else 0
            latest = {}
            for t, i, v in list(seen):
                if t > since:
                    latest[i] = v
            if streak >= 6 and len(latest) == n_threads - 1 and set(latest.values()) == {version}:
                return time.monotonic() - since
            time.sleep(0.1)
        return float("inf")

    threads = [threading.Thread(target=classify, args=(i,)) for i in range(n_threads - 1)]
    threads.append(threading.Thread(target=ingest))
    try:
        for th in threads:
            th.start()
        time.sleep(1.5)
        assert {v for _, _, v in seen} == {"v1"}
        admin = {"X-API-Key": keys["admin"]}
        t0 = time.monotonic()
        r = httpx2.post(base + "/v1/models/v2/promote", json={"reason": "goal test"}, headers=admin, timeout=60)
        assert r.status_code == 200, r.text
        took = switched_to("v2", t0)
        assert took <= 10, f"promotion picked up by both workers in {took:.1f} s"
        log.warning("promotion picked up by both workers in %.1f s", took)
        time.sleep(1.0)
        t1 = time.monotonic()
        r = httpx2.post(base + "/v1/models/rollback", headers=admin, timeout=60)
        assert r.status_code == 200 and r.json()["version"] == "v1", r.text
        took_back = switched_to("v1", t1)
        assert took_back <= 10, f"rollback picked up by both workers in {took_back:.1f} s"
        log.warning("rollback picked up by both workers in %.1f s", took_back)
        time.sleep(0.5)
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=60)
        proc.terminate()
        proc.wait(timeout=60)
    assert failures == []
    assert len(seen) > 50 and {v for _, _, v in seen} == {"v1", "v2"}
    engine = make_engine(url)
    with sessionmaker(engine)() as s:
        stored = set(s.scalars(select(Prediction.model_version)))
    engine.dispose()
    assert stored == {"v1", "v2"}


def test_torch_threads_are_limited_before_and_after_torch_is_loaded():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ("import sys; from service.model_watch import limit_torch_threads; limit_torch_threads(1); "
            "assert 'torch' not in sys.modules; import torch; print(torch.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    before = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True)
    assert before.stdout.strip() == "1"  # torch imported after the limit (a bundle loaded later) honours it
    import torch

    from service.model_watch import limit_torch_threads

    was = torch.get_num_threads()
    try:
        limit_torch_threads(1)
        assert torch.get_num_threads() == 1
        limit_torch_threads(2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(was)
