"""Early-warning behaviour that a change must not lose (issue 13): forecasts, emerging
issues, weekday and holiday factors, the same weeks last year, the spike ratio floor and
the distinct-senders guard.

Most tests build a small stream with exact daily counts per category, so the expected
volume of a window can be worked out by hand; the others use a seeded simulated city.
"""
import re
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from corpora.holidays import day_kind
from corpora.simulate import CityConfig, simulate_stream
from corpora.text import normalise
from corpora.topics import default_topics
from models.trends import TrendDetector
from training.trends import as_of_dates


def _stream(start, end, counts, *, text="市民反映情况，请尽快处理"):
    """Appeals at noon: ``counts(day)`` gives ``{category: n}`` for each day in [start, end]."""
    rows, d = [], date.fromisoformat(start)
    while d <= date.fromisoformat(end):
        for cat, n in counts(d).items():
            rows += [{"id": f"{cat}-{d:%Y%m%d}-{k}", "time": f"{d} 12:00:00", "text": text, "category": cat}
                     for k in range(n)]
        d += timedelta(days=1)
    return pd.DataFrame(rows)


def _spikes(det, as_of, category):
    return [a for a in det.detect(as_of) if a["kind"] == "spike" and a["category"] == category]


@pytest.fixture(scope="module")
def two_winters():
    """A northern city from August 2024 to November 2025: two heating seasons, and an
    emerging issue from May 2025 on."""
    frame, truth = simulate_stream(start="2024-08-01", end="2025-11-30", seed=7, city=CityConfig(base_per_day=30))
    return _Quiet((frame, truth, TrendDetector().fit(frame)))


class _Quiet(tuple):
    """The fixture's value without its contents in a failure report: the background texts
    are real appeals (../shared) and carry personal data."""

    def __repr__(self):
        return "<simulated stream>"


# ---------------------------------------------------------------- simulated city
def test_simulator_applies_weekday_and_holiday_factors(two_winters):
    """Background volume follows CityConfig: weekends and public holidays are quieter than
    workdays by the configured factors (make-up workdays count as workdays)."""
    frame, truth, _ = two_winters
    bg = frame[~frame["id"].isin({i for e in truth for i in e["ids"]})]
    daily = bg.groupby(pd.to_datetime(bg["time"]).dt.date).size()
    kind = np.array([day_kind(d) for d in daily.index])
    workday = daily[(kind == "workday") | (kind == "makeup")].mean()
    cfg = CityConfig()
    work_factor = np.mean(cfg.weekday_factor[:5])
    assert daily[kind == "weekend"].mean() / workday == pytest.approx(np.mean(cfg.weekday_factor[5:]) / work_factor,
                                                                      abs=0.08)
    assert daily[kind == "holiday"].mean() / workday == pytest.approx(cfg.holiday_factor / work_factor, abs=0.08)


def test_forecasts_each_districts_heating_season_weeks_ahead(two_winters):
    """Four weeks before winter every district gets a forecast of its heating onset, within
    two weeks of the simulated onset, backed by appeals of last season's onset there."""
    frame, truth, det = two_winters
    onsets = {e["district"]: date.fromisoformat(e["start"]) for e in truth
              if e["kind"] == "seasonal_onset" and e["topic"] == "冬季采暖" and e["start"] >= "2025-09-01"}
    assert len(onsets) == 6
    as_of = date(2025, 10, 19)
    forecasts = {a["district"]: a for a in det.detect(as_of.isoformat(), since_days=7)
                 if a["kind"] == "forecast" and a["topic"] == "冬季采暖"}
    assert set(onsets) <= set(forecasts), f"no heating forecast as of {as_of} for {set(onsets) - set(forecasts)}"
    by_id, lex = frame.set_index("id"), default_topics()
    for district, onset in onsets.items():
        a = forecasts[district]
        start = date.fromisoformat(a["window_start"])
        assert as_of < start and abs((start - onset).days) <= 14, (district, start, onset)
        ev = by_id.loc[a["evidence_ids"]]
        assert len(ev) and (ev["district"] == district).all()
        assert all("冬季采暖" in lex.assign(normalise(t)) for t in ev["text"])
        assert pd.to_datetime(ev["time"]).between("2024-11-01", "2024-12-31").all()  # last season's onset


def test_emerging_issue_is_raised_within_two_weeks(two_winters):
    """The simulated new issue (EV charging points) is raised as an emerging issue within
    14 days of its start; the alert's evidence is appeals of that issue and its words are
    words of those appeals."""
    frame, truth, det = two_winters
    event = next(e for e in truth if e["kind"] == "emerging")
    ids, start = set(event["ids"]), date.fromisoformat(event["start"])
    found = [a for d in as_of_dates(start, start + timedelta(days=14), 7) for a in det.detect(d, since_days=7)
             if a["kind"] == "emerging" and a["evidence_ids"] and set(a["evidence_ids"]) <= ids]
    assert found, f"no emerging alert made of the new issue's appeals within 14 days of {start}"
    texts = frame.set_index("id").loc[found[0]["evidence_ids"], "text"]
    assert found[0]["topic"].startswith("新问题：")
    for word in re.split("[：、]", found[0]["topic"].removeprefix("新问题：")):
        assert texts.str.contains(word, regex=False).any(), word


# ------------------------------------------------------------- exact-count streams
def _weekly(day):
    """20 appeals on a workday (make-up days included), 6 on a weekend or public holiday."""
    if date(2024, 10, 3) <= day <= date(2024, 10, 5) or date(2024, 8, 17) <= day <= date(2024, 8, 18):
        return {"咨询": 15}  # 2.5 × the holiday / weekend level, but below a workday's
    return {"咨询": 20 if day_kind(day) in ("workday", "makeup") else 6}


@pytest.fixture(scope="module")
def weekly_stream():
    return _stream("2024-03-01", "2024-10-10", _weekly)


@pytest.mark.parametrize("window_days, as_of, usual", [
    (3, "2024-10-05", 3 * 6),   # 3-5 October: Golden Week holidays
    (2, "2024-08-18", 2 * 6),   # a Saturday and Sunday
])
def test_expected_volume_uses_weekday_and_holiday_factors(weekly_stream, window_days, as_of, usual):
    """A holiday or weekend window is expected at the holiday / weekend level, not at the
    trailing average dominated by workdays, so 15 a day (2.5 × usual) is a spike."""
    det = TrendDetector(window_days=window_days).fit(weekly_stream)
    spikes = _spikes(det, as_of, "咨询")
    assert len(spikes) == 1, f"2.5 × the usual volume on {as_of} was not a spike"
    assert spikes[0]["observed"] == 15 * window_days
    assert spikes[0]["expected"] == pytest.approx(usual, rel=0.15)


def _yearly(day):
    """5 appeals a day, 20 a day for three weeks from the same Monday of June each year."""
    burst = any(s <= day < s + timedelta(days=21) for s in (date(2024, 6, 17), date(2025, 6, 16)))
    return {"排水": 20 if burst else 5}


def test_same_weeks_last_year_raise_the_expected_volume():
    """A rise that happened in the same weeks last year is expected: the first days of this
    year's June burst are no spike, though last year's were (the trailing level is 5 a day)."""
    det = TrendDetector().fit(_stream("2024-03-01", "2025-06-30", _yearly))
    first = _spikes(det, "2024-06-19", "排水")
    assert len(first) == 1 and first[0]["observed"] == 60
    assert _spikes(det, "2025-06-18", "排水") == [], "a rise seen in the same weeks last year was called a spike"


def _busy(day):
    """100 appeals a day; 150 a day on 6-8 May, 250 a day on 27-29 May."""
    if date(2024, 5, 6) <= day <= date(2024, 5, 8):
        return {"热线": 150}
    if date(2024, 5, 27) <= day <= date(2024, 5, 29):
        return {"热线": 250}
    return {"热线": 100}


def test_spike_needs_min_ratio_over_expected():
    """On a busy series a 1.5 × rise is statistically certain but below min_ratio (2), so it
    is no spike; 2.5 × is one, and so is 1.5 × when min_ratio is lowered below it."""
    stream = _stream("2024-03-01", "2024-05-31", _busy)
    det = TrendDetector().fit(stream)
    assert _spikes(det, "2024-05-08", "热线") == [], "a 1.5 × rise was called a spike though min_ratio is 2"
    assert [a["observed"] for a in _spikes(det, "2024-05-29", "热线")] == [750]
    assert [a["observed"] for a in _spikes(TrendDetector(min_ratio=1.3).fit(stream), "2024-05-08", "热线")] == [450]


_BACKGROUND = ["小区门口道路破损多处，请尽快修补", "楼上住户装修噪音扰民，请协调",
               "公交车经常晚点，希望增加班次", "咨询孩子入学报名需要哪些材料"]
_NEW = ["小区新装的共享按摩椅扫码后不退款，请处理", "共享按摩椅扫码付款后不启动，客服电话打不通"]


def _senders_stream(n_senders):
    """Half a year of 12 routine appeals a day from distinct senders; over the last 12 days
    two a day about a new thing (shared massage chairs) from ``n_senders`` senders."""
    rows, i, d = [], 0, date(2024, 1, 1)
    while d <= date(2024, 7, 21):
        for k in range(12):
            i += 1
            rows.append({"id": f"B{i}", "time": f"{d} 10:00:00", "text": _BACKGROUND[k % 4], "user": f"u{i}"})
        if d >= date(2024, 7, 10):
            for k in range(2):
                i += 1
                rows.append({"id": f"N{i}", "time": f"{d} 15:00:00", "text": _NEW[k], "user": f"n{i % n_senders}"})
        d += timedelta(days=1)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n_senders, raised", [(1, False), (2, False), (3, True)])
def test_emerging_issue_needs_distinct_senders(n_senders, raised):
    """24 appeals about a new thing make an emerging issue only when at least
    emerging_min_users (3) people sent them: one or two people posting again and again do not."""
    stream = _senders_stream(n_senders)
    alerts = [a for a in TrendDetector().fit(stream).detect("2024-07-21", since_days=14) if a["kind"] == "emerging"]
    if not raised:
        assert alerts == [], f"{n_senders} sender(s) made an emerging issue on their own"
        return
    new_ids = sorted(stream.loc[stream["id"].str.startswith("N"), "id"])
    assert len(alerts) == 1, "24 appeals from 3 senders about a new thing were not an emerging issue"
    assert sorted(alerts[0]["evidence_ids"]) == new_ids
    assert "按摩椅" in alerts[0]["topic"]
