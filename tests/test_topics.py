"""corpora/topics.py: topics finer than the categories, assigned by a negation-aware lexicon."""
import re

import pytest

from corpora.rules import RuleFileError
from corpora.topics import default_topics, load_topics


def test_assign_finds_every_topic_in_file_order():
    assert default_topics().assign("小区暖气不热，物业不管") == ["冬季采暖", "物业管理"]


def test_assign_normalises_first():
    assert default_topics().assign("小區暖氣不熱") == ["冬季采暖"]


def test_a_topic_counts_when_any_of_its_mentions_is_live():
    lex = default_topics()
    assert lex.assign("经检查没有停电") == []
    assert lex.assign("经检查没有停电，但昨晚又停电了") == ["高温停电"]


def test_category_restricts_the_topics():
    lex = default_topics()
    assert lex.assign("小区暖气不热", category="城乡建设") == ["冬季采暖"]
    assert lex.assign("小区暖气不热", category="商贸旅游") == []


def test_lexicon_fields_and_terms():
    lex = default_topics()
    heat = lex.by_name["冬季采暖"]
    assert (heat.category, heat.level2, heat.seasonal) == ("城乡建设", "城市建设和市政管理", True)
    assert lex.by_name["燃气供应"].seasonal is False
    terms = lex.terms()
    assert {"暖气", "供暖", "燃气", "停电"} <= terms


def _write(tmp_path, body):
    p = tmp_path / "topics.csv"
    p.write_text("topic,category,level2,keywords,seasonal\n" + body, encoding="utf-8")
    return p


def test_terms_are_the_literal_keywords_only(tmp_path):
    lex = load_topics(_write(tmp_path, "甲,城乡建设,二级,暖气|停.?暖|PM2|水,no\n乙,环境保护,二级,no2|pm2.5|噪音,no\n"))
    assert lex.terms() == {"暖气", "PM2", "水", "no2", "噪音"}  # letters of either case and digits; no regex


def test_a_small_topics_file_loads(tmp_path):
    lex = load_topics(_write(tmp_path, "甲,城乡建设,二级,暖气|供暖,yes\n乙,商贸旅游,二级B,导游,no\n"))
    assert [t.name for t in lex.topics] == ["甲", "乙"]
    assert [(t.category, t.level2) for t in lex.topics] == [("城乡建设", "二级"), ("商贸旅游", "二级B")]
    assert lex.by_name["甲"].seasonal and not lex.by_name["乙"].seasonal
    assert lex.assign("导游说暖气坏了") == ["甲", "乙"]


@pytest.mark.parametrize("body, message", [
    ("甲,城乡建设,二级,暖气,maybe\n", r"topics\.csv:2: seasonal must be yes or no"),
    ("甲,城乡建设,二级,暖气,yes\n乙,城乡建设,二级,暖气(,no\n", r"topics\.csv:3: '乙' has an invalid pattern"),
])
def test_malformed_topics_files_are_refused(tmp_path, body, message):
    with pytest.raises(RuleFileError, match=message):
        load_topics(_write(tmp_path, body))


# --- issue 13: behaviour the mutation run found unprotected ---------------------------------------

def _write_anchors(tmp_path, body):
    p = tmp_path / "topics.csv"
    p.write_text("topic,category,level2,keywords,seasonal,anchors\n" + body, encoding="utf-8")
    return p


def test_anchors_are_the_holidays_a_season_may_follow_with_their_days(tmp_path):
    lex = load_topics(_write_anchors(tmp_path, "甲,商贸旅游,二级,景区,yes,春节:70|国庆节:10\n"
                                               "乙,城乡建设,二级,暖气,yes,\n"))
    assert lex.by_name["甲"].anchors == (("春节", 70), ("国庆节", 10))
    assert lex.by_name["乙"].anchors == ()
    # a file without the anchors column: no topic is anchored
    assert load_topics(_write(tmp_path, "甲,城乡建设,二级,暖气,yes\n")).by_name["甲"].anchors == ()
    # the shipped file: tourism follows the Spring Festival, Labour Day and National Day
    assert default_topics().by_name["景区管理"].anchors == (("春节", 10), ("劳动节", 10), ("国庆节", 10))


@pytest.mark.parametrize("anchors", ["圣诞节:10", "春节:七十", "春节:-5", "春节", "春节:70|国庆:10"])
def test_malformed_anchors_are_refused_naming_the_line_and_the_part(tmp_path, anchors):
    bad = anchors.split("|")[-1]
    p = _write_anchors(tmp_path, f"甲,商贸旅游,二级,景区,yes,春节:1\n乙,商贸旅游,二级,导游,yes,{anchors}\n")
    from corpora.holidays import holiday_starts

    names = "、".join(holiday_starts())
    assert "春节" in names and "国庆节" in names
    with pytest.raises(RuleFileError, match=rf"topics\.csv:3: anchors must read like 春节:70\|国庆节:10 "
                                            rf"\(holidays: {re.escape(names)}\); got '{re.escape(bad)}'$"):
        load_topics(p)


_TEXTS = ["小区暖气不热，物业不管", "经检查没有停电", "经检查没有停电，但昨晚又停电了", "導遊強制購物", "请问社保怎么转移", ""]


def test_assign_many_gives_what_assign_gives_for_each_text():
    lex = default_topics()
    assert lex.assign_many(_TEXTS) == [lex.assign(t) for t in _TEXTS]
    assert lex.assign_many(_TEXTS)[:3] == [["冬季采暖", "物业管理"], [], ["高温停电"]]
    assert lex.assign_many([]) == []


def test_assign_many_matches_normalised_texts_as_they_are():
    lex = default_topics()
    assert lex.assign_many(["小區暖氣不熱"]) == [["冬季采暖"]]  # normalised first: traditional characters match
    assert lex.assign_many(["小區暖氣不熱"], normalised=True) == [[]]  # taken as normalised already
    assert lex.assign_many(["小区暖气不热"], normalised=True) == [["冬季采暖"]]


def test_assign_many_in_a_small_lexicon_keeps_file_order_and_negation(tmp_path):
    lex = load_topics(_write(tmp_path, "甲,城乡建设,二级,暖气|供暖,yes\n乙,商贸旅游,二级B,导游,no\n"))
    assert lex.assign_many(["导游说暖气坏了", "没有导游", "没有导游，暖气也坏了"]) == [["甲", "乙"], [], ["甲"]]
