"""`suqiu bench-api`'s load generator: the figures it reports agree with what was sent and
what was measured (few requests: behaviour, not speed; nothing here asserts a time)."""
import asyncio
import json
import types
from collections import Counter, namedtuple

import numpy as np
import psutil
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker
from tqdm import tqdm

import service.bench as bench
from service.bench import _drive, start_server


class FakeServer:
    """A loopback HTTP server answering POST /v1/appeals as the service does (200 and the
    count), recording every request, and moving a fake clock by a latency chosen per request,
    so that the latencies the load generator measures are known in advance."""

    def __init__(self, latencies):
        self.latencies = latencies  # seconds, by order of arrival
        self.now = 1000.0
        self.requests = []  # (order of arrival, key, [(id, text)])

    def perf_counter(self):
        return self.now

    async def handle(self, reader, writer):
        try:
            while line := await reader.readline():
                method, path, _ = line.decode().split()
                headers = {}
                while (h := await reader.readline()) != b"\r\n":
                    name, _, value = h.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = json.loads(await reader.readexactly(int(headers["content-length"])))
                items = body["appeals"] if "appeals" in body else [body]
                number = len(self.requests)
                assert (method, path) == ("POST", "/v1/appeals")
                self.requests.append((number, headers["x-api-key"], [(a["id"], a["text"]) for a in items]))
                self.now += self.latencies[number]
                out = json.dumps({"data": [], "count": len(items)}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(out), out))
                await writer.drain()
        finally:
            writer.close()

    def drive(self, texts, **kw):
        async def main():
            server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            try:
                return await _drive(f"http://127.0.0.1:{port}", "sq_test", texts, bar=tqdm(disable=True), **kw)
            finally:
                server.close()
                await server.wait_closed()

        return asyncio.run(main())


@pytest.fixture
def fake(monkeypatch):
    rng = np.random.default_rng(0)
    srv = FakeServer(latencies=rng.permutation(np.arange(1, 201)) / 1000)  # 1 … 200 ms, all distinct, shuffled
    monkeypatch.setattr(bench, "time", types.SimpleNamespace(perf_counter=srv.perf_counter))
    return srv


@pytest.mark.parametrize("n", [100, 200])
def test_percentiles_and_rates_are_those_of_the_recorded_latencies(fake, n):
    texts = ["小区暖气不热", "路灯坏了", "停水三天了"]
    rep = fake.drive(texts, clients=1, batch=1, requests=n)
    lat = fake.latencies[:n]  # one client: each request's latency is exactly the server's delay
    assert len(fake.requests) == n
    p50, p99 = np.percentile(lat, [50, 99], method="inverted_cdf") * 1000  # nearest rank
    assert (rep["p50_ms"], rep["p99_ms"]) == (round(p50, 1), round(p99, 1))
    assert rep["p99_ms"] < lat.max() * 1000  # the 99th percentile, not the maximum
    assert rep["requests"] == n and (rep["clients"], rep["batch"]) == (1, 1)
    assert rep["requests_per_second"] == round(n / lat.sum(), 1)
    assert rep["appeals_per_second"] == rep["requests_per_second"]


def test_every_request_and_appeal_counted_is_one_the_server_received(fake):
    texts = ["小区暖气不热", "路灯坏了", "停水三天了", "噪音扰民", "景区门票太贵"]
    rep = fake.drive(texts, clients=4, batch=6, requests=30)
    got = fake.requests
    assert rep["requests"] == len(got) == 30 and (rep["clients"], rep["batch"]) == (4, 6)
    assert {key for _, key, _ in got} == {"sq_test"}
    assert all(len(items) == 6 for *_, items in got)
    ids = [i for *_, items in got for i, _ in items]
    assert len(ids) == len(set(ids)) == 30 * 6  # every appeal a new id: each request sent once
    sent = Counter(t for *_, items in got for _, t in items)
    assert sent == Counter({t: 30 * 6 // len(texts) for t in texts})  # the texts in turn …
    assert all(a[1] != b[1] for *_, items in got for a, b in zip(items, items[1:]))  # … within a batch too
    wall = fake.now - 1000.0  # the fake clock moves only while the server answers
    assert rep["requests_per_second"] == round(30 / wall, 1)
    assert rep["appeals_per_second"] == round(30 * 6 / wall, 1)


def test_a_refused_request_stops_the_run(fake, monkeypatch):
    async def refuse(self, path, payload):
        return 503, b'{"detail": "database unavailable; retry shortly"}'

    monkeypatch.setattr(bench._Connection, "post", refuse)
    with pytest.raises(RuntimeError, match="answered 503"):
        fake.drive(["路灯坏了"], clients=2, batch=1, requests=4)


Times = namedtuple("Times", "user nice system idle iowait irq softirq steal guest guest_nice")


def test_cpu_steal_is_the_stolen_share_of_the_cpu_time_between_two_readings(monkeypatch):
    from training.bench import CpuSteal

    readings = iter([Times(100, 0, 50, 800, 5, 0, 1, 10, 40, 0),
                     Times(130, 0, 60, 850, 5, 0, 1, 30, 65, 0)])  # +110 s of CPU time, 20 of it stolen
    monkeypatch.setattr(psutil, "cpu_times", lambda: next(readings))
    assert CpuSteal().percent() == round(100 * 20 / 110, 1)  # guest time is inside user time: not counted twice
    no_steal = namedtuple("T", "user system idle")
    monkeypatch.setattr(psutil, "cpu_times", lambda: no_steal(1, 1, 1))
    assert CpuSteal().percent() is None


def test_drive_counts_requests_and_the_server_cpu(tmp_path, demo_bundle):
    """Against the real server: what the load generator counts is what the database holds."""
    from service.db import Appeal, Prediction, make_engine

    url = f"sqlite:///{tmp_path / 'b.db'}"
    server, base, key = start_server(url, demo_bundle.path, workers=2)
    try:
        pids = [server.pid] + [c.pid for c in psutil.Process(server.pid).children()]
        texts = ["小区暖气不热，家里只有十三度", "路灯坏了一个月没人修"]
        single = asyncio.run(_drive(base, key, texts, clients=4, batch=1, requests=100, bar=tqdm(disable=True),
                                    server_pids=pids))
        batch = asyncio.run(_drive(base, key, texts, clients=2, batch=20, requests=8, bar=tqdm(disable=True),
                                   server_pids=pids))
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert (single["requests"], batch["requests"]) == (100, 8)
    engine = make_engine(url)
    with sessionmaker(engine)() as s:
        assert s.scalar(select(func.count()).select_from(Appeal)) == 100 + 8 * 20
        assert s.scalar(select(func.count()).select_from(Prediction)) == 100 + 8 * 20
        per_text = Counter(s.scalars(select(Appeal.text)))
    engine.dispose()
    assert per_text == Counter({t: (100 + 8 * 20) // 2 for t in texts})
    assert single["appeals_per_second"] == single["requests_per_second"] > 0
    # both rounded to 0.1: requests/s × 20 may be off by up to 20 × 0.05
    assert batch["appeals_per_second"] == pytest.approx(batch["requests_per_second"] * 20, abs=1.05)
    # tagging happens in the server's worker processes: their CPU is counted (in clock ticks of
    # 10 ms, so only the large difference is asserted), more per request for batches of 20
    assert 0 < single["server_cpu_ms_per_request"] < batch["server_cpu_ms_per_request"]
