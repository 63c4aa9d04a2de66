"""No acknowledged appeal is lost: SIGKILL the server in the middle of a stream of ingests."""
import signal
import threading
import time

import httpx2
import psutil
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from service.bench import start_server
from service.db import Appeal, make_engine


def test_sigkill_mid_stream_loses_no_acknowledged_appeal(database_url, demo_bundle):
    url = database_url
    server, base, key = start_server(url, demo_bundle.path, role="ingest")
    engine = make_engine(url)
    try:
        acked, lock, stop = [], threading.Lock(), threading.Event()

        def stream(worker: int):
            with httpx2.Client(base_url=base, headers={"X-API-Key": key}, timeout=10) as c:
                i = 0
                while not stop.is_set():
                    aid = f"W{worker}-{i}"
                    try:
                        r = c.post("/v1/appeals", json={"id": aid, "text": f"小区暖气不热第{i}次反映，家里很冷"})
                    except httpx2.TransportError:
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
    server, base, _ = start_server(f"sqlite:///{tmp_path / 'w.db'}", demo_bundle.path, workers=2)
    try:
        with httpx2.Client(base_url=base) as c:
            assert all(c.get("/healthz").json() == {"status": "ok"} for _ in range(10))
            assert all(c.get("/readyz").status_code == 200 for _ in range(10))
        # the parent hands connections to the workers in turn: 24 connections, 12 each
        clients = [httpx2.Client(base_url=base) for _ in range(24)]
        try:
            assert all(c.get("/healthz").status_code == 200 for c in clients)
            workers = psutil.Process(server.pid).children()
            assert len(workers) == 2
            held = [sum(k.status == psutil.CONN_ESTABLISHED for k in w.net_connections("tcp")) for w in workers]
            assert held == [12, 12]
        finally:
            for c in clients:
                c.close()
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0
    with pytest.raises(httpx2.TransportError):
        httpx2.get(base + "/healthz", timeout=1)


def test_multi_worker_serve_survives_a_dead_worker(tmp_path, demo_bundle):
    server, base, _ = start_server(f"sqlite:///{tmp_path / 'w.db'}", demo_bundle.path, workers=2)
    try:
        first, second = psutil.Process(server.pid).children()
        first.kill()
        first.wait(timeout=10)
        # new connections go to the worker left, whichever one's turn it was
        for _ in range(6):
            assert httpx2.get(base + "/healthz", timeout=5).status_code == 200
        second.kill()
        assert server.wait(timeout=10) == 1  # no worker left: the server stops with an error
    finally:
        if server.poll() is None:
            server.kill()


def test_multi_worker_metrics_count_every_worker(tmp_path, demo_bundle):
    from prometheus_client.parser import text_string_to_metric_families

    server, base, key = start_server(f"sqlite:///{tmp_path / 'm.db'}", demo_bundle.path, workers=2)
    clients = [httpx2.Client(base_url=base, headers={"X-API-Key": key}) for _ in range(4)]
    try:
        body = {"appeals": [{"text": "停水三天了"}, {"text": "导游强制购物"}]}
        for i, c in enumerate(clients):  # connections go to the workers in turn: 1 + 3 and 2 + 4 requests
            assert all(c.post("/v1/classify", json=body).status_code == 200 for _ in range(i + 1))
        # consecutive connections: each scrape is answered by a different worker
        scrapes = [c.get("/metrics").text for c in clients[:2]]
    finally:
        for c in clients:
            c.close()
        server.terminate()
        server.wait(timeout=30)
    for text in scrapes:
        samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
        classify = [s.value for s in samples if s.name == "suqiu_requests_total"
                    and s.labels == {"method": "POST", "route": "/v1/classify", "status": "200"}]
        assert classify == [10.0]
        assert sum(s.value for s in samples if s.name == "suqiu_predictions_total") == 20
        review = sum(s.value for s in samples if s.name == "suqiu_predictions_needs_review_total")
        share = [s.value for s in samples if s.name == "suqiu_review_share"]
        assert share == [pytest.approx(review / 20)]
