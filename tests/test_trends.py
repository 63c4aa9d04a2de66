"""Early warning: simulator truth, no look-ahead, detection, calendar, CLI."""
import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from corpora.simulate import CityConfig, simulate_stream
from corpora.text import normalise
from corpora.topics import default_topics
from models.trends import TrendDetector, onsets_in
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
    assert list(frame.columns) == ["id", "time", "district", "category", "text"]  # no truth in the frame
    owners = {}
    for e in truth:
        assert set(e["ids"]) <= ids
        for i in e["ids"]:  # each appeal belongs to one event at most
            assert owners.setdefault(i, e["id"]) == e["id"]
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
                                   city=CityConfig(seasons=False, emerging=False, incidents_per_year=3,
                                                   surges_per_year=0))
    alerts = backtest(frame, "2024-01-01", "2024-12-31", every=1, progress=False)
    incidents = [e for e in truth if e["kind"] == "spike" and e["start"] >= "2024-02-05"]
    assert incidents
    for e in incidents:
        hits = [a for a in alerts if a["kind"] == "spike" and set(a["evidence_ids"]) & set(e["ids"])
                and 0 <= (date.fromisoformat(a["as_of"]) - date.fromisoformat(e["start"])).days <= 7]
        assert hits, e["id"]
        assert all(a["district"] in {e["district"], None} for a in hits)
        named = [a for a in hits if a["topic"] == e["topic"]]
        assert named, f"no spike of 「{e['topic']}」 for {e['id']}"
        a = named[0]
        assert a["observed"] > 2 * a["expected"]
        # the sentence names the series and the counts it reports
        assert a["summary"].startswith(f"{a['district'] or '全市'}「{e['topic']}」"), a["summary"]
        assert f"收到{a['observed']}件" in a["summary"] and f"预计约{a['expected']:.1f}件" in a["summary"]


def test_quiet_stream_raises_few_alarms():
    frame, _ = simulate_stream(start="2024-01-01", end="2024-12-31", seed=12,
                               city=CityConfig(seasons=False, emerging=False, incidents_per_year=0,
                                               surges_per_year=0))
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


def test_score_counts_only_events_a_detector_could_see():
    truth = [{"id": "warm-up", "kind": "spike", "start": "2024-01-10", "ids": ["a"], "topic": "t", "district": "d"},
             {"id": "inside", "kind": "spike", "start": "2024-03-01", "ids": ["b"], "topic": "t", "district": "d"},
             {"id": "at-the-end", "kind": "spike", "start": "2024-03-28", "ids": ["c"], "topic": "t", "district": "d"}]
    alerts = [{"kind": "spike", "as_of": "2024-03-02", "evidence_ids": ["b", "x"], "topic": "t", "district": "d"}]
    whole = score_alerts(alerts, truth, start="2024-01-01", weeks=13)
    assert whole["events"] == 2 and whole["event_recall"] == 0.5  # the warm-up event is never scored
    ended = score_alerts(alerts, truth, start="2024-01-01", end="2024-03-31", weeks=13)
    assert ended["events"] == 1 and ended["event_recall"] == 1.0 and ended["median_delay_days"] == 1.0
    assert ended["alert_precision"] == 1.0


def test_score_reports_the_day_a_late_emerging_issue_was_found():
    truth = [{"id": "new", "kind": "emerging", "start": "2024-03-01", "ids": ["a", "b"], "topic": None, "district": "d"},
             {"id": "never", "kind": "emerging", "start": "2024-03-05", "ids": ["c"], "topic": None, "district": "d"}]
    alerts = [{"kind": "emerging", "as_of": "2024-02-28", "evidence_ids": ["b"]},  # before its start: not it
              {"kind": "emerging", "as_of": "2024-03-09", "evidence_ids": ["x", "b"]},
              {"kind": "spike", "as_of": "2024-03-12", "evidence_ids": ["a"]}]
    s = score_alerts(alerts, truth, start="2024-01-01", weeks=13)
    assert s["recall_by_kind"]["emerging"] == {"events": 2, "recalled": 0}  # day 8: past the 7-day window
    assert s["emerging_first_alert_days"] == [8, None]


def test_score_separates_forecast_errors_on_seasons_that_moved_between_years():
    def onset(eid, start, season="rain", anchor=None, district="d"):
        return {"id": eid, "kind": "seasonal_onset", "start": start, "ids": [eid], "topic": "t",
                "district": district, "season": season, "anchor": anchor}

    truth = [onset("r23", "2023-06-19"), onset("r24", "2024-06-09"),  # the rain came 10 days earlier
             onset("h23", "2023-07-01", "heat"), onset("h24", "2024-07-03", "heat", district="e"),  # no 2023 in e
             onset("w23", "2023-12-25", "wages", "Spring Festival"),  # 47 days before 10 Feb 2024
             onset("w24", "2024-12-12", "wages", "Spring Festival")]  # 47 days before 28 Jan 2025
    forecast = lambda as_of, day, district="d": {"kind": "forecast", "topic": "t", "district": district,  # noqa: E731
                                                 "as_of": as_of, "window_start": day, "evidence_ids": []}
    alerts = [forecast("2024-05-10", "2024-06-19"), forecast("2024-06-01", "2024-07-12", "e"),
              forecast("2024-11-10", "2024-12-22")]
    s = score_alerts(alerts, truth, start="2023-05-01", weeks=90)
    assert s["onset_forecasts_scored"] == 3
    assert s["onset_forecast_error_days"]["max"] == 10
    # the rain moved 10 days (its 10-day error is the season's own move); the wages kept
    # their distance to the moving Spring Festival, so their 10-day error counts; the heat
    # in e has no earlier season to compare with
    assert s["onset_season_moves_over_7_days"] == 1
    assert s["onset_forecast_error_days_max_where_moved_le_7"] == 10
    assert s["onset_forecast_error_days_max_by_season"] == {"heat": 9, "rain": 10, "wages": 10}
    # last year's true onsets, pooled over districts: the heat in e from d's 2023 onset (2 days
    # off); the wages kept their distance to the Spring Festival
    assert s["onset_reference_error_days_max_by_season"] == {"heat": 2, "rain": 10, "wages": 0}


def test_helpers():
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
    assert {"spike", "seasonal_onset"} <= {r["kind"] for r in rows}  # winter heating starts in November
    by_id, lex = frame.set_index("id"), default_topics()
    for r in rows:
        assert {"as_of", "kind", "district", "window_start", "window_end", "observed", "expected", "score",
                "evidence_ids", "summary"} <= set(r)
        assert date.fromisoformat(r["as_of"]).weekday() == 6
        # The stream has no category column: every alert names a topic, none a category.
        assert r["category"] is None and r["topic"], r
        ev = by_id.loc[r["evidence_ids"]]
        assert len(ev), r
        if r["kind"] == "emerging":
            assert r["topic"].startswith("新问题：")
        else:  # a topic of the stream; its evidence is appeals of that topic (and district)
            assert r["summary"].startswith(f"{r['district'] or '全市'}「{r['topic']}」"), r["summary"]
            assert all(r["topic"] in lex.assign(normalise(t)) for t in ev["text"]), r
            assert r["district"] is None or (ev["district"] == r["district"]).all(), r
        if r["kind"] != "forecast":  # the evidence lies in the alert's window, up to as_of
            days = pd.to_datetime(ev["time"]).dt.strftime("%Y-%m-%d")
            assert days.between(r["window_start"], r["window_end"]).all() and r["window_end"] <= r["as_of"], r
        if r["kind"] in {"spike", "seasonal_onset"}:  # the evidence is the appeals counted (up to 50)
            assert len(ev) == min(r["observed"], 50), r
    cal = tmp_path / "calendar.json"
    assert main(["trends", "calendar", "--input", str(src), "--output", str(cal)]) == 0
    heating = [e for e in json.loads(cal.read_text(encoding="utf-8"))["entries"] if e["topic"] == "冬季采暖"]
    assert heating and all(e["typical_onset"].startswith("11-") for e in heating)
    assert main(["trends", "backtest", "--input", str(src), "--start", "2025-01-01", "--end", "2024-01-01",
                 "--output", str(out)]) == 3


def test_seasons_anchor_to_the_calendar_or_to_a_moving_holiday():
    """Onsets a few days before each year's Spring Festival (which moves by weeks) are
    anchored to it and the next one is forecast from next year's date; onsets on the same
    calendar day each year stay on the calendar; a topic with two seasons a year keeps two."""
    from corpora.holidays import holiday_starts
    from models.trends import _anchor, _next_onset, _recurring

    sf = {d.year: d for d in holiday_starts()["春节"]}
    tourism = [sf[y] - pd.Timedelta(days=3).to_pytimedelta() for y in (2023, 2024, 2025)]
    assert _anchor(tourism) == ("春节", -3, 0.0)
    assert _next_onset(date(2025, 3, 1), "春节", -3, tourism) == sf[2026] - pd.Timedelta(days=3).to_pytimedelta()
    june = [date(2023, 6, 15), date(2024, 6, 14), date(2025, 6, 16)]
    name, _, spread = _anchor(june)
    assert name == "日历" and spread <= 1
    assert _next_onset(date(2025, 7, 1), name, _anchor(june)[1], june) == date(2026, 6, 15)
    rain = june + [date(2023, 8, 5), date(2024, 8, 12), date(2025, 8, 1)]
    assert _recurring(rain) == [[0, 1, 2], [3, 4, 5]]
