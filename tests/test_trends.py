"""Early warning: simulator truth, no look-ahead, detection, calendar, CLI."""
import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from corpora.simulate import CityConfig, simulate_stream
from models.trends import TrendDetector, benjamini_hochberg, onsets_in
from training.trends import as_of_dates, backtest, baseline_backtest, score_alerts


@pytest.fixture(scope="module")
def stream():
    return simulate_stream(start="2024-01-01", end="2025-03-31", seed=5)


def test_simulator_is_seeded_and_writes_truth(stream):
    frame, truth = stream
    again, truth2 = simulate_stream(start="2024-01-01", end="2025-03-31", seed=5)
    pd.testing.assert_frame_equal(frame, again)
    assert truth == truth2
    kinds = {e["kind"] for e in truth}
    assert {"spike", "seasonal_onset", "emerging"} <= kinds
    ids = set(frame["id"])
    for e in truth:
        assert set(e["ids"]) <= ids
        assert (frame.set_index("id").loc[e["ids"], "event"] == e["id"]).all()
    south, t_south = simulate_stream(start="2024-10-01", end="2025-01-31", seed=5, city=CityConfig(kind="south"))
    assert not any(e["topic"] == "冬季采暖" for e in t_south)


def test_no_look_ahead(stream):
    """Alerts as of D are the same whether or not the stream holds appeals after D."""
    frame, _ = stream
    full = TrendDetector().fit(frame)
    for as_of in ["2024-11-17", "2024-12-15", "2025-02-02"]:
        cut = frame[pd.to_datetime(frame["time"]) < pd.Timestamp(as_of) + pd.Timedelta(days=1)]
        part = TrendDetector().fit(cut)
        a, b = full.detect(as_of, since_days=7), part.detect(as_of, since_days=7)
        assert a == b
        late = set(frame["id"]) - set(cut["id"])
        assert not any(set(x["evidence_ids"]) & late for x in a)


def test_injected_incident_is_found_with_evidence():
    frame, truth = simulate_stream(start="2024-01-01", end="2024-12-31", seed=11,
                                   city=CityConfig(seasons=False, emerging=False, incidents_per_year=3))
    alerts = backtest(frame, "2024-01-01", "2024-12-31", every=1, progress=False)
    incidents = [e for e in truth if e["kind"] == "spike" and e["start"] >= "2024-02-05"]
    assert incidents
    for e in incidents:
        hits = [a for a in alerts if a["kind"] == "spike" and set(a["evidence_ids"]) & set(e["ids"])
                and 0 <= (date.fromisoformat(a["as_of"]) - date.fromisoformat(e["start"])).days <= 7]
        assert hits, e["id"]
        a = hits[0]
        assert a["observed"] > a["expected"] and a["summary"] and a["district"] in {e["district"], None}


def test_quiet_stream_raises_few_alarms():
    frame, _ = simulate_stream(start="2024-01-01", end="2024-12-31", seed=12,
                               city=CityConfig(seasons=False, emerging=False, incidents_per_year=0))
    alerts = [a for a in backtest(frame, "2024-01-01", "2024-12-31", every=1, progress=False)
              if a["kind"] != "forecast"]
    assert len(alerts) / 52 <= 0.5
    assert len(baseline_backtest(frame, "2024-01-01", "2024-12-31")) > len(alerts)


def test_scores_and_calendar(stream):
    frame, truth = stream
    alerts = backtest(frame, "2024-01-01", "2025-03-31", every=1, progress=False)
    s = score_alerts(alerts, truth, start="2024-01-01", weeks=65)
    assert s["event_recall"] >= 0.8 and s["alert_precision"] >= 0.8
    cal = TrendDetector().fit(frame).calendar("2025-03-31")
    heating = [e for e in cal["entries"] if e["topic"] == "冬季采暖" and e["district"] is not None]
    assert heating
    for e in heating:  # the simulated onsets are 15 Nov ± 6 days
        month, day = map(int, e["typical_onset"].split("-"))
        assert (month, day) >= (11, 5) and (month, day) <= (11, 28)


def test_helpers():
    assert benjamini_hochberg(np.array([0.5, 0.001]), 0.05).tolist() == [False, True]
    assert onsets_in(np.array([0, 9, 9, 0]), 8, min_run=3) == []
    assert [d.weekday() for d in as_of_dates("2025-01-01", "2025-01-31", 7)] == [6] * 4
    with pytest.raises(ValueError, match="before"):
        as_of_dates("2025-02-01", "2025-01-01", 7)


def test_detector_refuses_streams_without_times():
    with pytest.raises(ValueError, match="'time' is missing"):
        TrendDetector().fit(pd.DataFrame({"id": ["1"], "text": ["暖气"]}))


def test_trends_cli(tmp_path, stream):
    from service.cli import main

    frame, _ = stream
    src = tmp_path / "stream.csv"
    frame[["id", "time", "text", "district"]].to_csv(src, index=False)
    out = tmp_path / "alerts.jsonl"
    assert main(["trends", "backtest", "--input", str(src), "--start", "2024-10-01", "--end", "2024-12-31",
                 "--output", str(out), "-q"]) == 0
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert rows
    for r in rows:
        assert {"as_of", "kind", "district", "window_start", "window_end", "observed", "expected", "score",
                "evidence_ids", "summary"} <= set(r)
        assert ("topic" in r) or ("category" in r)
        assert date.fromisoformat(r["as_of"]).weekday() == 6
    cal = tmp_path / "calendar.json"
    assert main(["trends", "calendar", "--input", str(src), "--output", str(cal)]) == 0
    assert json.loads(cal.read_text(encoding="utf-8"))["entries"]
    assert main(["trends", "backtest", "--input", str(src), "--start", "2025-01-01", "--end", "2024-01-01",
                 "--output", str(out)]) == 3
