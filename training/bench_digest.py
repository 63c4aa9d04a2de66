"""Benchmark of the weekly digest (issue 15 goal: a week of ~10,000 appeals with two years of
history behind it in ≤ 10 s, start-up included, from a file and from the database).

Simulates a northern city (``corpora.simulate``, ``base_per_day`` ≈ 1,400: ~10,000 appeals a
week) over two years ending on a Sunday, writes it as CSV (texts drawn from the shipped real corpus, ~400 characters on average:
~1.2 GB for ~1.04M appeals, ~18k distinct texts; the report gives both), and times ``suqiu digest`` as a
new process (interpreter start, imports, reading, early warning, hotspots, charts, writing):

* from the file (``--input``);
* from a SQLite database holding the same appeals with their categories as the stored
  predictions (written directly with ``service.store.ingest``, not tagged: the benchmark
  measures the digest, not ingest).

    python -m training.bench_digest [--per-day 1400] [--years 2] [--out var/bench_digest]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

WEEK_END = date(2025, 11, 23)


def _simulate(per_day: float, years: float, out: Path) -> tuple[Path, int, int]:
    from corpora.simulate import CityConfig, simulate_stream

    start = WEEK_END - timedelta(days=int(365 * years))
    frame, _ = simulate_stream(start=start.isoformat(), end=WEEK_END.isoformat(),
                               city=CityConfig(base_per_day=per_day), seed=11)
    path = out / "appeals.csv"
    frame.to_csv(path, index=False)
    week = (frame["time"] >= (WEEK_END - timedelta(days=6)).isoformat()).sum()
    return path, len(frame), int(week)


def _database(csv: Path, out: Path) -> str:
    import pandas as pd
    from sqlalchemy.orm import sessionmaker

    from service import store
    from service.db import localize, make_engine, upgrade

    db = out / "suqiu.db"
    db.unlink(missing_ok=True)
    url = f"sqlite:///{db}"
    upgrade(url)
    frame = pd.read_csv(csv, dtype=str)
    Session = sessionmaker(make_engine(url))
    with Session() as s:
        store.register_model(s, version="simulated", path="-", manifest={})
        for i in range(0, len(frame), 5000):
            chunk = frame.iloc[i:i + 5000]
            appeals = [{"id": r.id, "time": localize(pd.Timestamp(r.time).to_pydatetime(), "Asia/Shanghai"),
                        "title": None, "text": r.text, "district": r.district, "user": None, "channel": None}
                       for r in chunk.itertuples()]
            tags = [{"model_version": "simulated", "category": c, "confidence": 1.0, "category_scores": {c: 1.0},
                     "needs_review": False} for c in chunk["category"]]
            store.ingest(s, appeals=appeals, tags=tags)
    return url


def _time(cmd: list[str], env=None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    return round(time.perf_counter() - t, 1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-day", type=float, default=1400.0)
    p.add_argument("--years", type=float, default=2.0)
    p.add_argument("--out", default="var/bench_digest")
    p.add_argument("--no-db", action="store_true", help="only the file")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    csv, n, week = _simulate(args.per_day, args.years, out)
    report = {"appeals": n, "week_appeals": week, "week_ending": WEEK_END.isoformat(),
              "csv_mb": round(csv.stat().st_size / 2**20), "distinct_texts": None,
              "simulate_s": round(time.perf_counter() - t, 1)}
    import pandas as pd

    report["distinct_texts"] = int(pd.read_csv(csv, usecols=["text"])["text"].nunique())
    # The machine is shared: the load beside the figures (1-minute average, 2 cores here).
    report["load_before"] = round(os.getloadavg()[0], 2)
    suqiu = [sys.executable, "-m", "service.cli", "digest", "--week-ending", WEEK_END.isoformat(), "-q"]
    report["file_s"] = _time(suqiu + ["--input", str(csv), "--output", str(out / "digest.html")])
    if not args.no_db:
        t = time.perf_counter()
        url = _database(csv, out)
        report["db_load_s"] = round(time.perf_counter() - t, 1)
        report["db_s"] = _time(suqiu + ["--db", url, "--output", str(out / "digest_db.html")])
    report["load_after"] = round(os.getloadavg()[0], 2)
    report["goal_s"] = 10
    print(json.dumps(report, ensure_ascii=False, indent=2))
    (out / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
