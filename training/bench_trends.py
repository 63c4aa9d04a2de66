"""`make bench-trends`: early warning on several simulated cities with known truth, side by
side with two detectors this project did not design (the 8-week-mean baseline and a
statsmodels count GLM, training/glm_detector.py), and on the real timestamped
message-board data. Every figure is reported per city and as the range over the cities.
Prints the tables; writes var/bench_trends.json.

    python -m training.bench_trends                 # 5 cities, 2023-05 .. 2025-04
    python -m training.bench_trends --cities 2 --no-glm --no-real   # a quicker look
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from corpora.simulate import cities, simulate_stream
from training.glm_detector import glm_backtest
from training.trends import backtest, baseline_backtest, score_alerts

log = logging.getLogger(__name__)
START, END = "2023-05-01", "2025-04-30"
WEEKS = 104.3
METRICS = ("event_recall", "alert_precision", "alerts_per_week", "false_alarms_per_week", "median_delay_days")


def _timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, round(time.perf_counter() - t, 1)


def simulated(city, seed: int, *, glm: bool) -> dict:
    frame, truth = simulate_stream(start=START, end=END, city=city, seed=seed)
    out = {"city": city.name, "kind": city.kind, "coastal": city.coastal, "senders": city.senders, "seed": seed,
           "appeals": len(frame), "events": len(truth), "runs": {}}
    runs = {"suqiu daily": lambda: backtest(frame, START, END, every=1, progress=False),
            "suqiu weekly": lambda: backtest(frame, START, END, every=7, progress=False),
            "baseline daily": lambda: baseline_backtest(frame, START, END, every=1),
            "baseline weekly": lambda: baseline_backtest(frame, START, END, every=7)}
    if glm:
        runs["glm daily"] = lambda: glm_backtest(frame, START, END, every=1, progress=False)
        runs["glm weekly"] = lambda: glm_backtest(frame, START, END, every=7, progress=False)
    for name, run in runs.items():
        alerts, seconds = _timed(run)
        score = score_alerts(alerts, truth, start=START, end=END, weeks=WEEKS)
        score["seconds"] = seconds
        out["runs"][name] = score
        log.info("%s %s: recall %s precision %s false alarms/week %s (%s s)", city.name, name,
                 score["event_recall"], score["alert_precision"], score["false_alarms_per_week"], seconds)
    quiet_city = replace(city, seasons=False, in_season_incidents=False, incidents_per_year=0, surges_per_year=0,
                         rainstorms_per_year=0, emerging=False)
    quiet, _ = simulate_stream(start=START, end=END, city=quiet_city, seed=seed + 100)
    q = [a for a in backtest(quiet, START, END, every=1, progress=False) if a["kind"] != "forecast"]
    out["no_event_stream_false_alarms_per_week"] = round(len(q) / WEEKS, 3)
    return out


def _range(values) -> str:
    v = [x for x in values if x is not None]
    if not v:
        return "–"
    lo, hi = min(v), max(v)
    return f"{lo:g}" if lo == hi else f"{lo:g}–{hi:g}"


def summary(reports: list[dict]) -> dict:
    """Per run: the range over the cities of every metric, the onset-forecast error and the
    emerging issue found."""
    out = {}
    for name in reports[0]["runs"]:
        rs = [r["runs"][name] for r in reports]
        row = {m: _range([x[m] for x in rs]) for m in METRICS}
        row["onset_forecast_error_days_median"] = _range(
            [x["onset_forecast_error_days"]["median"] if x["onset_forecast_error_days"] else None for x in rs])
        row["onset_forecast_error_days_max"] = _range(
            [x["onset_forecast_error_days"]["max"] if x["onset_forecast_error_days"] else None for x in rs])
        row["onset_forecast_error_days_max_where_moved_le_7"] = _range(
            [x["onset_forecast_error_days_max_where_moved_le_7"] for x in rs])
        row["onset_season_moves_over_7_days"] = _range([x["onset_season_moves_over_7_days"] for x in rs])
        for key in ("onset_forecast_error_days_max_by_season", "onset_reference_error_days_max_by_season"):
            seasons = sorted({k for x in rs for k in x.get(key, {})})
            row[key] = {k: _range([x.get(key, {}).get(k) for x in rs]) for k in seasons}
        row["emerging_found"] = f"{sum(x['recall_by_kind']['emerging']['recalled'] > 0 for x in rs)}/{len(rs)}"
        days = [min((d for d in x["emerging_first_alert_days"] if d is not None), default=None) for x in rs]
        row["emerging_found_any_delay"] = f"{sum(d is not None for d in days)}/{len(rs)}, day {_range(days)}"
        row["seconds"] = _range([x["seconds"] for x in rs])
        out[name] = row
    out["no-event stream (suqiu daily)"] = {"false_alarms_per_week": _range(
        [r["no_event_stream_false_alarms_per_week"] for r in reports])}
    return out


def real(shared: Path) -> dict | None:
    """The real message-board appeals replayed weekly: alerts per week by kind and the ten
    highest-scoring emerging issues (redacted summaries and sizes only)."""
    import pandas as pd

    from corpora.records import read_appeals

    files = [shared / "tipdm2020c" / n for n in ("appeals_unlabelled_hot.csv", "appeals_with_replies.csv",
                                                  "appeals_labelled_dev.csv")]
    if not all(f.exists() for f in files):
        return None
    frame = pd.concat([read_appeals(f).frame for f in files], ignore_index=True)
    frame = frame[frame["time"].notna()].drop_duplicates("id")
    frame["district"] = frame["text"].str.extract(r"([A-N]\d{1,2}[区县市])", expand=False)
    times = pd.to_datetime(frame["time"])
    dense = times[times >= pd.Timestamp("2019-01-01")]
    b_start, end = max(times.min(), dense.min()).date(), times.max().date()
    alerts, seconds = _timed(backtest, frame, b_start.isoformat(), end.isoformat(), every=7, progress=False)
    weeks = max((end - b_start).days / 7, 1)
    detections = [a for a in alerts if a["kind"] != "forecast"]
    emerging = sorted((a for a in detections if a["kind"] == "emerging"), key=lambda a: -a["score"])
    return {"appeals_with_time": len(frame), "backtest_span": [b_start.isoformat(), end.isoformat()],
            "seconds": seconds, "alerts_by_kind": dict(Counter(a["kind"] for a in alerts)),
            "emerging_per_week": round(len(emerging) / weeks, 2),
            "top_emerging": [{k: a[k] for k in ("as_of", "topic", "district", "observed", "expected", "score",
                                                "summary")} | {"appeals": len(a["evidence_ids"])}
                             for a in emerging[:10]]}


def _print(summary_: dict, reports: list[dict]) -> None:
    cols = ("event_recall", "alert_precision", "false_alarms_per_week", "median_delay_days",
            "onset_forecast_error_days_median", "onset_forecast_error_days_max",
            "onset_forecast_error_days_max_where_moved_le_7", "onset_season_moves_over_7_days", "emerging_found", "emerging_found_any_delay", "seconds")
    print(f"\n{len(reports)} simulated cities, {START} .. {END}; ranges over the cities")
    print("| run | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for name, row in summary_.items():
        print(f"| {name} | " + " | ".join(str(row.get(c, "")) for c in cols) + " |")
    daily = summary_.get("suqiu daily", {})
    by_season, reference = daily.get("onset_forecast_error_days_max_by_season", {}), \
        daily.get("onset_reference_error_days_max_by_season", {})
    if by_season:
        print("\nworst onset-forecast error by season (days; range over the cities that have it)")
        print("| forecast | " + " | ".join(by_season) + " |")
        print("|---|" + "---|" * len(by_season))
        print("| suqiu daily | " + " | ".join(by_season.values()) + " |")
        print("| reference: the median of last year's true onsets (from the truth) | "
              + " | ".join(reference.get(k, "–") for k in by_season) + " |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cities", type=int, default=5, help="simulated cities (default 5: north/south, coastal, volumes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-glm", action="store_true", help="skip the statsmodels GLM comparison (the slowest part)")
    p.add_argument("--no-real", action="store_true", help="skip the real message-board data")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    root = Path(__file__).resolve().parents[1]
    reports = [simulated(c, args.seed + i, glm=not args.no_glm)
               for i, c in enumerate(cities(args.cities, seed=args.seed))]
    report = {"span": [START, END], "cities": reports, "summary": summary(reports)}
    if not args.no_real:
        r = real(root.parent / "shared" / "corpora")
        report["real_tipdm2020c"] = r if r is not None else "skipped: ../shared/corpora is absent"
    out = root / "var" / "bench_trends.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    _print(report["summary"], reports)
    if isinstance(report.get("real_tipdm2020c"), dict):
        r = report["real_tipdm2020c"]
        print(f"\nreal data {r['backtest_span']}: {r['alerts_by_kind']}, emerging per week {r['emerging_per_week']}")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
