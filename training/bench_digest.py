"""Benchmark of the weekly digest (issue 15 goal: a week of ~10,000 appeals with two years of
history behind it in ≤ 10 s, start-up included, from a file and from the database).

Simulates a northern city (``corpora.simulate``, ``base_per_day`` ≈ 1,400: ~10,000 appeals a
week) over two years ending on a Sunday, texts drawn from the shipped real corpus (~400
characters on average: ~1.2 GB of CSV for ~1.04M appeals, ~18k distinct texts; the report
gives both). The history before the last week is ``prev.csv``; ``appeals.csv`` is the same
file with the last week's rows appended (what a weekly export that grows looks like). Each
run is ``suqiu digest`` as a new process (interpreter start, imports, reading, early warning,
hotspots, charts, writing the HTML), timed from outside: wall time, CPU time (user + sys of
the process and the grouping process it starts) and the 1-minute load beside it, since the
machine is shared.

* **file, cold**: ``appeals.csv`` with no cache entry (``service.digest_cache``), which the
  run writes;
* **file, warm**: the previous week's digest is made from a copy of ``prev.csv`` (a cold run,
  timed too), the week is appended to that copy and its digest made: the run reuses the
  cached history and reads only the appended rows;
* **database, warm / cold**: the same on a SQLite database holding ``prev.csv`` (categories as
  the stored predictions, written with ``service.store.ingest``, not tagged: the benchmark
  measures the digest, not ingest; built once, ~2–4 minutes, and copied for each run): the
  previous week's digest, the week ingested, this week's digest (warm), then again without
  the cache entry (cold);
* **PostgreSQL** (``--postgres URL``): the same on a scratch database of that server, filled
  with ``prev.csv`` the same way for each run (several minutes for a million appeals) and
  dropped after.

The JSON digests of the warm and cold runs of each source are compared (equal except
``generated_at`` and ``seconds``) and the comparison is in the report.

    python -m training.bench_digest [--per-day 1400] [--years 2] [--out var/bench_digest] [--no-db] [--rebuild]
                                    [--postgres postgresql+psycopg://USER:PASS@HOST/DB]
    python -m training.bench_digest --compare-readers   # pyarrow (two allocators) vs pandas on appeals.csv: time, equal frames
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

WEEK_END = date(2025, 11, 23)
PREV_END = WEEK_END - timedelta(days=7)


def _simulate(per_day: float, years: float, out: Path) -> dict:
    """``prev.csv`` (the history before the week) and ``appeals.csv`` (prev.csv with the week's
    rows appended to it)."""
    from corpora.simulate import CityConfig, simulate_stream

    start = WEEK_END - timedelta(days=int(365 * years))
    frame, _ = simulate_stream(start=start.isoformat(), end=WEEK_END.isoformat(),
                               city=CityConfig(base_per_day=per_day), seed=11)
    in_week = (frame["time"] >= (PREV_END + timedelta(days=1)).isoformat()).to_numpy()
    prev, whole = out / "prev.csv", out / "appeals.csv"
    frame[~in_week].to_csv(prev, index=False)
    shutil.copyfile(prev, whole)
    frame[in_week].to_csv(whole, mode="a", header=False, index=False)
    (out / "week.csv").write_bytes(whole.read_bytes()[prev.stat().st_size:])
    return {"appeals": len(frame), "week_appeals": int(in_week.sum()), "distinct_texts": int(frame["text"].nunique()),
            "per_day": per_day, "years": years}


def _database(csv: Path, db: Path) -> str:
    db.unlink(missing_ok=True)
    url = f"sqlite:///{db}"
    from service.db import upgrade

    upgrade(url)
    _ingest(url, _read_csv(csv), register=True)
    return url


def _ingest(url: str, frame, *, register: bool = False) -> None:
    import pandas as pd
    from sqlalchemy.orm import sessionmaker
    from tqdm import tqdm

    from service import store
    from service.db import localize, make_engine

    engine = make_engine(url)
    Session = sessionmaker(engine)
    with Session() as s:
        if register:
            store.register_model(s, version="simulated", path="-", manifest={})
        for i in tqdm(range(0, len(frame), 5000), desc="ingesting", unit="batch of 5,000",
                      disable=len(frame) <= 5000, file=sys.stderr):
            chunk = frame.iloc[i:i + 5000]
            appeals = [{"id": r.id, "time": localize(pd.Timestamp(r.time).to_pydatetime(), "Asia/Shanghai"),
                        "title": None, "text": r.text, "district": r.district, "user": None, "channel": None}
                       for r in chunk.itertuples()]
            tags = [{"model_version": "simulated", "category": c, "confidence": 1.0, "category_scores": {c: 1.0},
                     "needs_review": False} for c in chunk["category"]]
            store.ingest(s, appeals=appeals, tags=tags)
    engine.dispose()


def _read_csv(path: Path, header: Path | None = None):
    import pandas as pd

    if header is None:
        return pd.read_csv(path, dtype=str)
    return pd.read_csv(path, dtype=str, header=None, names=pd.read_csv(header, nrows=0).columns.tolist())


def _db_runs(url: str, key: str, out: Path, prev: Path, week_args: list, prev_args: list) -> dict:
    """On the database ``url`` holding ``prev.csv``: last week's digest (cold), the week
    ingested, this week's digest with last week's entry (warm) and without one (cold); the
    report's ``<key>_…`` figures."""
    source = _source_of(url)
    report = {}
    _drop_entry("db", source)
    report[f"{key}_prev_week_cold"] = _run([*prev_args, "--db", url, "--output", str(out / f"prev_{key}.html")])
    _ingest(url, _read_csv(out / "week.csv", header=prev))
    with _kept_entry("db", source):
        report[f"{key}_warm"] = _run([*week_args, "--db", url, "--output", str(out / f"digest_{key}_warm.html")])
    _run([*week_args, "--db", url, "--output", str(out / f"{key}_warm.json")])
    _drop_entry("db", source)
    report[f"{key}_cold"] = _run([*week_args, "--db", url, "--output", str(out / f"digest_{key}.html")])
    _drop_entry("db", source)
    _run([*week_args, "--db", url, "--output", str(out / f"{key}_cold.json")])
    report[f"{key}_warm_equals_cold"] = _same(out / f"{key}_warm.json", out / f"{key}_cold.json")
    return report


def _copy_db(src: Path, dst: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o600)
    return f"sqlite:///{dst}"


def _run(args: list[str]) -> dict:
    """One ``suqiu digest`` process: wall and CPU seconds (with its children), load beside,
    and whether it used a cache entry (it logs so)."""
    cmd = [sys.executable, "-m", "service.cli", "digest", "-q", *args]
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run(cmd, check=True, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    sys.stderr.write(done.stderr)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "load": [round(load, 2), round(os.getloadavg()[0], 2)],
            "cache_used": " cached, " in done.stderr}


def _same(a: Path, b: Path) -> bool:
    def load(p):
        d = json.loads(p.read_text(encoding="utf-8"))
        d.pop("generated_at"), d.pop("seconds")
        return d
    return load(a) == load(b)


def _source_of(url: str) -> str:
    from service.digest_cache import _source_of

    return _source_of(url)


def _drop_entry(kind: str, source: str) -> None:
    from service.digest_cache import _entry, default_dir

    shutil.rmtree(_entry(default_dir(), kind, source), ignore_errors=True)


@contextlib.contextmanager
def _kept_entry(kind: str, source: str):
    """The cache entry as it is now, put back after the block (a second run then finds what
    the first found, not what the first wrote)."""
    from service.digest_cache import _entry, default_dir

    entry = _entry(default_dir(), kind, source)
    keep = entry.with_name(entry.name + ".kept")
    shutil.rmtree(keep, ignore_errors=True)
    shutil.copytree(entry, keep)
    try:
        yield
    finally:
        shutil.rmtree(entry, ignore_errors=True)
        keep.rename(entry)


def compare_readers(path: Path) -> dict:
    """The digest's reader of ``path`` by pyarrow (a file on disk; with the digest's memory pool,
    then with pyarrow's default) and by pandas (the same bytes as a file object): seconds of
    each, and whether the frames and problems are equal."""
    import io

    import pandas as pd
    import pyarrow as pa

    from corpora.records import DEFAULT_MAX_CHARS
    from service import digest
    from service.digest import _fast_read

    t = time.perf_counter()
    arrow = _fast_read(path, ",", DEFAULT_MAX_CHARS)
    arrow_s = time.perf_counter() - t
    chosen, digest._arrow_pool = digest._arrow_pool, pa.default_memory_pool  # pyarrow's own allocator
    try:
        t = time.perf_counter()
        _fast_read(path, ",", DEFAULT_MAX_CHARS)
        default_pool_s = time.perf_counter() - t
    finally:
        digest._arrow_pool = chosen
    data = io.BytesIO(path.read_bytes())
    t = time.perf_counter()
    by_pandas = _fast_read(data, ",", DEFAULT_MAX_CHARS)
    pandas_s = time.perf_counter() - t
    try:
        pd.testing.assert_frame_equal(arrow[0], by_pandas[0])
        same = sorted(map(str, arrow[1])) == sorted(map(str, by_pandas[1])) and arrow[2] == by_pandas[2]
    except AssertionError:
        same = False
    return {"rows": arrow[2], "pyarrow_s": round(arrow_s, 1),
            f"pyarrow_{pa.default_memory_pool().backend_name}_s": round(default_pool_s, 1),
            "pandas_s": round(pandas_s, 1), "equal": same}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-day", type=float, default=1400.0)
    p.add_argument("--years", type=float, default=2.0)
    p.add_argument("--out", default="var/bench_digest")
    p.add_argument("--no-db", action="store_true", help="only the file (and PostgreSQL with --postgres)")
    p.add_argument("--postgres", metavar="URL",
                   help="also on PostgreSQL: a scratch database on this server (the role needs CREATEDB), "
                        "filled with the history (~1M appeals, several minutes), dropped after")
    p.add_argument("--rebuild", action="store_true", help="simulate and build the database again")
    p.add_argument("--compare-readers", action="store_true",
                   help="only read appeals.csv with pyarrow and with pandas: times, and whether the frames are equal")
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    spec_path = out / "data.json"
    spec = json.loads(spec_path.read_text()) if spec_path.exists() and not args.rebuild else {}
    if spec.get("per_day") != args.per_day or spec.get("years") != args.years or not (out / "appeals.csv").exists():
        t = time.perf_counter()
        spec = _simulate(args.per_day, args.years, out)
        spec["simulate_s"] = round(time.perf_counter() - t, 1)
        (out / "prev.db").unlink(missing_ok=True)
        spec_path.write_text(json.dumps(spec, indent=2))
    whole, prev = out / "appeals.csv", out / "prev.csv"
    if args.compare_readers:
        print(json.dumps(compare_readers(whole)))
        return 0
    report = {**spec, "week_ending": WEEK_END.isoformat(), "csv_mb": round(whole.stat().st_size / 2**20)}
    week_args = ["--week-ending", WEEK_END.isoformat()]
    prev_args = ["--week-ending", PREV_END.isoformat()]

    # the file: cold, then the previous week's digest of a growing copy and this week's (warm)
    _drop_entry("file", str(whole))
    report["file_cold"] = _run([*week_args, "--input", str(whole), "--output", str(out / "digest.html")])
    _drop_entry("file", str(whole))
    _run([*week_args, "--input", str(whole), "--output", str(out / "cold.json")])
    _drop_entry("file", str(whole))
    work = out / "work.csv"
    shutil.copyfile(prev, work)
    _drop_entry("file", str(work))
    report["file_prev_week_cold"] = _run([*prev_args, "--input", str(work), "--output", str(out / "prev.html")])
    with open(work, "ab") as fh:
        fh.write((out / "week.csv").read_bytes())
    with _kept_entry("file", str(work)):  # both runs find the previous week's entry
        report["file_warm"] = _run([*week_args, "--input", str(work), "--output", str(out / "digest_warm.html")])
    _run([*week_args, "--input", str(work), "--output", str(out / "warm.json")])
    report["file_warm_equals_cold"] = _same(out / "warm.json", out / "cold.json")
    _drop_entry("file", str(work))
    work.unlink()

    if not args.no_db:
        base = out / "prev.db"
        if not base.exists():
            t = time.perf_counter()
            _database(prev, base)
            report["db_build_s"] = round(time.perf_counter() - t, 1)
        report.update(_db_runs(_copy_db(base, out / "suqiu.db"), "db", out, prev, week_args, prev_args))
    if args.postgres:
        from service.db import create_scratch_database, drop_database, upgrade

        url = create_scratch_database(args.postgres, "bench_digest")
        try:
            t = time.perf_counter()
            upgrade(url)
            _ingest(url, _read_csv(prev), register=True)
            report["pg_build_s"] = round(time.perf_counter() - t, 1)
            report.update(_db_runs(url, "pg", out, prev, week_args, prev_args))
        finally:
            drop_database(url)
    report["goal_s"] = 10
    print(json.dumps(report, ensure_ascii=False, indent=2))
    (out / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
