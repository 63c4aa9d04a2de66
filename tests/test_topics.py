"""corpora/topics.py: topics finer than the categories, assigned by a negation-aware lexicon."""
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
    lex = load_topics(_write(tmp_path, "甲,城乡建设,二级,暖气|停.?暖|PM2|水,no\n"))
    assert lex.terms() == {"暖气", "PM2", "水"}


def test_a_small_topics_file_loads(tmp_path):
    lex = load_topics(_write(tmp_path, "甲,城乡建设,二级,暖气|供暖,yes\n乙,商贸旅游,二级B,导游,no\n"))
    assert [t.name for t in lex.topics] == ["甲", "乙"]
    assert lex.by_name["甲"].seasonal and not lex.by_name["乙"].seasonal
    assert lex.assign("导游说暖气坏了") == ["甲", "乙"]


@pytest.mark.parametrize("body, message", [
    ("甲,城乡建设,二级,暖气,maybe\n", r"topics\.csv:2: seasonal must be yes or no"),
    ("甲,城乡建设,二级,暖气,yes\n乙,城乡建设,二级,暖气(,no\n", r"topics\.csv:3: '乙' has an invalid pattern"),
])
def test_malformed_topics_files_are_refused(tmp_path, body, message):
    with pytest.raises(RuleFileError, match=message):
        load_topics(_write(tmp_path, body))
