"""`make bench-hostile`: does any request, from any key, slow /healthz or swell the server?

Starts `suqiu serve` (SQLite in a temporary directory), then for ``--seconds`` sends the
hostile requests of issue 13 in a loop from several threads — a batch of 1.6 million
empty objects, an appeal with half a million stray keys, NaN / Infinity / lone
surrogates / duplicate keys, out-of-range times, a 100 KB header, connections that send
nothing or trickle their headers — while a prober asks /healthz every 50 ms. Reports
the prober's latency (p50 / p99 / max), the server's RSS before and at its peak, and
what the hostile requests were answered. Goals: /healthz max ≤ 100 ms, RSS growth ≤ 200 MB.

    python -m service.bench_hostile [--model DIR] [--seconds 60] [--report FILE.json]
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx2
import psutil

from service.bench import _pct, start_server
from training.bench import CpuSteal

HOSTILE = {
    "empty objects x1.6M": '{"appeals": [' + ",".join(["{}"] * 1_600_000) + "]}",
    "stray keys x500k": json.dumps({"id": "h", "text": "路灯坏了", **{f"k{i}": 1 for i in range(500_000)}}),
    "NaN": '{"id": "h", "text": NaN}',
    "Infinity": '{"appeals": [{"id": "h", "text": 1e999999}]}',
    "lone surrogate": '{"id": "h", "text": "\\ud800\\udc00\\ud800"}',
    "duplicate keys": '{"id": "h", "text": "a", "text": "b"}',
    "year 1": '{"id": "h", "text": "停水", "time": "0001-01-01T00:00:00"}',
    "year 9999": '{"id": "h", "text": "停水", "time": "9999-12-31T20:00:00"}',
    "NUL in district": '{"id": "h", "text": "停水", "district": "北\\u0000山"}',
}


def _tree_rss(pid: int) -> int:
    p = psutil.Process(pid)
    procs = [p, *p.children(recursive=True)]
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def _raw(base: str, payload: bytes, *, trickle: float = 0.0) -> str:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        if trickle:
            for b in payload:
                s.sendall(bytes([b]))
                time.sleep(trickle)
        else:
            s.sendall(payload)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out.split(b"\r\n", 1)[0].decode("latin-1") or "closed"


def run(model_dir, *, seconds: float = 60.0, threads: int = 4) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        proc, base, key = start_server(f"sqlite:///{Path(tmp) / 'suqiu.db'}", model_dir, role="admin")
        try:
            return _run(proc, base, key, seconds=seconds, threads=threads)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _run(proc, base, key, *, seconds, threads) -> dict:
    stop = threading.Event()
    answers: dict[str, Counter] = {}
    lock = threading.Lock()
    rss0 = _tree_rss(proc.pid)
    peak = [rss0]

    def note(name, status):
        with lock:
            answers.setdefault(name, Counter())[str(status)] += 1

    def attacker(k):
        names = list(HOSTILE)
        with httpx2.Client(base_url=base, headers={"X-API-Key": key, "Content-Type": "application/json"},
                           timeout=120) as c:
            i = k
            while not stop.is_set():
                name = names[i % len(names)]
                path = "/v1/classify" if i % 2 else "/v1/appeals"
                try:
                    note(name, c.post(path, content=HOSTILE[name].encode("utf-8", "surrogatepass")).status_code)
                except httpx2.TransportError as err:
                    note(name, type(err).__name__)
                i += 1

    def raw_attacker():
        cases = {"100 KB header": (b"GET /v1/appeals HTTP/1.1\r\nHost: x\r\nX-API-Key: " + b"k" * 100_000
                                   + b"\r\n\r\n", 0.0),
                 "silent connection": (b"", 0.0),
                 "trickled headers": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200, 0.2)}
        while not stop.is_set():
            for name, (payload, trickle) in cases.items():
                try:
                    note(name, _raw(base, payload, trickle=trickle))
                except OSError as err:
                    note(name, type(err).__name__)

    def watch_rss():
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            time.sleep(0.2)

    lat = []
    workers = ([threading.Thread(target=attacker, args=(k,)) for k in range(threads)]
               + [threading.Thread(target=raw_attacker), threading.Thread(target=watch_rss)])
    steal = CpuSteal()
    for t in workers:
        t.start()
    t_end = time.monotonic() + seconds
    with httpx2.Client(base_url=base, timeout=30) as probe:
        while time.monotonic() < t_end:
            t0 = time.perf_counter()
            r = probe.get("/healthz")
            lat.append(time.perf_counter() - t0)
            if r.status_code != 200:
                note("/healthz", r.status_code)
            time.sleep(0.05)
    stop.set()
    for t in workers:
        t.join(timeout=180)
    return {"seconds": seconds, "attacking_threads": threads + 1, "healthz_probes": len(lat),
            "healthz_p50_ms": _pct(lat, 0.5), "healthz_p99_ms": _pct(lat, 0.99),
            "healthz_max_ms": round(max(lat) * 1000, 1),
            "server_rss_mb_before": round(rss0 / 2**20, 1), "server_rss_mb_peak": round(peak[0] / 2**20, 1),
            "server_rss_growth_mb": round((peak[0] - rss0) / 2**20, 1),
            "cpu_steal_percent": steal.percent(),
            "answers": {k: dict(v) for k, v in sorted(answers.items())},
            "goals": {"healthz_max_ms": 100, "server_rss_growth_mb": 200}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="hostile requests in a loop against a real server")
    ap.add_argument("--model", default=None, help="bundle to serve (default: the registry's CURRENT)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--report", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    from models.registry import REGISTRY_DIR, current_version

    model = args.model or current_version(REGISTRY_DIR)
    if model is None:
        print("no model bundle: train one first (make model)", file=sys.stderr)
        return 2
    out = run(model, seconds=args.seconds, threads=args.threads)
    text = json.dumps(out, ensure_ascii=False, indent=2)
    print(text)
    if args.report:
        Path(args.report).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
