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
