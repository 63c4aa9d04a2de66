"""The stream simulator (issue 14): real background, senders and re-posters, several seasons
per topic, holiday-anchored seasons, in-season incidents, small surges, an emerging issue,
several cities, no truth in the frame, determinism.

Assertions never show appeal texts (with the real corpus they hold real people's
details): checks on texts are reduced to plain booleans and counts first, and the streams
the fixtures hand over print as a summary.
"""
import re
import time
from collections import Counter
from datetime import date, timedelta

import pandas as pd
import pytest

import corpora.simulate as sim
from corpora.simulate import CityConfig, cities, holiday_run, simulate_stream
from corpora.topics import default_topics

QUIET = dict(seasons=False, emerging=False, incidents_per_year=0, surges_per_year=0, rainstorms_per_year=0)
needs_real = pytest.mark.skipif(not sim.REAL_CORPUS.exists(), reason="../shared/corpora (real data) is absent")


class _Stream(tuple):
    """(city, frame, truth) that prints as a summary, never as its texts."""

    def __repr__(self):
        return f"<stream {self[0].name}: {len(self[1])} appeals, {len(self[2])} events>"


def _event_ids(truth):
    return {i for e in truth for i in e["ids"]}


def _days(frame, ids):
    by_id = frame.set_index("id")
    return pd.to_datetime(by_id.loc[list(ids), "time"]).dt.date


@pytest.fixture(scope="module")
def north():
    city = CityConfig()
    return _Stream((city, *simulate_stream(start="2024-01-01", end="2025-03-31", city=city, seed=5)))


@pytest.fixture(scope="module")
def south():
    city = next(c for c in cities() if c.kind == "south" and c.coastal and c.senders)
    return _Stream((city, *simulate_stream(start="2023-01-01", end="2024-12-31", city=city, seed=3)))


# ---------------------------------------------------------------- background
@needs_real
@pytest.mark.parametrize("background", ["auto", "real"])
def test_background_is_the_real_corpus_when_present(background):
    texts, cats, _ = sim._corpus("real", str(sim.REAL_CORPUS))
    label = dict(zip(texts, cats))
    frame, truth = simulate_stream(start="2024-03-01", end="2024-03-31", seed=1,
                                   city=CityConfig(background=background, **QUIET))
    assert truth == []
    assert len(frame) > 1000
    from_real = bool(frame["text"].isin(label).all())
    assert from_real, "a background text is not from the real corpus"
    labelled = bool((frame["category"] == frame["text"].map(label)).all())
    assert labelled, "a background appeal lost its labelled category"
    assert frame["category"].nunique() == 7
    # long-tail vocabulary: the corpus's anonymised place tokens come along
    with_place_token = float(frame["text"].str.contains(r"[A-N]\d{1,2}[区县市]").mean())
    assert with_place_token > 0.02
    # dealt from a shuffled pool: no text twice within a month (re-posts aside)
    repeated = int(frame.drop_duplicates(["district", "text"])["text"].duplicated().sum())
    assert repeated <= 0.02 * len(frame)


def test_shipped_corpus_is_the_fallback(monkeypatch, tmp_path):
    monkeypatch.setattr(sim, "REAL_CORPUS", tmp_path / "absent.csv")
    with pytest.raises(ValueError, match="real corpus is absent"):
        simulate_stream(start="2024-03-01", end="2024-03-10", city=CityConfig(background="real"))
    with pytest.raises(ValueError, match="'auto', 'real' or 'shipped'"):
        simulate_stream(start="2024-03-01", end="2024-03-10", city=CityConfig(background="mine"))
    city = CityConfig(background="auto", districts=["甲区", "乙区"], tourist_districts=[], **QUIET)
    frame, _ = simulate_stream(start="2024-03-01", end="2024-03-31", seed=2, city=city)
    texts, cats, _ = sim._corpus("shipped", str(sim.SHIPPED_CORPUS))
    # the demo districts in shipped texts become the appeal's own district
    demo = re.compile("东城区|西城区|南湖区|北山区|高新区|临江县")
    shipped = {demo.sub("#", t) for t in texts}
    from_shipped = bool(frame["text"].str.replace("甲区|乙区", "#", regex=True).isin(shipped).all())
    assert from_shipped, "a background text is not from the shipped corpus"
    demo_left = bool(frame["text"].str.contains(demo).any())
    assert not demo_left, "a shipped text still names a demo district"
    assert set(frame["category"]) <= set(cats)
    lex = default_topics()
    seasonal = {t.name for t in lex.topics if t.seasonal}
    seasonal_left = sum(1 for t in texts if set(lex.assign(t)) & seasonal)
    assert seasonal_left == 0, "seasonal texts belong to the seasons"


# ---------------------------------------------------------------- frame and truth
def test_frame_holds_no_truth(north, south):
    _, frame, truth = north
    assert list(frame.columns) == ["id", "time", "district", "category", "text"]
    assert frame["id"].is_unique and frame["time"].is_monotonic_increasing
    assert frame["category"].notna().all() and frame["district"].notna().all()
    _, sframe, struth = south
    assert list(sframe.columns) == ["id", "time", "district", "category", "text", "user"]
    topic_cat = {t.name: t.category for t in default_topics().topics}
    for f, t in ((frame, truth), (sframe, struth)):
        by_id = f.set_index("id")
        owners = Counter(i for e in t for i in e["ids"])
        assert max(owners.values()) == 1, "an appeal belongs to two events"
        for e in t:
            assert {"id", "kind", "topic", "category", "district", "start", "end", "ids"} <= set(e)
            assert e["kind"] in {"spike", "seasonal_onset", "emerging"}
            assert (by_id.loc[e["ids"], "district"] == e["district"]).all(), e["id"]
            assert (by_id.loc[e["ids"], "category"] == e["category"]).all(), e["id"]
            if e["topic"]:
                assert e["category"] == topic_cat[e["topic"]]
            days = _days(f, e["ids"])
            assert days.max() <= date.fromisoformat(e["end"]), e["id"]


def test_event_texts_are_about_their_topic(south):
    _, frame, truth = south
    lex, by_id = default_topics(), frame.set_index("id")
    for e in truth:
        if e["topic"]:
            off_topic = sum(1 for t in by_id.loc[e["ids"], "text"] if e["topic"] not in lex.assign(t))
            assert off_topic == 0, e["id"]


def test_seeded_and_seeds_move_events():
    city = CityConfig(background="shipped", base_per_day=30)
    a = simulate_stream(start="2024-06-01", end="2025-01-31", city=city, seed=4)
    b = simulate_stream(start="2024-06-01", end="2025-01-31", city=city, seed=4)
    pd.testing.assert_frame_equal(a[0], b[0])
    assert a[1] == b[1]
    c = simulate_stream(start="2024-06-01", end="2025-01-31", city=city, seed=5)
    placed = [{(e["kind"], e["district"], e["start"]) for e in t[1] if e["kind"] != "seasonal_onset"} for t in (a, c)]
    assert placed[0] != placed[1]
    emerging = [{e["start"] for e in t[1] if e["kind"] == "emerging"} for t in (a, c)]
    assert emerging[0] != emerging[1]


# ---------------------------------------------------------------- senders
def test_senders_and_reposts(south):
    city, frame, truth = south
    frame = frame[~frame["id"].isin(_event_ids(truth))]
    again = frame[frame.duplicated(["user", "text"], keep=False)].assign(day=lambda f: f["time"].dt.normalize())
    posts = again.groupby(["user", "text"]).agg(n=("id", "size"), districts=("district", "nunique"),
                                                days=("day", "nunique"))
    n_reposted = len(posts)
    assert n_reposted >= 0.5 * city.repost_rate * len(frame)
    most, one_district = int(posts["n"].max()), bool((posts["districts"] == 1).all())
    assert most <= 6 and one_district
    later_days = float((posts["days"] == posts["n"]).mean())
    assert later_days >= 0.99, "re-posts come on later days"
    frame0, _ = simulate_stream(start="2024-03-01", end="2024-03-15", seed=1,
                                city=CityConfig(background="shipped", senders=False))
    assert "user" not in frame0.columns


# ---------------------------------------------------------------- seasons
def test_south_city_has_two_flooding_seasons_a_year(south):
    city, frame, truth = south
    assert not any(e["topic"] == "冬季采暖" for e in truth)
    floods = [e for e in truth if e["kind"] == "seasonal_onset" and e["topic"] == "内涝积水"]
    for year in (2023, 2024):
        for dist in city.districts:
            seasons = sorted((e["start"], e["season"]) for e in floods
                             if e["district"] == dist and e["start"].startswith(str(year)))
            assert [s for _, s in seasons] == ["plum_rain", "typhoon"], (dist, year)
            plum, typhoon = (date.fromisoformat(s) for s, _ in seasons)
            assert date(year, 6, 5) <= plum <= date(year, 6, 25) and date(year, 7, 20) <= typhoon <= date(year, 8, 12)
    landfalls = [e for e in truth if e["kind"] == "spike" and e.get("within", "").startswith("typhoon-season")]
    assert {e["start"][:4] for e in landfalls} == {"2023", "2024"}
    assert all(e["start"][5:7] in {"07", "08", "09"} for e in landfalls)


def test_holiday_seasons_sit_on_the_actual_holidays(south):
    city, frame, truth = south
    assert holiday_run(2024, "Spring Festival")[0] == date(2024, 2, 10)  # lunar: weeks apart
    assert holiday_run(2025, "Spring Festival")[0] == date(2025, 1, 28)
    assert holiday_run(2027, "Spring Festival")[0] == date(2027, 2, 5)   # beyond chinesecalendar: the table
    tourism = [e for e in truth if e["kind"] == "seasonal_onset" and e["topic"] == "景区管理"]
    for dist in city.tourist_districts:
        for year in (2023, 2024):
            got = {e["season"]: e for e in tourism if e["district"] == dist and e["start"].startswith(str(year))}
            assert set(got) == {"spring_festival", "labour_day", "summer_tourism", "national_day"}, (dist, year)
            for season, name in (("spring_festival", "Spring Festival"), ("labour_day", "Labour Day"),
                                 ("national_day", "National Day")):
                first, last = holiday_run(year, name)
                e = got[season]
                assert e["anchor"] == name and e["start"] == first.isoformat() and e["end"] == last.isoformat()
                days = _days(frame, e["ids"])
                assert days.between(first - timedelta(days=1), last).all()
    assert {e["start"] for e in tourism if e["season"] == "spring_festival"} == {"2023-01-21", "2024-02-10"}
    for e in truth:  # year-end wage arrears rise towards (and stop before) the next Spring Festival
        if e.get("season") == "year_end_wages":
            start = date.fromisoformat(e["start"])
            sf = holiday_run(start.year + (start.month > 6), "Spring Festival")[0]
            assert e["anchor"] == "Spring Festival" and 30 <= (sf - start).days <= 60
            assert date.fromisoformat(e["end"]) < sf


def test_in_season_incidents_and_small_surges(north):
    _, frame, truth = north
    by_id = {e["id"]: e for e in truth}
    heating = [e for e in truth if e["kind"] == "spike" and e["topic"] == "冬季采暖"]
    assert len(heating) == 1
    inc = heating[0]
    season = by_id[inc["within"]]
    assert season["kind"] == "seasonal_onset" and season["district"] == inc["district"]
    start = date.fromisoformat(inc["start"])
    assert 18 <= (start - date.fromisoformat(season["start"])).days <= 25
    assert (date.fromisoformat(inc["end"]) - start).days == 6
    season_days = _days(frame, season["ids"])
    before = season_days.between(start - timedelta(days=7), start - timedelta(days=1)).sum() / 7
    during = (season_days.between(start, start + timedelta(days=6)).sum() + len(inc["ids"])) / 7
    assert 2.0 <= before <= 6.0, before          # the in-season level, not zero
    assert during >= 2.5 * before, (before, during)
    surges = [e for e in truth if e["kind"] == "spike" and e["topic"] is None]
    assert len(surges) >= 3
    cats = frame["category"]
    for e in surges:
        assert e["category"] in set(cats)
        assert 3 <= (date.fromisoformat(e["end"]) - date.fromisoformat(e["start"])).days + 1 <= 5
    assert any(e["kind"] == "spike" and e["topic"] == "高温停电" and e.get("within") for e in truth)


def test_emerging_issue_is_one_matter_at_one_place(south):
    _, frame, truth = south
    [e] = [e for e in truth if e["kind"] == "emerging"]
    assert e["topic"] is None and e["matter"] and e["place"].startswith(e["district"])
    texts = frame.set_index("id").loc[e["ids"], "text"]
    name_the_place = bool(texts.str.contains(e["place"], regex=False).all())
    assert name_the_place
    distinct = texts.nunique() / len(texts)
    assert distinct >= 0.8, "an emerging issue is not one repeated template"
    days = _days(frame, e["ids"])
    start = date.fromisoformat(e["start"])
    week1 = days.between(start, start + timedelta(days=6)).sum()
    week4 = days.between(start + timedelta(days=21), start + timedelta(days=27)).sum()
    assert week4 >= 2 * max(week1, 1), (week1, week4)
    # the place is new: no appeal names it before the issue starts
    named_before = int(frame.loc[pd.to_datetime(frame["time"]).dt.date < start, "text"].str.contains(
        e["place"], regex=False).sum())
    assert named_before == 0


# ---------------------------------------------------------------- cities and speed
def test_cities_vary():
    cs = cities()
    assert len(cs) >= 5 and len({c.name for c in cs}) == len(cs)
    assert {c.kind for c in cs} == {"north", "south"} and any(c.coastal for c in cs)
    assert {c.senders for c in cs} == {True, False}
    vols = [c.base_per_day for c in cs]
    assert min(vols) >= 40 and max(vols) <= 120 and max(vols) - min(vols) >= 40
    assert len({len(c.districts) for c in cs}) >= 3 and len({c.dispersion for c in cs}) >= 3
    for c in cs:
        assert set(c.tourist_districts) <= set(c.districts) and abs(sum(c.district_weights) - 1) < 1e-3
    assert [c.district_weights for c in cities(seed=1)] != [c.district_weights for c in cs]
    assert len(cities(7)) == 7


def test_two_years_simulate_in_seconds():
    city = CityConfig(base_per_day=80)
    simulate_stream(start="2024-01-01", end="2024-01-05", city=city)  # corpus read and cached
    t = time.perf_counter()
    frame, _ = simulate_stream(start="2024-01-01", end="2025-12-31", city=city, seed=9)
    assert time.perf_counter() - t < 10
    assert 60_000 < len(frame) < 90_000
