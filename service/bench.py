"""`suqiu bench-api`: requests/s and latency of POST /v1/appeals against a real server.

Starts `suqiu serve` in a subprocess on a free loopback port (SQLite in a temporary
directory, and PostgreSQL when a URL is given), then drives it with 1 and 16 concurrent
asyncio clients: single appeals, and batches of 100.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx2
import psutil
from tqdm.auto import tqdm

from training.bench import CpuSteal, ProcessCpu, nearest_rank

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(values, q):
    """The ``q`` quantile of latencies in seconds, as milliseconds (nearest rank)."""
    return round(nearest_rank(values, q) * 1000, 1)


class _Connection:
    """A minimal HTTP/1.1 keep-alive client for the load generator.

    The server's figures are what is measured; on a 2-core machine the load generator
    shares the cores, so it speaks just enough HTTP itself (Content-Length bodies both
    ways) to spend as little CPU per request as it can, instead of a full client library.
    """

    def __init__(self, host: str, port: int, key: str):
        self.host, self.port, self.key = host, port, key
        self.reader = self.writer = None

    async def post(self, path: str, payload) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        body = json.dumps(payload, ensure_ascii=False).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nX-API-Key: {self.key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        length = None
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"{path}: response without Content-Length ({status_line!r})")
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self):
        if self.writer is not None:
            self.writer.close()


async def _drive(base, key, texts, *, clients, batch, requests, bar, server_pids=()):
    lat = []
    counter = iter(range(requests))
    run = uuid.uuid4().hex[:6]
    host, port = base.removeprefix("http://").rsplit(":", 1)

    async def worker():
        conn = _Connection(host, int(port), key)
        try:
            for i in counter:
                items = [{"id": f"{run}-{i}-{j}", "text": texts[(i * batch + j) % len(texts)]} for j in range(batch)]
                t = time.perf_counter()
                status, body = await conn.post("/v1/appeals", items[0] if batch == 1 else {"appeals": items})
                lat.append(time.perf_counter() - t)
                if status != 200 or json.loads(body)["count"] != batch:
                    raise RuntimeError(f"POST /v1/appeals answered {status}: {body[:200]!r}")
                bar.update(1)
        finally:
            conn.close()

    steal, server, client = CpuSteal(), ProcessCpu(server_pids), ProcessCpu([os.getpid()])
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - t0
    return {"clients": clients, "batch": batch, "requests": requests,
            "requests_per_second": round(requests / wall, 1),
            "appeals_per_second": round(requests * batch / wall, 1),
            "p50_ms": _pct(lat, 0.5), "p99_ms": _pct(lat, 0.99), "cpu_steal_percent": steal.percent(),
            # CPU per request of the server's processes and of the load generator (which shares the cores)
            "server_cpu_ms_per_request": round(server.seconds() / requests * 1000, 2),
            "client_cpu_ms_per_request": round(client.seconds() / requests * 1000, 2)}


def start_server(url, model_dir, *, workers=1, role="admin"):
    """Migrate ``url``, create a ``role`` key, start `suqiu serve` on a free loopback port
    and wait until /readyz answers. Returns (process, base URL, key)."""
    from sqlalchemy.orm import sessionmaker

    from service.auth import create_key
    from service.db import make_engine, upgrade

    upgrade(url)
    engine = make_engine(url)
    with sessionmaker(engine)() as s:
        key = create_key(s, role=role, name=f"bench-{uuid.uuid4().hex[:8]}")
    engine.dispose()
    port = free_port()
    env = {**os.environ, "SUQIU_DATABASE_URL": url, "SUQIU_MODEL_DIR": str(model_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port),
                             "--workers", str(workers)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if httpx2.get(base + "/readyz", timeout=1).status_code == 200:
                return proc, base, key
        except httpx2.TransportError:
            pass
        time.sleep(0.25)
    proc.terminate()
    raise RuntimeError("server did not become ready in 60 s")


@contextmanager
def _fresh_postgres(url: str):
    """A new database on the server at ``url`` for one run, dropped afterwards: each run
    starts empty, like the SQLite one (a database grown by earlier runs measured index
    inserts into hundreds of thousands of rows). Without the CREATEDB right, ``url`` itself."""
    from sqlalchemy.exc import SQLAlchemyError

    from service.db import create_scratch_database, drop_database

    try:
        scratch = create_scratch_database(url, "suqiu_bench")
    except SQLAlchemyError as err:
        log.warning("cannot create a scratch database (%s); benchmarking in the given one", err.__class__.__name__)
        yield url, False
        return
    try:
        yield scratch, True
    finally:
        drop_database(scratch)


def run_api_bench(*, model_dir, texts, postgres_url=None, workers=2, single_requests=4000, batch_requests=64) -> dict:
    """Figures per database. ``single_requests`` at 16 clients is 4,000 so that the p99 rests on
    40 requests: stalls come in bursts (one worker's whole group waits), and with 800 one
    burst of 8 decided the p99 alone."""
    results, fresh = {}, {"sqlite": True}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        dbs = {"sqlite": f"sqlite:///{Path(tmp) / 'bench.db'}"}
        if postgres_url:
            dbs["postgresql"], fresh["postgresql"] = stack.enter_context(_fresh_postgres(postgres_url))
        for name, url in dbs.items():
            proc, base, key = start_server(url, model_dir, workers=workers)
            try:
                server_pids = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
                rows = []
                plan = [(1, 1, single_requests // 4), (16, 1, single_requests), (1, 100, batch_requests // 2),
                        (16, 100, batch_requests)]
                for clients, batch, n in plan:
                    with tqdm(total=n, desc=f"{name}: {clients} client(s), batch {batch}", unit="req") as bar:
                        rows.append(asyncio.run(_drive(base, key, texts, clients=clients, batch=batch,
                                                       requests=n, bar=bar, server_pids=server_pids)))
                results[name] = rows
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                # Write this database's dirty pages out now, so the next one is not measured
                # while the kernel flushes them (its commits' fsyncs would queue behind).
                os.sync()
    return {"model_dir": str(model_dir), "server": f"uvicorn, {workers} worker process(es)",
            "empty_database_at_start": fresh, "results": results,
            "goals": {"single_p99_ms_at_16_clients": "<= 50", "batch_appeals_per_second": ">= 1000"}}
