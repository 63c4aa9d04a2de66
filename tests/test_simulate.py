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


# ---------------------------------------------------------------- configuration and its refusals
SHIPPED_QUIET = dict(background="shipped", **QUIET)


@pytest.mark.parametrize("change, message", [
    ({"kind": "east"}, "CityConfig.kind must be 'north' or 'south', got 'east'"),
    ({"districts": [], "tourist_districts": []}, "CityConfig.districts is empty"),
    ({"districts": ["甲区"], "tourist_districts": ["甲区", "外区", "外县"]},
     "CityConfig.tourist_districts ['外区', '外县'] are not among the districts"),
    ({"districts": ["甲区", "乙区"], "tourist_districts": [], "district_weights": [1.0]},
     "CityConfig.district_weights needs one positive weight per district"),
    ({"districts": ["甲区", "乙区"], "tourist_districts": [], "district_weights": [1.0, 0.0]},
     "CityConfig.district_weights needs one positive weight per district"),
    ({"background": "Shipped"}, "CityConfig.background must be 'auto', 'real' or 'shipped', got 'Shipped'"),
])
def test_a_city_that_cannot_be_simulated_is_refused_with_the_reason(change, message):
    with pytest.raises(ValueError) as err:
        simulate_stream(start="2024-03-01", end="2024-03-02", city=CityConfig(**{**SHIPPED_QUIET, **change}))
    assert str(err.value) == message


def test_an_end_before_the_start_is_refused():
    with pytest.raises(ValueError) as err:
        simulate_stream(start="2024-03-10", end="2024-03-09", city=CityConfig(**SHIPPED_QUIET))
    assert str(err.value) == "end 2024-03-09 is before start 2024-03-10"
    frame, truth = simulate_stream(start="2024-03-10", end="2024-03-10", city=CityConfig(**SHIPPED_QUIET))
    assert len(frame) > 0 and truth == [] and set(frame["time"].dt.date) == {date(2024, 3, 10)}


def test_the_background_source_follows_the_choice(monkeypatch, tmp_path):
    present = tmp_path / "real.csv"
    present.write_text("", encoding="utf-8")
    monkeypatch.setattr(sim, "REAL_CORPUS", present)
    assert [sim._resolve_background(c) for c in ("auto", "real", "shipped")] == ["real", "real", "shipped"]
    monkeypatch.setattr(sim, "REAL_CORPUS", tmp_path / "absent.csv")
    assert [sim._resolve_background(c) for c in ("auto", "shipped")] == ["shipped", "shipped"]
    with pytest.raises(ValueError) as err:
        sim._resolve_background("real")
    assert str(err.value) == f"CityConfig.background='real' but the real corpus is absent: {tmp_path / 'absent.csv'}"


def test_holidays_beyond_the_calendar_come_from_the_tables():
    assert holiday_run(2030, "Spring Festival") == (date(2030, 2, 2), date(2030, 2, 9))  # new year 3 Feb, -1..+6
    assert holiday_run(2035, "Spring Festival") == (date(2035, 2, 7), date(2035, 2, 14))
    assert holiday_run(2036, "Spring Festival") is None  # beyond the table too
    assert holiday_run(2030, "Labour Day") == (date(2030, 5, 1), date(2030, 5, 5))
    assert holiday_run(2036, "National Day") == (date(2036, 10, 1), date(2036, 10, 7))
    assert holiday_run(2003, "Labour Day") is None and holiday_run(2003, "National Day") is None
    # from the calendar: the whole run, weekends and merged holidays included
    assert holiday_run(2004, "Labour Day") == (date(2004, 5, 1), date(2004, 5, 7))
    assert holiday_run(2026, "Spring Festival") == (date(2026, 2, 15), date(2026, 2, 23))


def test_seasonal_levels_ramp_up_and_down():
    assert sim._ramp(10, 4.0, up=3, down=2).round(4).tolist() == [1, 2, 3, 4, 4, 4, 4, 4, 2.6667, 1.3333]
    assert sim._ramp(2, 4.0).tolist() == [1.0, 2.0]  # shorter than the ramp: still rising
    assert sim._ramp(3, 2.0, up=0, down=5).round(4).tolist() == [1.0, 0.6667, 0.3333]
    assert sim._ramp(4, 3.0, up=0).tolist() == [3.0] * 4


def test_the_reporting_cities_are_the_five_archetypes():
    cs = cities()
    got = [(c.name, c.kind, c.coastal, len(c.districts), c.tourist_districts, c.dispersion, c.senders, c.repost_rate)
           for c in cs]
    assert got == [("北岭市", "north", False, 6, ["西城区", "河东区"], 8.0, False, 0.01),
                   ("南州市", "south", True, 7, ["滨海区", "东湖区"], 5.0, True, 0.03),
                   ("江城市", "south", False, 5, ["老城区"], 10.0, True, 0.02),
                   ("塞原市", "north", False, 4, ["北山区"], 4.0, False, 0.01),
                   ("海湾市", "south", True, 8, ["滨海区", "南岭区"], 6.0, False, 0.02)]
    assert cs[0].districts == ["城关区", "东城区", "西城区", "北山区", "高新区", "河东区"]
    assert cs[3].districts == cs[0].districts[:4] and cs[2].districts == cs[4].districts[:5] == cs[1].districts[:5]
    assert cs[4].districts == ["老城区", "滨海区", "港口区", "东湖区", "西江区", "新港区", "南岭区", "北湾区"]
    for c, base in zip(cs, (80, 100, 55, 40, 120)):  # ±10%, within 40–120
        assert max(40, 0.9 * base) <= c.base_per_day <= min(120, 1.1 * base), c.name
        assert 0 <= c.trend_per_year <= 0.1 and all(w > 0 for w in c.district_weights)
    assert cs[3].base_per_day == 40.0  # this seed draws under 40: clipped
    more = cities(7)
    assert [c.name for c in more[5:]] == ["北岭市2", "南州市2"] and more[6].senders and more[6].coastal
    assert [c.district_weights for c in more[:5]] == [c.district_weights for c in cs]  # the same seed: the same
    assert [c.trend_per_year for c in cities(seed=2)] != [c.trend_per_year for c in cs]


# ---------------------------------------------------------------- the shipped city: texts and senders
@pytest.fixture
def shipped():
    """Six months of a small northern city on the shipped corpus, with senders: National Day
    and Spring Festival tourism, a heating season with an incident, surges, an emerging issue.
    Built for each test (half a second): mutmut credits a module-scoped fixture's call to the
    first test only, and would not run the others against the simulator's mutants."""
    city = CityConfig(background="shipped", districts=["甲区", "乙区", "丙区"], tourist_districts=["乙区"],
                      base_per_day=30, senders=True)
    return _Stream((city, *simulate_stream(start="2024-09-01", end="2025-02-28", city=city, seed=11)))


def _texts(frame, ids):
    return frame.set_index("id").loc[list(ids), "text"]


def test_shipped_texts_name_the_appeals_own_district(shipped):
    _, frame, truth = shipped
    demo = "|".join(sim.DEMO_DISTRICTS)
    assert not frame["text"].str.contains(demo).any()
    for e in truth:
        if e["kind"] != "spike" or e["topic"] is not None:  # templates name the district; surges may not
            assert _texts(frame, e["ids"]).str.contains(e["district"], regex=False).mean() > 0.5, e["id"]


def test_tourism_texts_name_their_holiday(shipped):
    _, frame, truth = shipped
    tourism = [e for e in truth if e["topic"] == "景区管理"]
    assert {e["anchor"] for e in tourism} == {"National Day", "Spring Festival"}
    for e in tourism:
        phrases = sim.HOLIDAY_PHRASE[e["anchor"]]
        texts = _texts(frame, e["ids"])
        named = texts.str.contains("|".join(phrases)).all()
        assert named, e["id"]
        assert texts.str.contains(e["district"], regex=False).all()


def test_incident_texts_are_mostly_about_the_incident(shipped):
    _, frame, truth = shipped
    [inc] = [e for e in truth if e["kind"] == "spike" and e["topic"] == "冬季采暖"]
    texts = _texts(frame, inc["ids"])
    about = texts.str.contains("停暖|抢修").mean()  # every incident body says one or the other
    assert 0.5 <= about <= 0.9, about  # 70% incident bodies, the rest the season's own
    season = _texts(frame, next(e for e in truth if e["id"] == inc["within"])["ids"])
    assert season.str.contains("停暖|抢修").mean() < 0.1
    for t in texts:
        assert any(t.count(slot) for slot in sim.ESTATES + sim.ROADS), "a template's place slot is filled"
        assert "{" not in t and "}" not in t and "None" not in t


def test_surge_texts_are_of_their_category(shipped):
    _, frame, truth = shipped
    texts, cats, _ = sim._corpus("shipped", str(sim.SHIPPED_CORPUS))
    demo = re.compile("|".join(sim.DEMO_DISTRICTS))
    surges = [e for e in truth if e["kind"] == "spike" and e["topic"] is None]
    assert len(surges) == 2
    for e in surges:
        of_cat = {demo.sub(e["district"], t) for t, c in zip(texts, cats) if c == e["category"]}
        from_category = bool(_texts(frame, e["ids"]).isin(of_cat).all())
        assert from_category, e["id"]


def test_emerging_texts_pick_two_or_three_facts_and_ask(shipped):
    _, frame, truth = shipped
    [e] = [e for e in truth if e["kind"] == "emerging"]
    m = next(m for m in sim.MATTERS if m["matter"] == e["matter"])
    facts = [re.compile(re.escape(f).replace(r"\{c\}", "[一二三四五六七八九]").replace(r"\{n\}", "[2-9]"))
             for f in m["facts"]]
    counts = Counter()
    for t in _texts(frame, e["ids"]):
        n = sum(bool(f.search(t)) for f in facts)
        counts[n] += 1
        assert any(a in t for a in m["ask"]) and "：" in t and e["place"] in t and "None" not in t
    assert set(counts) == {2, 3}


def test_ids_times_and_senders(shipped):
    city, frame, truth = shipped
    assert frame["id"].tolist() == [f"S{i:06d}" for i in range(1, len(frame) + 1)]
    hours = frame["time"].dt.hour
    assert hours.min() >= 7 and hours.max() <= 22 and frame["time"].dt.date.min() == date(2024, 9, 1)
    assert frame["time"].dt.date.max() == date(2025, 2, 28)
    in_events = _event_ids(truth)
    bg = frame[~frame["id"].isin(in_events)]
    frequent = bg[bg["user"].str.startswith("F")]
    assert bool(bg["user"].str.fullmatch(r"U\d{7}|F0[0-2]\d{3}").all())
    assert 0.01 <= len(frequent) / len(bg) <= 0.06
    # a frequent sender writes from one district: the one its name says
    home = frequent["user"].str[1:3].astype(int).map(dict(enumerate(city.districts)))
    assert (home == frequent["district"]).all()
    # new senders are numbered from 1, once each
    first = frame[frame["user"].str.startswith("U")]["user"].str[1:].astype(int)
    assert first.min() == 1
    for e in truth:
        users = frame.set_index("id").loc[e["ids"], "user"]
        if e["kind"] == "emerging":  # some write again about it
            assert users.nunique() < len(users)
        else:
            assert users.is_unique, e["id"]


def test_the_benchmark_cities_of_seed_0_do_not_drift():
    """training/bench_trends.py reports its figures over cities(n, seed): the same seed must
    give the same cities, volumes, trends and district weights from one version to the next."""
    cs = cities()
    assert [c.base_per_day for c in cs] == [84.3, 109.1, 56.6, 40.0, 112.6]
    assert [c.trend_per_year for c in cs] == [0.011, 0.021, 0.085, 0.099, 0.013]
    assert cs[0].district_weights == [0.1112, 0.1974, 0.2077, 0.2451, 0.131, 0.1076]
    assert cs[3].district_weights == [0.311, 0.2289, 0.1745, 0.2856]


# ---------------------------------------------------------------- what each setting changes
def _flat(**change):
    """A one-district city whose daily volume has no weekday, holiday or trend effects."""
    return CityConfig(**{**SHIPPED_QUIET, "districts": ["甲区"], "tourist_districts": [], "weekday_factor": (1.0,) * 7,
                         "holiday_factor": 1.0, "trend_per_year": 0.0, "base_per_day": 30.0, "repost_rate": 0.0,
                         **change})


def _daily(frame):
    return frame.groupby(frame["time"].dt.date).size()


def test_volume_follows_the_base_rate_and_the_dispersion():
    loose = _daily(simulate_stream(start="2024-03-01", end="2024-06-30", seed=3, city=_flat(dispersion=1e6))[0])
    assert 27 <= loose.mean() <= 33 and 0.6 <= loose.var() / loose.mean() <= 1.5  # Poisson-like
    tight = _daily(simulate_stream(start="2024-03-01", end="2024-06-30", seed=3, city=_flat(dispersion=2.0))[0])
    assert tight.var() / tight.mean() > 5  # var = mu + mu^2 / 2
    half = _daily(simulate_stream(start="2024-03-01", end="2024-06-30", seed=3, city=_flat(base_per_day=15.0))[0])
    assert 13 <= half.mean() <= 17


def test_weekdays_holidays_and_the_trend_scale_the_volume():
    week = (2.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5)
    daily = _daily(simulate_stream(start="2024-03-04", end="2024-06-30", seed=3,
                                   city=_flat(weekday_factor=week, holiday_factor=0.2, dispersion=1e6))[0])
    kind = pd.Series({d: sim.day_kind(d) for d in daily.index})
    weekday = pd.Series({d: d.weekday() for d in daily.index})
    workday = daily[(kind == "workday") & weekday.between(1, 4)].mean()
    assert daily[(kind == "workday") & (weekday == 0)].mean() / workday == pytest.approx(2.0, abs=0.3)
    assert daily[kind == "weekend"].mean() / workday == pytest.approx(0.5, abs=0.1)
    assert daily[kind == "holiday"].mean() / workday == pytest.approx(0.2, abs=0.1)
    # a make-up workday (Sunday 7 April 2024) counts as a Monday
    assert sim.day_kind(date(2024, 4, 7)) == "makeup" and daily[date(2024, 4, 7)] > 1.4 * workday
    grown = _daily(simulate_stream(start="2024-01-01", end="2024-12-31", seed=3,
                                   city=_flat(trend_per_year=1.0, dispersion=1e6))[0])
    first, last = grown.iloc[:60].mean(), grown.iloc[-60:].mean()
    assert last / first == pytest.approx((1 + 335 / 365) / (1 + 30 / 365), rel=0.1)


def test_district_weights_share_the_volume():
    city = _flat(districts=["甲区", "乙区"], district_weights=[3, 1])
    frame, _ = simulate_stream(start="2024-03-01", end="2024-04-30", seed=3, city=city)
    assert frame["district"].value_counts(normalize=True)["甲区"] == pytest.approx(0.75, abs=0.03)


def test_reposts_follow_the_repost_rate():
    def reposted(rate):
        frame, _ = simulate_stream(start="2024-03-01", end="2024-05-31", seed=3,
                                   city=_flat(repost_rate=rate, senders=True))
        return frame.duplicated(["user", "text"]).sum() / len(frame)

    assert reposted(0.0) == 0
    assert 0.1 <= reposted(0.1) <= 0.3  # one to four more posts each: ~2.5 × 10% of the appeals


def test_each_kind_of_event_comes_as_often_as_configured():
    city = CityConfig(**{**SHIPPED_QUIET, "incidents_per_year": 2, "surges_per_year": 4})
    _, truth = simulate_stream(start="2024-01-01", end="2024-12-31", seed=6, city=city)
    kinds = Counter(e["id"].split("-")[0] for e in truth)
    assert kinds == {"incident": 2, "surge": 4}
    city = CityConfig(background="shipped", in_season_incidents=False, emerging=False, incidents_per_year=0,
                      surges_per_year=0, rainstorms_per_year=3)
    _, truth = simulate_stream(start="2024-01-01", end="2024-12-31", seed=6, city=city)
    assert not any(e.get("within") for e in truth) and not any(e["kind"] == "emerging" for e in truth)
    storms = [e for e in truth if e["id"].startswith("storm-")]
    assert len(storms) == 3 and all("2024-06-01" <= e["start"] <= "2024-08-20" for e in storms)
    assert all((date.fromisoformat(e["end"]) - date.fromisoformat(e["start"])).days == 1 for e in storms)
    _, truth = simulate_stream(start="2024-01-01", end="2024-12-31", seed=6,
                               city=CityConfig(**{**SHIPPED_QUIET, "emerging": True}))
    [e] = truth
    assert e["kind"] == "emerging" and "2024-05-26" <= e["start"] <= "2024-10-01"  # 40–75% into the year


def test_a_season_begun_before_the_window_is_cut_to_it(north):
    _, frame, truth = north  # from 2024-01-01: the heating seasons and wage arrears of 2023 run on into it
    earlier = [e for e in truth if e["start"] < "2024-01-01"]
    assert {e["season"] for e in earlier} == {"heating", "year_end_wages"}
    assert all(e["end"] >= "2024-01-01" and _days(frame, e["ids"]).min() >= date(2024, 1, 1) for e in earlier)
    assert {e["district"] for e in earlier if e["season"] == "heating"} == set(CityConfig().districts)
