"""Unit tests of models/hotspots.py that pin behaviours a mutation-testing sample found
unguarded (mutmut survivors; the mutant each guards against is named in a comment).
Texts are written for these tests; every expected value is reasoned out from the module's
documented rules, not recomputed with its formulas."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from corpora.places import Gazetteer, Place
from models.hotspots import (
    HotspotGrouper,
    _best_place,
    _content_words,
    _different_places,
    _normalised,
    _rank_words,
    _share_place,
    _summary,
    describe,
    heat_score,
)
from tests.test_hotspots import WATER

# the matter of WATER without its place: the same words, no 小区 named
WATER_NO_PLACE = "从昨天开始停水，到现在已经三天了，水压一直很低，家里老人孩子生活很不方便，请尽快处理"


def _place(name: str, kind: str = "place", level: int = 4) -> Place:
    return Place(name, kind, level, -1, -1)


# --- helpers --------------------------------------------------------------------------------
def test_best_place_is_the_place_named_most_often_not_the_greatest_name():
    """The group's place is the most specific place named by most appeals (not the max key)."""
    # _best_place_mutmut_12: max(counts) without a key picks 阳光花园 (阳 > 幸 as a string)
    assert _best_place([_place("幸福里小区"), _place("阳光花园小区"), _place("幸福里小区"), None]) == "幸福里小区"
    place, _ = describe(["幸福里小区停水", "阳光花园小区停水", "幸福里小区水压低"])
    assert place == "幸福里小区"


def test_content_words_keep_words_of_three_characters_or_more():
    """Ordinary words of three characters or more are content words when no place names them."""
    # _content_words_mutmut_11 (len(w) >= 3 or ...) and _mutmut_19 (w[:-1] not in names) drop them
    assert _content_words(["自来水", "停水", "自来水"], []) == ["自来水", "停水", "自来水"]
    assert _content_words(["自来水", "停水"], [_place("幸福里小区")]) == ["自来水", "停水"]


def test_content_words_leave_out_a_three_character_piece_of_a_place_name():
    """A three-character word overlapping a place name by all but one character is left out."""
    # _content_words_mutmut_13 (len(w) >= 4) would keep 区丽发 (丽发 is in 丽发新城) and 新城区
    places = [_place("丽发新城")]
    assert _content_words(["区丽发", "停水", "新城区", "漏水"], places) == ["停水", "漏水"]


# --- _accepts: the matching rules ------------------------------------------------------------
@pytest.fixture
def one_appeal():
    """A grouper holding one appeal (index 0) with ten keywords and no topic shared below."""
    g = HotspotGrouper()
    g.add("0", "2024-06-01", "电梯故障，井盖丢失，路灯损坏，噪音扰民，垃圾堆积，污水横流，占道经营，违章搭建，"
                             "油烟刺鼻，停车收费")
    assert len(g._keys[0]) == 10
    return g


def test_same_place_accepts_a_text_similarity_exactly_at_place_threshold(one_appeal):
    """With the same place, a text similarity equal to ``place_threshold`` is enough (>=)."""
    # _accepts_mutmut_24 (sim > place_threshold)
    g, nothing = one_appeal, frozenset()
    assert g._accepts(0.2, 0, None, None, nothing, nothing, True) is True
    assert g._accepts(0.19, 0, None, None, nothing, nothing, True) is False
    assert g._accepts(0.2, 0, None, None, nothing, nothing, False) is False  # no place nor sender in common


def test_same_place_accepts_two_shared_keywords_of_small_keyword_sets(one_appeal):
    """Two shared keywords are enough when they are at least matter_threshold of the smaller set."""
    # _accepts_mutmut_32 (shared >= 3): two of two keywords shared must accept
    g = one_appeal
    two = frozenset(sorted(g._keys[0])[:2])
    assert g._accepts(0.0, 0, None, None, two, frozenset(), True) is True
    assert g._accepts(0.0, 0, None, None, frozenset(sorted(g._keys[0])[:1]), frozenset(), True) is False
    # without a place in common, the shared keywords count only when appeal 0 has the same sender
    assert g._accepts(0.0, 0, None, "u9", two, frozenset(), False) is False
    g._user[0] = "u9"
    assert g._accepts(0.0, 0, None, "u9", two, frozenset(), False) is True


def test_keyword_overlap_is_a_share_of_the_smaller_keyword_set(one_appeal):
    """Two shared keywords out of ten each (0.2 < 0.3) do not make the same matter; three do."""
    # _accepts_mutmut_34 (matter_threshold / min(...)): 2 >= 0.3 / 10 would accept
    g = one_appeal
    own = sorted(g._keys[0])
    others = ["苍蝇", "蚊子", "漏雨", "断电", "塌陷", "积水", "堵车", "蟑螂", "偷盗", "欠薪"]  # not in appeal 0
    assert not set(others) & set(own)
    two_of_ten = frozenset(own[:2] + others[:8])
    three_of_ten = frozenset(own[:3] + others[:7])
    assert g._accepts(0.0, 0, None, None, two_of_ten, frozenset(), True) is False
    assert g._accepts(0.0, 0, None, None, three_of_ten, frozenset(), True) is True


# --- time windows ----------------------------------------------------------------------------
def test_an_appeal_or_a_group_without_a_time_is_in_any_window():
    """An appeal without a time may join a timed group, and a timed appeal an untimed group."""
    # _active_mutmut_1 (t is None and g.first is None: compares None) and _mutmut_4 (return False)
    g = HotspotGrouper()
    a = g.add("1", "2024-06-01", WATER, user="u1")
    assert g.add("2", None, WATER.replace("三天", "四天"), user="u2") == a
    b = g.add("3", None, "楼道灯坏了一个月没人修，晚上上下楼很危险，物业一直推脱", user="u3")
    assert b != a
    assert g.add("4", "2024-06-02", "楼道灯坏了两个月没人修，晚上上下楼很危险，物业一直推脱", user="u4") == b


def test_default_place_window_is_180_days():
    """By default an appeal naming the group's place joins it up to 180 days after, not later."""
    # __init___mutmut_7 (place_window_days=181)
    later = WATER.replace("三天", "五天")
    g = HotspotGrouper()
    a = g.add("1", "2024-01-01 00:00", WATER)
    assert g.add("2", "2024-06-29 00:00", later) == a  # 2024 is a leap year: 180 days after
    h = HotspotGrouper()
    b = h.add("1", "2024-01-01 00:00", WATER)
    assert h.add("2", "2024-06-29 12:00", later) != b  # 180.5 days after


def test_default_minhash_has_128_permutations_in_bands_of_three():
    """The default MinHash signature has 128 values, hashed by the LSH in 42 bands of 3 rows."""
    # __init___mutmut_9 (num_perm=129 gives 129 values and 43 bands)
    g = HotspotGrouper()
    g._state()
    sig = g._signature("幸福里小区停水三天")
    assert sig.shape == (128,)
    assert len(g._band_keys(sig)) == 42


def test_the_given_gazetteer_names_the_places():
    """A place only the city's gazetteer knows is the appeal's place."""
    # __init___mutmut_26 (self.gazetteer = None)
    text = "业主反映五矿万境物业乱收费"
    plain = HotspotGrouper()
    plain.add("1", None, text)
    assert plain.appeal("1")["place"] is None
    g = HotspotGrouper(gazetteer=Gazetteer({"五矿万境": "place"}))
    g.add("1", None, text)
    assert g.appeal("1")["place"] == "五矿万境"


# --- adding ----------------------------------------------------------------------------------
def test_a_missing_text_is_empty_and_a_number_is_its_digits():
    """A None text is refused as empty; a non-string text (a number) is read as its string."""
    # _append_mutmut_12 ("XXXX" for None) and _mutmut_13 ("" for non-None, str(None) for None)
    g = HotspotGrouper()
    with pytest.raises(ValueError, match="empty"):
        g.add("1", None, None)
    a = g.add("2", None, 12345678)
    assert g.add("3", None, "12345678") == a  # an exact re-post of the number's text


def test_keywords_are_the_most_frequent_words():
    """An appeal's keywords are its most frequent content words (first appeal: no rarity yet)."""
    # _append_mutmut_74 (+counts: the least frequent first)
    g = HotspotGrouper(n_keywords=1)
    g.add("1", None, "停水停水停水电梯")
    assert g._keys[0] == frozenset({"停水"})


def test_keywords_weigh_frequency_by_rarity_among_earlier_appeals():
    """A word no earlier appeal holds outranks a word said twice that every earlier appeal holds."""
    # after two appeals with 停水: 停水 2 x (1 + ln 3/3) = 2 < 电梯 1 x (1 + ln 3/1) = 2.10;
    # _append_mutmut_79 (df + 2) reverses it: 2 x (1 + ln 3/4) = 1.42 > 1 + ln 3/2 = 1.41
    g = HotspotGrouper(n_keywords=1)
    g.add("1", None, "停水")
    g.add("2", None, "停水了")
    g.add("3", None, "停水停水电梯")
    assert g._keys[2] == frozenset({"电梯"})


def test_a_group_sharing_keywords_is_a_candidate_without_a_text_or_place_match():
    """An appeal in other words about the same matter, no place nor shared band, joins the group."""
    # _choose_mutmut_25 (the keyword index read only when vec is None, i.e. never)
    g = HotspotGrouper()
    a = g.add("1", "2024-06-01", "电动车乱停乱放堵住消防通道，物业不管", user="u1")
    g._state()
    b = "消防通道被电动车堵住了，乱停乱放严重"
    # no LSH band in common and no place: only the keyword index can find the group
    sig_b = g._signature(g._text_features(b, None).stripped)
    assert not set(g._band_keys(g._sigs[0])) & set(g._band_keys(sig_b))
    assert g.add("2", "2024-06-02", b, user="u2") == a


def test_an_appeal_joins_a_group_through_a_place_named_by_a_representative():
    """A road named by a group's representative (not its main place) is the group's place too."""
    # _join_mutmut_52 (representatives' places not recorded): 60 days later, only the place window
    # (180 days) and the shared road (解放路) keep the appeal in the group
    g = HotspotGrouper()
    a = g.add("1", "2024-01-01", "解放路幸福里小区门口下水道堵塞，污水横流，臭气熏天")
    assert g.appeal("1")["place"] == "幸福里小区"
    assert g.add("2", "2024-03-01", "解放路下水道堵塞，污水横流，臭气熏天") == a
    other = HotspotGrouper()
    other.add("1", "2024-01-01", "幸福里小区门口下水道堵塞，污水横流，臭气熏天")
    assert other.add("2", "2024-03-01", "解放路下水道堵塞，污水横流，臭气熏天") != "g000001"


def test_an_appeal_naming_a_xiaoqu_stays_out_of_a_group_about_another_road():
    """A group opened about a road keeps that road as its place: a 小区 it does not name stays apart."""
    # _text_features_mutmut_80 (named = None) and _mutmut_101 (a_key None): the group has no place
    g = HotspotGrouper()
    a = g.add("1", "2024-06-01", "解放路下水道堵塞，污水横流，臭气熏天，请尽快处理")
    assert g.add("2", "2024-06-02", "幸福里小区下水道堵塞，污水横流，臭气熏天，请尽快处理") != a
    assert g.add("3", "2024-06-03", "解放路下水道又堵塞了，污水横流，臭气熏天，请尽快处理") == a


def test_the_senders_group_wins_between_two_accepting_groups():
    """Of two groups that accept an appeal about equally, the one its sender wrote to is chosen."""
    # _join_mutmut_89 (users.add(None)): the sender's bonus is lost and the closer text wins
    def run(user):
        g = HotspotGrouper()
        g.add("1", "2024-06-01 00:00", "幸福里小区" + WATER_NO_PLACE, user="u1")
        g.add("2", "2024-06-01 01:00", "阳光花园小区" + WATER_NO_PLACE + "，已经反映过多次", user="u2")
        return g.add("3", "2024-06-01 02:00", WATER_NO_PLACE, user=user)

    assert run("u9") == "g000001"  # the closer text (no sender in common)
    assert run("u2") == "g000002"  # u2 wrote to the other


# --- repeats ---------------------------------------------------------------------------------
def test_an_exact_repost_without_senders_is_a_repeat():
    """Re-posting an earlier appeal's exact text, no sender given, is a repeat linked to it."""
    # _mark_repeat_mutmut_5 (reposts = None) and add_mutmut_87 (stripped None)
    g = HotspotGrouper()
    g.add("1", "2024-06-01", "楼道灯坏了一个月没人修，晚上上下楼很危险")
    g.add("2", "2024-06-02", "楼道灯坏了一个月没人修！晚上上下楼很危险。")
    assert g.appeal("2")["repeat"] is True and g.appeal("2")["repeat_of"] == ["1"]
    assert g.appeal("1")["repeat"] is False


def test_a_repost_of_an_appeal_without_a_sender_is_a_repeat_of_it():
    """A sender re-posting the exact text of an appeal that had no sender repeats it;
    re-posting another sender's appeal does not."""
    # _mark_repeat_mutmut_8 (earlier sender None *and* equal: never)
    lamp = "楼道灯坏了一个月没人修，晚上上下楼很危险"
    g = HotspotGrouper()
    g.add("1", "2024-06-01", lamp)
    g.add("2", "2024-06-02", lamp, user="u2")
    assert g.appeal("2") == {"group_id": "g000001", "place": None, "repeat": True, "repeat_of": ["1"]}
    h = HotspotGrouper()
    h.add("1", "2024-06-01", lamp, user="u1")
    h.add("2", "2024-06-02", lamp, user="u2")
    assert h.appeal("2")["repeat"] is False


# --- add_frame -------------------------------------------------------------------------------
def test_add_frame_adds_rows_in_time_order_not_row_order():
    """The earliest appeal of a frame is added first (opens g000001, and is the original of its re-post)."""
    # add_frame_mutmut_70 (sort key 0.0 for every time: row order)
    lamp = "楼道灯坏了一个月没人修，晚上上下楼很危险"
    frame = pd.DataFrame({"id": ["late", "water", "early"],
                          "time": ["2024-06-03", "2024-06-02", "2024-06-01"],
                          "text": [lamp + "！", WATER, lamp]})
    g = HotspotGrouper()
    assert list(g.add_frame(frame, progress=False)) == ["g000001", "g000002", "g000001"]
    assert g.appeal("late")["repeat_of"] == ["early"] and not g.appeal("early")["repeat"]


def test_add_frame_counts_likes_in_the_heat():
    """add_frame passes each row's likes on: the heat counts the group's likes."""
    # add_frame_mutmut_134 (likes dropped)
    frame = pd.DataFrame({"id": ["1", "2"], "time": ["2024-06-01", "2024-06-01"], "text": [WATER, WATER + "！"],
                          "user": ["u1", "u2"], "likes": [60, 40]})
    g = HotspotGrouper()
    g.add_frame(frame, progress=False)
    heat = g.groups()[0]["heat"]
    # two people, two appeals, both in the last 7 days, the last today, 100 likes
    assert heat == heat_score(people=2, size=2, recent=2, earlier=0, days_since_last=0, likes=100)
    assert heat != heat_score(people=2, size=2, recent=2, earlier=0, days_since_last=0)


# --- seed ------------------------------------------------------------------------------------
def test_a_seeded_appeal_only_somewhat_like_the_first_is_not_a_representative():
    """A seeded appeal whose text resembles the first only somewhat (no place, sender or words in
    common) is not a representative: an appeal like it alone opens its own group."""
    # seed_mutmut_71 (same_place dropped: the word vector is read as "same place")
    first = "路灯坏了晚上很黑，ABCDEFGHIJKL"
    seeded = "井盖丢了非常危险，ABCDEFGHIJKL"  # shares the letters with first: similarity ~0.36
    newcomer = "井盖丢了非常危险"  # the same words as seeded, none of first's
    alone = HotspotGrouper()
    alone.add("b", "2024-06-01", seeded)
    assert alone.add("c", "2024-06-02", newcomer) == "g000001"  # it would join seeded as a representative
    g = HotspotGrouper()
    g.seed("a", "2024-06-01", first, group="k")
    assert g.seed("b", "2024-06-01", seeded, group="k") == "g000001"
    assert g.add("c", "2024-06-02", newcomer) == "g000002"


# --- more helpers ----------------------------------------------------------------------------
def test_rank_words_puts_words_of_enough_texts_first_then_rarity():
    """Of four texts (a word counts as shared from two), a shared rare word leads; an unshared word comes last."""
    # _rank_words_mutmut_16 (0.3 / n: floor 1) and _mutmut_17 (1.3 * n: nothing shared) put 井盖 first;
    # _mutmut_19 (df > floor) and _mutmut_30 (df <= floor: 电梯 counted unshared) put 停水 first;
    # _mutmut_27 (only shared words, even when fewer than k) returns two words for k=3
    lists = [["停水", "电梯"], ["停水", "电梯"], ["停水"], ["井盖"]]
    rarity = {"停水": 1.0, "电梯": 100.0, "井盖": 10_000.0}.get
    assert _rank_words(lists, rarity, 1) == ["电梯"]  # in 2 texts, sqrt(100) = 10: 2 x 10 > 3 x 1
    assert _rank_words(lists, rarity, 2) == ["电梯", "停水"]
    assert _rank_words(lists, rarity, 3) == ["电梯", "停水", "井盖"]


def test_rank_words_of_two_texts_counts_a_word_of_one_as_shared():
    """With two texts, a word of one text is shared enough (30 %): rarity can put it first."""
    # _rank_words_mutmut_14 (floor at least 2): 停水, in both texts, would lead
    lists = [["停水", "物业"], ["停水", "电梯"]]
    assert _rank_words(lists, lambda w: 100.0 if w == "电梯" else 1.0, 1) == ["电梯"]  # 1 x 10 > 2 x 1


def test_rank_words_weighs_repetition_sublinearly():
    """A word said three times outranks one said once, by 1 + ln 3 = 2.10 against 1 (or sqrt(4) = 2 with idf 4)."""
    # _rank_words_mutmut_33 (df / (1 + ln tf)) ranks 停水 first; _mutmut_35 (2 + ln tf) ranks 停水 first
    # with idf 4 (2 x 2 = 4 > 2 + ln 3 = 3.10)
    lists = [["停水", "电梯", "电梯", "电梯"]]
    assert _rank_words(lists, lambda w: 1.0, 1) == ["电梯"]
    assert _rank_words(lists, lambda w: 4.0 if w == "停水" else 1.0, 1) == ["电梯"]


def test_best_place_is_not_outvoted_by_a_less_specific_spelling():
    """Less specific places with the same key (阳光花园社区) do not outvote the most specific name."""
    # _best_place_mutmut_18 (level == top *or* same key): 阳光花园社区, named twice, would win
    named = [_place("阳光花园小区"), _place("阳光花园社区", "township", 2), _place("阳光花园社区", "township", 2)]
    assert _best_place(named) == "阳光花园小区"


def test_summary_names_at_most_three_keywords():
    """A summary is the place and at most three keywords."""
    # _summary_mutmut_5 (keywords[:4])
    assert _summary("幸福里小区", ["停水", "水压", "三天", "物业"]) == "幸福里小区：停水、水压、三天"
    assert _summary(None, []) == "同类诉求"


def test_share_place_counts_one_name_inside_the_other_from_three_characters():
    """Place keys name one place when equal or one inside the other (both 3 characters or more)."""
    # _share_place_mutmut_2 (equal *and* inside), _mutmut_11 (inside both ways), _mutmut_9/_10 (4 characters)
    assert _share_place({"魅力之城"}, {"万科魅力之城"}) is True
    assert _share_place({"王家村"}, {"大王家村"}) is True
    assert _share_place({"万科"}, {"万科城"}) is False
    assert _share_place({"万科"}, {"阳光花园", "万科"}) is True


def test_different_places_are_neither_equal_nor_inside_one_another():
    """A name inside the other (魅力之城 / 万科魅力之城) is not a different place, either way round."""
    # _different_places_mutmut_1 (... or b not in a) and _mutmut_2 (a != b or ...)
    assert _different_places("魅力之城", "万科魅力之城") is False
    assert _different_places("万科魅力之城", "魅力之城") is False
    assert _different_places("幸福里", "幸福里") is False
    assert _different_places("幸福里", "阳光花园") is True


def test_idf_of_a_word_every_appeal_holds_is_one():
    """A word every appeal holds has idf 1 (only its frequency counts); rarer words weigh more."""
    # _idf_mutmut_3 (* df), _mutmut_5 (n + 2), _mutmut_7 (df + 2), _mutmut_8 (+ 2.0)
    g = HotspotGrouper()
    g.add("1", None, "停水三天")
    g.add("2", None, "又停水了，电梯故障")
    g.add("3", None, "停水停电")
    assert g._idf("停水") == pytest.approx(1.0)
    assert g._idf("井盖") > g._idf("电梯") > g._idf("停水")


# --- more _accepts ---------------------------------------------------------------------------
def test_text_similarity_exactly_at_threshold_accepts(one_appeal):
    """A text similarity equal to ``threshold`` (0.5) is a near-duplicate, whatever else (>=)."""
    # _accepts_mutmut_1 (sim > threshold)
    nothing = frozenset()
    assert one_appeal._accepts(0.5, 0, None, None, nothing, nothing, False) is True
    assert one_appeal._accepts(0.49, 0, None, None, nothing, nothing, False) is False


def test_word_cosine_exactly_at_its_thresholds_accepts(one_appeal):
    """A word cosine equal to ``cosine`` (0.4), or to ``place_cosine`` (0.15) with the same place, accepts (>=)."""
    # _accepts_mutmut_13 (c > cosine) and _mutmut_15 (c > place_cosine)
    g, nothing = one_appeal, frozenset()
    assert g._accepts(0.0, 0, None, None, nothing, nothing, False, {}, 0.4) is True
    assert g._accepts(0.0, 0, None, None, nothing, nothing, False, {}, 0.39) is False
    assert g._accepts(0.0, 0, None, None, nothing, nothing, True, {}, 0.15) is True
    assert g._accepts(0.0, 0, None, None, nothing, nothing, True, {}, 0.14) is False


# --- more adding -----------------------------------------------------------------------------
def test_near_duplicates_without_words_are_found_by_their_text():
    """Two near-identical texts with no content word (letters only) share a group (found by MinHash LSH)."""
    # _choose_mutmut_6 (band.get(None): the LSH never gives a candidate)
    g = HotspotGrouper()
    a = g.add("1", "2024-06-01", "ABCDEFGHIJKLMNOPQRST")
    assert g._keys[0] == frozenset()  # no keyword, no place, no sender to find the group by
    assert g.add("2", "2024-06-01", "ABCDEFGHIJKLMNOPQRSU") == a


# --- more seed -------------------------------------------------------------------------------
LETTERS = "ABCDEFGHIJKL"  # shared by two texts, they resemble each other somewhat (similarity ~0.3)


def _seeded(first, second, *, users=(None, None)):
    """A grouper with ``first`` and ``second`` seeded into one group."""
    g = HotspotGrouper()
    g.seed("a", "2024-06-01", first, group="k", user=users[0])
    g.seed("b", "2024-06-01", second, group="k", user=users[1])
    return g


def test_a_seeded_appeal_of_the_same_place_somewhat_alike_is_a_representative():
    """A seeded appeal naming the group's place, its text somewhat like the first, is a representative:
    an appeal like it alone (no place) joins the group."""
    # seed_mutmut_25 (same_place None), _mutmut_55 (seed_ok None), _mutmut_63 (same_place None to
    # _accepts), _mutmut_93 (seed_ok None to _join)
    g = _seeded("幸福里小区路灯坏了晚上很黑，" + LETTERS, "幸福里小区井盖丢了非常危险，" + LETTERS)
    assert g._groups[0].reps == [0, 1]
    assert g.add("c", "2024-06-02", "井盖丢了非常危险") == "g000001"


def test_a_seeded_appeal_sharing_a_road_but_not_the_xiaoqu_is_a_representative():
    """Naming a road the group's first appeal names is naming its place, even about another 小区."""
    # seed_mutmut_26 (both place tests needed) and _mutmut_27 (the shared-road test dropped)
    g = _seeded("解放路幸福里小区门口路灯坏了晚上很黑，" + LETTERS, "解放路阳光花园小区门口井盖丢了非常危险，" + LETTERS)
    assert g._groups[0].reps == [0, 1]
    assert g.add("c", "2024-06-02", "井盖丢了非常危险") == "g000001"


def test_a_seeded_appeal_of_another_place_somewhat_alike_is_not_a_representative():
    """A seeded appeal naming another 小区, its text only somewhat like the first, is no representative."""
    # seed_mutmut_28 (places or ...), _mutmut_39 (a_key or ...), _mutmut_42 (different places as the same),
    # _mutmut_43.._48 (_different_places given None / a missing argument / a missing key: errors)
    g = _seeded("幸福里小区路灯坏了晚上很黑，" + LETTERS, "阳光花园小区井盖丢了非常危险，" + LETTERS)
    assert g._groups[0].reps == [0]
    assert g.add("c", "2024-06-02", "井盖丢了非常危险") == "g000002"


def test_a_seeded_appeal_of_the_same_sender_somewhat_alike_is_a_representative():
    """The first appeal's sender counts as its place: their somewhat alike seeded appeal is a representative."""
    # seed_mutmut_60 (the sender not passed to _accepts)
    first, second = "路灯坏了晚上很黑，" + LETTERS, "井盖丢了非常危险，" + LETTERS
    assert _seeded(first, second, users=("u1", "u1"))._groups[0].reps == [0, 1]
    assert _seeded(first, second, users=("u1", "u2"))._groups[0].reps == [0]


def test_a_seeded_appeal_of_the_same_matter_in_other_words_is_a_representative():
    """A seeded appeal whose words match the first's (cosine >= 0.4), its text not alike, is a representative."""
    # seed_mutmut_64 and _mutmut_72 (the word vector not passed to _accepts)
    g = _seeded("电梯故障停运三天，老人上下楼困难", "老人上下楼困难，电梯停运了，故障一直没修")
    assert (g._sigs[0] == g._sigs[1]).mean() < 0.5  # not a near-duplicate
    assert g._groups[0].reps == [0, 1]


def test_a_seeded_near_identical_appeal_is_not_a_representative():
    """A seeded appeal near-identical to the first (similarity >= 0.9) adds nothing as a representative."""
    # seed_mutmut_88 (sims.max() < 1.9: always)
    g = _seeded(WATER, WATER + "！")
    assert g._groups[0].reps == [0]


def test_a_seeded_appeal_of_the_same_place_and_nothing_else_in_common_is_not_a_representative():
    """Same place but no text, word, topic or keyword in common: the seeded appeal is no representative."""
    # seed_mutmut_61 (keywords None) and _mutmut_62 (topics None): None & frozenset raises
    g = _seeded("幸福里小区电梯故障停运三天，老人上下楼非常困难，物业一直推脱不修",
                "幸福里小区门口的垃圾堆积如山，臭气熏天，夏天蚊蝇乱飞")
    assert g._groups[0].reps == [0]
    assert g.appeal("b")["group_id"] == "g000001"


# --- reading ---------------------------------------------------------------------------------
LAMP = "楼道灯坏了一个月没人修，晚上上下楼很危险"


def test_a_groups_appeals_are_listed_in_time_order_untimed_last():
    """A group lists its appeals by time, whatever order they were added in; appeals without a time last."""
    # group_mutmut_38 and groups_mutmut_54 (untimed first), groups_mutmut_52 (no key: added order),
    # groups_mutmut_55 (time and 0.0: added order)
    g = HotspotGrouper()
    g.add("late", "2024-06-02", LAMP)
    g.add("untimed", None, LAMP + "！")
    g.add("early", "2024-06-01", LAMP + "。")
    assert g.group("g000001")["appeal_ids"] == ["early", "late", "untimed"]
    assert g.groups()[0]["appeal_ids"] == ["early", "late", "untimed"]


def test_an_appeal_at_the_epoch_is_listed_first():
    """An appeal at 1970-01-01 00:00 (time 0) comes before one twelve hours later."""
    # group_mutmut_40 and groups_mutmut_56 (time or 1.0: time 0 read as a day later)
    g = HotspotGrouper()
    g.add("noon", "1970-01-01 12:00", LAMP)
    g.add("midnight", "1970-01-01 00:00", LAMP + "！")
    assert g.group("g000001")["appeal_ids"] == ["midnight", "noon"]
    assert g.groups()[0]["appeal_ids"] == ["midnight", "noon"]


def test_until_a_date_covers_that_day_only_and_a_time_is_that_time():
    """``until`` as a date counts that whole day, not the next midnight; with an hour, up to that hour."""
    # groups_mutmut_13 (1 + 1e-9: the next midnight counted) and _mutmut_10 (11 characters read as a date)
    g = HotspotGrouper()
    for k, when in enumerate(["2024-06-01 08:00", "2024-06-01 23:59", "2024-06-02 00:00"]):
        g.add(str(k), when, LAMP + "！" * k)
    assert g.groups(until="2024-06-01")[0]["appeal_ids"] == ["0", "1"]
    assert g.groups(until="2024-6-1 10", min_size=1)[0]["appeal_ids"] == ["0"]


def test_keywords_of_a_group_weigh_words_by_rarity_among_all_appeals():
    """A group's keywords put its words other groups do not use (井盖, 丢失) before common ones (电梯)."""
    # _describe_group_mutmut_7 / _mutmut_11 (no idf: first seen, 电梯 停运 first) and _mutmut_13
    # (idf and self._idf: no idf for group())
    g = HotspotGrouper()
    for k, text in enumerate(["幸福里小区电梯停运，井盖丢失", "幸福里小区电梯停运，井盖丢失！", "阳光花园小区电梯停运",
                              "万科魅力之城电梯停运", "丽发新城电梯停运"]):
        g.add(str(k), f"2024-06-0{k + 1}", text)
    assert g.group("g000001")["keywords"] == ["井盖", "丢失", "电梯"]
    ours = [r for r in g.groups(min_size=1) if r["group_id"] == "g000001"]
    assert ours[0]["keywords"] == ["井盖", "丢失", "电梯"]


def test_earlier_appeals_for_growth_are_those_of_the_21_days_before_the_last_7():
    """Appeals 28 days or more before ``as_of`` count neither as recent nor as earlier (growth stays 1)."""
    # _describe_group_mutmut_28 (29 days) and _mutmut_29 (28 days included)
    g = HotspotGrouper()
    g.add("1", "2024-05-31 12:00", WATER)  # 28.5 days before the last
    g.add("2", "2024-06-01 00:00", WATER + "！")  # 28 days before
    g.add("3", "2024-06-29 00:00", WATER + "。")
    assert g.groups()[0]["heat"] == heat_score(people=1, size=3, recent=1, earlier=0, days_since_last=0)


# --- more add_frame --------------------------------------------------------------------------
def test_add_frame_counts_urgency_in_the_heat():
    """add_frame passes each row's urgency on: the heat counts it."""
    # add_frame_mutmut_126 (urgency=None) and _mutmut_135 (urgency dropped)
    frame = pd.DataFrame({"id": ["1", "2"], "time": ["2024-06-01", "2024-06-01"], "text": [WATER, WATER + "！"],
                          "user": ["u1", "u2"], "urgency": ["critical", "critical"]})
    g = HotspotGrouper()
    g.add_frame(frame, progress=False)
    heat = g.groups()[0]["heat"]
    assert heat == heat_score(people=2, size=2, recent=2, earlier=0, days_since_last=0,
                              urgency=["critical", "critical"])
    assert heat != heat_score(people=2, size=2, recent=2, earlier=0, days_since_last=0)


def test_add_frame_without_a_district_column_gives_no_district():
    """Rows of a frame without a district column have no district (not the string 'None')."""
    # _features_of_mutmut_40 (a missing district normalised as 'None')
    frame = pd.DataFrame({"id": ["1", "2"], "time": ["2024-06-01", "2024-06-02"], "text": [LAMP, LAMP + "！"]})
    g = HotspotGrouper()
    g.add_frame(frame, progress=False)
    assert g.groups()[0]["districts"] == []
    assert g.appeal("1")["place"] is None


def test_features_of_completes_and_returns_the_memo_it_is_given():
    """The memo given is completed and returned; a text already in it is read again with a new district."""
    # _features_of_mutmut_3 (a new memo) and _mutmut_60 (got[1] of a text the memo holds: None[1])
    g = HotspotGrouper()
    memo = {}
    assert g._features_of([LAMP], [None], memo) is memo
    assert memo[(LAMP, None)].district is None
    assert g._features_of([LAMP], ["A5区"], memo) is memo
    assert memo[(LAMP, "A5区")].district == "A5区"


# --- words, text and time --------------------------------------------------------------------
def test_content_words_keep_three_character_words_sharing_only_one_character_with_a_place():
    """A three-character word sharing one character with a place name (垃圾站, 车库门 / 火车站) is kept."""
    # _content_words_mutmut_15 (w[2:] in names drops 垃圾站), _mutmut_17 (w[:1]) and _mutmut_18 (w[:-2])
    # drop 车库门
    assert _content_words(["垃圾站", "车库门", "停水"], [_place("火车站")]) == ["垃圾站", "车库门", "停水"]


def test_normalised_key_is_lower_case():
    """The exact-re-post key is the text's letters and digits, lower-cased."""
    # _normalised_mutmut_8 (upper-cased)
    assert _normalised("幸福里A栋！")[1] == "幸福里a栋"


def test_a_bad_time_is_quoted_to_30_characters_in_the_error():
    """A time that is no date is refused, quoting its first 30 characters."""
    # _to_days_mutmut_10 (31 characters)
    bad = "the day after the spring festival holiday"
    with pytest.raises(ValueError) as err:
        HotspotGrouper().add("1", bad, LAMP)
    assert str(err.value).endswith(repr(bad[:30]))


# --- defaults --------------------------------------------------------------------------------
def test_default_window_is_45_days():
    """By default an appeal joins a group (no place) up to 45 days after it, not later."""
    # __init___mutmut_6 (window_days=46)
    later = LAMP.replace("一个月", "两个月")
    g = HotspotGrouper()
    a = g.add("1", "2024-01-01 00:00", LAMP)
    assert g.add("2", "2024-02-15 00:00", later) == a
    h = HotspotGrouper()
    b = h.add("1", "2024-01-01 00:00", LAMP)
    assert h.add("2", "2024-02-15 12:00", later) != b


def test_default_shingles_are_three_characters():
    """Texts with the same 3-character shingles (abcab, bcabc) have the same signature."""
    # __init___mutmut_8 (shingle_size=4: abca bcab / bcab cabc differ)
    g = HotspotGrouper()
    g._state()
    assert (g._signature("abcab") == g._signature("bcabc")).all()
    assert not (g._signature("abcab") == g._signature("abcabd")).all()


def test_a_group_has_at_most_five_representatives():
    """By default a group keeps five representatives, however many appeals match its first."""
    # __init___mutmut_11 (n_representatives=6) and _join_mutmut_35 (len(reps) <= n: one more)
    g = HotspotGrouper()
    for k, matter in enumerate(["路灯坏了晚上很黑", "井盖丢了非常危险", "垃圾没人清理", "噪音扰民睡不着",
                                "电梯停运三天", "停车位被占用", "下水道堵塞"]):
        g.seed(str(k), "2024-06-01", f"幸福里小区{matter}，{LETTERS}", group="k")
    assert g._groups[0].reps == [0, 1, 2, 3, 4]


def test_hash_multipliers_are_distinct_and_odd():
    """Each MinHash permutation multiplies by its own odd number (multiply-shift hashing)."""
    # _state_mutmut_25 (randint below 2 * 62: 128 draws of 124 values repeat) and _mutmut_31 (| 2: even)
    g = HotspotGrouper()
    g._state()
    a = g._a.tolist()
    assert len(set(a)) == g.num_perm
    assert all(x % 2 == 1 for x in a)


def test_a_text_with_a_lone_surrogate_has_a_signature():
    """A text with a lone surrogate (broken UTF-16 input) is hashed, not refused."""
    # _signatures_mutmut_26 (no error handler) and _mutmut_31/_32 (an unknown handler)
    g = HotspotGrouper()
    g._state()
    assert g._signature("楼道灯\ud800坏了").shape == (128,)


def test_band_keys_are_three_rows_each():
    """Two signatures agreeing on their first three values (only) share the first band key only."""
    # _band_keys_mutmut_5 (rows i*r to (i+2)*r: 6 values per band)
    g = HotspotGrouper()
    g._state()
    one = np.arange(128, dtype=np.uint32)
    other = one.copy()
    other[3:] += 1
    shared = [x == y for x, y in zip(g._band_keys(one), g._band_keys(other))]
    assert shared == [True] + [False] * 41


# --- the matter vector -----------------------------------------------------------------------
def test_a_word_every_earlier_appeal_held_still_counts_in_the_matter():
    """After 58 appeals all about 停水, 停水 still has a (small) weight in a new appeal's word vector."""
    # _append_mutmut_102 (weights above 1 only: ln((59 + 100) / 59) = 0.99 drops 停水)
    g = HotspotGrouper()
    for k in range(58):
        g.add(str(k), None, "停水")
    g.add("new", None, "停水三天")
    assert g._vecs[58]["停水"] > 0


def test_a_rarer_word_weighs_more_in_the_matter():
    """In an appeal's word vector, a word no earlier appeal held outweighs one every earlier appeal held."""
    # _append_mutmut_84 (tf / idf) and _mutmut_89 (ln((n + 100) * (df + 1)))
    g = HotspotGrouper()
    for k in range(3):
        g.add(str(k), None, "停水")
    g.add("new", None, "停水电梯")
    assert g._vecs[3]["电梯"] > g._vecs[3]["停水"]


def test_term_frequency_is_sublinear_in_the_matter():
    """A word said twice weighs 1 + ln 2 times a word said once (first appeal: the same idf)."""
    # _append_mutmut_86 (2 + ln tf: 1.35 times)
    g = HotspotGrouper()
    g.add("1", None, "停水停水电梯")
    assert g._vecs[0]["停水"] / g._vecs[0]["电梯"] == pytest.approx(1 + math.log(2))


def test_an_exact_repost_seeded_into_another_group_is_its_representative():
    """Stored assignments may put an exact re-post in a group of its own: it becomes that group's first appeal."""
    # _append_mutmut_1 (matter=False by default: no keywords for the new group's representative)
    g = HotspotGrouper()
    g.seed("1", "2024-06-01", LAMP, group="x")
    assert g.seed("2", "2024-06-02", LAMP, group="y") == "g000002"
    assert g._keys[1] == g._keys[0] and g._keys[1]


# --- choosing a group ------------------------------------------------------------------------
SOMEWHAT = ("井盖丢了非常危险，QWERTYUI", "垃圾没人清理，QWERTYUI")  # similarity ~0.36, no LSH band, no keyword shared


def test_a_senders_group_is_a_candidate_by_its_sender_alone():
    """An appeal somewhat like its sender's earlier appeal (no band, place or keywords shared) joins its group."""
    # _choose_mutmut_19 (user is None), _mutmut_21 (by_user.get(None)), _mutmut_102 (user None to _accepts),
    # _join_mutmut_91 (the sender indexed as None)
    g = HotspotGrouper()
    g._state()
    sigs = [g._signature(g._text_features(t, None).stripped) for t in SOMEWHAT]
    assert not set(g._band_keys(sigs[0])) & set(g._band_keys(sigs[1]))
    a = g.add("1", "2024-06-01", SOMEWHAT[0], user="u1")
    assert g.add("2", "2024-06-02", SOMEWHAT[1], user="u1") == a
    h = HotspotGrouper()
    b = h.add("1", "2024-06-01", SOMEWHAT[0], user="u1")
    assert h.add("2", "2024-06-02", SOMEWHAT[1], user="u2") != b


def test_a_group_outside_the_window_does_not_stop_the_search():
    """A candidate group out of the time window is skipped; a later candidate can still be chosen."""
    # _choose_mutmut_71 (break)
    g = HotspotGrouper()
    g.add("1", "2024-01-01", LAMP)
    assert g.add("2", "2024-06-01", LAMP.replace("一个月", "两个月")) == "g000002"  # 152 days later
    assert g.add("3", "2024-06-02", LAMP.replace("一个月", "三个月")) == "g000002"


def test_a_group_of_another_xiaoqu_does_not_stop_the_search():
    """A candidate group about another 小区 is skipped; the group of the appeal's 小区 is chosen."""
    # _choose_mutmut_80 (break)
    g = HotspotGrouper()
    g.add("1", "2024-06-01", WATER)
    assert g.add("2", "2024-06-01", WATER.replace("幸福里", "阳光花园")) == "g000002"
    assert g.add("3", "2024-06-02", "阳光花园小区停水三天了，水压很低，老人孩子生活不方便") == "g000002"


def test_a_rejecting_group_does_not_stop_the_search():
    """A candidate group that does not accept the appeal (its sender's, about another matter) is skipped."""
    # _choose_mutmut_126 (break)
    g = HotspotGrouper()
    g.add("1", "2024-06-01", "导游强制游客购物，不买就不让上车", user="u1")
    assert g.add("2", "2024-06-01", LAMP, user="u2") == "g000002"
    assert g.add("3", "2024-06-02", LAMP.replace("一个月", "两个月"), user="u1") == "g000002"


def test_the_word_cosine_counts_in_choosing_between_groups():
    """Of two accepting groups, one sharing all the words beats one sharing more characters (letters) but no word."""
    # _choose_mutmut_128 / _mutmut_131 (cosine 0 in the score) and _mutmut_136 (sim - cos)
    g = HotspotGrouper()
    g.add("1", "2024-06-01", "路灯坏了晚上很黑，ABCDEFGHIJKLMNOPQRSTUVWX")
    g.add("2", "2024-06-01", "井盖丢了非常危险")
    assert g.add("3", "2024-06-01", "井盖丢了非常危险，ABCDEFGHIJKLMNOPQRSTUVWX") == "g000002"


def test_the_senders_bonus_is_small():
    """A sender's own group with another matter loses to a group of the same matter (bonus 0.25, not more)."""
    # _choose_mutmut_141 (1.25 for the same sender)
    g = HotspotGrouper()
    g.add("1", "2024-06-01", "垃圾没人清理", user="u2")
    g.add("2", "2024-06-01", SOMEWHAT[0], user="u1")
    assert g.add("3", "2024-06-01", SOMEWHAT[1], user="u1") == "g000001"


def test_the_places_bonus_is_half_a_point():
    """A group of the same 小区 and another matter loses to a group of the same matter (bonus 0.5, not more)."""
    # _choose_mutmut_139 (1.5 for the same place)
    g = HotspotGrouper()
    g.add("1", "2024-06-01", "垃圾没人清理")
    g.add("2", "2024-06-01", "幸福里小区" + SOMEWHAT[0])
    assert g.add("3", "2024-06-01", "幸福里小区" + SOMEWHAT[1]) == "g000001"


def test_a_near_identical_appeal_is_not_a_representative():
    """An appeal near-identical to the group's first (similarity >= 0.9) joins it but is no representative."""
    # _choose_mutmut_148 (sims.max() < 1.9: always a representative)
    g = HotspotGrouper()
    g.add("1", "2024-06-01", WATER)
    assert g.add("2", "2024-06-01", WATER + "啊") == "g000001"
    assert (g._sigs[0] == g._sigs[1]).mean() >= 0.9
    assert g._groups[0].reps == [0]


def test_a_group_starts_at_its_earliest_appeal():
    """A group's window starts at its earliest appeal, not its latest: 31 days before the first joins."""
    # _join_mutmut_72 (first = the latest time added)
    g = HotspotGrouper()
    g.add("1", "2024-01-01", LAMP)
    assert g.add("2", "2024-01-31", LAMP.replace("一个月", "两个月")) == "g000001"
    assert g.add("3", "2023-12-01", LAMP.replace("一个月", "三个月")) == "g000001"


def test_a_group_sharing_exactly_two_keywords_is_a_candidate():
    """Two shared keywords (电动车, 消防通道), no band, place or sender, make a group a candidate."""
    # _choose_mutmut_34 (n > 2) and _mutmut_35 (n >= 3)
    g = HotspotGrouper()
    a = g.add("1", "2024-06-01", "电动车乱停乱放堵住消防通道，物业不管")
    g._state()
    b = "消防通道里停满了电动车"
    assert not set(g._band_keys(g._sigs[0])) & set(g._text_features(b, None).band_keys)
    assert g.add("2", "2024-06-02", b) == a
    assert g._keys[0] & g._keys[1] == {"电动车", "消防通道"}


@pytest.mark.parametrize("newcomer", ["解放路垃圾没人清理，1234567", "解放路阳光花园小区垃圾没人清理，1234567"],
                         ids=["the road", "the road and another xiaoqu"])
def test_a_road_named_by_the_first_appeal_finds_its_group(newcomer):
    """A road the group's first appeal names besides its 小区 finds the group (also for another 小区's appeal)."""
    # _join_mutmut_56 (only the group's main place indexed) and _mutmut_58 (places indexed as None);
    # _choose_mutmut_11 (places & {a_key}: only the appeal's main place looked up; the second text)
    g = HotspotGrouper()
    first = "解放路幸福里小区门口路灯坏了晚上很黑，1234567"
    a = g.add("1", "2024-06-01", first)
    assert not set(g._band_keys(g._sigs[0])) & set(g._text_features(newcomer, None).band_keys)
    assert g.add("2", "2024-06-02", newcomer) == a


# --- more repeats ----------------------------------------------------------------------------
def test_an_appeal_that_is_no_repeat_links_to_nothing():
    """An appeal joining a group, from another sender, no re-post nor cue, is no repeat and links nothing."""
    # _mark_repeat_mutmut_20 (the group's latest appeals linked without a cue)
    g = HotspotGrouper()
    g.add("1", "2024-06-01", LAMP, user="u1")
    g.add("2", "2024-06-02", LAMP.replace("一个月", "两个月"), user="u2")
    assert g.appeal("2") == {"group_id": "g000001", "place": None, "repeat": False, "repeat_of": []}


def test_a_cue_links_the_five_latest_earlier_appeals():
    """An appeal saying it repeats (多次反映) links the group's five latest earlier appeals."""
    # _mark_repeat_mutmut_22 (six)
    g = HotspotGrouper()
    for k in range(1, 7):
        g.add(str(k), f"2024-06-0{k}", LAMP + "！" * k, user=f"u{k}")
    g.add("7", "2024-06-07", LAMP + "，多次反映", user="u7")
    assert g.appeal("7")["repeat"] is True
    assert g.appeal("7")["repeat_of"] == ["2", "3", "4", "5", "6"]


def test_a_cue_links_only_appeals_not_later_than_it():
    """A repeat cue links earlier appeals only: one added before but dated later is left out, one at the same time kept."""
    # _mark_repeat_mutmut_23 / _mutmut_26 and add_mutmut_89 (no time filter), _mutmut_27 (< t: same time left out)
    g = HotspotGrouper()
    g.add("late", "2024-06-03", LAMP, user="u1")
    g.add("early", "2024-06-01", LAMP + "，多次反映", user="u2")
    assert g.appeal("early") == {"group_id": "g000001", "place": None, "repeat": True, "repeat_of": []}
    h = HotspotGrouper()
    h.add("1", "2024-06-01 08:00", LAMP, user="u1")
    h.add("2", "2024-06-01 08:00", LAMP + "，多次反映", user="u2")
    assert h.appeal("2")["repeat_of"] == ["1"]

