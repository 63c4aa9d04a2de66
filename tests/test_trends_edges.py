"""Early warning at its edges: the boundaries inside TrendDetector's expected volume, day
factors, onset thresholds and emerging-issue screening, each worked out by hand.

The helpers are tested on detectors whose fitted arrays are set directly (a few series, a
few hundred days of made-up counts); emerging issues on small synthetic streams. No real
appeals are read.
"""
from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from models.trends import Series, TrendDetector
from tests.test_trends_units import BACKGROUND, _days


def _bare(counts=None, *, total=None, dow=None, kinds=None, **params):
    """A detector holding only the fitted arrays a helper reads."""
    det = TrendDetector(**params)
    if counts is not None:
        det.counts_ = np.asarray(counts, dtype=float)
        det.series_ = [Series("category", f"c{j}", None) for j in range(len(det.counts_))]
    if total is not None:
        det.total_ = np.asarray(total, dtype=float)
    if dow is not None:
        det.dow_ = np.asarray(dow)
    if kinds is not None:
        det.kinds_ = np.asarray(kinds)
    return det


# ------------------------------------------------------------------ day factors
def test_a_weekday_seen_four_times_has_its_own_factor():
    """Four workdays of a weekday are enough to learn its factor (at least four, not five)."""
    # 28 days before `upto`: each weekday exactly four times, all workdays; weekday 0 is busy
    dow = np.arange(35) % 7
    total = np.where(dow == 0, 20.0, 10.0)
    det = _bare(total=total, dow=dow, kinds=np.zeros(35, dtype=int))
    fac = det._day_factors(28)
    mean = (4 * 20 + 24 * 10) / 28  # the mean day over the four weeks
    assert fac[dow == 0] == pytest.approx(20 / mean)  # 1.75
    assert fac[dow != 0] == pytest.approx(10 / mean)  # 0.875
    # mutants _day_factors__mutmut_26 (> 4) and _27 (>= 5) learn nothing here: all 1


def test_day_factors_learn_from_the_365_days_before_only():
    """Factors read the 365 days before ``upto``: older days (day 34 and before, here) are ignored."""
    n = 400
    dow = np.arange(n) % 7
    total = np.where(dow == 0, 20.0, 10.0)
    total[:35] = 100.0  # a busy first month, more than a year before day 400
    det = _bare(total=total, dow=dow, kinds=np.zeros(n, dtype=int))
    fac = det._day_factors(n)
    # days 35..399: 53 of weekday 0 (20 a day), 312 others (10 a day)
    mean = (53 * 20 + 312 * 10) / 365
    assert fac[dow == 0] == pytest.approx(20 / mean, rel=1e-12)
    assert fac[dow != 0] == pytest.approx(10 / mean, rel=1e-12)
    # mutants: lo = None (all 400 days) or upto - 366 (day 34 too) change every factor


# ------------------------------------------------------------------ expected volume
def test_dispersion_of_a_short_history_is_mu2_over_excess_variance_clipped():
    """Before 14 days of history: k = mu^2 / (var - mu) per series from the stream's first day,
    kept within [0.5, 1000]."""
    hist = np.array([
        [3, 0] * 5,                         # mu 1.5, var 2.25: k = 2.25 / 0.75 = 3
        [6, 0] * 5,                         # mu 3, var 9: k = 9 / 6 = 1.5
        [0, 0, 0, 0, 0, 20, 0, 0, 0, 0],    # mu 2, var 36: k = 4 / 34 < 0.5, so 0.5
        [0, 4, 5, 7, 8, 8, 8, 8, 8, 8],     # mu 6.4, var 6.44: k = 40.96 / 0.04 = 1024 > 1000, so 1000
    ], dtype=float)
    counts = np.hstack([hist, np.zeros((4, 3))])  # the window: days 10-12
    det = _bare(counts, total=counts.sum(axis=0))
    e, k = det._expected(12, 3, np.ones(13))
    assert k == pytest.approx([3.0, 1.5, 0.5, 1000.0], rel=1e-9)
    # trailing level (the mean day of days 0-9) times three days; no past years
    assert e == pytest.approx([4.5, 9.0, 6.0, 19.2])
    # mutants: history from day 1 (k 2.0 for the first series), one mean over all series,
    # a floor of 1 on var - mu (k 2.25), no lower or no upper clip


def test_last_years_weeks_starting_on_day_one_are_scaled_by_day_zeros_volume():
    """Last year's widened window starting on day 1: the volume then is day 0's (40 against
    10 now), so last year's median day (20) counts a quarter."""
    t, w = 374, 3
    a = t - w + 1                        # 372: last year's window starts at a - 364 - 7 = 1
    counts = np.ones((1, t + 1))
    counts[0, 1:t - 364 + 7 + 1] = 20.0  # days 1..17, the same weeks last year
    total = np.full(t + 1, 10.0)
    total[0] = 40.0
    det = _bare(counts, total=total)
    e, _ = det._expected(t, w, np.ones(t + 1))
    assert a - 364 - 7 == 1
    assert e == pytest.approx([20 * w * 10 / 40])  # 15; the trailing level gives only 3
    # mutant _expected__mutmut_69 (s > 1): the volume then is 0, unscaled: 60


# ------------------------------------------------------------------ onset thresholds
def test_threshold_early_in_the_stream_reads_day_zero_only():
    """As of day 8 the off-season level is the 7-day counts of days 0 to t-8 (day 0 only)."""
    counts = np.full((1, 20), 100.0)
    counts[0, 0] = 4  # from day 1 on, 100 a day: within the last week (or after it), not read
    det = _bare(counts)
    thr = det._thresholds(8)
    assert thr.tolist() == [3 * 4 + 3 * 2]  # 18: base 4
    # mutants: start at day 1 (nothing read: floor 8), end at day 2 (median of 4 and 104)
    # or at t + 7 (days 0-14 read)


def test_threshold_reads_the_year_before_the_last_week():
    """As of day 400 the off-season level is the median 7-day count of days 35 to 392."""
    counts = np.zeros((1, 401))
    counts[0, 208:] = 10.0
    det = _bare(counts)
    thr = det._thresholds(400)
    # 7-day counts on days 35..392: 173 zeros, 10..60 on days 208-213, 70 on 179 days;
    # median of those 358 = (60 + 70) / 2
    base = 65.0
    assert thr == pytest.approx([3 * base + 3 * np.sqrt(base)])
    # mutants: from day 34 (one more zero: median 60) or up to day 407 (more 70s: 70)


# ------------------------------------------------------------------ emerging: one issue per alert
def _fake_groups(det, by_day):
    det._emerging_groups = lambda t, since_days: (10, by_day.get(t, []))
    return det


def _issue(p, docs, words, ev):
    return (p, np.array(docs), set(words), {"kind": "emerging", "evidence_ids": list(ev)})


def test_a_group_holding_appeals_already_reported_is_not_new_whatever_its_words():
    """A group sharing appeals with an issue found at the previous run is that issue, even
    when its rising words are others; a group sharing nothing is reported."""
    det = _fake_groups(TrendDetector(), {
        93: [_issue(1e-6, [1, 2, 3], [10], ["a1", "a2", "a3"])],
        100: [_issue(1e-7, [3, 4, 5], [11], ["a3", "a4", "a5"]), _issue(2e-6, [6, 7], [12], ["b6", "b7"])],
    })
    tests, out = det._emerging(100, 7)
    assert tests == 10
    assert [(p, a["evidence_ids"]) for p, a in out] == [(2e-6, ["b6", "b7"])]


def test_groups_chained_by_shared_words_are_one_alert():
    """Groups of one issue merge through the words gathered so far: A {1,2}, B {2,3} joins A,
    then C {3,4} joins A through B's word 3; one alert with all the evidence."""
    det = _fake_groups(TrendDetector(), {
        100: [_issue(1e-9, [1, 2], [1, 2], ["a1", "a2"]), _issue(1e-8, [3], [2, 3], ["b3"]),
              _issue(1e-7, [4], [3, 4], ["c4"])],
    })
    _, out = det._emerging(100, 7)
    assert [(p, a["evidence_ids"]) for p, a in out] == [(1e-9, ["a1", "a2", "b3", "c4"])]
    # mutants: kept_words = words / &= words lose word 3, and C becomes a second alert


# ------------------------------------------------------------------ emerging: screening
AS_OF = "2024-05-24"
CHAIR = ["小区里的按摩椅扫码后不退款", "小区里的按摩椅扫码后不启动"]
BIKES = "共享单车扫码后无法开锁"


def _stream(extra, end=AS_OF):
    """Four routine appeals a day from 1 January 2024 (distinct senders, 东区) and ``extra``:
    (day, text, sender) rows in 西区."""
    rows, i = [], 0
    for d in _days("2024-01-01", end):
        for k in range(4):
            i += 1
            rows.append({"id": f"B{i}", "time": f"{d} 10:00:00", "text": BACKGROUND[k], "district": "东区",
                         "user": f"u{i}"})
    for j, (day, text, user) in enumerate(extra):
        rows.append({"id": f"N{j:03d}", "time": f"{day} 15:{j % 60:02d}:00", "text": text, "district": "西区",
                     "user": user})
    return pd.DataFrame(rows)


# 15 bike appeals in February (扫码 seen before), then from 20 May ten massage-chair appeals from
# four senders, alternating 退款 and 启动 (each in half of them)
BIKES_FEB = [(f"2024-02-{1 + j:02d}", BIKES, f"h{j}") for j in range(15)]
CHAIRS = [(f"2024-05-{20 + j // 2}", CHAIR[j % 2], f"n{j % 4}") for j in range(10)]
N_RECENT = 14 * 4 + 10        # appeals of 11-24 May
N_HIST = 131 * 4 + 15         # 1 January to 10 May


@pytest.fixture(scope="module")
def chairs():
    return _stream(BIKES_FEB + CHAIRS)


def _issues(det, as_of=AS_OF):
    tests, found = det._emerging_groups(det._day(as_of), 7)
    return tests, [(det.ids_[docs].tolist(), sorted(det.terms_[sorted(words)].tolist()), a)
                   for _, docs, words, a in found]


def test_every_word_seen_in_the_last_two_weeks_is_a_test_and_no_other(chairs):
    """The emerging tests are the words held by an appeal of the last 14 days; words seen only
    before (无法, 共享单车, 开锁 of February's bike appeals) are not tests."""
    det = TrendDetector().fit(chairs)
    tests, _ = _issues(det)
    recent = {"道路", "破损", "小区", "修补", "门口", "尽快", "装修", "楼上住户", "经常", "公交车", "晚点",
              "扫码", "按摩椅", "退款", "启动"}
    assert set(det.terms_.tolist()) == recent | {"无法", "共享单车", "开锁"}
    assert tests == len(recent) == 15
    # mutant _emerging_groups__mutmut_58 (r >= 0) counts all 18


def test_a_word_held_by_half_the_group_is_one_of_its_rising_words(chairs):
    """退款 and 启动, each in exactly half of the ten appeals, are rising words of the issue."""
    det = TrendDetector().fit(chairs)
    _, [(ids, words, a)] = _issues(det)
    assert ids == [f"N{j:03d}" for j in range(15, 25)]
    assert words == sorted(["扫码", "按摩椅", "退款", "启动"])
    assert a["observed"] == 4


@pytest.mark.parametrize("margin, with_scan", [(1 / 1.5, False), (1.001, True)])
def test_a_word_rises_only_at_the_emerging_half_of_the_budget(chairs, margin, with_scan):
    """扫码 (15 appeals before, 10 of the last 14 days') is a rising word only when its
    p-value is within alpha, the emerging half of the budget spread over the 15 tests."""
    rate = (15 + 0.5) / (N_HIST + 1.0) * N_RECENT
    p = stats.poisson.sf(10 - 1, rate)
    assert 10 >= 5 * rate  # it passes the ratio screen; only the test decides
    alpha = p * margin
    det = TrendDetector(false_alarms_per_week=alpha * 15 / 0.5).fit(chairs)
    assert det.alpha(15, 7, share=0.5) == pytest.approx(alpha)
    _, [(ids, words, _)] = _issues(det)
    assert len(ids) == 10
    assert ("扫码" in words) is with_scan
    assert {"按摩椅", "退款", "启动"} <= set(words)
    # mutants: sf(r + 1) (a smaller p-value), share 1.0 or 1.5 of the budget keep 扫码 at margin 1/1.5


def test_a_group_failing_its_test_does_not_stop_later_groups():
    """Three bike appeals at 幸福小区 (rising word 扫码 only, expected ~2: not significant) come
    first; the massage chairs after them are still reported."""
    early = [("2024-05-18", "幸福小区的" + BIKES, f"g{j}") for j in range(3)]
    det = TrendDetector().fit(_stream(BIKES_FEB + early + CHAIRS))
    groups = det._groups_of(np.flatnonzero(np.char.startswith(det.ids_.astype(str), "N")
                                           & (det.doc_day_ > det._day(AS_OF) - 14)))
    assert [det.ids_[g].tolist() for g in groups][0] == ["N015", "N016", "N017"]
    _, issues = _issues(det)
    assert [ids for ids, _, _ in issues] == [[f"N{j:03d}" for j in range(18, 28)]]


def test_a_group_without_a_shared_rising_word_does_not_stop_later_groups():
    """Three appeals at 幸福小区, each about another broken thing (按摩椅, 快递柜, 充电桩: none
    in half of them), come first; the four at 阳光花园 naming all three are reported."""
    early = [("2024-05-18", f"幸福小区三号楼的{w}坏了", f"g{j}") for j, w in enumerate(["按摩椅", "快递柜", "充电桩"])]
    later = [(f"2024-05-{20 + j}", "阳光花园的按摩椅、快递柜和充电桩都坏了", f"n{j}") for j in range(4)]
    det = TrendDetector().fit(_stream(early + later))
    groups = det._groups_of(np.flatnonzero(np.char.startswith(det.ids_.astype(str), "N")))
    assert [det.ids_[g].tolist() for g in groups] == [["N000", "N001", "N002"], ["N003", "N004", "N005", "N006"]]
    _, issues = _issues(det)
    assert [(ids, a["topic"]) for ids, _, a in issues] == [
        (["N003", "N004", "N005", "N006"], "新问题：阳光花园：按摩椅、快递、充电")]


def test_an_issue_without_keywords_is_named_after_its_rarest_rising_word():
    """Appeals of generic wording only (恳请领导重视: no keyword to describe them) are named after
    the rising word expected least: 恳请, never seen before (领导 and 重视 were, in February)."""
    before = [(f"2024-02-{1 + j:02d}", "请领导重视", f"h{j}") for j in range(2)]
    new = [(f"2024-05-{20 + j}", "恳请领导重视", f"n{j}") for j in range(4)]
    det = TrendDetector().fit(_stream(before + new))
    _, [(ids, words, a)] = _issues(det)
    assert ids == ["N002", "N003", "N004", "N005"]
    assert "恳请" in words
    assert a["topic"] == "新问题：恳请"


# ------------------------------------------------------------------ grouping by sender
def test_emerging_groups_join_appeals_of_one_sender():
    """Two appeals about one barbecue shop from the same sender are one group: the sender is
    passed to the grouper (the texts alone are not similar enough)."""
    det = TrendDetector()
    det.ids_ = np.array(["a", "b"], dtype=object)
    det.times_ = np.array(["2024-05-01 10:00:00", "2024-05-02 10:00:00"], dtype=object)
    det.texts_ = np.array(["楼下烧烤店油烟很大，窗户都不敢开", "烧烤店营业到凌晨，油烟和噪音扰民"], dtype=object)
    det.districts_ = np.array(["西区", "西区"], dtype=object)
    det.has_users_ = True
    det.users_ = np.array(["u1", "u1"], dtype=object)
    assert [g.tolist() for g in det._groups_of(np.array([1, 0]))] == [[0, 1]]
    det.users_ = np.array(["u1", "u2"], dtype=object)
    assert det._groups_of(np.array([0, 1])) == []
