"""`suqiu bench-api`'s load generator against a real server (few requests: behaviour, not speed)."""
import asyncio

import psutil
import pytest
from tqdm import tqdm

from service.bench import _drive, start_server


def test_drive_counts_requests_and_the_server_cpu(tmp_path, demo_bundle):
    server, base, key = start_server(f"sqlite:///{tmp_path / 'b.db'}", demo_bundle.path, workers=2)
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
    assert single["requests"] == 100 and single["appeals_per_second"] == single["requests_per_second"] > 0
    # both rounded to 0.1: requests/s × 20 may be off by up to 20 × 0.05
    assert batch["appeals_per_second"] == pytest.approx(batch["requests_per_second"] * 20, abs=1.05)
    assert 0 < single["p50_ms"] <= single["p99_ms"]
    # tagging happens in the server's worker processes: their CPU is counted (in clock ticks of
    # 10 ms, so only the large difference is asserted), more per request for batches of 20
    assert 0 < single["server_cpu_ms_per_request"] < batch["server_cpu_ms_per_request"]
