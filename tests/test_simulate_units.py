"""Focused checks of corpora/simulate.py behaviours the broader tests leave loose: where
event texts come from, season dates and names, event sizes, senders and make-up days.

Small cities on the shipped corpus (or a copy of it standing in for the real corpus),
short windows: every test builds its own streams. Texts are never printed: checks reduce
them to booleans and counts first.
"""
import re
import shutil
from collections import Counter
from datetime import date, timedelta

import pandas as pd
import pytest

import corpora.simulate as sim
from corpora.simulate import CityConfig, holiday_run, simulate_stream

QUIET = dict(background="shipped", seasons=False, emerging=False, incidents_per_year=0, surges_per_year=0,
             rainstorms_per_year=0, in_season_incidents=False)


def _city(**change):
    """A one-district city with nothing switched on unless asked."""
    return CityConfig(**{**QUIET, "districts": ["甲区"], "tourist_districts": [], "base_per_day": 10.0, **change})


def _texts(frame, ids):
    return frame.set_index("id").loc[list(ids), "text"]


def _iso(s):
    return date.fromisoformat(s)


@pytest.fixture
def real_copy(monkeypatch, tmp_path):
    """The shipped corpus copied to stand in for the real one (its seasonal texts kept)."""
    path = tmp_path / "appeals_labelled_dev.csv"
    shutil.copy(sim.SHIPPED_CORPUS, path)
    monkeypatch.setattr(sim, "REAL_CORPUS", path)
    texts, _, by_topic = sim._corpus("real", str(path))
    return set(texts), by_topic


# ---------------------------------------------------------------- where event texts come from
def test_real_background_lends_season_texts_verbatim(real_copy):
    """With the real corpus, ~30% of a season's texts are its own texts as written, ~20% shipped ones."""
    # mutants: _Writer.__init__ 5 (real texts never used), simulate_stream 73 (real_by_topic None)
    raw, by_topic = real_copy
    city = _city(kind="north", background="real", seasons=True, base_per_day=5.0)
    frame, truth = simulate_stream(start="2024-11-01", end="2024-12-31", city=city, seed=2)
    heating = [e for e in truth if e.get("season") == "heating"]
    assert len(heating) == 1
    texts = _texts(frame, heating[0]["ids"])
    demo = re.compile("|".join(sim.DEMO_DISTRICTS))
    verbatim = float(texts.isin(set(by_topic["冬季采暖"])).mean())
    shipped = float(texts.isin({demo.sub("甲区", t) for t in by_topic["冬季采暖"]} - raw).mean())
    assert 0.15 <= verbatim <= 0.45, verbatim
    assert 0.08 <= shipped <= 0.35, shipped


def test_shipped_background_lends_a_fifth_of_season_texts():
    """On the shipped corpus, ~20% of a season's texts are shipped texts of its topic, in its district."""
    # mutant: _Writer.topic 9 (shipped texts looked up under None: never used)
    city = _city(kind="north", seasons=True, base_per_day=5.0)
    frame, truth = simulate_stream(start="2024-11-01", end="2024-12-31", city=city, seed=2)
    [heating] = [e for e in truth if e.get("season") == "heating"]
    _, _, by_topic = sim._corpus("shipped", str(sim.SHIPPED_CORPUS))
    demo = re.compile("|".join(sim.DEMO_DISTRICTS))
    shipped = float(_texts(frame, heating["ids"]).isin({demo.sub("甲区", t) for t in by_topic["冬季采暖"]}).mean())
    assert 0.08 <= shipped <= 0.35, shipped


def test_real_background_tourism_texts_are_all_holiday_templates(real_copy):
    """Tourism texts never come from the corpus: each names its district and its holiday."""
    # mutant: _Writer.topic 18 (real tourism texts let through)
    city = _city(background="real", seasons=True, tourist_districts=["甲区"], base_per_day=30.0)
    frame, truth = simulate_stream(start="2024-09-25", end="2024-10-10", city=city, seed=1)
    [e] = [e for e in truth if e["topic"] == "景区管理"]
    texts = _texts(frame, e["ids"])
    n = len(texts)
    assert n >= 40, n
    named = bool(texts.str.contains("|".join(sim.HOLIDAY_PHRASE["National Day"])).all())
    in_district = bool(texts.str.contains("甲区", regex=False).all())
    assert named and in_district


def test_real_background_surge_texts_are_left_as_written(real_copy):
    """Surges on the real corpus deal its texts unchanged: their district names are not rewritten."""
    # mutant: _Writer.of_category 7 (demo districts replaced in real texts too)
    raw, _ = real_copy
    city = _city(background="real", surges_per_year=8, base_per_day=5.0)
    frame, truth = simulate_stream(start="2024-01-01", end="2024-12-31", city=city, seed=3)
    surges = [e for e in truth if e["id"].startswith("surge-")]
    assert len(surges) == 8
    texts = pd.concat([_texts(frame, e["ids"]) for e in surges])
    as_written = bool(texts.isin(raw).all())
    assert as_written
    naming_demo = int(texts.str.contains("|".join(sim.DEMO_DISTRICTS)).sum())
    assert naming_demo > 0


# ---------------------------------------------------------------- the emerging issue
def _emerging(seed, start="2024-01-01", end="2024-06-30"):
    city = _city(emerging=True, senders=True, base_per_day=3.0)
    frame, truth = simulate_stream(start=start, end=end, city=city, seed=seed)
    [e] = [e for e in truth if e["kind"] == "emerging"]
    return frame, e


def test_emerging_texts_end_facts_with_a_stop_then_ask():
    """Each emerging text runs: facts joined by commas, a full stop, then one of the matter's requests."""
    # mutant: _Writer.matter 42 (the full stop padded with letters)
    frame, e = _emerging(1)
    m = next(m for m in sim.MATTERS if m["matter"] == e["matter"])
    texts = _texts(frame, e["ids"])
    stop_then_ask = sum(any("。" + a in t for a in m["ask"]) for t in texts)
    latin = sum(bool(re.search("[A-Za-z]", t)) for t in texts)
    assert stop_then_ask == len(texts) and latin == 0


def test_emerging_fact_numbers_run_from_two_to_nine():
    """The number in an emerging fact is any of 2–9 (「二十」 included), as for the templates."""
    # mutant: _Writer.matter 8 (numbers from 3)
    digits = Counter()
    for seed in (1, 2):
        frame, e = _emerging(seed)
        for t in _texts(frame, e["ids"]):
            digits.update(re.findall("([一二三四五六七八九])[十百千]", t))
    assert set(digits) == set("二三四五六七八九"), sorted(digits)


def test_emerging_senders_are_mostly_new_and_all_named():
    """About 15% of an emerging issue's appeals come from someone who already wrote; every appeal has a sender."""
    # mutants: simulate_stream 1333 (follow-ups 115%: one sender), 1479 (a follow-up's sender is None)
    frame, e = _emerging(1)
    users = frame.set_index("id").loc[e["ids"], "user"]
    assert frame["user"].notna().all()
    assert 0.7 <= users.nunique() / len(users) <= 0.97, users.nunique() / len(users)


def test_emerging_issue_grows_to_a_cap_and_fades_within_weeks():
    """It grows to 5–8 a day and lasts 70–106 days in all (growth, 20–40 days held, 20–30 fading)."""
    # mutants: simulate_stream 1285 (linear growth past the cap), 1297 (a 50-day fade)
    for seed in range(4):
        frame, e = _emerging(seed)
        days = (_iso(e["end"]) - _iso(e["start"])).days + 1
        assert 70 <= days <= 106, (seed, days)
        daily = pd.to_datetime(frame.set_index("id").loc[e["ids"], "time"]).dt.date.value_counts()
        weekly = pd.Series(daily).sort_index()
        weekly.index = pd.to_datetime(weekly.index)
        most = int(weekly.resample("D").sum().rolling(7).sum().max())
        assert most <= 84, (seed, most)


# ---------------------------------------------------------------- seasons
def test_year_end_wages_rise_and_stop_before_spring_festival():
    """Wage arrears: anchored on Spring Festival, 1.5→4 a day (scaled), ending before the holiday."""
    # mutants: simulate_stream 581 (linspace(4.0, length): 50 days of tens a day), 594 (anchor None)
    city = _city(kind="south", seasons=True, districts=["甲区", "乙区"], base_per_day=21.7)  # ~1× the reference
    frame, truth = simulate_stream(start="2024-11-15", end="2025-02-10", city=city, seed=4)
    sf = holiday_run(2025, "Spring Festival")[0]
    wages = [e for e in truth if e.get("season") == "year_end_wages"]
    assert {e["district"] for e in wages} == {"甲区", "乙区"}
    for e in wages:
        assert e["anchor"] == "Spring Festival"
        start, end = _iso(e["start"]), _iso(e["end"])
        assert end < sf and 46 <= (sf - start).days <= 56
        n_days = (end - start).days + 1
        assert 1.5 * n_days <= len(e["ids"]) <= 4.0 * n_days, (len(e["ids"]), n_days)
        days = pd.to_datetime(frame.set_index("id").loc[e["ids"], "time"]).dt.date
        mid = start + timedelta(days=n_days // 2)
        assert (days >= mid).sum() > (days < mid).sum()


def test_summer_heat_season_and_its_power_cut():
    """Northern heat runs to 25 August; its power-cut incident's texts are mostly incident texts."""
    # mutants: simulate_stream 482 (season two days short), 544 (incident texts not asked for)
    city = _city(kind="north", seasons=True, in_season_incidents=True, base_per_day=30.0)
    frame, truth = simulate_stream(start="2024-06-25", end="2024-09-05", city=city, seed=5)
    [heat] = [e for e in truth if e.get("season") == "summer_heat"]
    assert heat["end"] == "2024-08-25" and heat["anchor"] is None
    [cut] = [e for e in truth if e["kind"] == "spike" and e["topic"] == "高温停电"]
    assert cut["within"] == heat["id"]
    about = float(_texts(frame, cut["ids"]).str.contains("抢修|整片断电").mean())  # every incident body says one
    assert 0.45 <= about <= 0.95, about


def test_seasons_carry_their_names_and_anchors():
    """Tourism seasons are named labour_day / summer_tourism; every season entry carries season and anchor."""
    # mutants: simulate_stream 896 (LABOUR_DAY), 1023 (summer tourism misnamed), 671 (plum rain without anchor)
    city = _city(kind="south", coastal=True, seasons=True, tourist_districts=["甲区"], base_per_day=3.0)
    _, truth = simulate_stream(start="2024-04-25", end="2024-07-20", city=city, seed=1)
    seasons = [e for e in truth if e["kind"] == "seasonal_onset"]
    assert all("season" in e and "anchor" in e for e in seasons)
    names = {e["season"]: e["anchor"] for e in seasons}
    assert names == {"labour_day": "Labour Day", "summer_tourism": None, "summer_heat": None, "plum_rain": None}


def test_summer_tourism_starts_8_to_14_july():
    """Summer tourism begins between 8 and 14 July in each tourist district."""
    # mutant: simulate_stream 966 (from 9 July)
    onsets = set()
    city = _city(seasons=True, districts=["甲区", "乙区"], tourist_districts=["甲区", "乙区"], base_per_day=2.0)
    for seed in range(30):
        _, truth = simulate_stream(start="2024-07-15", end="2024-07-16", city=city, seed=seed)
        onsets |= {_iso(e["start"]).day for e in truth if e.get("season") == "summer_tourism"}
    assert onsets == set(range(8, 15)), sorted(onsets)


def test_heating_incidents_come_18_to_25_days_after_the_onset():
    """A heating incident starts 18–25 days after its district's onset, every offset possible."""
    # mutant: simulate_stream 363 (from 19 days)
    offsets = set()
    city = _city(kind="north", seasons=True, in_season_incidents=True, base_per_day=1.0)
    for seed in range(30):
        _, truth = simulate_stream(start="2024-12-01", end="2024-12-20", city=city, seed=seed)
        by_id = {e["id"]: e for e in truth}
        for e in truth:
            if e["kind"] == "spike" and e["topic"] == "冬季采暖":
                offsets.add((_iso(e["start"]) - _iso(by_id[e["within"]]["start"])).days)
    assert offsets == set(range(18, 26)), sorted(offsets)


def test_plum_rain_and_typhoon_season_dates_and_landfalls():
    """Plum rain from 8 June at the earliest; typhoon season from late July to early/mid August,
    three weeks after 出梅; 2 or 3 two-day landfalls, each within its district's typhoon season."""
    # mutants: simulate_stream 635 (plum rain from 9 June), 721 (typhoon season never before 8 Aug),
    # 723 (ty_on up to 9 Aug), 801 (always 3 landfalls), 863 (landfall without `within`),
    # 871 (three-day landfalls), 686 (plum level divided by the scale), 482 (south heat end)
    plum_days, ty_days, n_land, per_day = set(), [], set(), []
    districts = ["甲区", "乙区", "丙区", "丁区", "戊区", "己区"]
    city = _city(kind="south", coastal=True, seasons=True, districts=districts, base_per_day=6.0)  # scale 0.6
    for seed in range(20):
        frame, truth = simulate_stream(start="2024-06-01", end="2024-10-02", city=city, seed=seed)
        by_id = {e["id"]: e for e in truth}
        plum = [e for e in truth if e.get("season") == "plum_rain"]
        typhoon = [e for e in truth if e.get("season") == "typhoon"]
        assert len(plum) == len(typhoon) == len(districts)
        assert {e["end"] for e in truth if e.get("season") == "summer_heat"} == {"2024-09-05"}
        plum_end = _iso(plum[0]["end"])
        assert {e["end"] for e in plum} == {plum_end.isoformat()}
        plum_days |= {_iso(e["start"]) for e in plum}
        for e in plum:  # 2–3 a day at the reference volume, × 0.6 here
            n_days = (_iso(e["end"]) - _iso(e["start"])).days + 1
            per_day.append(len(e["ids"]) / n_days)
            assert 0.5 <= per_day[-1] <= 2.7, (seed, per_day[-1])
        lo = max(date(2024, 7, 25), plum_end + timedelta(days=21))
        hi = max(date(2024, 8, 8), plum_end + timedelta(days=21)) + timedelta(days=3)
        for e in typhoon:
            assert lo <= _iso(e["start"]) <= hi, (seed, e["start"], plum_end)
            ty_days.append(_iso(e["start"]))
        landfalls = [e for e in truth if e["kind"] == "spike" and e["id"].startswith("typhoon-")]
        n_land.add(len({e["start"] for e in landfalls}))
        for e in landfalls:
            season = by_id[e["within"]]
            assert season["season"] == "typhoon" and season["district"] == e["district"]
            assert (_iso(e["end"]) - _iso(e["start"])).days == 1
    assert min(plum_days) == date(2024, 6, 8)
    assert 1.1 <= sum(per_day) / len(per_day) <= 1.8  # 1.2–1.8, a little less for the ramps
    assert min(ty_days) < date(2024, 8, 8)
    assert n_land == {2, 3}


# ---------------------------------------------------------------- event sizes and ids
def test_heating_levels_stop_growing_at_1_8_times_the_reference():
    """A district of ~9× the reference volume gets seasons and incidents at 1.8×, not more."""
    # mutant: simulate_stream 127 (capped at 2.8×); also 1499 (no appeal in the 7 o'clock hour)
    city = _city(kind="north", seasons=True, in_season_incidents=True, base_per_day=100.0)
    frame, truth = simulate_stream(start="2024-11-01", end="2024-12-31", city=city, seed=6)
    heating = [e for e in truth if e["topic"] == "冬季采暖"]
    assert len(heating) == 2
    n = sum(len(e["ids"]) for e in heating)
    assert 330 <= n <= 650, n  # ~375 season + ~135 incident at 1.8×; ~800 at 2.8×
    hours = frame["time"].dt.hour
    assert hours.min() == 7 and hours.max() == 22


def test_surges_add_1_5_to_3_times_the_usual_level():
    """A surge adds 1.5–3× its category's usual daily count in its district (2.5–4× in all)."""
    # mutant: simulate_stream 1204 (usual divided by the factor)
    city = _city(surges_per_year=12, base_per_day=30.0)
    _, truth = simulate_stream(start="2024-01-01", end="2024-12-31", city=city, seed=7)
    _, cats, _ = sim._corpus("shipped", str(sim.SHIPPED_CORPUS))
    share = {c: n / len(cats) for c, n in Counter(cats).items()}
    surges = [e for e in truth if e["id"].startswith("surge-")]
    assert len(surges) >= 10
    usual = sum(30.0 * share[e["category"]] * ((_iso(e["end"]) - _iso(e["start"])).days + 1) for e in surges)
    ratio = sum(len(e["ids"]) for e in surges) / usual
    assert 1.3 <= ratio <= 3.2, ratio


def test_events_sharing_a_name_are_numbered_in_turn():
    """Several incidents on one day in one district: ids name, name#2, name#3, …; incidents start from 20 Jan."""
    # mutants: simulate_stream 165 (a third one numbered #2 again), 1093 (never on 20 January)
    city = _city(incidents_per_year=3000, base_per_day=20.0)  # 14–18 a day each: none without appeals
    _, truth = simulate_stream(start="2024-01-20", end="2024-01-20", city=city, seed=8)
    base = "incident-2024-01-20-甲区"
    ids = [e["id"] for e in truth]
    assert len(ids) >= 3 and all(e["start"] == "2024-01-20" for e in truth)
    assert sorted(ids, key=lambda i: int(i.partition("#")[2] or 1)) == [base] + [f"{base}#{k}" for k in
                                                                              range(2, len(ids) + 1)]


# ---------------------------------------------------------------- volume
def test_make_up_workdays_count_as_mondays():
    """On a make-up workday the volume follows the Monday factor."""
    # mutant: simulate_stream 1364 (the Tuesday factor)
    city = _city(weekday_factor=(2.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5), holiday_factor=1.0, trend_per_year=0.0,
                 dispersion=1e6, base_per_day=30.0, repost_rate=0.0)
    makeup = [date(2024, 4, 7), date(2024, 4, 28), date(2024, 5, 11), date(2024, 9, 14), date(2024, 9, 29),
              date(2024, 10, 12)]
    assert {sim.day_kind(d) for d in makeup} == {"makeup"}
    counts = [len(simulate_stream(start=d.isoformat(), end=d.isoformat(), city=city, seed=9)[0]) for d in makeup]
    assert 50 <= sum(counts) / len(counts) <= 70, counts


# ---------------------------------------------------------------- the shape of a season
def _profile(frame, events, anchor):
    """Appeals per day offset from each event's first ("first") or last ("last") day, summed over events."""
    by_id, total = frame.set_index("id"), Counter()
    for e in events:
        ref = _iso(e["start"] if anchor == "first" else e["end"])
        days = pd.to_datetime(by_id.loc[e["ids"], "time"]).dt.date
        total.update((d - ref).days for d in days)
    return total


def _many_districts(**change):
    names = [f"区{i:02d}" for i in range(60)]  # ~19.5 a day each: seasons at 1.8× the reference
    return _city(kind="north", seasons=True, districts=names, tourist_districts=names, base_per_day=60 * 19.5,
                 dispersion=1e6, **change)


def test_summer_seasons_ramp_up_over_three_days():
    """Heat and summer tourism reach their level on the fourth day: the first four days hold 2.5 days' worth."""
    # mutants: simulate_stream 487 (heat ramps over four days), 1015 (summer tourism over four days)
    frame, truth = simulate_stream(start="2024-07-01", end="2024-07-31", city=_many_districts(), seed=10)
    for season in ("summer_heat", "summer_tourism"):
        events = [e for e in truth if e.get("season") == season]
        assert len(events) == 60
        p = _profile(frame, events, "first")
        level = sum(p[k] for k in range(4, 12)) / 8
        ratio = sum(p[k] for k in range(4)) / level / 4  # (1/4 + 2/4 + 3/4 + 1) / 4 = 0.625
        assert 0.57 <= ratio <= 0.68, (season, ratio)


def test_summer_tourism_tapers_over_its_last_five_days():
    """Summer tourism fades over five days to 28 August: the last six days hold 3.5 days' worth."""
    # mutant: simulate_stream 1016 (fades over six days)
    p = Counter()
    for seed in (11, 12, 13):
        frame, truth = simulate_stream(start="2024-08-10", end="2024-08-31", city=_many_districts(), seed=seed)
        events = [e for e in truth if e.get("season") == "summer_tourism"]
        assert len(events) == 60 and {e["end"] for e in events} == {"2024-08-28"}
        p.update(_profile(frame, events, "last"))
    level = sum(p[-k] for k in range(6, 16)) / 10
    ratio = sum(p[-k] for k in range(6)) / level / 6  # (1 + 5/6 + … + 1/6) / 6 = 0.583; 0.5 over six
    assert 0.545 <= ratio <= 0.62, ratio


def test_plum_rain_ramps_up_over_two_days():
    """The plum rain reaches its level on its third day: its first three days hold two days' worth."""
    # mutant: simulate_stream 681 (ramps over three days)
    names = [f"区{i:02d}" for i in range(60)]
    city = _city(kind="south", seasons=True, districts=names, base_per_day=60 * 19.5, dispersion=1e6)
    frame, truth = simulate_stream(start="2024-06-05", end="2024-07-05", city=city, seed=12)
    events = [e for e in truth if e.get("season") == "plum_rain"]
    assert len(events) == 60
    p = _profile(frame, events, "first")
    level = sum(p[k] for k in range(3, 11)) / 8
    ratio = sum(p[k] for k in range(3)) / level / 3  # (1/3 + 2/3 + 1) / 3 = 0.667; 0.5 over three days
    assert 0.6 <= ratio <= 0.76, ratio
