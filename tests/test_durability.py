"""No acknowledged appeal is lost: SIGKILL the server in the middle of a stream of ingests."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from service.auth import create_key
from service.db import Appeal, make_engine, upgrade
from tests.service_utils import database_urls, fresh_url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kind", database_urls())
def test_sigkill_mid_stream_loses_no_acknowledged_appeal(kind, tmp_path, demo_bundle):
    url = fresh_url(kind, tmp_path)
    upgrade(url)
    engine = make_engine(url)
    with sessionmaker(engine)() as s:
        key = create_key(s, role="ingest", name="stream")
    port = free_port()
    env = {**os.environ, "SUQIU_DATABASE_URL": url, "SUQIU_MODEL_DIR": str(demo_bundle.path)}
    server = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.25)
        else:
            pytest.fail("server did not become ready: " + server.stderr.read1().decode(errors="replace"))
        acked, lock, stop = [], threading.Lock(), threading.Event()

        def stream(worker: int):
            with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=10) as c:
                i = 0
                while not stop.is_set():
                    aid = f"W{worker}-{i}"
                    try:
                        r = c.post("/v1/appeals", json={"id": aid, "text": f"小区暖气不热第{i}次反映，家里很冷"})
                    except httpx.TransportError:
                        return  # the server died mid-request: not acknowledged
                    if r.status_code == 200:
                        with lock:
                            acked.append(aid)
                    i += 1

        threads = [threading.Thread(target=stream, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        deadline = time.time() + 60
        while len(acked) < 40 and time.time() < deadline:
            time.sleep(0.05)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        stop.set()
        for t in threads:
            t.join(timeout=15)
        assert len(acked) >= 40, "the stream was too slow to test anything"
    finally:
        if server.poll() is None:
            server.kill()
    with sessionmaker(engine)() as s:
        stored = list(s.scalars(select(Appeal.id)))
        missing = set(acked) - set(stored)
        assert not missing, f"acknowledged but lost: {sorted(missing)[:5]}"
        assert s.scalar(select(func.count()).select_from(Appeal)) == len(set(stored))  # each exactly once
    engine.dispose()


def test_multi_worker_serve_answers_and_stops_cleanly(tmp_path, demo_bundle):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    port = free_port()
    env = {**os.environ, "SUQIU_DATABASE_URL": url, "SUQIU_MODEL_DIR": str(demo_bundle.path)}
    server = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", "2"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready = 0
        for _ in range(160):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    ready += 1
                    if ready >= 4:  # answered several times: both workers are likely up
                        break
            except httpx.TransportError:
                time.sleep(0.25)
        assert ready >= 4
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            assert all(c.get("/healthz").json() == {"status": "ok"} for _ in range(10))
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
