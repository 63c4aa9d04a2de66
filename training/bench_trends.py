"""`make bench-trends`: early warning on simulated streams with known truth, and on the
real timestamped message-board data. Prints the figures; writes var/bench_trends.json."""
from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path

from corpora.simulate import CityConfig, simulate_stream
from training.trends import backtest, baseline_backtest, score_alerts

log = logging.getLogger(__name__)
START, END, WEEKS = "2024-01-01", "2025-12-31", 104.4


def simulated(kind: str, seed: int) -> dict:
    frame, truth = simulate_stream(start=START, end=END, city=CityConfig(kind=kind), seed=seed)
    out = {"city": kind, "seed": seed, "appeals": len(frame), "events": len(truth)}
    t = time.perf_counter()
    weekly = backtest(frame, START, END, every=7)
    out["weekly_backtest_seconds"] = round(time.perf_counter() - t, 1)
    out["weekly"] = score_alerts(weekly, truth, start=START, weeks=WEEKS)
    t = time.perf_counter()
    daily = backtest(frame, START, END, every=1)
    out["daily_backtest_seconds"] = round(time.perf_counter() - t, 1)
    out["daily"] = score_alerts(daily, truth, start=START, weeks=WEEKS)
    out["baseline_weekly"] = score_alerts(baseline_backtest(frame, START, END, every=7), truth, start=START,
                                          weeks=WEEKS)
    quiet, _ = simulate_stream(start=START, end=END, seed=seed + 100,
                               city=CityConfig(kind=kind, seasons=False, incidents_per_year=0, emerging=False))
    q = [a for a in backtest(quiet, START, END, every=1) if a["kind"] != "forecast"]
    qb = baseline_backtest(quiet, START, END, every=7)
    out["no_event_stream"] = {"false_alarms_per_week": round(len(q) / WEEKS, 3),
                              "baseline_false_alarms_per_week": round(len(qb) / WEEKS, 3)}
    return out


def real(shared: Path) -> dict | None:
    import pandas as pd

    from corpora.records import read_appeals

    files = [shared / "tipdm2020c" / n for n in ("appeals_unlabelled_hot.csv", "appeals_with_replies.csv",
                                                  "appeals_labelled_dev.csv")]
    if not all(f.exists() for f in files):
        return None
    frames = [read_appeals(f).frame for f in files]
    frame = pd.concat(frames, ignore_index=True)
    frame = frame[frame["time"].notna()].drop_duplicates("id")
    district = frame["text"].str.extract(r"([A-N]\d{1,2}[区县市])", expand=False)
    frame["district"] = district
    times = pd.to_datetime(frame["time"])
    start, end = times.min().date(), times.max().date()
    dense = times[times >= pd.Timestamp("2019-01-01")]
    b_start = max(start, dense.min().date())
    alerts = backtest(frame, b_start.isoformat(), end.isoformat(), every=7)
    detections = [a for a in alerts if a["kind"] != "forecast"]
    months = Counter(a["as_of"][:7] for a in detections)
    examples = {}
    for a in sorted(detections, key=lambda a: -a["score"]):
        examples.setdefault(a["kind"], [])
        if len(examples[a["kind"]]) < 3:
            examples[a["kind"]].append({k: a[k] for k in ("as_of", "kind", "topic", "category", "district",
                                                          "observed", "expected", "score", "summary")})
    return {"appeals_with_time": len(frame), "span": [start.isoformat(), end.isoformat()],
            "backtest_span": [b_start.isoformat(), end.isoformat()],
            "alerts_by_kind": dict(Counter(a["kind"] for a in alerts)),
            "detections_per_month": dict(sorted(months.items())),
            "examples": examples}


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    root = Path(__file__).resolve().parents[1]
    report = {"north": simulated("north", 0), "south": simulated("south", 1)}
    r = real(root.parent / "shared" / "corpora")
    report["real_tipdm2020c"] = r if r is not None else "skipped: ../shared/corpora is absent"
    out = root / "var" / "bench_trends.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
