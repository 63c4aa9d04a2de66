"""Rules as data: the routing table and the regex prefilter behind it."""
import pytest

from corpora.rules import default_router
from corpora.text import is_negated, normalise


def _route_every_rule(router, category, text):
    """Router.route as it ran before the prefilter: every topic rule's regex over the text."""
    best, best_hits = None, 0
    for rule in router.topics:
        if rule.category == category:
            hits = sum(1 for m in rule.pattern.finditer(text) if not is_negated(text, m.start()))
            if hits > best_hits:
                best, best_hits = rule, hits
    return (best.department, best.topic) if best else (router.default.get(category), None)


@pytest.mark.parametrize("source", ["demo", "tipdm"])
def test_routing_with_the_prefilter_equals_every_rule(source, demo_frame):
    from corpora.records import appeal_texts, read_appeals
    from tests.conftest import TIPDM, need

    frame = demo_frame if source == "demo" else read_appeals(need(TIPDM)).frame
    router = default_router()
    texts = [normalise(t) for t in appeal_texts(frame)]
    routed = [(c, t) for t in texts for c in router.categories]
    assert [router.route(c, t) for c, t in routed] == [_route_every_rule(router, c, t) for c, t in routed]
    assert sum(router.route(c, t)[1] is not None for c, t in routed) > len(texts) // 10  # topics did fire


# --- routing behaviour ---------------------------------------------------------------------

def test_the_topic_with_most_live_keyword_hits_wins():
    router = default_router()
    # one heating word against two gas words
    assert router.route("城乡建设", "暖气不热，燃气灶也打不着，煤气味很重") == ("市城市管理局(燃气办)", "燃气供应")
    # negated hits do not count: the gas words are denied, heating wins
    assert router.route("城乡建设", "暖气不热，没有燃气，没有煤气") == ("市城市管理局(供热办)", "冬季采暖")


def test_topics_of_another_category_are_not_used():
    router = default_router()
    dept, topic = router.route("商贸旅游", "小区暖气不热")
    assert topic is None and dept == router.default["商贸旅游"]
    assert router.route("没有这个分类", "暖气不热") == (None, None)


def test_categories_are_those_with_a_default_department():
    cats = default_router().categories
    assert "城乡建设" in cats and len(cats) == len(set(cats)) == 7


def _write(tmp_path, body):
    p = tmp_path / "routing.csv"
    p.write_text("category,topic,department,keywords\n" + body, encoding="utf-8")
    return p


def test_a_small_routing_file_loads_and_routes(tmp_path):
    from corpora.rules import load_router

    r = load_router(_write(tmp_path, "甲,,甲局,\n甲,暖,甲局供热办,暖气|供暖\n 乙 , , 乙局 , \n"))
    assert r.categories == ["甲", "乙"]
    assert r.route("甲", "家里供暖不好") == ("甲局供热办", "暖")
    assert r.route("甲", "家里冷") == ("甲局", None)
    assert r.route("乙", "暖气") == ("乙局", None)


@pytest.mark.parametrize("body, message", [
    ("甲,,甲局,,多余\n", r"routing\.csv:2: more fields than columns"),
    ("甲,,甲局,\n,,乙局,\n", r"routing\.csv:3: category and department are required"),
    ("甲,,,\n", r"routing\.csv:2: category and department are required"),
    ("甲,,甲局,\n甲,暖,供热办,\n", r"routing\.csv:3: topic '暖' needs keywords"),
    ("甲,,甲局,\n乙,暖,供热办,暖气\n", r"routing\.csv: categories \['乙'\] have topics but no default department row"),
])
def test_malformed_routing_files_are_refused_with_file_and_row(tmp_path, body, message):
    from corpora.rules import RuleFileError, load_router

    with pytest.raises(RuleFileError, match=message):
        load_router(_write(tmp_path, body))


def test_an_invalid_rule_pattern_names_file_line_and_rule(tmp_path):
    from corpora.rules import RuleFileError, rule_pattern

    assert rule_pattern(tmp_path / "x.csv", 7, "暖", "暖气|供暖").search("供暖")
    with pytest.raises(RuleFileError, match=r"x\.csv:7: '暖' has an invalid pattern \("):
        rule_pattern(tmp_path / "x.csv", 7, "暖", "暖气(")


# --- PatternSet ------------------------------------------------------------------------------

def test_pattern_set_candidates_are_exactly_the_patterns_that_occur():
    import re

    from corpora.rules import PatternSet

    pats = [re.compile("暖气|供暖"), re.compile("燃气"), re.compile("noise", re.IGNORECASE),
            re.compile("a.b", re.DOTALL), re.compile("^停水", re.MULTILINE), re.compile(r"(\d)\1")]
    ps = PatternSet(pats)
    # the back-reference cannot be prefiltered: it is always a candidate
    assert ps.candidates("今天") == [5]
    assert ps.candidates("供暖和燃气") == [0, 1, 5]
    assert ps.candidates("NOISE at night") == [2, 5]
    assert ps.candidates("a\nb") == [3, 5]
    assert ps.candidates("通知\n停水三天") == [4, 5]
    assert ps.candidates("通知停水三天") == [5]


def test_pattern_set_survives_pickling_and_threads():
    import pickle
    import re
    from concurrent.futures import ThreadPoolExecutor

    from corpora.rules import PatternSet

    ps = PatternSet([re.compile("暖气"), re.compile("燃气")])
    assert ps.candidates("燃气") == [1]
    copy = pickle.loads(pickle.dumps(ps))
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(copy.candidates, ["暖气", "燃气", "暖气燃气", "无"] * 10))
    assert got == [[0], [1], [0, 1], []] * 10


def test_pattern_set_of_only_unscannable_patterns():
    import re

    from corpora.rules import PatternSet

    ps = PatternSet([re.compile(r"(?<=没)有"), re.compile(b"x")])
    assert ps.candidates("有") == [0, 1]
    assert PatternSet([]).candidates("有") == []


def test_a_router_extended_with_added_categories_routes_them_and_keeps_the_files():
    router = default_router()
    wider = router.with_categories({"数字城管": "市数字化城市管理中心", "城乡建设": "别处"})
    assert router.with_categories({}) is router and router.with_categories(None) is router
    assert wider.categories == router.categories + ["数字城管"]
    assert wider.route("数字城管", "井盖丢失，暖气管道外露") == ("市数字化城市管理中心", None)
    assert wider.route("城乡建设", "小区暖气不热") == router.route("城乡建设", "小区暖气不热")  # the file's rule wins
    assert "数字城管" not in router.categories  # the default router is not changed


@pytest.mark.parametrize("text, categories", [
    ("小区暖气不热", {"城乡建设"}),
    ("没有燃气泄漏", set()),
    ("路灯不亮", set()),
])
def test_topic_categories_are_those_whose_keywords_occur_not_negated(text, categories):
    assert default_router().topic_categories(normalise(text)) == categories


def test_pattern_set_counts_characters_not_bytes_and_unicode_classes():
    # The urgency cue's shape: `.{0,4}` spans up to four characters (12 bytes of UTF-8),
    # and \w and \d are Unicode classes, as in Python's re; a byte-wise or ASCII-only
    # prefilter would drop these patterns and the cue or topic would never fire.
    import re

    from corpora.rules import PatternSet

    pats = [re.compile("液化气.{0,4}漏"), re.compile(r"楼\w"), re.compile(r"\d+号楼")]
    ps = PatternSet(pats)
    for text, want in [("液化气罐子阀门漏了", [0]), ("住在楼道口", [1]), ("３号楼", [2]), ("٣号楼", [2])]:
        assert [i for i, p in enumerate(pats) if p.search(text)] == want  # what re says
        assert ps.candidates(text) == want, text


def test_pattern_set_reports_each_pattern_once_however_often_it_occurs():
    import re

    from corpora.rules import PatternSet

    ps = PatternSet([re.compile("暖气"), re.compile("燃气")])
    assert ps.candidates("暖气不热，暖气片冰凉，暖气费白交") == [0]
    assert ps.candidates("燃气燃气暖气燃气") == [0, 1]


def test_pattern_set_respects_each_patterns_own_flags():
    # A pattern without IGNORECASE / DOTALL / MULTILINE is not made looser by another
    # pattern that has the flag: the candidates stay exactly the patterns that occur.
    import re

    from corpora.rules import PatternSet

    pats = [re.compile("Noise"), re.compile("a.b"), re.compile("^停水"), re.compile("noise", re.IGNORECASE),
            re.compile("c.d", re.DOTALL), re.compile("^停电", re.MULTILINE)]
    ps = PatternSet(pats)
    for text in ["NOISE", "noise", "Noise", "a\nb", "axb", "通知\n停水", "停水", "c\nd", "通知\n停电"]:
        assert ps.candidates(text) == [i for i, p in enumerate(pats) if p.search(text)], text


def test_pattern_set_indices_are_the_patterns_positions_around_unscannable_ones():
    # Patterns Vectorscan cannot take (look-behind, back-reference) sit before and between
    # the scanned ones: a scanned pattern is still reported under its own index.
    import re

    from corpora.rules import PatternSet

    ps = PatternSet([re.compile("(?<=没)有"), re.compile("暖气"), re.compile(r"(\d)\1"), re.compile("燃气")])
    assert ps.candidates("燃气") == [0, 2, 3]
    assert ps.candidates("暖气") == [0, 1, 2]
    assert ps.candidates("无") == [0, 2]


def test_a_pattern_vectorscan_refuses_only_under_unicode_rules_is_always_a_candidate():
    # Vectorscan takes \b byte-wise (ASCII word characters), but not with the Unicode (UCP)
    # rules the prefilter scans with: such a pattern must be judged with those rules, so it
    # is always a candidate instead of breaking the database for the others.
    import re

    from corpora.rules import PatternSet

    pats = [re.compile(r"\b暖气"), re.compile("燃气")]
    ps = PatternSet(pats)
    assert ps.candidates("燃气") == [0, 1]
    assert ps.candidates("无") == [0]
    assert pats[0].search("暖气不热") and ps.candidates("暖气不热") == [0]


def test_pattern_set_scans_at_once_from_many_threads():
    # The service tags in a thread pool: scans that run at the same moment (Vectorscan lets
    # go of the GIL while it scans) each need their own scratch space, or Vectorscan
    # refuses one with "scratch in use". Four threads start each round together on a text
    # long enough for their scans to overlap.
    import re
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from corpora.rules import PatternSet

    ps = PatternSet([re.compile("暖气"), re.compile("燃气")])
    text = "小区暖和" * 10_000 + "燃气"
    assert ps.candidates(text) == [1]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(10):
            start = threading.Barrier(4, timeout=10)

            def scan(_, start=start):
                start.wait()
                return ps.candidates(text)

            assert list(pool.map(scan, range(4))) == [[1]] * 4
