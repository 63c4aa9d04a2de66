"""Early warning, small and exact: hand-built streams whose alerts, calendar and forecasts
can be worked out by hand, and the helpers behind them (onset runs, recurring seasons,
anchors to the calendar or a public holiday, the next onset).

Every stream here is built in the test (no real appeals), a few thousand appeals at most.
"""
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from corpora.holidays import holiday_starts
from models.trends import (
    EMERGING_LOOKBACK_DAYS,
    Series,
    TextMemo,
    TrendDetector,
    _anchor,
    _circular_median_doy,
    _circular_spread,
    _doy,
    _factorize,
    _month_day,
    _next_onset,
    _recurring,
    _rolling7,
    _rows_matrix,
    _valid_codes,
    onsets_in,
)

ROUTINE = "市民反映情况，请尽快处理"
HEATING = "家里暖气不热，室温太低"
BACKGROUND = ["小区门口道路破损，请尽快修补", "楼上住户装修噪音扰民", "公交车经常晚点", "咨询孩子入学报名材料"]


def _days(start, end):
    d, end = date.fromisoformat(start), date.fromisoformat(end)
    while d <= end:
        yield d
        d += timedelta(days=1)


def _flat(burst=30, burst_days=("2024-03-01", "2024-03-03"), end="2024-03-10", base=10):
    """``base`` appeals a day of one category from 1 January 2024, ``burst`` a day on the burst days."""
    rows, i = [], 0
    a, b = (date.fromisoformat(x) for x in burst_days)
    for d in _days("2024-01-01", end):
        for _ in range(burst if a <= d <= b else base):
            i += 1
            rows.append({"id": f"x{i:05d}", "time": f"{d} 11:00:00", "text": ROUTINE, "category": "咨询"})
    return pd.DataFrame(rows)


def _two_series(start, end, count, category="排水", routine=lambda d: 10):
    """Each day from ``start`` to ``end``: ``routine(d)`` appeals of 其他 and ``count(d)`` of
    ``category``."""
    rows, i = [], 0
    for d in _days(start, end):
        for name, n in (("其他", routine(d)), (category, count(d))):
            for _ in range(n):
                i += 1
                rows.append({"id": f"r{i}", "time": f"{d} 08:00:00", "text": ROUTINE, "category": name})
    return pd.DataFrame(rows)


def _winters_rows(start, end, heating, prefix=("b", "h")):
    """Three routine appeals a day in one district from ``start`` to ``end``, and four heating
    appeals a day on the days ``heating(day)`` is true (ids from ``prefix``)."""
    rows, i = [], 0
    for d in _days(start, end):
        for _ in range(3):
            i += 1
            rows.append({"id": f"{prefix[0]}{i}", "time": f"{d} 09:00:00", "text": BACKGROUND[i % 4],
                         "district": "东区", "category": "城建"})
        if heating(d):
            for _ in range(4):
                i += 1
                rows.append({"id": f"{prefix[1]}{i}", "time": f"{d} 10:00:00", "text": HEATING, "district": "东区",
                             "category": "城建"})
    return rows


def _winters_frame():
    """September 2023 to 12 October 2025, heating appeals in two winters: from 15 November 2023
    to 31 January 2024, and from 13 November 2024 to 10 February 2025."""
    return pd.DataFrame(_winters_rows("2023-09-01", "2025-10-12", lambda d: date(2023, 11, 15) <= d <= date(2024, 1, 31)
                                      or date(2024, 11, 13) <= d <= date(2025, 2, 10)))


@pytest.fixture(scope="module")
def winters():
    frame = _winters_frame()
    return frame, TrendDetector().fit(frame)


@pytest.fixture(scope="module")
def flat():
    frame = _flat()
    return frame, TrendDetector().fit(frame)


# ------------------------------------------------------------------ helpers
def test_series_label_names_the_district_or_the_whole_city():
    assert Series("topic", "噪音", "东区").label() == "东区「噪音」"
    assert Series("category", "咨询", None).label() == "全市「咨询」"


def test_onsets_in_finds_runs_long_enough_and_merges_close_ones():
    r = np.array([0, 9, 9, 9, 0, 0, 9, 9, 12, 9, 0])
    assert onsets_in(r, 8, min_run=3, gap_days=3) == [(1, 1, 3), (6, 8, 9)]
    # closer than gap_days: one run from the first crossing to the last end, peak over all of it
    assert onsets_in(r, 8, min_run=3, gap_days=4) == [(1, 8, 9)]
    assert onsets_in(r, 8, min_run=4, gap_days=2) == [(6, 8, 9)]
    assert onsets_in(r, 9, min_run=3) == [(1, 8, 9)]  # "at or above"
    assert onsets_in(r, 10, min_run=1) == [(8, 8, 8)]
    assert onsets_in(np.array([5, 5, 5, 5, 5, 1]), 5) == [(0, 0, 4)]  # min_run 5 by default, at the start
    assert onsets_in(np.array([1, 5, 5, 5, 5]), 5) == []
    assert onsets_in(np.array([1, 6, 6, 7, 6, 6]), 5) == [(1, 3, 5)]  # to the end of the data
    # per-day thresholds
    assert onsets_in(np.array([3, 3, 3, 3]), np.array([4, 3, 3, 3]), min_run=3) == [(1, 1, 3)]
    assert onsets_in(np.array([], dtype=float), 1) == []
    # the default gap is 60 days
    far = np.zeros(100)
    far[[0, 1, 2, 3, 4]] = far[[70, 71, 72, 73, 74]] = 9
    assert onsets_in(far, 8) == [(0, 0, 4), (70, 70, 74)]
    far[[70, 71, 72, 73, 74]] = 0
    far[[50, 51, 52, 53, 54]] = 9
    assert onsets_in(far, 8) == [(0, 0, 54)]
    far[[50, 51, 52, 53, 54]] = 0
    far[[64, 65, 66, 67, 68]] = 9  # 60 days after the first run's end: not closer than 60
    assert onsets_in(far, 8) == [(0, 0, 4), (64, 64, 68)]


def test_factorize_keeps_the_order_of_first_appearance():
    code, uniq = _factorize(np.array([3, 1, 3, 2]))
    assert code.tolist() == [0, 1, 0, 2] and uniq == [3, 1, 2]
    code, uniq = _factorize(["a", None, "b", "a", None])
    assert code.tolist() == [0, 1, 2, 0, 1] and uniq == ["a", None, "b"]
    code, uniq = _factorize(np.array(["z", "y", "z"], dtype=object))
    assert code.tolist() == [0, 1, 0] and uniq == ["z", "y"]
    code, uniq = _factorize(np.array(["a", None, "a"], dtype=object))  # a missing value is a value
    assert code.tolist() == [0, 1, 0] and uniq == ["a", None]


def test_rows_matrix_puts_ones_where_listed():
    m = _rows_matrix([[2, 0], [], [1]], 4)
    assert m.shape == (3, 4)
    assert m.toarray().tolist() == [[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]]
    assert _rows_matrix([], 2).shape == (0, 2)


def test_valid_codes_drop_missing_empty_and_non_strings():
    names, code = _valid_codes(pd.Series(["东区", "", None, 5, "西区", "东区", float("nan")]), 7)
    assert names == ["东区", "西区"]
    assert code.tolist() == [0, -1, -1, -1, 1, 0, -1]
    names, code = _valid_codes(None, 3)
    assert names == [] and code.tolist() == [-1, -1, -1]


def test_rolling7_sums_the_last_seven_days():
    counts = np.arange(1, 11, dtype=float).reshape(1, -1)
    assert _rolling7(counts).tolist() == [[1, 3, 6, 10, 15, 21, 28, 35, 42, 49]]
    assert _rolling7(np.zeros((2, 0))).shape == (2, 0)


def test_day_of_year_ignores_29_february():
    assert _doy(date(2023, 1, 1)) == 0
    assert _doy(date(2023, 12, 31)) == 364
    assert _doy(date(2024, 12, 31)) == 364
    assert _doy(date(2024, 2, 29)) == 59
    assert _doy(date(2024, 3, 1)) == _doy(date(2023, 3, 1)) == 59
    assert _doy(date(2024, 2, 28)) == 58
    assert _month_day(0) == "01-01" and _month_day(59) == "03-01" and _month_day(364) == "12-31"


def test_recurring_groups_onsets_within_thirty_days_on_a_circle():
    assert _recurring([]) == []
    assert _recurring([date(2024, 5, 1)]) == [[0]]
    # 30 days apart is one season, 31 days two
    assert _recurring([date(2023, 5, 1), date(2024, 5, 31)]) == [[0, 1]]
    assert _recurring([date(2023, 5, 1), date(2024, 6, 1)]) == [[0], [1]]
    assert _recurring([date(2023, 5, 1), date(2024, 6, 1)], gap=31) == [[0, 1]]
    # every four weeks all year round: one season with no gap anywhere on the circle
    assert _recurring([date(2023, 1, 1) + timedelta(days=28 * k) for k in range(13)]) == [list(range(13))]
    # December and January are neighbours, 30 days apart across the new year still one season
    assert _recurring([date(2023, 12, 17), date(2024, 1, 16), date(2023, 7, 20)]) == [[0, 1], [2]]
    assert _recurring([date(2024, 1, 10), date(2024, 7, 1), date(2023, 12, 25)]) == [[0, 2], [1]]
    # three seasons a year, the groups sorted by their first index
    spring = [date(2023, 2, 1), date(2024, 2, 3)]
    summer = [date(2023, 6, 20), date(2024, 6, 25)]
    autumn = [date(2023, 10, 1), date(2024, 10, 2)]
    assert _recurring(summer + autumn + spring) == [[0, 1], [2, 3], [4, 5]]


def test_circular_median_and_spread():
    assert _circular_median_doy([date(2023, 12, 30), date(2024, 1, 2), date(2025, 1, 3)]) == 1
    assert _circular_median_doy([date(2023, 6, 1), date(2024, 6, 3), date(2025, 6, 20)]) == _doy(date(2023, 6, 3))
    assert _circular_spread(np.array([1, 2, 3, 10])) == 1.0
    assert _circular_spread(np.array([5])) == 0.0
    assert _circular_spread(np.array([0, 4])) == 2.0


def test_anchor_prefers_the_steadier_of_calendar_and_holiday():
    sf = {d.year: d for d in holiday_starts()["春节"]}
    # a week before each Spring Festival (which moves by weeks): the holiday
    before = [sf[y] - timedelta(days=7) for y in (2023, 2024, 2025)]
    assert _anchor(before) == ("春节", -7, 0.0)
    assert _anchor(before, (("春节", 70),)) == ("春节", -7, 0.0)
    # two onsets, one day apart relative to the holiday: median offset, spread 0.5
    assert _anchor([date(2024, 1, 20), date(2025, 1, 8)], (("春节", 70),)) == ("春节", -20, 0.5)
    # around day 273 of the year (30 September 2023, 4 October 2025): the calendar, 2 days' spread
    assert _anchor([date(2023, 9, 30), date(2025, 10, 4)]) == ("日历", 272, 2.0)
    # the same days relative to the calendar and to a holiday on fixed dates: the calendar
    assert _anchor([date(2024, 9, 28), date(2025, 9, 27)]) == ("日历", 270, 0.5)
    # a holiday steadier by two days or less is not preferred
    assert _anchor([date(2024, 5, 3), date(2025, 5, 2)])[0] == "日历"
    # out of reach of every allowed holiday: the calendar
    june = [date(2023, 6, 15), date(2024, 6, 14), date(2025, 6, 16)]
    assert _anchor(june, (("春节", 70),)) == ("日历", _doy(date(2023, 6, 15)), 1.0)
    # one onset follows the nearest allowed holiday, the calendar without allowed ones
    assert _anchor([date(2024, 1, 20)], (("春节", 70),)) == ("春节", -21, 0.0)
    assert _anchor([date(2024, 4, 20)], (("劳动节", 10), ("清明节", 30))) == ("清明节", 16, 0.0)
    assert _anchor([date(2024, 4, 25)], (("劳动节", 10), ("清明节", 30))) == ("劳动节", -6, 0.0)
    assert _anchor([date(2024, 4, 25)], (("清明节", 30), ("劳动节", 10))) == ("劳动节", -6, 0.0)
    # as near to both (8 days after the Mid-Autumn Festival, 8 before National Day): the first allowed
    assert _anchor([date(2024, 9, 23)], (("中秋节", 30), ("国庆节", 30))) == ("中秋节", 8, 0.0)
    assert _anchor([date(2024, 4, 25)]) == ("日历", _doy(date(2024, 4, 25)), 0.0)
    # the limit is inclusive: 10 days before 劳动节 qualifies, 11 do not
    assert _anchor([date(2024, 4, 21)], (("劳动节", 10),)) == ("劳动节", -10, 0.0)
    assert _anchor([date(2024, 4, 20)], (("劳动节", 10),))[0] == "日历"
    # the holiday within 45 days by default
    after = [sf[y] + timedelta(days=40) for y in (2023, 2024, 2025)]
    assert _anchor(after) == ("春节", 40, 0.0)
    late = [sf[y] + timedelta(days=46) for y in (2023, 2024, 2025)]
    assert _anchor(late)[0] != "春节"


def test_next_onset_follows_the_anchor():
    sf = {d.year: d for d in holiday_starts()["春节"]}
    assert _next_onset(date(2025, 1, 1), "春节", -7, []) == sf[2025] - timedelta(days=7)
    assert _next_onset(sf[2025] - timedelta(days=7), "春节", -7, []) == sf[2026] - timedelta(days=7)
    # the calendar: this year's day if still ahead, else next year's (29 February skipped)
    assert _next_onset(date(2025, 3, 1), "日历", 100, []) == date(2025, 4, 11)
    assert _next_onset(date(2025, 4, 11), "日历", 100, []) == date(2026, 4, 11)
    assert _next_onset(date(2023, 12, 31), "日历", 100, []) == date(2024, 4, 10) + timedelta(days=1)
    assert _next_onset(date(2024, 1, 1), "日历", 58, []) == date(2024, 2, 28)
    assert _next_onset(date(2024, 1, 1), "日历", 59, []) == date(2024, 3, 1)
    assert _next_onset(date(2025, 6, 1), "日历", 0, []) == date(2026, 1, 1)
    # past the holiday's known dates: the typical day of the year of the onsets
    onsets = [date(2025, 2, 1), date(2026, 2, 5)]
    assert _next_onset(date(2026, 3, 1), "春节", -10, onsets) == date(2027, 2, 1)


def test_text_memo_does_each_text_once_and_keeps_what_it_is_told():
    from corpora.topics import default_topics

    m = TextMemo()
    assert m.normalise("樓道裡有煤氣味") == "楼道里有煤气味"
    assert m.normalised == {"樓道裡有煤氣味": "楼道里有煤气味"}
    lex = default_topics()
    assert m.topics(["暖气不热", "路灯坏了", "暖气不热"], lex) == [["冬季采暖"], [], ["冬季采暖"]]
    assert m.topic_lists == {"暖气不热": ("冬季采暖",), "路灯坏了": ()}
    # personal data is cut out before segmentation: no phone number among the words
    words = m.words("请联系13912345678处理暖气")
    assert set(words) == {"请", "联系", "处理", "暖气"}  # nor any placeholder word for it
    assert m.words("请联系13912345678处理暖气") is words
    # keep: only the entries of the texts given (and their normalised forms)
    m.normalise("路灯坏了")
    m.words("路灯坏了")
    assert m.keep(["樓道裡有煤氣味", "路灯坏了"]) is m
    assert set(m.normalised) == {"樓道裡有煤氣味", "路灯坏了"}
    # as many texts as it holds, but not the same ones
    m.normalise("暖气不热")
    m.keep(["路灯坏了", "暖气不热", "没见过的"])
    assert set(m.normalised) == {"路灯坏了", "暖气不热"}
    assert set(m.topic_lists) == {"路灯坏了", "暖气不热"} and set(m.word_lists) == {"路灯坏了"}
    kept = m.keep(["路灯坏了"])
    assert kept is m and set(m.normalised) == {"路灯坏了"}
    assert set(m.topic_lists) == {"路灯坏了"} and set(m.word_lists) == {"路灯坏了"}


def test_alpha_spreads_the_weekly_budget():
    det = TrendDetector(false_alarms_per_week=0.7)
    assert det.alpha(100, 1) == pytest.approx(0.001)
    assert det.alpha(100, 7) == pytest.approx(0.007)
    assert det.alpha(100, 7, share=0.5) == pytest.approx(0.0035)
    assert det.alpha(0, 7) == pytest.approx(0.7)  # no tests: as if one


# ------------------------------------------------------------------ fit
def test_fit_names_the_missing_column():
    base = {"id": ["1"], "time": ["2024-01-01 08:00"], "text": ["暖气"]}
    for col in ("id", "time", "text"):
        frame = pd.DataFrame({k: v for k, v in base.items() if k != col})
        with pytest.raises(ValueError, match=f"^the stream needs columns id, time and text; '{col}' is missing$"):
            TrendDetector().fit(frame)


def test_fit_refuses_a_stream_without_any_time():
    frame = pd.DataFrame({"id": ["1", "2"], "time": [None, None], "text": ["暖气", "停水"]})
    with pytest.raises(ValueError, match="^no appeals with a time: early warning needs timestamps$"):
        TrendDetector().fit(frame)


def test_fit_checks_terms_since():
    frame = pd.DataFrame({"id": ["1"], "time": ["2024-01-01 08:00"], "text": ["暖气"]})
    with pytest.raises(ValueError, match=r"^terms_since must be a date \(YYYY-MM-DD\) or None, got 'next week'$"):
        TrendDetector().fit(frame, terms_since="next week")
    with pytest.raises(ValueError, match=r"got '2024-13-01 0123456789012345678'$"):
        TrendDetector().fit(frame, terms_since="2024-13-01 01234567890123456789")
    det = TrendDetector().fit(frame, terms_since=pd.Timestamp("2023-12-01 10:00"))
    assert det.terms_since_ == date(2023, 12, 1)
    assert TrendDetector().fit(frame).terms_since_ is None


def test_fit_indexes_series_counts_and_appeals():
    frame = pd.DataFrame([
        {"id": 7, "time": "2024-03-03 18:00", "text": "楼上噪音扰民", "district": "西区", "category": "环保", "user": "u1"},
        {"id": 5, "time": "2024-03-01 09:00", "text": "暖气不热", "district": "东区", "category": "城建", "user": None},
        {"id": 6, "time": None, "text": "暖气不热", "district": "东区", "category": "城建", "user": "u9"},
        {"id": 8, "time": "2024-03-01 20:00", "text": "暖气不热", "district": "", "category": None, "user": ""},
        {"id": 9, "time": "2024-03-03 07:00", "text": "暖气不热，噪音", "district": "东区", "category": "城建",
         "user": "u1"},
    ])
    det = TrendDetector().fit(frame)
    assert det.day0_ == date(2024, 3, 1)
    assert det.ids_.tolist() == ["5", "8", "7", "9"]  # by day, in the stream's order within a day; no time: left out
    S = Series
    assert det.series_ == [
        S("topic", "冬季采暖", None), S("category", "城建", None), S("topic", "冬季采暖", "东区"),
        S("category", "城建", "东区"), S("topic", "噪音", None), S("category", "环保", None),
        S("topic", "噪音", "西区"), S("category", "环保", "西区"), S("topic", "噪音", "东区")]
    assert det.counts_.tolist() == [[2, 0, 1], [1, 0, 1], [1, 0, 1], [1, 0, 1], [0, 0, 2], [0, 0, 1],
                                    [0, 0, 1], [0, 0, 1], [0, 0, 1]]
    assert det.total_.tolist() == [2, 0, 2]
    assert det.member_[0].indices.tolist() == [0, 1, 3]  # the appeals of each series
    assert det.member_[8].indices.tolist() == [3]
    assert det.districts_.tolist() == ["东区", None, "西区", "东区"]
    assert det.texts_.tolist() == ["暖气不热", "暖气不热", "楼上噪音扰民", "暖气不热,噪音"]
    assert det.doc_day_.tolist() == [0, 0, 2, 2]
    assert det.has_users_ is True
    assert det.users_.tolist() == ["_0", "_1", "u1", "u1"]  # unnamed senders: one per appeal
    assert det.dow_.tolist() == [4, 5, 6]  # 1 March 2024 was a Friday
    assert det.kinds_.tolist() == [0, 1, 1]


def test_fit_without_districts_categories_or_senders():
    frame = pd.DataFrame({"id": ["a", "b"], "time": ["2024-10-01 08:00", "2024-10-12 08:00"],
                          "text": ["暖气不热", "暖气不热"]})
    det = TrendDetector().fit(frame)
    assert det.series_ == [Series("topic", "冬季采暖", None)]
    assert det.counts_.shape == (1, 12) and det.counts_.sum() == 2
    assert det.has_users_ is False and det.users_.tolist() == ["_0", "_1"]
    assert det.districts_.tolist() == [None, None]
    # 1 October is a holiday, 12 October 2024 (a Saturday) a make-up workday, counted as a workday
    assert det.kinds_[0] == 2 and det.kinds_[11] == 0 and det.dow_[11] == 5


def test_fit_leaves_the_callers_frame_alone():
    frame = pd.DataFrame({"id": ["b", "a"], "time": ["2024-03-02 08:00", "2024-03-01 08:00"],
                          "text": ["暖气不热", "停水了"]})
    before = frame.copy()
    TrendDetector().fit(frame)
    pd.testing.assert_frame_equal(frame, before)


def test_fit_words_exclude_numbers_known_terms_places_and_seasonal_appeals():
    frame = pd.DataFrame({
        "id": ["1", "2", "3", "4"],
        "time": ["2024-03-01 08:00"] * 4,
        "text": ["共享按摩椅不退款", "家里暖气片漏水，按摩椅", "东区路口有个按摩椅，编号12345号牌", "a1 2024 燃气灶"],
        "district": ["东区", "东区", "东区", "东区"],
    })
    det = TrendDetector().fit(frame)
    terms = set(det.terms_.tolist())
    assert {"共享", "按摩椅", "退款", "路口"} <= terms
    assert "东区" not in terms              # a district's name
    assert "燃气灶" not in terms             # a word containing a known topic term (燃气)
    assert "暖气片" not in terms and "漏水" not in terms  # the heating appeal is explained by a seasonal topic
    assert not any(t.isdigit() or len(t) < 2 for t in terms)
    assert not any("12345" in t for t in terms)
    # each appeal's words: rows of the appeals × words matrix
    col = {t: i for i, t in enumerate(det.terms_.tolist())}
    held = det.doc_terms_.toarray()
    assert held[:, col["按摩椅"]].tolist() == [1, 0, 1, 0]
    assert held.shape == (4, len(terms))
    assert det._doc_terms_of(np.array([2])).toarray()[0, col["路口"]] == 1
    # per day: appeals holding each word
    assert det.term_cum_[1, col["按摩椅"]] == 2 and det.term_cum_[0].sum() == 0
    assert det._term_window(0, 1)[col["按摩椅"]] == 2
    assert det._term_window(1, 1).tolist() == [0] * len(terms)


def test_fit_without_any_words_has_no_terms():
    frame = pd.DataFrame({"id": ["1"], "time": ["2024-03-01 08:00"], "text": ["暖气"]})
    det = TrendDetector().fit(frame)
    assert len(det.terms_) == 0 and det.term_day_ is None and not det._has_terms()
    assert det.term_cum_ is None


def test_terms_since_segments_only_later_appeals():
    frame = pd.DataFrame({"id": ["1", "2", "3"], "time": ["2024-03-01 08:00", "2024-03-05 08:00", "2024-03-05 09:00"],
                          "text": ["共享按摩椅不退款", "公交车晚点", "暖气不热，楼道漏水"]})
    det = TrendDetector().fit(frame, terms_since="2024-03-05")
    assert set(det.terms_.tolist()) == {"公交车", "晚点"}  # nor the heating appeal's words
    assert det.total_.sum() == 3
    assert set(TrendDetector().fit(frame, terms_since="2024-03-01").terms_.tolist()) == {
        "共享", "按摩椅", "退款", "公交车", "晚点"}


def test_a_memo_is_filled_by_fit_and_reused():
    frame = _winters_frame().iloc[:400]
    memo = TextMemo()
    first = TrendDetector().fit(frame, memo=memo)
    assert set(memo.normalised) == set(frame["text"])
    assert set(memo.word_lists) <= set(memo.normalised.values()) and memo.word_lists
    again = TrendDetector().fit(frame, memo=memo)
    assert again.series_ == first.series_
    np.testing.assert_array_equal(again.counts_, first.counts_)
    assert again.terms_.tolist() == first.terms_.tolist()


# ------------------------------------------------------------------ spikes
def test_a_tripled_flat_series_is_a_spike_with_its_evidence(flat):
    frame, det = flat
    alerts = det.detect("2024-03-03")
    assert len(alerts) == 1
    a = alerts[0]
    burst = frame[frame["time"].str[:10].between("2024-03-01", "2024-03-03")]["id"].tolist()
    # A constant history: expected 10 a day; no dispersion, so the test is (nearly) Poisson.
    p = stats.nbinom.sf(89, 3000, 3000 / 3030)
    assert a == {"kind": "spike", "topic": None, "category": "咨询", "district": None,
                 "window_start": "2024-03-01", "window_end": "2024-03-03", "observed": 90, "expected": 30.0,
                 "score": round(float(-np.log10(p)), 2), "evidence_ids": burst[:50],
                 "summary": "全市「咨询」2024-03-01至2024-03-03收到90件诉求，按历史同期、星期和节假日预计约30.0件，"
                            "明显偏高，请关注。",
                 "as_of": "2024-03-03"}


def test_a_spike_is_reported_in_its_most_significant_window(flat):
    _, det = flat
    # as of 5 March over three days: windows ending 3, 4 and 5 March; the one of the burst wins
    alerts = det.detect("2024-03-05", since_days=3)
    assert [(a["window_start"], a["window_end"], a["observed"]) for a in alerts] == [("2024-03-01", "2024-03-03", 90)]
    assert alerts[0]["as_of"] == "2024-03-05"
    # as of 5 March alone: the window 3-5 March (30 + 10 + 10) is no tripling
    assert det.detect("2024-03-05") == []
    # the day before the burst: nothing
    assert det.detect("2024-02-29", since_days=7) == []
    # a time of day, or a timestamp, is the end of that day
    assert det.detect("2024-03-03 09:30:00") == det.detect(pd.Timestamp("2024-03-03 18:00")) == det.detect("2024-03-03")


def test_spike_windows_need_four_weeks_of_history():
    frame = _flat(burst_days=("2024-01-28", "2024-01-30"), end="2024-02-05")
    det = TrendDetector().fit(frame)
    assert det.detect("2024-01-30") == []  # window from day 27: too little history
    late = _flat(burst_days=("2024-01-29", "2024-01-31"), end="2024-02-05")
    assert [(a["observed"], a["expected"]) for a in TrendDetector().fit(late).detect("2024-01-31")] == [(90, 30.0)]
    # the trailing four weeks are days 0-27: a busy first day raises the level
    busy = pd.concat([late, late.head(28).assign(id=lambda x: x["id"] + "b", time="2024-01-01 11:00:00")])
    [a] = TrendDetector().fit(busy).detect("2024-01-31")
    assert a["observed"] == 90 and a["expected"] > 31


def test_spike_needs_min_count():
    frame = _flat(burst=3, base=1)
    assert [a["observed"] for a in TrendDetector().fit(frame).detect("2024-03-03")] == [9]  # 3 x 1 a day, 9 >= 6
    few = TrendDetector(min_count=10).fit(_flat(burst=3, base=1))
    assert few.detect("2024-03-03") == []
    some = TrendDetector(min_count=9).fit(_flat(burst=3, base=1))
    assert [a["observed"] for a in some.detect("2024-03-03")] == [9]


def test_spike_ratio_is_inclusive(flat):
    frame = _flat(burst=20)
    assert [a["observed"] for a in TrendDetector().fit(frame).detect("2024-03-03")] == [60]  # exactly 2 x
    assert TrendDetector(min_ratio=2.01).fit(frame).detect("2024-03-03") == []


def test_noisy_history_makes_a_spike_less_significant():
    """The same burst (30 a day for three days) on a series that alternated 7 and 13 a day
    (mean 10, like the flat one): less surprising than on a series steady at 10. Another
    category, steady at 10 a day, runs alongside and does not change that."""
    quiet = TrendDetector().fit(_flat())
    noisy = TrendDetector().fit(_two_series(
        "2024-01-01", "2024-03-10", lambda d: 30 if date(2024, 3, 1) <= d <= date(2024, 3, 3) else
        (7 if d.toordinal() % 2 else 13), category="咨询"))
    [q] = quiet.detect("2024-03-03")
    [a] = noisy.detect("2024-03-03")
    assert (a["category"], a["observed"], q["observed"]) == ("咨询", 90, 90)
    assert a["score"] < q["score"] - 3
    # the dispersion of each series around its own local level (deviations of 3 a day, the
    # largest 5% left out, scaled back up for the part of a normal's variance that drops)
    assert (a["expected"], a["score"]) == (29.54, 3.73)


def test_expected_volume_follows_the_same_weeks_last_year_scaled_by_volume():
    """Last year the same weeks had 3 x the level; this year the city's volume doubled:
    the expected count is last year's median day x the window x the volume ratio."""
    rows, i = [], 0
    for d in _days("2023-01-01", "2024-06-12"):
        # the city's volume: 5 a day, 10 from 90 days before last year's window, 20 from 90 days before this one
        n = 20 if d >= date(2024, 3, 12) else 10 if d >= date(2023, 3, 7) else 5
        cat = 3 if date(2023, 6, 5) <= d <= date(2023, 6, 30) else 1
        for _ in range(n):
            i += 1
            rows.append({"id": f"r{i}", "time": f"{d} 08:00", "text": ROUTINE, "category": "其他"})
        for _ in range(cat):
            i += 1
            rows.append({"id": f"c{i}", "time": f"{d} 09:00", "text": ROUTINE, "category": "排水"})
    det = TrendDetector(min_count=1, min_ratio=0.1, false_alarms_per_week=1e9).fit(pd.DataFrame(rows))
    e = {a["category"]: a["expected"] for a in det.detect("2024-06-12") if a["kind"] == "spike"}
    # the window 10-12 June 2024, 364 days earlier 12-14 June 2023: the median day of the week before
    # to the week after (5-21 June 2023) is 3; the city's volume in the 90 days before then 11 a day, now 21
    assert e["排水"] == pytest.approx(3 * 3 * 21 / 11, abs=0.01)


def test_expected_volume_has_a_floor():
    rows = [{"id": f"q{i}", "time": f"{d} 08:00", "text": ROUTINE, "category": "咨询"}
            for i, d in enumerate(_days("2024-01-01", "2024-03-10")) if d.day == 1]
    rows += [{"id": f"s{k}", "time": "2024-03-10 09:00", "text": ROUTINE, "category": "稀有"} for k in range(6)]
    rows += [{"id": "s-first", "time": "2024-01-01 10:00", "text": ROUTINE, "category": "稀有"}]
    alerts = TrendDetector().fit(pd.DataFrame(rows)).detect("2024-03-10")
    [a] = [a for a in alerts if a["category"] == "稀有"]
    assert a["observed"] == 6 and a["expected"] == 0.75  # never below a quarter appeal a day


# ------------------------------------------------------------------ detect
def test_detect_before_the_stream_or_past_its_end(flat):
    _, det = flat
    assert det.detect("2023-12-31") == []
    last = det.detect("2024-03-10", since_days=10)
    assert det.detect("2024-04-30", since_days=10) == [dict(a, as_of="2024-03-10") for a in last]
    assert all(a["as_of"] == "2024-03-10" for a in last) and last


def test_detect_needs_a_fit():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        TrendDetector().detect("2024-01-01")


def test_detect_refuses_dates_whose_words_were_not_segmented():
    frame = _flat(end="2024-03-10")
    det = TrendDetector().fit(frame, terms_since="2024-01-05")
    first = date(2024, 1, 5) + timedelta(days=EMERGING_LOOKBACK_DAYS + 7 - 1)
    assert first.isoformat() == "2024-07-23"
    with pytest.raises(ValueError) as err:
        det.detect("2024-03-10", since_days=7)
    assert str(err.value) == (
        "fitted with terms_since=2024-01-05: emerging issues as of 2024-03-10 (since_days=7) need words from "
        "2024-01-01; detect as of 2024-07-23 or later, or fit with an earlier terms_since")
    # words from the second day: as of 10 March the look-back would start on the first
    with pytest.raises(ValueError, match="terms_since=2024-01-02"):
        TrendDetector().fit(frame, terms_since="2024-01-02").detect("2024-03-10", since_days=7)
    # words from the first day: every date can be answered
    ok = TrendDetector().fit(frame, terms_since="2024-01-01")
    assert ok.detect("2024-03-03") == TrendDetector().fit(frame).detect("2024-03-03")


def test_detect_with_terms_since_on_the_first_day_it_can_answer():
    frame = pd.concat([_flat(end="2024-03-10"),
                       pd.DataFrame([{"id": "late", "time": "2024-08-01 08:00:00", "text": ROUTINE,
                                      "category": "咨询"}])])
    det = TrendDetector().fit(frame, terms_since="2024-01-05")
    assert det.detect("2024-07-23", since_days=7) == []
    assert det.detect("2024-07-17", since_days=1) == []
    with pytest.raises(ValueError, match="need words from 2024-01-04; detect as of 2024-07-23 or later"):
        det.detect("2024-07-22", since_days=7)
    with pytest.raises(ValueError, match=r"\(since_days=1\) need words from 2024-01-04; detect as of 2024-07-17 "):
        det.detect("2024-07-16", since_days=1)


# ------------------------------------------------------------------ seasons
def test_seasonal_onset_is_reported_once_when_the_week_crosses_its_threshold(winters):
    frame, det = winters
    heating = frame[frame["id"].str.startswith("h")]
    onset = [a for a in det.detect("2023-11-19", since_days=7) if a["kind"] == "seasonal_onset"]
    # four a day from 15 November: the 7-day count reaches the floor (min_count + 2 = 8) on the 16th
    ids = heating[heating["time"].str[:10].between("2023-11-15", "2023-11-16")]["id"].tolist()
    expected = {"kind": "seasonal_onset", "topic": "冬季采暖", "category": None, "window_start": "2023-11-10",
                "window_end": "2023-11-16", "observed": 8, "expected": 8.0, "score": 1.0, "evidence_ids": ids,
                "as_of": "2023-11-19"}
    assert onset == [
        dict(expected, district=None,
             summary="全市「冬季采暖」诉求开始进入季节性上升期：近7天8件，超过淡季水平（阈值8件），请提前部署。"),
        dict(expected, district="东区",
             summary="东区「冬季采暖」诉求开始进入季节性上升期：近7天8件，超过淡季水平（阈值8件），请提前部署。")]
    # not again the next week, nor before it began
    assert not [a for a in det.detect("2023-11-26", since_days=7) if a["kind"] == "seasonal_onset"]
    assert not [a for a in det.detect("2023-11-15", since_days=7) if a["kind"] == "seasonal_onset"]
    # as of the crossing day itself, over one day
    assert len([a for a in det.detect("2023-11-16", since_days=1) if a["kind"] == "seasonal_onset"]) == 2
    assert not [a for a in det.detect("2023-11-17", since_days=1) if a["kind"] == "seasonal_onset"]
    # the second winter begins on 13 November 2024
    second = [a for a in det.detect("2024-11-17", since_days=7) if a["kind"] == "seasonal_onset"]
    assert [(a["window_end"], a["observed"]) for a in second] == [("2024-11-14", 8)] * 2


def test_seasonal_onset_threshold_rises_with_the_off_season_level():
    """Off season one heating appeal a day (7 a week): the threshold is 3 x 7 + 3 x sqrt(7) = 28.9."""
    rows, i = [], 0
    for d in _days("2023-09-01", "2024-01-10"):
        n = 6 if d >= date(2023, 12, 1) else 1
        for _ in range(n):
            i += 1
            rows.append({"id": f"h{i}", "time": f"{d} 10:00", "text": HEATING})
    det = TrendDetector().fit(pd.DataFrame(rows))
    onsets = [a for d in ("2023-12-03", "2023-12-10") for a in det.detect(d, since_days=7)
              if a["kind"] == "seasonal_onset"]
    thr = 3 * 7 + 3 * np.sqrt(7)
    # 6 a day from 1 December: 1 x 2 + 6 x 5 = 32 on the 5th is the first week above it
    assert [(a["window_end"], a["observed"], a["expected"]) for a in onsets] == [("2023-12-05", 32, round(thr, 2))]
    assert onsets[0]["score"] == round(32 / thr, 2)
    assert "阈值29件" in onsets[0]["summary"]


def test_no_onset_early_in_a_stream():
    rows = [{"id": f"h{k}-{d}", "time": f"{d} 10:00", "text": HEATING}
            for d in _days("2024-01-01", "2024-02-10") for k in range(5 if d >= date(2024, 2, 1) else 0)]
    rows.append({"id": "first", "time": "2024-01-01 08:00", "text": ROUTINE})
    det = TrendDetector().fit(pd.DataFrame(rows))
    assert not [a for a in det.detect("2024-02-04", since_days=7) if a["kind"] == "seasonal_onset"]  # day 34
    assert [a["window_end"] for a in det.detect("2024-02-05", since_days=7)
            if a["kind"] == "seasonal_onset"] == ["2024-02-02"]  # day 35


def test_calendar_holds_each_season_with_its_typical_dates(winters):
    _, det = winters
    cal = det.calendar("2025-10-12")
    assert cal["as_of"] == "2025-10-12" and cal["horizon_weeks"] == 6
    seasons = [{"onset": "2023-11-15", "peak": "2023-11-21", "end": "2024-02-05", "peak_7day_count": 28},
               {"onset": "2024-11-13", "peak": "2024-11-19", "end": "2025-02-15", "peak_7day_count": 28}]
    expected = {"topic": "冬季采暖", "n_seasons": 2, "anchor": "日历", "anchor_offset_days": None,
                "typical_onset": "11-15", "onset_spread_days": 1.0, "typical_peak": "11-21",
                "typical_length_days": 88, "seasons": seasons, "next_onset": "2025-11-15",
                "due_within_weeks": True}
    public = [{k: v for k, v in e.items() if not k.startswith("_")} for e in cal["entries"]]
    assert public == [dict(expected, district=None), dict(expected, district="东区")]
    # a shorter horizon: not due yet (34 days ahead)
    assert [e["due_within_weeks"] for e in det.calendar("2025-10-12", weeks=4)["entries"]] == [False, False]
    assert det.calendar("2025-10-12", weeks=5)["entries"][0]["due_within_weeks"] is True
    assert det.calendar("2025-10-11", weeks=5)["entries"][0]["due_within_weeks"] is True  # 35 days: within 5 weeks
    assert det.calendar("2025-10-10", weeks=5)["entries"][0]["due_within_weeks"] is False  # 36 days
    # without a date: as of the last day of the stream; past the end: the last day
    assert det.calendar()["as_of"] == "2025-10-12"
    assert det.calendar("2026-01-01")["as_of"] == "2025-10-12"


def test_calendar_as_of_an_earlier_date_uses_only_the_data_up_to_it(winters):
    _, det = winters
    cal = det.calendar("2024-06-30")
    assert [(e["district"], e["n_seasons"], e["next_onset"]) for e in cal["entries"]] == [
        (None, 1, "2024-11-15"), ("东区", 1, "2024-11-15")]
    assert cal["entries"][0]["seasons"][0]["end"] == "2024-02-05"
    assert det.calendar("2023-10-31")["entries"] == []
    # the first winter is a season once its 7-day count has been above the threshold for five
    # days (16-20 November), not a day earlier: the calendar reads no day after its date
    assert det.calendar("2023-11-19")["entries"] == []
    assert [e["seasons"][0]["onset"] for e in det.calendar("2023-11-20")["entries"]] == ["2023-11-15"] * 2


def test_a_season_under_way_when_the_data_start_is_no_onset():
    rows = [{"id": f"h{d}-{k}", "time": f"{d} 10:00", "text": HEATING}
            for d in _days("2024-01-01", "2024-06-30") for k in range(4 if d <= date(2024, 2, 15) else 0)]
    rows += [{"id": f"r{d}", "time": f"{d} 08:00", "text": ROUTINE} for d in _days("2024-01-01", "2024-06-30")]
    det = TrendDetector().fit(pd.DataFrame(rows))
    assert det.calendar()["entries"] == []


def test_onset_day_walks_back_to_the_first_day_of_the_rise():
    """A slow rise (1, 1, 1, then 5 a day): the 7-day count crosses 8 on the fifth day, and the
    onset is the first day of the week before with a count above the off-season level (1 a day)."""
    rows = [{"id": f"r{d}", "time": f"{d} 08:00", "text": ROUTINE} for d in _days("2024-08-01", "2024-12-31")]
    for d in _days("2024-11-10", "2024-12-20"):
        n = 1 if d <= date(2024, 11, 12) else 5
        rows += [{"id": f"h{d}-{k}", "time": f"{d} 10:00", "text": HEATING} for k in range(n)]
    det = TrendDetector().fit(pd.DataFrame(rows))
    [entry] = det.calendar()["entries"]
    # 1 + 1 + 1 + 5 = 8 on 13 November; the off-season level is 0 a day, so the first day with one appeal
    assert entry["seasons"][0]["onset"] == "2024-11-10"
    # the last day with two heating appeals in its week: 25 December
    assert entry["typical_length_days"] == (date(2024, 12, 25) - date(2024, 11, 10)).days
    assert entry["seasons"][0]["end"] == "2024-12-25"
    assert entry["seasons"][0]["peak_7day_count"] == 35


def test_forecast_of_the_next_heating_season(winters):
    frame, det = winters
    forecasts = [a for a in det.detect("2025-10-12", since_days=7) if a["kind"] == "forecast"]
    last = frame[frame["id"].str.startswith("h") & frame["time"].str[:10].between("2024-11-13", "2024-11-26")]
    base = {"kind": "forecast", "topic": "冬季采暖", "category": None, "window_start": "2025-11-15",
            "window_end": "2026-02-11", "observed": 0, "expected": 28.0, "score": 2.0,
            "evidence_ids": last["id"].tolist()[:20], "as_of": "2025-10-12"}
    assert forecasts == [
        dict(base, district=None,
             summary="全市「冬季采暖」预计11月15日前后进入季节性高发期（往年2个季度，波动约±1天），建议提前准备。"),
        dict(base, district="东区",
             summary="东区「冬季采暖」预计11月15日前后进入季节性高发期（往年2个季度，波动约±1天），建议提前准备。")]
    # six weeks ahead is within the horizon, a day more is not; with a longer horizon it is
    assert len([a for a in det.detect("2025-10-04", since_days=7) if a["kind"] == "forecast"]) == 2
    assert not [a for a in det.detect("2025-10-03", since_days=7) if a["kind"] == "forecast"]
    assert not [a for a in det.detect("2025-09-30", since_days=7) if a["kind"] == "forecast"]
    longer = TrendDetector(forecast_weeks=7)
    longer.__dict__.update({k: v for k, v in det.__dict__.items() if k.endswith("_") or k.startswith("_")})
    assert len([a for a in longer.detect("2025-09-30", since_days=7) if a["kind"] == "forecast"]) == 2


def test_forecast_needs_a_finished_past_season(winters):
    _, det = winters
    # as of early November 2024, one past season (2023-24): forecast from it alone
    one = [a for a in det.detect("2024-11-03", since_days=7) if a["kind"] == "forecast"]
    assert [(a["district"], a["window_start"], a["score"]) for a in one] == [
        (None, "2024-11-15", 1.0), ("东区", "2024-11-15", 1.0)]
    assert "往年1个季度" in one[0]["summary"] and "波动约±0天" in one[0]["summary"]
    # once this season has begun, no forecast of it
    assert not [a for a in det.detect("2024-11-24", since_days=7) if a["kind"] == "forecast"]
    # in the first 300 days of a stream there are none
    assert not [a for a in det.detect("2024-06-20", since_days=7) if a["kind"] == "forecast"]


def test_forecast_of_a_holiday_season_names_the_holiday():
    """Unpaid wages (欠薪) rise 50 days before each Spring Festival: the forecast follows next
    year's festival, not the calendar date. 50 days is beyond the 45 any holiday may lead by,
    within the 70 the topic allows (corpora/data/topics.csv)."""
    sf = {d.year: d for d in holiday_starts()["春节"]}
    onsets = [sf[y] - timedelta(days=50) for y in (2023, 2024, 2025)]
    rows = [{"id": f"r{d}", "time": f"{d} 08:00", "text": ROUTINE} for d in _days("2022-09-01", "2025-12-31")]
    for o in onsets:
        rows += [{"id": f"w{d}-{k}", "time": f"{d} 10:00", "text": "工地老板拖欠工资不给"}
                 for d in _days(o.isoformat(), (o + timedelta(days=30)).isoformat()) for k in range(4)]
    det = TrendDetector().fit(pd.DataFrame(rows))
    [entry] = det.calendar("2025-11-30")["entries"]
    assert (entry["topic"], entry["anchor"], entry["anchor_offset_days"], entry["n_seasons"]) == ("欠薪", "春节", -50, 3)
    assert entry["next_onset"] == (sf[2026] - timedelta(days=50)).isoformat()
    assert entry["onset_spread_days"] == 0.0
    as_of = sf[2026] - timedelta(days=70)
    [f] = [a for a in det.detect(as_of.isoformat(), since_days=7) if a["kind"] == "forecast"]
    assert f["window_start"] == (sf[2026] - timedelta(days=50)).isoformat()
    assert "往年均在春节前后" in f["summary"]
    # the typical length: 31 days of appeals, and the 7-day count stays at 8 or more five days after
    assert f["window_end"] == (sf[2026] - timedelta(days=50 - 35)).isoformat()


def test_a_district_with_one_past_season_takes_the_citys_typical_date():
    """Two districts: 东区 had heating onsets on 10 November two years running, 西区 only one
    season, begun on 30 November. 西区's forecast takes the median date over the series on the
    calendar anchor (city-wide, 东区, 西区), not its own single onset."""
    rows = [{"id": f"r{d}-{k}", "time": f"{d} 08:00", "text": ROUTINE, "district": dist}
            for d in _days("2023-08-01", "2025-10-20") for k, dist in enumerate(("东区", "西区"))]
    for start, end in (("2023-11-10", "2024-01-31"), ("2024-11-10", "2025-01-31")):
        rows += [{"id": f"e{d}-{k}", "time": f"{d} 10:00", "text": HEATING, "district": "东区"}
                 for d in _days(start, end) for k in range(4)]
    rows += [{"id": f"w{d}-{k}", "time": f"{d} 10:00", "text": HEATING, "district": "西区"}
             for d in _days("2024-11-30", "2025-01-31") for k in range(4)]
    det = TrendDetector().fit(pd.DataFrame(rows))
    f = {a["district"]: a["window_start"] for a in det.detect("2025-10-20", since_days=7) if a["kind"] == "forecast"}
    assert f == {None: "2025-11-10", "东区": "2025-11-10", "西区": "2025-11-10"}


# ------------------------------------------------------------------ emerging issues
NEW = ["小区新装的共享按摩椅扫码后不退款，请处理", "共享按摩椅扫码付款后不启动，客服电话打不通"]


def _emerging_stream(n_senders=4, *, users=True, start_new=date(2024, 5, 20), end=date(2024, 5, 31),
                     new_district="西区"):
    """Four routine appeals a day from 1 January 2024 (distinct senders), and from
    ``start_new`` two a day about shared massage chairs from ``n_senders`` senders."""
    rows, i = [], 0
    for d in _days("2024-01-01", end.isoformat()):
        for k in range(4):
            i += 1
            rows.append({"id": f"B{i}", "time": f"{d} 10:00:00", "text": BACKGROUND[k], "district": "东区",
                         "user": f"u{i}"})
        if d >= start_new:
            for k in range(2):
                i += 1
                text = NEW[k]
                rows.append({"id": f"N{i}", "time": f"{d} 15:00:00", "text": text, "district": new_district,
                             "user": f"n{i % n_senders}"})
    frame = pd.DataFrame(rows)
    return frame if users else frame.drop(columns="user")


@pytest.fixture(scope="module")
def emerging_stream():
    frame = _emerging_stream()
    return frame, TrendDetector().fit(frame)


def test_emerging_issue_is_raised_once_with_its_evidence(emerging_stream):
    frame, det = emerging_stream
    alerts = [a for a in det.detect("2024-05-24", since_days=7) if a["kind"] == "emerging"]
    new = frame[frame["id"].str.startswith("N") & (frame["time"] <= "2024-05-24 23")]["id"].tolist()
    assert len(alerts) == 1
    a = alerts[0]
    assert a["evidence_ids"] == new and a["group_id"] == f"E{new[0]}"
    assert a["topic"] == "新问题：共享、按摩椅、扫码" and a["category"] is None and a["district"] == "西区"
    assert (a["window_start"], a["window_end"], a["observed"]) == ("2024-05-11", "2024-05-24", 4)
    # each of the rising words: none in the half-year before, 10 of the 30 appeals of the last two weeks
    n_recent, n_hist = 14 * 4 + 10, 131 * 4  # 11-24 May; 1 January to 10 May
    rate = 0.5 / (n_hist + 1.0) * n_recent
    assert a["expected"] == round(rate, 2)
    assert a["score"] == round(float(-np.log10(stats.poisson.sf(3, rate))), 2)
    assert a["summary"] == ("近两周出现新的诉求热点「共享、按摩椅、扫码」：4个来源（10件），按此前半年的占比预计约"
                            f"{rate:.1f}件，且不属于已知季节性问题，请研判。")
    # reported once: not again as of the next week
    assert not [a for a in det.detect("2024-05-31", since_days=7) if a["kind"] == "emerging"]
    # nor before it began
    assert not [a for a in det.detect("2024-05-19", since_days=7) if a["kind"] == "emerging"]


def test_emerging_issue_as_of_each_day(emerging_stream):
    _, det = emerging_stream
    days = [d.isoformat() for d in _days("2024-05-20", "2024-05-26")
            if [a for a in det.detect(d.isoformat(), since_days=1) if a["kind"] == "emerging"]]
    assert len(days) == 1  # the first day it qualifies, and that day only
    first = days[0]
    [a] = [a for a in det.detect(first, since_days=1) if a["kind"] == "emerging"]
    assert a["window_end"] == first and a["observed"] >= 3


def test_emerging_issue_needs_enough_senders_and_history():
    few = _emerging_stream(n_senders=2)
    assert not [a for a in TrendDetector().fit(few).detect("2024-05-24", since_days=7) if a["kind"] == "emerging"]
    assert [a["observed"] for a in TrendDetector(emerging_min_users=2).fit(few).detect("2024-05-24", since_days=7)
            if a["kind"] == "emerging"] == [2]
    many = _emerging_stream(n_senders=4)
    assert not [a for a in TrendDetector(emerging_min_users=5).fit(many).detect("2024-05-24", since_days=7)
                if a["kind"] == "emerging"]
    # 10 appeals hold the words: emerging_min_docs above that silences them
    assert not [a for a in TrendDetector(emerging_min_docs=11).fit(many).detect("2024-05-24", since_days=7)
                if a["kind"] == "emerging"]
    assert [a["kind"] for a in TrendDetector(emerging_min_docs=10).fit(many).detect("2024-05-24", since_days=7)
            if a["kind"] == "emerging"] == ["emerging"]
    # too little history (under 120 days, or under 200 appeals in the half-year before)
    early = _emerging_stream(start_new=date(2024, 4, 20), end=date(2024, 4, 30))
    assert not [a for a in TrendDetector().fit(early).detect("2024-04-29", since_days=7) if a["kind"] == "emerging"]


PLACES = ["幸福小区三号楼", "阳光花园南门", "建设路菜市场", "人民医院门诊楼", "第一中学门口", "滨江公园东侧",
          "火车站候车室", "图书馆二楼"]


def test_emerging_issue_without_senders_counts_distinct_texts():
    """A stream without senders: the same text posted again and again is one source; the
    same issue reported from several places is several."""
    reposts = _emerging_stream(users=False)
    det = TrendDetector().fit(reposts)
    assert det.has_users_ is False
    assert not [a for a in det.detect("2024-05-24", since_days=7) if a["kind"] == "emerging"]
    places = reposts.copy()
    new = places["id"].str.startswith("N")
    places.loc[new, "text"] = [PLACES[int(i[1:]) % 8] + t for i, t in zip(places.loc[new, "id"], places.loc[new, "text"])]
    [a] = [a for a in TrendDetector().fit(places).detect("2024-05-24", since_days=7) if a["kind"] == "emerging"]
    assert all(i.startswith("N") for i in a["evidence_ids"])
    texts = set(places.set_index("id").loc[a["evidence_ids"], "text"])
    assert 3 <= a["observed"] <= len(texts) < len(a["evidence_ids"]) + 1


def test_emerging_issue_district_only_when_most_appeals_share_it():
    frame = _emerging_stream()
    spread = frame.copy()
    new = spread["id"].str.startswith("N")
    spread.loc[new, "district"] = np.where(np.arange(new.sum()) % 2 == 0, "西区", "北区")
    [a] = [a for a in TrendDetector().fit(spread).detect("2024-05-24", since_days=7) if a["kind"] == "emerging"]
    assert a["district"] is None


def test_a_word_seen_before_is_not_new():
    """The same massage-chair appeals, but a few were already sent in February: the share is
    no longer five times the half-year before for all words, and no issue is raised."""
    frame = _emerging_stream()
    old = frame[frame["id"].str.startswith("N")].head(10).assign(
        id=lambda x: "old" + x["id"], time=lambda x: "2024-02-1" + (x.index % 10).astype(str) + " 15:00:00")
    det = TrendDetector().fit(pd.concat([frame, old, old.assign(id=lambda x: x["id"] + "b")]))
    assert not [a for a in det.detect("2024-05-24", since_days=7) if a["kind"] == "emerging"]


# ------------------------------------------------------------------ the contract
@pytest.mark.parametrize("as_of", ["2024-11-03", "2024-11-17"])
def test_no_look_ahead(winters, as_of):
    """Alerts as of D are the same whether or not the stream holds appeals after D."""
    frame, full = winters
    cut = frame[frame["time"] < f"{as_of} 24"]
    assert len(cut) < len(frame)
    alerts = full.detect(as_of, since_days=7)
    assert alerts and TrendDetector().fit(cut).detect(as_of, since_days=7) == alerts


def test_no_look_ahead_for_emerging_issues(emerging_stream):
    frame, full = emerging_stream
    cut = frame[frame["time"] < "2024-05-25"]
    alerts = full.detect("2024-05-24", since_days=7)
    assert [a["kind"] for a in alerts] == ["emerging"]
    assert TrendDetector().fit(cut).detect("2024-05-24", since_days=7) == alerts


def test_a_quiet_city_raises_few_alarms():
    """A simulated city without events: over half a year of weekly runs, spikes and emerging
    issues stay within a few times the false-alarm budget (0.2 a week)."""
    from corpora.simulate import CityConfig, simulate_stream

    city = CityConfig(background="shipped", base_per_day=40, seasons=False, emerging=False, incidents_per_year=0,
                      surges_per_year=0, rainstorms_per_year=0, in_season_incidents=False)
    frame, truth = simulate_stream(start="2024-01-01", end="2024-06-30", city=city, seed=4)
    assert not [e for e in truth if e["kind"] != "seasonal_onset"]
    det = TrendDetector().fit(frame)
    sundays = [d.isoformat() for d in _days("2024-02-04", "2024-06-30") if d.weekday() == 6]
    alarms = [a for d in sundays for a in det.detect(d, since_days=7) if a["kind"] in ("spike", "emerging")]
    assert len(alarms) <= 0.5 * len(sundays)
    # the same city with a burst of one category in one district: found
    burst = frame.sample(n=60, random_state=1).assign(time="2024-05-15 10:00:00", district="东城区",
                                                        category="噪音扰民", id=lambda x: "burst" + x["id"].astype(str))
    loud = TrendDetector().fit(pd.concat([frame, burst], ignore_index=True))
    found = [a for a in loud.detect("2024-05-19", since_days=7) if a["kind"] == "spike" and a["category"] == "噪音扰民"]
    assert found and {a["district"] for a in found} <= {"东城区", None}


def _kinds_stream(burst_days, burst):
    """20 appeals a workday (make-up days included), 10 a weekend day, 5 a public holiday,
    from December 2023; ``burst`` a day on ``burst_days``."""
    from corpora.holidays import day_kind

    per = {"workday": 20, "makeup": 20, "weekend": 10, "holiday": 5}
    return pd.DataFrame([{"id": f"k{d}-{i}", "time": f"{d} 12:00:00", "text": ROUTINE, "category": "咨询"}
                         for d in _days("2023-12-01", "2024-04-10")
                         for i in range(burst if d in burst_days else per[day_kind(d)])])


def test_expected_volume_of_a_weekend_and_of_a_holiday():
    """Weekday and holiday factors learned from the stream: a weekend is expected at the weekend
    level (10 a day), a holiday at the holiday level (5 a day), whatever the trailing mean."""
    weekend = [date(2024, 3, 23), date(2024, 3, 24)]
    det = TrendDetector(window_days=2).fit(_kinds_stream(weekend, 25))
    assert [(a["observed"], a["expected"]) for a in det.detect("2024-03-24")] == [(50, 20.0)]
    assert det.detect("2024-03-22", since_days=7) == []  # the workdays before: as usual
    qingming = [date(2024, 4, 4), date(2024, 4, 5), date(2024, 4, 6)]
    det = TrendDetector(window_days=3).fit(_kinds_stream(qingming, 15))
    assert [(a["observed"], a["expected"]) for a in det.detect("2024-04-06")] == [(45, 15.0)]


def test_anchor_needs_a_holiday_steadier_by_more_than_two_days():
    sf = {d.year: d for d in holiday_starts()["春节"]}
    # a week before the festival in 2024 and 2026: on the calendar 5 days apart (spread 2.5)
    assert _anchor([sf[2024] - timedelta(days=7), sf[2026] - timedelta(days=7)]) == ("春节", -7, 0.0)
    # in 2020 and 2025: 4 days apart (spread 2): not steadier by more than two days
    assert _anchor([sf[2020] - timedelta(days=7), sf[2025] - timedelta(days=7)]) == ("日历", 16, 2.0)


def _holiday_stream(per_holiday_day):
    """10 appeals a day from March 2024 (``per_holiday_day`` on public holidays), and 150 on
    the Dragon Boat Festival, 10 June 2024."""
    from corpora.holidays import day_kind

    def n(d):
        if d == date(2024, 6, 10):
            return 150
        return per_holiday_day if day_kind(d) == "holiday" else 10
    return pd.DataFrame([{"id": f"c{d}-{i}", "time": f"{d} 12:00:00", "text": ROUTINE, "category": "咨询"}
                         for d in _days("2024-03-01", "2024-06-10") for i in range(n(d))])


@pytest.mark.parametrize("per_holiday_day, factor", [(60, 3.0), (1, 0.2)])
def test_holiday_factor_is_bounded(per_holiday_day, factor):
    """A holiday's factor over the mean day is kept within [0.2, 3]: however busy or quiet past
    holidays were, a holiday is expected at between a fifth and three times the usual level."""
    frame = _holiday_stream(per_holiday_day)
    before = frame[frame["time"] < "2024-06-10"]
    mean_day = len(before) / before["time"].str[:10].nunique()
    det = TrendDetector(window_days=1).fit(frame)
    [a] = det.detect("2024-06-10")
    assert a["observed"] == 150
    assert a["expected"] == pytest.approx(factor * mean_day, abs=0.01)


def test_holiday_factor_is_learned_from_four_holidays_including_the_first_day():
    """The stream starts on the last day of Qingming (6 April 2024); with the first three days
    of the May holidays that makes four holidays, enough to learn that holidays are quiet
    (2 a day against 10), so 8 a day on 4-5 May is a spike."""
    from corpora.holidays import day_kind

    rows = [{"id": f"q{d}-{i}", "time": f"{d} 12:00:00", "text": ROUTINE, "category": "咨询"}
            for d in _days("2024-04-06", "2024-05-05")
            for i in range(8 if d >= date(2024, 5, 4) else 2 if day_kind(d) == "holiday" else 10)]
    det = TrendDetector(window_days=2).fit(pd.DataFrame(rows))
    assert det.day0_ == date(2024, 4, 6) and det.kinds_[0] == 2
    [a] = det.detect("2024-05-05")
    assert a["observed"] == 16 and a["expected"] == pytest.approx(4, abs=0.5)


def test_a_past_storm_does_not_blind_the_spike_test(flat):
    """A one-day storm (60 appeals) five weeks before: beyond the trailing four weeks, inside the
    eight weeks the dispersion is measured on, where the largest deviations are left out; the
    burst is about as significant as on the quiet series (the storm's Thursday only moves the
    weekday factors a little)."""
    frame, det = flat
    storm = _flat(burst=60, burst_days=("2024-01-25", "2024-01-25"))
    storm = pd.concat([storm[storm["time"] < "2024-02-01"], frame[frame["time"] >= "2024-02-01"]])
    [a] = TrendDetector().fit(storm).detect("2024-03-03")
    [q] = det.detect("2024-03-03")
    assert a["observed"] == 90 and a["expected"] == pytest.approx(30, abs=2)
    assert a["score"] > 0.9 * q["score"]


def test_forecast_evidence_is_the_first_two_weeks_of_last_season():
    """Eight heating appeals on 10 November each year (an onset: the 7-day count is 8 for a
    week), one more on the 23rd and one on the 24th: the forecast's evidence is last season's
    appeals from its onset to 13 days after."""
    rows = [{"id": f"r{d}", "time": f"{d} 08:00:00", "text": ROUTINE} for d in _days("2023-08-01", "2025-10-20")]
    for y in (2023, 2024):
        rows += [{"id": f"h{y}-{k}", "time": f"{y}-11-10 10:00:00", "text": HEATING} for k in range(8)]
        rows += [{"id": f"h{y}-23", "time": f"{y}-11-23 10:00:00", "text": HEATING},
                 {"id": f"h{y}-24", "time": f"{y}-11-24 10:00:00", "text": HEATING}]
    det = TrendDetector().fit(pd.DataFrame(rows))
    [f] = [a for a in det.detect("2025-10-20", since_days=7) if a["kind"] == "forecast"]
    assert f["window_start"] == "2025-11-10"
    assert f["evidence_ids"] == [f"h2024-{k}" for k in range(8)] + ["h2024-23"]


def test_emerging_issues_need_120_days_of_stream():
    frame = _emerging_stream(start_new=date(2024, 4, 20), end=date(2024, 4, 30))
    det = TrendDetector().fit(frame)
    assert det._day("2024-04-29") == 119
    assert not [a for a in det.detect("2024-04-29", since_days=7) if a["kind"] == "emerging"]
    assert [a["observed"] for a in det.detect("2024-04-30", since_days=7) if a["kind"] == "emerging"] == [4]


@pytest.mark.parametrize("first_day, raised", [(2, True), (1, False)])
def test_emerging_issues_need_200_appeals_in_the_half_year_before(first_day, raised):
    """The half-year before the last two weeks holds 198 routine appeals and ``first_day`` on the
    stream's first day: 200 are enough history to call a word new, 199 are not."""
    rows, i = [], 0
    for d in _days("2024-01-01", "2024-04-30"):
        t = (d - date(2024, 1, 1)).days
        for _ in range(first_day if t == 0 else 2 if 7 <= t <= 105 else 0):
            i += 1
            rows.append({"id": f"B{i}", "time": f"{d} 10:00:00", "text": BACKGROUND[i % 4], "user": f"u{i}"})
        if d >= date(2024, 4, 20):
            for k in range(2):
                i += 1
                rows.append({"id": f"N{i}", "time": f"{d} 15:00:00", "text": NEW[k], "user": f"n{i % 4}"})
    alerts = TrendDetector().fit(pd.DataFrame(rows)).detect("2024-04-30", since_days=7)
    assert [a["observed"] for a in alerts if a["kind"] == "emerging"] == ([4] if raised else [])


def test_a_smaller_false_alarm_budget_silences_weak_alerts(emerging_stream, flat):
    frame, _ = emerging_stream
    assert not [a for a in TrendDetector(false_alarms_per_week=1e-5).fit(frame).detect("2024-05-24", since_days=7)
                if a["kind"] == "emerging"]
    # the flat series' burst: p = 1.5e-18, far below any budget spread over one series
    f, _ = flat
    assert len(TrendDetector(false_alarms_per_week=1e-12).fit(f).detect("2024-03-03")) == 1
    assert TrendDetector(false_alarms_per_week=1e-20).fit(f).detect("2024-03-03") == []


@pytest.mark.parametrize("busy_days_first", [True, False])
def test_same_weeks_last_year_use_the_median_day_of_the_week_before_to_the_week_after(busy_days_first):
    """Last year's window (10-12 June 2023, 364 days before) widened by a week each side is
    3-19 June 2023 ... here 17 days of which the first (or the last) nine had 3 appeals and the
    rest 1: the median day is 3, and the expected count 3 x 3 (the city's volume unchanged)."""
    t = date(2024, 6, 12)
    a = t - timedelta(days=2)
    s, e = a - timedelta(days=364 + 7), t - timedelta(days=364 - 7)
    assert (e - s).days + 1 == 17
    busy = (s, s + timedelta(days=8)) if busy_days_first else (e - timedelta(days=8), e)
    rows = _two_series("2023-03-01", t.isoformat(), lambda d: 3 if busy[0] <= d <= busy[1] else 1)
    det = TrendDetector(min_count=1, min_ratio=0.1, false_alarms_per_week=1e9).fit(rows)
    e = {x["category"]: x["expected"] for x in det.detect(t.isoformat()) if x["kind"] == "spike"}
    assert e["排水"] == 9.0


def test_each_weekday_has_its_own_factor():
    """Mondays busier (30) than the other workdays (20): a Monday is expected at 30, a
    Tuesday at 20."""
    from corpora.holidays import day_kind

    def n(d):
        k = day_kind(d)
        return 30 if k == "workday" and d.weekday() == 0 else {"workday": 20, "makeup": 20, "weekend": 10,
                                                                  "holiday": 5}[k]
    frame = pd.DataFrame([{"id": f"m{d}-{i}", "time": f"{d} 12:00:00", "text": ROUTINE, "category": "咨询"}
                          for d in _days("2023-12-01", "2024-03-26") for i in range(n(d))])
    # every window alerts (no count, ratio or budget to pass), to show what it expected
    det = TrendDetector(window_days=1, min_count=0, min_ratio=0, false_alarms_per_week=1e9).fit(frame)
    assert [(a["observed"], a["expected"]) for a in det.detect("2024-03-25")] == [(30, 30.0)]
    assert [(a["observed"], a["expected"]) for a in det.detect("2024-03-26")] == [(20, 20.0)]
    assert [(a["observed"], a["expected"]) for a in det.detect("2024-03-24")] == [(10, 10.0)]


def test_two_appeals_can_make_an_issue_when_the_thresholds_allow():
    rows, i = [], 0
    for d in _days("2024-01-01", "2024-05-31"):
        for k in range(4):
            i += 1
            rows.append({"id": f"B{i}", "time": f"{d} 10:00:00", "text": BACKGROUND[k], "user": f"u{i}"})
    rows += [{"id": "N1", "time": "2024-05-31 15:00:00", "text": NEW[0], "user": "n1"},
             {"id": "N2", "time": "2024-05-31 16:00:00", "text": NEW[1], "user": "n2"}]
    det = TrendDetector(emerging_min_users=2, emerging_min_docs=2, false_alarms_per_week=5).fit(pd.DataFrame(rows))
    assert [(a["observed"], a["evidence_ids"]) for a in det.detect("2024-05-31") if a["kind"] == "emerging"] == [
        (2, ["N1", "N2"])]


def test_onset_day_is_above_the_off_season_level_by_two_standard_deviations():
    """Off season one heating appeal a day (level 1 + 2 x 1 + 1 = 4): a day of 4 then 9 a day;
    the season begins on the day of 4."""
    rows = []
    for d in _days("2023-09-01", "2024-01-20"):
        n = 4 if d == date(2023, 12, 1) else 9 if date(2023, 12, 1) < d <= date(2023, 12, 31) else 1
        rows += [{"id": f"h{d}-{k}", "time": f"{d} 10:00:00", "text": HEATING} for k in range(n)]
    [entry] = TrendDetector().fit(pd.DataFrame(rows)).calendar()["entries"]
    assert entry["seasons"] == [{"onset": "2023-12-01", "peak": "2023-12-08", "end": "2024-01-04",
                                 "peak_7day_count": 63}]


def test_calendar_the_day_before_the_stream_is_empty(winters):
    _, det = winters
    assert det.calendar("2023-08-31") == {"as_of": "2023-08-31", "horizon_weeks": 6, "entries": []}


def test_seasons_three_weeks_apart_are_two_seasons():
    """Heating appeals on 1-10 November and on 20-30 December, quiet between: two seasons (runs
    14 quiet days apart are separate), and two calendar entries (49 days apart on the year)."""
    rows = [{"id": f"r{d}", "time": f"{d} 08:00:00", "text": ROUTINE} for d in _days("2024-09-01", "2025-01-31")]
    for start, end in (("2024-11-01", "2024-11-10"), ("2024-12-20", "2024-12-30")):
        rows += [{"id": f"h{d}-{k}", "time": f"{d} 10:00:00", "text": HEATING} for d in _days(start, end)
                 for k in range(4)]
    cal = TrendDetector().fit(pd.DataFrame(rows)).calendar()
    assert [(e["typical_onset"], e["n_seasons"]) for e in cal["entries"]] == [("11-01", 1), ("12-20", 1)]


@pytest.mark.parametrize("first, second, second_day, onset", [
    ("2024-11-01", "2024-11-07", 4, None), ("2024-11-01", "2024-11-07", 3, "2024-11-15"),
    ("2024-10-18", "2024-10-24", 4, "2024-11-15")])
def test_an_onset_needs_quiet_weeks_before_it(first, second, second_day, onset):
    """Heating appeals from 15 November (8 a day). Eight days before, on 7 November, the 7-day
    count touched the threshold (4 + 4 = 8): the rise that follows is no onset. Had it stayed
    below (4 + 3), 15 November is an onset; so it is when the touch was 22 days before (24
    October), outside the three weeks that must be quiet."""
    rows = [{"id": f"r{d}", "time": f"{d} 08:00:00", "text": ROUTINE} for d in _days("2024-09-01", "2025-01-31")]
    rows += [{"id": f"p{k}", "time": f"{first} 10:00:00", "text": HEATING} for k in range(4)]
    rows += [{"id": f"q{k}", "time": f"{second} 10:00:00", "text": HEATING} for k in range(second_day)]
    rows += [{"id": f"h{d}-{k}", "time": f"{d} 10:00:00", "text": HEATING} for d in _days("2024-11-15", "2024-12-20")
             for k in range(8)]
    entries = TrendDetector().fit(pd.DataFrame(rows)).calendar()["entries"]
    assert [s["onset"] for e in entries for s in e["seasons"]] == ([onset] if onset else [])


def test_a_dip_inside_a_season_is_no_new_onset():
    """Heating appeals 15-30 November, none 1-10 December, again from 11 December: the 7-day
    count crosses its threshold again on 12 December, but it was above it within the 14 days
    before, so that is the same season, not a new onset."""
    rows = [{"id": f"r{d}", "time": f"{d} 08:00:00", "text": ROUTINE} for d in _days("2024-09-01", "2025-01-31")]
    for start, end in (("2024-11-15", "2024-11-30"), ("2024-12-11", "2024-12-31")):
        rows += [{"id": f"h{d}-{k}", "time": f"{d} 10:00:00", "text": HEATING} for d in _days(start, end)
                 for k in range(4)]
    det = TrendDetector().fit(pd.DataFrame(rows))
    assert [a["window_end"] for a in det.detect("2024-11-17", since_days=7) if a["kind"] == "seasonal_onset"] == [
        "2024-11-16"]
    assert not [a for a in det.detect("2024-12-15", since_days=7) if a["kind"] == "seasonal_onset"]


@pytest.mark.parametrize("budget, raised", [(1.5, True), (0.7, False)])
def test_spikes_get_half_the_weekly_budget_spread_over_the_weeks_tests(flat, budget, raised):
    """One series, one window tested as of one day: the spike needs p <= 0.5 x budget / 7.
    The flat series' burst has p = P(NB >= 90); a budget of 14 p x 1.5 lets it through, 14 p x 0.7 not."""
    frame, _ = flat
    p = stats.nbinom.sf(89, 3000, 3000 / 3030)
    det = TrendDetector(false_alarms_per_week=budget * 14 * p).fit(frame)
    assert len(det.detect("2024-03-03")) == (1 if raised else 0)


def test_a_stream_starting_a_year_before_takes_last_years_weeks_unscaled():
    """The stream starts on the first day of last year's widened window (371 days before this
    window): there is no volume before it to scale by, so last year's median day (3) is taken
    as it was: 3 x 3."""
    t = date(2024, 6, 12)
    s = t - timedelta(days=2 + 371)
    rows = _two_series(s.isoformat(), t.isoformat(), lambda d: 3 if d <= s + timedelta(days=16) else 1)
    det = TrendDetector(min_count=1, min_ratio=0.1, false_alarms_per_week=1e9).fit(rows)
    assert det.day0_ == s
    e = {x["category"]: x["expected"] for x in det.detect(t.isoformat()) if x["kind"] == "spike"}
    assert e == {"其他": 30.0, "排水": 9.0}


def test_no_forecast_once_this_years_season_has_begun_early(winters):
    """The third winter begins on 5 November 2025, before its typical date (15 November): as of
    the 4th the season is forecast; as of the 12th it has begun and is not forecast again."""
    frame, _ = winters
    extra = _winters_rows("2025-10-13", "2025-11-12", lambda d: d >= date(2025, 11, 5), prefix=("x", "y"))
    # two heating appeals on 29 October, in the week to the 4th: the forecast reports them
    extra += [{"id": f"early{k}", "time": "2025-10-29 10:00:00", "text": HEATING, "district": "东区",
               "category": "城建"} for k in range(2)]
    extra += [{"id": "earlier", "time": "2025-10-28 10:00:00", "text": HEATING, "district": "东区",
               "category": "城建"},  # eight days before the 4th: not in the week
              {"id": "today", "time": "2025-11-04 08:00:00", "text": HEATING, "district": "东区", "category": "城建"}]
    det = TrendDetector().fit(pd.concat([frame, pd.DataFrame(extra)], ignore_index=True))
    assert [(a["window_start"], a["observed"]) for a in det.detect("2025-11-04", since_days=7)
            if a["kind"] == "forecast"] == [("2025-11-15", 3), ("2025-11-15", 3)]
    assert [a["observed"] for a in det.detect("2025-11-03", since_days=7) if a["kind"] == "forecast"] == [3, 3]
    assert [a["observed"] for a in det.detect("2025-11-04", since_days=1) if a["kind"] == "forecast"] == [3, 3]
    assert not [a for a in det.detect("2025-11-12", since_days=7) if a["kind"] == "forecast"]


@pytest.mark.parametrize("margin, raised", [(1.004, True), (0.996, False)])
def test_emerging_issues_get_half_the_budget_spread_over_every_word_seen(emerging_stream, margin, raised):
    """Every word held by an appeal of the last 14 days is a test; the group's p-value (its 4
    senders against the least expected of its rising words) must be within half the weekly
    budget shared by those tests. One appeal about street lights brings words seen once: tests too."""
    frame, _ = emerging_stream
    frame = pd.concat([frame, pd.DataFrame([{"id": "L1", "time": "2024-05-22 09:00:00", "text": "路灯不亮了，晚上很黑",
                                             "district": "东区", "user": "L"}])], ignore_index=True)
    det = TrendDetector().fit(frame)
    held = det._term_window(det._day("2024-05-11"), det._day("2024-05-24") + 1)
    assert (held == 1).sum() >= 2  # the street-light appeal's words
    t = det._day("2024-05-24")
    recent = (det.doc_day_ > t - 14) & (det.doc_day_ <= t)
    tests = int((np.asarray(det.doc_terms_[np.flatnonzero(recent)].sum(axis=0)).ravel() > 0).sum())
    n_hist = int(((det.doc_day_ > t - 14 - 180) & (det.doc_day_ <= t - 14)).sum())
    p = stats.poisson.sf(3, 0.5 / (n_hist + 1) * recent.sum())
    budget = p * tests / 0.5 * margin
    alerts = TrendDetector(false_alarms_per_week=budget).fit(frame).detect("2024-05-24", since_days=7)
    assert [a["kind"] for a in alerts if a["kind"] == "emerging"] == (["emerging"] if raised else [])


def test_one_issue_split_into_groups_is_one_alert_with_all_the_evidence():
    """Shared massage chairs reported at two places by different senders: two groups sharing
    the rising words (共享, 按摩椅, 扫码), one alert holding both groups' appeals."""
    rows, i = [], 0
    for d in _days("2024-01-01", "2024-05-24"):
        for k in range(4):
            i += 1
            rows.append({"id": f"B{i}", "time": f"{d} 10:00:00", "text": BACKGROUND[k], "district": "东区",
                         "user": f"u{i}"})
    for k in range(30):
        rows.append({"id": f"A{k:02d}", "time": f"2024-05-{18 + k // 5} 15:{k:02d}:00",
                     "text": "幸福小区三号楼" + NEW[0], "district": "西区", "user": f"a{k % 3}"})
        rows.append({"id": f"Z{k:02d}", "time": f"2024-05-{18 + k // 5} 16:{k:02d}:00",
                     "text": "火车站候车室的" + NEW[1], "district": "北区", "user": f"b{k % 3}"})
    alerts = TrendDetector().fit(pd.DataFrame(rows)).detect("2024-05-24", since_days=7)
    # the evidence of both, up to 50 appeals
    assert [(a["observed"], a["district"], a["evidence_ids"]) for a in alerts if a["kind"] == "emerging"] == [
        (3, "西区", [f"A{k:02d}" for k in range(30)] + [f"Z{k:02d}" for k in range(20)])]
    # named after the first group, with the place its appeals share
    assert [a["topic"] for a in alerts if a["kind"] == "emerging"] == ["新问题：幸福小区：三号、新装、共享"]


@pytest.mark.parametrize("first_day, seasons", [("2024-10-01", 1), ("2024-10-02", 0)])
def test_an_onset_needs_three_weeks_of_data_before_it(first_day, seasons):
    """Heating appeals from 21 October (4 a day): the 7-day count crosses 8 on the 22nd, 21 days
    after a stream starting on 1 October (an onset), 20 after one starting on the 2nd (not)."""
    rows = [{"id": f"r{d}", "time": f"{d} 08:00:00", "text": ROUTINE} for d in _days(first_day, "2025-03-31")]
    rows += [{"id": f"h{d}-{k}", "time": f"{d} 10:00:00", "text": HEATING} for d in _days("2024-10-21", "2024-11-30")
             for k in range(4)]
    entries = TrendDetector().fit(pd.DataFrame(rows)).calendar()["entries"]
    assert [s["onset"] for e in entries for s in e["seasons"]] == ["2024-10-21"] * seasons


def test_an_issue_with_a_single_new_word_is_raised():
    """Shared bikes that will not unlock after scanning are old news here; a massage chair that
    will not unlock after scanning holds one new word (按摩椅), and that is enough."""
    background = [BACKGROUND[0], "共享单车扫码后无法开锁", BACKGROUND[2], BACKGROUND[3]]
    rows, i = [], 0
    for d in _days("2024-01-01", "2024-05-24"):
        for k in range(4):
            i += 1
            rows.append({"id": f"B{i}", "time": f"{d} 10:00:00", "text": background[k], "user": f"u{i}"})
        if d >= date(2024, 5, 18):
            for _ in range(2):
                i += 1
                rows.append({"id": f"N{i}", "time": f"{d} 15:00:00", "text": "小区的按摩椅扫码后无法开锁",
                             "user": f"n{i % 4}"})
    frame = pd.DataFrame(rows)
    det = TrendDetector().fit(frame)
    assert "按摩椅" in det.terms_.tolist()
    [a] = [a for a in det.detect("2024-05-24", since_days=7) if a["kind"] == "emerging"]
    assert a["evidence_ids"] == frame.loc[frame["id"].str.startswith("N"), "id"].tolist()
    assert "按摩椅" in a["topic"] and a["observed"] == 4


def test_two_new_issues_are_two_alerts(emerging_stream):
    frame, _ = emerging_stream
    extra = [{"id": f"K{d:%d}{k}", "time": f"{d} 17:0{k}:00", "text": "小区地下室的快递柜经常吞件，取件码失效",
              "district": "南区", "user": f"m{(d.day * 2 + k) % 4}"}
             for d in _days("2024-05-19", "2024-05-24") for k in range(2)]
    det = TrendDetector().fit(pd.concat([frame, pd.DataFrame(extra)], ignore_index=True))
    alerts = [a for a in det.detect("2024-05-24", since_days=7) if a["kind"] == "emerging"]
    assert sorted((a["topic"], a["district"], a["evidence_ids"][0]) for a in alerts) == [
        ("新问题：共享、按摩椅、扫码", "西区", "N565"), ("新问题：地下室、快递、吞件", "南区", "K190")]


@pytest.mark.parametrize("on_day_100, raised", [(2, True), (1, False)])
def test_the_history_of_an_emerging_issue_is_the_180_days_before_the_last_14(on_day_100, raised):
    """As of day 194 the half-year before the last two weeks is days 1-180: five appeals on day 0
    are not in it, so 2 a day on days 1-99 and ``on_day_100`` on day 100 make 200 (enough) or 199."""
    rows, i = [], 0
    for t in range(195):
        d = date(2024, 1, 1) + timedelta(days=t)
        for _ in range(5 if t == 0 else 2 if 1 <= t <= 99 else on_day_100 if t == 100 else 0):
            i += 1
            rows.append({"id": f"B{i}", "time": f"{d} 10:00:00", "text": BACKGROUND[i % 4], "user": f"u{i}"})
        if t >= 188:
            for k in range(2):
                i += 1
                rows.append({"id": f"N{i}", "time": f"{d} 15:00:00", "text": NEW[k], "user": f"n{i % 4}"})
    det = TrendDetector().fit(pd.DataFrame(rows))
    assert det._day("2024-07-13") == 194
    alerts = det.detect("2024-07-13", since_days=7)
    assert [a["observed"] for a in alerts if a["kind"] == "emerging"] == ([4] if raised else [])


@pytest.mark.parametrize("busy_first_day, quiet_before, volume_then", [(True, False, 12), (False, True, 0.5)])
def test_last_years_weeks_are_scaled_by_the_volume_the_stream_has_before_them(busy_first_day, quiet_before,
                                                                             volume_then):
    """The stream starts 30 days before last year's widened window. With a busy first day (41
    appeals, then 11 a day) the volume then is the mean of those 30 days, 12, against 11 now;
    with a quiet start (15 appeals in those 30 days) it is 0.5, and last year's weeks are
    scaled up 22 times."""
    t = date(2024, 6, 12)
    s = t - timedelta(days=2 + 371)
    rows, i = [], 0
    for d in _days((s - timedelta(days=30)).isoformat(), t.isoformat()):
        before = d < s
        if quiet_before and before:
            if d.day % 2 == 0 or d == s - timedelta(days=30):
                i += 1
                rows.append({"id": f"q{i}", "time": f"{d} 08:00:00", "text": ROUTINE, "category": "其他"})
            continue
        for _ in range(40 if busy_first_day and d == s - timedelta(days=30) else 10):
            i += 1
            rows.append({"id": f"r{i}", "time": f"{d} 08:00:00", "text": ROUTINE, "category": "其他"})
        # 300 a day in this window, so it is well above whatever is expected
        for _ in range(300 if d > t - timedelta(days=3) else 3 if s <= d <= s + timedelta(days=16) else 1):
            i += 1
            rows.append({"id": f"c{i}", "time": f"{d} 09:00:00", "text": ROUTINE, "category": "排水"})
    det = TrendDetector(min_count=1, min_ratio=0.1, false_alarms_per_week=1e9).fit(pd.DataFrame(rows))
    e = {x["category"]: x["expected"] for x in det.detect(t.isoformat()) if x["kind"] == "spike"}
    assert det.total_[:30].mean() == volume_then
    assert e["排水"] == pytest.approx(9 * 11 / volume_then, abs=0.01)


def test_evidence_of_an_emerging_issue_is_the_last_14_days_only(emerging_stream):
    """A massage-chair appeal 14 days before the as-of date is history, not evidence."""
    frame, _ = emerging_stream
    old = pd.DataFrame([{"id": "OLD", "time": "2024-05-10 15:00:00", "text": NEW[0], "district": "西区", "user": "n9"}])
    det = TrendDetector().fit(pd.concat([frame, old], ignore_index=True))
    [a] = [a for a in det.detect("2024-05-24", since_days=7) if a["kind"] == "emerging"]
    assert a["window_start"] == "2024-05-11" and "OLD" not in a["evidence_ids"]
    assert a["evidence_ids"][0] == "N565"


def test_expected_volume_averages_the_same_weeks_of_past_years():
    """The same weeks had a median day of 3 last year, 5 the year before and 7 the year before
    that: expected 3 x 5. (No further back than three years.)"""
    t = date(2024, 6, 12)
    a = t - timedelta(days=2)
    s1, s2, s3, s4 = (a - timedelta(days=k * 364 + 7) for k in (1, 2, 3, 4))

    def n(d):
        for s_, level in ((s1, 3), (s2, 5), (s3, 7), (s4, 50)):
            if s_ <= d <= s_ + timedelta(days=16):
                return level
        return 1
    det = TrendDetector(min_count=1, min_ratio=0.1, false_alarms_per_week=1e9).fit(
        _two_series("2020-05-01", t.isoformat(), n))
    e = {x["category"]: x["expected"] for x in det.detect(t.isoformat()) if x["kind"] == "spike"}
    assert e == {"其他": 30.0, "排水": 15.0}


def test_no_budget_makes_a_spike_of_a_window_below_min_count_or_min_ratio():
    assert TrendDetector(false_alarms_per_week=1e9).fit(_flat()).detect("2024-02-20", since_days=7) == []


def test_forecast_beyond_the_known_festival_dates_falls_back_to_the_calendar():
    """Seasons 50 days before each Spring Festival up to 2026's; the 2027 festival's date is not
    known, so as of late November 2026 the next season is forecast on its typical day of the year."""
    sf = {d.year: d for d in holiday_starts()["春节"]}
    assert 2027 not in sf
    onsets = [sf[y] - timedelta(days=50) for y in (2023, 2024, 2025, 2026)]
    rows = [{"id": f"r{d}", "time": f"{d} 08:00:00", "text": ROUTINE} for d in _days("2022-09-01", "2026-11-20")]
    for o in onsets:
        rows += [{"id": f"w{d}-{k}", "time": f"{d} 10:00:00", "text": "工地老板拖欠工资不给"}
                 for d in _days(o.isoformat(), (o + timedelta(days=30)).isoformat()) for k in range(4)]
    det = TrendDetector().fit(pd.DataFrame(rows))
    [f] = [a for a in det.detect("2026-11-20", since_days=7) if a["kind"] == "forecast"]
    # onsets on days 335, 355, 342 and 360 of the year: 342 and 355 are nearest to all (38 days in
    # sum); the first in the onsets' order, 355 (22 December), is taken
    assert f["window_start"] == "2026-12-22" and "往年均在春节前后" in f["summary"]


def test_an_issue_reported_before_is_not_new_again_and_does_not_hide_a_new_one(emerging_stream):
    """As of 31 May the massage chairs were reported a week earlier (same appeals): skipped;
    parcel lockers swallowing parcels since 27 May are new: reported."""
    frame, _ = emerging_stream
    extra = [{"id": f"K{d:%d}{k}", "time": f"{d} 17:0{k}:00", "text": "小区地下室的快递柜经常吞件，取件码失效",
              "district": "南区", "user": f"m{(d.day * 2 + k) % 4}"} for d in _days("2024-05-27", "2024-05-31")
             for k in range(2)]
    det = TrendDetector().fit(pd.concat([frame, pd.DataFrame(extra)], ignore_index=True))
    assert [a["topic"] for a in det.detect("2024-05-24", since_days=7) if a["kind"] == "emerging"] == [
        "新问题：共享、按摩椅、扫码"]
    assert [(a["topic"], a["evidence_ids"][0]) for a in det.detect("2024-05-31", since_days=7)
            if a["kind"] == "emerging"] == [("新问题：地下室、快递、吞件", "K270")]


def test_an_issue_back_after_a_quiet_week_is_not_reported_again():
    """Massage chairs on 15-17 May (reported as of the 17th), nothing for nine days, again from
    27 May (other appeals, the same words): as of the 31st that is the issue already reported."""
    rows, i = [], 0
    for d in _days("2024-01-01", "2024-05-31"):
        for k in range(4):
            i += 1
            rows.append({"id": f"B{i}", "time": f"{d} 10:00:00", "text": BACKGROUND[k], "district": "东区",
                         "user": f"u{i}"})
        if date(2024, 5, 15) <= d <= date(2024, 5, 17) or d >= date(2024, 5, 27):
            for k in range(2 if d < date(2024, 5, 20) else 3):
                i += 1
                rows.append({"id": f"N{i}", "time": f"{d} 15:00:00", "text": NEW[k % 2], "district": "西区",
                             "user": f"n{i % 8}"})
    det = TrendDetector().fit(pd.DataFrame(rows))
    first = [a for a in det.detect("2024-05-17", since_days=7) if a["kind"] == "emerging"]
    assert [a["window_end"] for a in first] == ["2024-05-17"]
    assert not [a for a in det.detect("2024-05-24", since_days=7) if a["kind"] == "emerging"]
    assert not [a for a in det.detect("2024-05-31", since_days=7) if a["kind"] == "emerging"]


def test_a_rise_of_small_counts_begins_on_its_first_day():
    """Off season one heating appeal on Mondays and Thursdays (2 a week, 0.29 a day); from
    Monday 11 November 2 a day, from the 17th 5 a day. The 7-day count crosses its threshold
    (3 x 2 + 3 x sqrt 2 = 10.2) on the 16th with no day of 3 or more in that week; the CUSUM of
    (count - 0.92) is zero on Sunday the 10th and grows from the 11th: the onset is the 11th."""
    rows = []
    for d in _days("2024-08-01", "2024-12-31"):
        if date(2024, 11, 11) <= d <= date(2024, 11, 16):
            n = 2
        elif date(2024, 11, 17) <= d <= date(2024, 12, 10):
            n = 5
        else:
            n = 1 if d.weekday() in (0, 3) else 0
        rows += [{"id": f"h{d}-{k}", "time": f"{d} 10:00:00", "text": HEATING} for k in range(n)]
    [entry] = TrendDetector().fit(pd.DataFrame(rows)).calendar()["entries"]
    assert entry["seasons"] == [{"onset": "2024-11-11", "peak": "2024-11-23", "end": "2024-12-15",
                                 "peak_7day_count": 35}]


def test_a_ramp_begins_on_its_first_day_and_a_blip_before_it_does_not_pull_it_back():
    """Off season 2 a day (k = 2 + 0.25 x sqrt 2 + 0.5 = 2.85). A blip of 4 on 3 November, then
    2 a day again (the CUSUM is back to zero by the 5th); from 11 November a ramp 3, 4, 5 … 12,
    then 12 a day. The 7-day count crosses 3 x 14 + 3 x sqrt 14 = 53.2 on the 19th (5 + … + 11 =
    56); a first day above the old level (2 + 2 sqrt 2 + 1 = 5.8) would be the 14th. The onset is
    the ramp's first day, the 11th."""
    rows = []
    for d in _days("2024-08-01", "2025-01-31"):
        if d == date(2024, 11, 3):
            n = 4
        elif date(2024, 11, 11) <= d <= date(2024, 12, 31):
            n = min(3 + (d - date(2024, 11, 11)).days, 12)
        else:
            n = 2
        rows += [{"id": f"h{d}-{k}", "time": f"{d} 10:00:00", "text": HEATING} for k in range(n)]
    [entry] = TrendDetector().fit(pd.DataFrame(rows)).calendar()["entries"]
    assert entry["seasons"][0]["onset"] == "2024-11-11"


def test_the_documented_defaults():
    assert TrendDetector().get_params() == {
        "window_days": 3, "min_count": 6, "min_ratio": 2.0, "false_alarms_per_week": 0.2, "forecast_weeks": 6,
        "emerging_min_docs": 4, "emerging_min_ratio": 5.0, "emerging_min_users": 3}


def test_a_rise_of_a_topic_that_is_not_seasonal_is_no_season():
    """Noise complaints (噪音, not a seasonal topic) rising like a heating season: no onset and
    no calendar entry; the same rise of heating appeals is both."""
    def stream(text):
        rows = [{"id": f"r{d}", "time": f"{d} 08:00:00", "text": ROUTINE} for d in _days("2024-09-01", "2025-01-31")]
        rows += [{"id": f"n{d}-{k}", "time": f"{d} 10:00:00", "text": text} for d in _days("2024-11-15", "2024-12-31")
                 for k in range(4)]
        return TrendDetector().fit(pd.DataFrame(rows))
    noise, heating = stream("楼上装修噪音扰民"), stream(HEATING)
    assert noise.calendar()["entries"] == []
    assert not [a for a in noise.detect("2024-11-19", since_days=7) if a["kind"] == "seasonal_onset"]
    assert len(heating.calendar()["entries"]) == 1
    assert len([a for a in heating.detect("2024-11-19", since_days=7) if a["kind"] == "seasonal_onset"]) == 1


def test_a_calendar_as_of_a_day_before_the_stream_reads_nothing_ahead(winters):
    _, det = winters  # from 1 September 2023, heating seasons in two winters after it
    assert det.calendar("2023-01-01")["entries"] == [] and det.calendar("2023-08-31")["entries"] == []
    assert {e["topic"] for e in det.calendar("2025-10-12")["entries"]} == {"冬季采暖"}  # city-wide and 东区
