"""Urgency behaviour that a change must not lose (issue 13): a negated cue ("经检查没有燃气泄漏")
is reported but counts for nothing — not in the features, not in the score, not in the alert,
not in the reason — and the reason names the live cues in the order the level calls for.

Each test was checked against a deliberate breakage of models/urgency.py (see the report of
issue 13): negated cues counted as features, the alert raised by a negated critical cue,
the reason blanked or its order lost.
"""
import numpy as np
import pytest

from corpora.text import normalise
from models.urgency import UrgencyModel, load_cues

LEX = load_cues()

# A model whose character n-grams read only the first 8 characters (max_chars=8) while the
# cues read the whole text: texts that share their first 8 characters differ only by their
# cues, so what a cue adds to the score is seen exactly. alert_budget=1.0: the alert may
# fire on every appeal, so its cue path decides (alert_cue_threshold_ is the lowest score).
PREFIX = "请问公交线路怎么调整，另外"          # 8+ characters the n-grams see, no risk cue
NEGATED = PREFIX + "经检查没有发现煤气味"       # the gas cue, negated
NEUTRAL = PREFIX + "经检查没有发现问题"         # no gas cue at all
LIVE = PREFIX + "楼道里发现煤气味"             # the gas cue, live


@pytest.fixture(scope="module")
def windowed():
    X = ["楼道里有很浓的煤气味", "暖气不热已经三天", "建议增加公交线路"] * 6
    return UrgencyModel(threshold_folds=3, max_chars=8, alert_budget=1.0).fit(X, ["critical", "urgent", "routine"] * 6)


@pytest.fixture(scope="module")
def demo_model(demo_frame):
    from corpora.records import appeal_texts

    return UrgencyModel().fit(appeal_texts(demo_frame), demo_frame["urgency"].to_numpy(dtype=object))


def _found(text):
    return LEX.find(normalise(text))


def test_the_texts_hold_the_cues_they_are_meant_to():
    """The premises of the tests below: the same cues, but for the gas cue and its negation."""
    def cues(text):
        return [(c["cue"], c["negated"]) for c in _found(text)]

    assert cues(NEGATED) == [("长期", False), ("燃气泄漏", True)]
    assert cues(NEUTRAL) == [("长期", False)]
    assert cues(LIVE) == [("长期", False), ("燃气泄漏", False)]
    assert normalise(NEGATED)[:8] == normalise(NEUTRAL)[:8] == normalise(LIVE)[:8]


@pytest.mark.parametrize("negated, live", [("经检查没有燃气泄漏", "经检查有燃气泄漏"),
                                           ("楼道里并没有煤气味", "楼道里有很浓的煤气味"),
                                           ("消防员说没有起火", "消防员说已经起火")], ids=["gas", "gas-smell", "fire"])
def test_a_negated_cue_adds_nothing_to_the_features(negated, live):
    found = _found(negated)
    assert found and all(c["negated"] for c in found), found  # reported, as negated
    row = LEX.features([found])[0]
    assert not row.any(), dict(zip(np.array(LEX.feature_names)[row > 0], row[row > 0]))
    (cue,) = {c["cue"] for c in found}
    (kind,) = {c["kind"] for c in found}
    live_row = LEX.features([_found(live)])[0]
    names = LEX.feature_names
    assert live_row[names.index(f"{kind}:{cue}")] == pytest.approx(np.log(2))
    assert live_row[names.index(f"kind:{kind}")] > 0


def test_a_negated_cue_adds_nothing_to_the_critical_score(windowed):
    """Same first 8 characters: the negated gas cue scores exactly as no gas cue, the live one higher."""
    neg, neutral, live = windowed.predict_proba([NEGATED, NEUTRAL, LIVE])[:, 0]
    assert neg == pytest.approx(neutral, abs=1e-12), (neg, neutral)
    assert live > neutral + 0.05, (live, neutral)


def test_a_negated_critical_cue_alone_does_not_raise_the_alert(windowed):
    neg, live = windowed.explain([NEGATED, LIVE])
    # premises: the cue path of the alert is open to the negated text's score, nothing else fires
    assert windowed.alert_threshold_ == np.inf
    assert neg["critical_score"] >= windowed.alert_cue_threshold_
    assert neg["urgency"] != "critical" and live["urgency"] != "critical"
    assert live["possible_critical"] is True  # the live cue raises it
    assert neg["possible_critical"] is False, neg


def test_the_reason_names_the_live_cue_and_never_a_negated_one(demo_model, windowed):
    (gas,) = demo_model.explain(["楼道里有很浓的煤气味，现在很危险"])
    assert gas["urgency"] in {"critical", "urgent"}
    assert gas["urgency_reason"].startswith(("特急：燃气泄漏", "紧急：燃气泄漏")), gas["urgency_reason"]
    for model in (demo_model, windowed):
        neg, live = model.explain([NEGATED, LIVE])
        assert "燃气泄漏" not in neg["urgency_reason"], neg["urgency_reason"]
        assert "燃气泄漏" in live["urgency_reason"], live["urgency_reason"]


_RANK = {"critical": 0, "urgent": 1, "up": 2, "down": 3}
_LABEL = {"critical": "特急", "urgent": "紧急", "routine": "一般"}


@pytest.mark.parametrize("text", ["去年曾经发生过火灾，建议增设消防设施",
                                  "请问公交线路怎么调整，另外楼道里发现煤气味",
                                  "楼道里有很浓的煤气味，现在很危险",
                                  "小区暖气不热已经三天了，今天家里只有十二度，请问怎么办"],
                         ids=["past-fire", "question-gas", "gas-danger", "heating"])
def test_the_reason_lists_the_live_cues_in_the_order_of_the_level(demo_model, text):
    """Routine: the cues that point down (a question, a plan, a past event) first; otherwise the
    strongest first. The names are the live cues' own, at most four."""
    (e,) = demo_model.explain([text])
    live = [c for c in e["urgency_cues"] if not c["negated"]]
    level_of = {c["cue"]: c["level"] for c in live}
    label, _, listed = e["urgency_reason"].partition("：")
    assert label == _LABEL[e["urgency"]]
    names = listed.split("、")
    assert len(names) == min(4, len(level_of)) and set(names) <= set(level_of), (names, level_of)
    rank = [_RANK[level_of[n]] for n in names]
    if e["urgency"] == "routine":
        rank = [-1 if r == 3 else r for r in rank]
    assert rank == sorted(rank), (e["urgency"], names)


def test_a_routine_reason_leads_with_the_cues_that_point_down(demo_model):
    (e,) = demo_model.explain(["去年曾经发生过火灾，建议增设消防设施"])
    assert e["urgency"] == "routine" and not e["possible_critical"]
    assert any(c["cue"] == "火灾" and not c["negated"] for c in e["urgency_cues"])  # a live critical cue too
    assert e["urgency_reason"].startswith("一般：过去事件"), e["urgency_reason"]
    assert e["urgency_reason"].index("火灾") > e["urgency_reason"].index("规划请求")
