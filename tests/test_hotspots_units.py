"""Unit tests of models/hotspots.py that pin behaviours a mutation-testing sample found
unguarded (mutmut survivors; the mutant each guards against is named in a comment).
Texts are written for these tests; every expected value is reasoned out from the module's
documented rules, not recomputed with its formulas."""
from __future__ import annotations

import pandas as pd
import pytest

from corpora.places import Gazetteer, Place
from models.hotspots import (
    HotspotGrouper,
    _best_place,
    _content_words,
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
