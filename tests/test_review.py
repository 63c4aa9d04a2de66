"""The review queue's ranking (models/review.py): pure functions over tags and texts, and
the fresh ranking the retraining simulation uses, with the demo bundle's real model."""
import numpy as np
import pytest

from corpora.rules import load_router
from models.review import (diverse_order, margin_uncertainty, possible_critical, proba_from_scores, rank_for_review,
                           rank_tags, review_scores, routing_disagreement, unknown_share, word_vocabulary)

HEAT = "小区暖气不热，家里只有十三度，老人孩子都冻感冒了，请供热公司尽快处理"
TOUR = "南湖景区导游强制游客购物，不买就不让上车，旅行社态度恶劣，要求退款"


def tag(category="城乡建设", top=0.9, second="环境保护", **extra):
    return {"category": category, "category_scores": {category: top, second: round(1 - top, 4)}, **extra}


def test_an_uncertain_appeal_ranks_above_a_confident_one():
    ranked = rank_tags([HEAT, TOUR], [tag(top=0.98), tag(category="商贸旅游", top=0.52)])
    assert ranked["index"].tolist() == [1, 0]
    assert ranked["reasons"].tolist() == [["uncertain"], []]
    assert ranked["margin"].round(2).tolist() == [0.04, 0.96]


@pytest.mark.parametrize("signal, extra", [
    ("needs_review", {"needs_review": True}),
    ("possible_critical", {"possible_critical": True}),
    ("possible_critical", {"urgency": "routine",
                           "urgency_cues": [{"cue": "燃气泄漏", "level": "critical", "negated": False}]}),
])
def test_a_signal_that_contradicts_the_tag_lifts_an_appeal(signal, extra):
    """Two appeals equally certain: the one another signal contradicts comes first."""
    quiet = {"needs_review": False, "possible_critical": False} if "urgency" not in extra else {
        "urgency": "routine", "urgency_cues": []}
    ranked = rank_tags([HEAT, TOUR], [tag(top=0.8, **quiet), tag(category="商贸旅游", top=0.8, **extra)])
    assert ranked["index"].tolist() == [1, 0]
    assert signal in ranked["reasons"][0]


def test_routing_keywords_of_another_category_are_a_disagreement():
    router = load_router()
    ranked = rank_tags([HEAT, TOUR], [tag(top=0.8), tag(category="城乡建设", top=0.8)], router=router)
    assert ranked["index"].tolist() == [1, 0] and ranked["reasons"][0] == ["routing_disagrees"]
    assert routing_disagreement(router, ["城乡建设", "城乡建设"], ["路灯不亮", "没有燃气泄漏"]).tolist() == [False, False]


def test_new_vocabulary_lifts_an_appeal(demo_bundle):
    model = demo_bundle.models["category"]
    vocab, max_chars = word_vocabulary(model)
    share = unknown_share([HEAT, "无人机航拍许可证区块链算力租赁纠纷"], vocab, max_chars=max_chars)
    assert share[0] < 0.3 < share[1]
    ranked = rank_tags([HEAT, "无人机航拍许可证区块链算力租赁纠纷"], [tag(top=0.8), tag(top=0.8)],
                       vocabulary=vocab, max_chars=max_chars)
    assert ranked["index"].tolist() == [1, 0] and ranked["reasons"][0] == ["new_vocabulary"]


def test_near_duplicates_share_one_place_and_are_listed_with_it():
    texts = [HEAT, "小区暖气不热，家里只有十三度，老人孩子都冻感冒了，请供热公司尽快处理！", TOUR, HEAT + "谢谢"]
    ranked = rank_tags(texts, [tag(top=0.6), tag(top=0.55), tag(top=0.9), tag(top=0.7)])
    assert ranked["index"].tolist() == [1, 2]
    assert sorted(ranked["duplicates"][0]) == [0, 3]


def test_a_ranking_read_in_pages_is_the_ranking_read_at_once():
    rng = np.random.default_rng(0)
    texts = [HEAT[: 10 + i % 20] + TOUR[i % 7:] for i in range(120)]
    score = rng.random(120)
    whole, _ = diverse_order(score, texts)
    for k in (1, 5, 30, 64, 65, 200):
        assert diverse_order(score, texts, k=k)[0].tolist() == whole[:k].tolist()


def test_scores_stay_within_zero_and_one_and_weights_are_relative():
    u = np.array([0.0, 1.0, 0.5])
    flags = {"needs_review": np.array([False, True, True])}
    s, _ = review_scores(u, disagreement=flags, novelty=np.array([0.0, 1.0, 0.1]))
    assert s.tolist()[:2] == [0.0, 1.0] and 0 < s[2] < 1
    doubled, _ = review_scores(u, disagreement=flags, novelty=np.array([0.0, 1.0, 0.1]),
                               weights={"uncertainty": 1.2, "disagreement": 0.5, "novelty": 0.3})
    assert np.allclose(s, doubled)
    with pytest.raises(ValueError, match="disagreement 'needs_review' has 1 items, uncertainty 3"):
        review_scores(u, disagreement={"needs_review": np.array([True])})


def test_stored_scores_and_cues_read_as_the_tagger_wrote_them():
    assert margin_uncertainty(proba_from_scores([{"a": 0.5, "b": 0.5}, {"a": 1.0}])).tolist() == [1.0, 0.0]
    cue = {"cue": "火灾", "level": "critical", "negated": True}
    assert possible_critical(["urgent", "urgent"], [[cue], [{**cue, "negated": False}]]).tolist() == [False, True]
    with pytest.raises(ValueError, match="2-d array"):
        margin_uncertainty(np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="texts has 1 items but tags has 2"):
        rank_tags([HEAT], [tag(), tag()])


def test_fresh_ranking_with_the_demo_models(demo_bundle):
    """The simulation's path: tag fresh with the real models, rank, one per near-duplicate group."""
    texts = [HEAT, HEAT + "！", TOUR, "路边有个东西，不知道归哪个部门管，麻烦看看",
             "无人机航拍许可证区块链算力租赁纠纷", "学校门口主干道车辆太快，孩子上学过马路很危险，请设置红绿灯"]
    ranked = rank_for_review(demo_bundle.models["category"], texts, urgency=demo_bundle.models.get("urgency"))
    assert sorted(ranked["index"].tolist() + [i for d in ranked["duplicates"] for i in d]) == list(range(6))
    assert not {0, 1} <= set(ranked["index"])  # the two heating complaints share one place
    assert ranked["score"].is_monotonic_decreasing
    confident = ranked.set_index("index")["margin"]
    # the vague appeal is less certain than the plain heating complaint, and ranked above it
    heat = 0 if 0 in confident.index else 1
    assert confident[3] < confident[heat]
    assert ranked["index"].tolist().index(3) < ranked["index"].tolist().index(heat)


# --- the signals one by one: edge cases a stored or fresh tag can present -------------------

def test_a_single_class_or_empty_probability_matrix():
    """One class: uncertainty is what the model lacks of certainty; no class at all is refused."""
    assert margin_uncertainty([[0.3], [1.0]]).round(6).tolist() == [0.7, 0.0]
    assert margin_uncertainty([[0.2, 0.7, 0.1]]).round(6).tolist() == [0.5]  # top two, whatever their order
    for bad in (np.zeros((2, 0)), np.zeros((2, 2, 2))):
        with pytest.raises(ValueError, match=r"2-d array of class probabilities, got shape \(2, "):
            margin_uncertainty(bad)


def test_stored_scores_fill_missing_categories_and_rows():
    assert proba_from_scores([None, None]).tolist() == [[1.0], [1.0]]  # nothing known: one column, certain of nothing
    assert proba_from_scores([{}, {"b": "0.6", "a": 0.4}]).tolist() == [[0.5, 0.5], [0.4, 0.6]]
    assert np.allclose(proba_from_scores([{"c": 1.0}, None, {"a": 0.2, "b": 0.8}]),
                       [[0.0, 0.0, 1.0], [1 / 3, 1 / 3, 1 / 3], [0.2, 0.8, 0.0]])


def test_a_model_without_a_word_vocabulary_brings_no_novelty(demo_bundle):
    from types import SimpleNamespace

    from models.features import WordCharTfidf

    unfitted = SimpleNamespace(features_=WordCharTfidf(max_chars=100))  # a window, but no vocabulary yet
    for model in (object(), SimpleNamespace(features_=None), SimpleNamespace(features_=SimpleNamespace(word_=None)),
                  unfitted):
        assert word_vocabulary(model) == (None, None)
    model = demo_bundle.models["category"]
    vocab, max_chars = word_vocabulary(model)
    assert max_chars == model.max_chars == 1500 and "暖气" in vocab
    assert unknown_share([HEAT, "无人机航拍"], None).tolist() == [0.0, 0.0]


def test_unknown_share_reads_only_the_window_and_ignores_wordless_texts():
    vocab = {"小区", "暖气", "不热"}
    tail = "共享单车乱停放"
    assert unknown_share(["！！！", "", "小区暖气不热" + tail], vocab, max_chars=6).tolist() == [0.0, 0.0, 0.0]
    assert unknown_share(["小区暖气不热" + tail], vocab).tolist() == [0.5]


def test_possible_critical_needs_a_live_critical_cue_and_a_lower_level():
    live = {"cue": "燃气泄漏", "level": "critical"}  # no "negated" key: not negated
    urgent_cue = {"cue": "停水", "level": "urgent", "negated": False}
    got = possible_critical([None, "routine", "routine", "urgent", "critical"],
                            [[live], None, [urgent_cue], [urgent_cue, live], [live]])
    assert got.tolist() == [True, False, False, True, False]
    none = possible_critical([], [])
    assert np.arange(0)[none].tolist() == []  # an empty batch is still a mask


def test_review_scores_add_the_weighted_signals():
    flags = {"needs_review": np.array([True, False, False]), "possible_critical": np.array([True, True, False])}
    s, why = review_scores(np.array([0.5, 0.0, 1.5]), disagreement=flags, novelty=np.array([0.1, 0.5, 0.0]))
    # 0.6 u + 0.25 (share of flags) + 0.15 min(novelty / 0.25, 1); uncertainty capped at 1
    assert np.allclose(s, [0.6 * 0.5 + 0.25 + 0.15 * 0.4, 0.25 * 0.5 + 0.15, 0.6])
    assert why == [["needs_review", "possible_critical"], ["new_vocabulary", "possible_critical"], ["uncertain"]]
    low, _ = review_scores(np.array([-0.5]))
    assert low.tolist() == [0.0]
    # weights given in part keep the others; they are relative to their sum
    s2, why2 = review_scores(np.array([0.8]), disagreement={"needs_review": np.array([True])},
                             weights={"uncertainty": 0.1, "disagreement": 0.9})
    assert np.allclose(s2, [(0.1 * 0.8 + 0.9) / 1.15])
    assert why2 == [["needs_review", "uncertain"]]  # strongest first: here the disagreement


def test_reason_thresholds_are_inclusive():
    _, why = review_scores(np.array([0.7, 0.69, 0.0, 0.0]), novelty=np.array([0.0, 0.0, 0.15, 0.149]))
    assert why == [["uncertain"], [], ["new_vocabulary"], []]
    _, why = review_scores(np.array([0.9]), novelty=np.array([0.2]))
    assert why == [["uncertain", "new_vocabulary"]]  # 0.54 against 0.12


def test_diverse_order_edges():
    order, dups = diverse_order([], [])
    assert order.tolist() == [] and dups == {}
    order, dups = diverse_order([0.5, 0.5, 0.9], [HEAT, TOUR, "路灯不亮"])
    assert order.tolist() == [2, 0, 1] and dups == {}  # ties by position
    near = [HEAT, HEAT[:20], TOUR]  # cosine 0.75
    assert diverse_order([0.9, 0.8, 0.7], near, threshold=0.74)[1] == {0: [1]}
    assert diverse_order([0.9, 0.8, 0.7], near, threshold=0.76)[0].tolist() == [0, 1, 2]
    assert diverse_order([0.9, 0.8, 0.7], near, k=2)[0].tolist() == [0, 2]


def test_near_duplicates_find_their_leader_across_blocks():
    """Over a block of 64: a duplicate below the first block is listed with its leader, above
    or in its own block, and a duplicate of a later appeal with that one."""
    rng = np.random.default_rng(1)
    texts = ["".join(chr(c) for c in rng.integers(0x4E00, 0x9FA5, size=30)) for _ in range(80)]
    score = np.linspace(1.0, 0.2, 80)
    base, _ = diverse_order(score, texts)
    assert base.tolist() == list(range(80))
    texts += [texts[3], texts[70], texts[70] + "！"]
    score = np.concatenate([score, [0.1, 0.05, 0.25]])
    order, dups = diverse_order(score, texts)
    assert order.tolist() == list(range(80))
    assert dups == {3: [80], 70: [82, 81]}
    assert diverse_order(score, texts, k=70)[0].tolist() == list(range(70))


def test_rank_tags_reports_every_column_and_uses_only_the_signals_given():
    tags = [tag(top=0.9, needs_review=False), tag(category="商贸旅游", top=0.6, needs_review=True,
                                                  urgency="routine",
                                                  urgency_cues=[{"cue": "燃气泄漏", "level": "critical",
                                                                 "negated": False}]),
            tag(top=0.95, possible_critical=False)]
    ranked = rank_tags([HEAT, TOUR, "路灯不亮"], tags)
    assert list(ranked.columns) == ["index", "score", "margin", "unknown_share", "reasons", "duplicates"]
    assert ranked["index"].tolist() == [1, 0, 2]
    assert ranked["margin"].round(4).tolist() == [0.2, 0.8, 0.9]
    # two disagreement signals known (needs_review; possible_critical, given as a key: the cues are not read)
    assert ranked["score"].round(6).tolist() == [round(0.6 * 0.8 + 0.25 * 0.5, 6), round(0.6 * 0.2, 6),
                                                 round(0.6 * 0.1, 6)]
    assert ranked["reasons"].tolist() == [["uncertain", "needs_review"], [], []]
    assert ranked["unknown_share"].tolist() == [0.0, 0.0, 0.0] and ranked["duplicates"].tolist() == [[], [], []]


class _FixedModel:
    """A stand-in category model (no needs_review, no word vocabulary) that returns fixed
    probabilities: what rank_for_review must make of any model of that shape."""

    classes_ = np.array(["商贸旅游", "城乡建设"])

    def __init__(self, proba):
        self.proba = np.asarray(proba, dtype=float)

    def predict_proba(self, docs):
        assert len(docs) == len(self.proba)
        return self.proba


class _FixedUrgency:
    def __init__(self, flags):
        self.flags = flags

    def explain(self, docs):
        return [{"possible_critical": f} for f in self.flags]


def test_fresh_ranking_tags_with_the_models_it_is_given():
    texts = [HEAT, TOUR, "路灯不亮"]
    model = _FixedModel([[0.2, 0.8], [0.2, 0.8], [0.5, 0.5]])
    ranked = rank_for_review(model, texts)  # the shipped routing data by default
    why = dict(zip(ranked["index"], ranked["reasons"]))
    # the heating appeal tagged 城乡建设 agrees with the routing data, the tour tagged so does not
    assert why == {0: [], 1: ["routing_disagrees"], 2: ["uncertain"]}
    assert ranked["unknown_share"].tolist() == [0.0, 0.0, 0.0]
    ranked = rank_for_review(model, texts, urgency=_FixedUrgency([True, False, 0]))
    assert dict(zip(ranked["index"], ranked["reasons"]))[0] == ["possible_critical"]
    ranked = rank_for_review(model, texts, router=load_router(), k=1,
                             weights={"uncertainty": 0.0, "disagreement": 1.0, "novelty": 0.0})
    # the model gives no needs_review: a signal of its own, false throughout
    assert ranked["index"].tolist() == [1] and ranked["score"].tolist() == [0.5]
    dup = rank_for_review(_FixedModel([[0.2, 0.8]] * 3), [HEAT, HEAT[:20], TOUR], threshold=0.76)
    assert len(dup) == 3 and rank_for_review(_FixedModel([[0.2, 0.8]] * 3), [HEAT, HEAT[:20], TOUR]).shape[0] == 2


def test_fresh_ranking_flags_what_the_model_itself_doubts(demo_bundle):
    model = demo_bundle.models["category"]
    texts = [HEAT, "路边有个东西，不知道归哪个部门管，麻烦看看", "无人机航拍许可证区块链算力租赁纠纷",
             TOUR * 50 + "无人机航拍许可证区块链算力租赁纠纷" * 100]  # the tail lies beyond the 1,500 characters read
    doubt = model.needs_review(model.predict_proba(texts))
    assert doubt.any()
    ranked = rank_for_review(model, texts).set_index("index")
    flagged = {i for i in ranked.index if "needs_review" in ranked.loc[i, "reasons"]}
    assert flagged == {i for i in ranked.index if doubt[i]}
    share = ranked["unknown_share"]
    assert share[2] > 0.3 and "new_vocabulary" in ranked.loc[2, "reasons"]
    assert share[0] < 0.3 and share[3] < 0.3


def test_stored_cues_flag_only_appeals_not_already_critical():
    cue = [{"cue": "燃气泄漏", "level": "critical", "negated": False}]
    tags = [tag(top=0.8, urgency="critical", urgency_cues=cue), tag(category="商贸旅游", top=0.8, urgency="urgent",
                                                                    urgency_cues=cue)]
    ranked = rank_tags([HEAT, TOUR], tags)
    assert ranked["index"].tolist() == [1, 0]
    assert ranked["reasons"].tolist() == [["possible_critical"], []]


def test_near_duplicates_are_judged_on_sublinear_character_trigrams():
    """Case does not matter, word order does (3-grams, not characters), and a phrase
    repeated over and over weighs little more than said once (sublinear counts):
    the complaint padded with five pleas stays at cosine 0.774 of the plain one."""
    assert diverse_order([0.9, 0.8], ["幸福里小区WIFI信号差", "幸福里小区wifi信号差"])[1] == {0: [1]}
    assert diverse_order([0.9, 0.8], ["甲乙丙丁戊己庚辛", "辛庚己戊丁丙乙甲"], threshold=0.1)[1] == {}
    padded = [HEAT, HEAT + "请尽快处理" * 5]
    assert diverse_order([0.9, 0.8], padded, threshold=0.77)[1] == {0: [1]}
    assert diverse_order([0.9, 0.8], padded, threshold=0.78)[1] == {}


def test_threshold_zero_groups_everything_and_k_zero_keeps_nothing():
    order, dups = diverse_order([0.2, 0.9, 0.5], ["路灯不亮", HEAT, TOUR], threshold=0.0)
    assert order.tolist() == [1] and dups == {1: [2, 0]}
    order, dups = diverse_order([0.5], [HEAT], k=0)
    assert order.tolist() == [] and dups == {}
    empty = rank_tags([HEAT, TOUR], [tag(), tag()], k=0)
    assert len(empty) == 0 and list(empty.columns)[:2] == ["index", "score"]


def test_scores_that_are_not_probabilities_still_give_an_uncertainty_in_range():
    assert margin_uncertainty([[3.0, 0.0], [0.6, 0.6]]).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("u, novelty, weights, first", [
    (0.8, 0.0, {"disagreement": 1.0}, "needs_review"),  # 0.6 × 0.8 = 0.48 < 1.0 / 2
    (0.0, 0.2, {}, "needs_review"),  # novelty 0.15 × 0.8 = 0.12 < 0.25 / 2
])
def test_reasons_are_ordered_by_their_weighted_strength(u, novelty, weights, first):
    flags = {"needs_review": np.array([True]), "routing_disagrees": np.array([False])}
    _, why = review_scores(np.array([u]), disagreement=flags, novelty=np.array([novelty]), weights=weights)
    assert why[0][0] == first and len(why[0]) == 2
