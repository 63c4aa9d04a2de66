"""The labelled hotspot pairs (corpora/eval/hotspot_pairs.csv) and their evaluator."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training import hotspot_pairs as hp

PAIRS = pd.read_csv(hp.PAIRS_FILE, dtype={"id_a": str, "id_b": str})


def test_label_file_shape():
    assert list(PAIRS.columns) == ["source_a", "id_a", "source_b", "id_b", "label", "reason"]
    assert len(PAIRS) >= 300
    assert set(PAIRS["label"]) == {0, 1}
    share = PAIRS["label"].mean()
    assert 0.4 <= share <= 0.6, share
    assert set(PAIRS["source_a"]) | set(PAIRS["source_b"]) <= set(hp.SOURCES)
    for label, reasons in hp.REASONS.items():
        assert set(PAIRS.loc[PAIRS["label"] == label, "reason"]) <= set(reasons)


def test_no_duplicate_or_self_pairs():
    a = list(zip(PAIRS["source_a"], PAIRS["id_a"]))
    b = list(zip(PAIRS["source_b"], PAIRS["id_b"]))
    keys = [tuple(sorted(p)) for p in zip(a, b)]
    assert len(set(keys)) == len(keys)
    assert all(x != y for x, y in zip(a, b))


def test_no_text_in_the_label_files():
    for path in (hp.PAIRS_FILE, hp.CANDIDATES_FILE):
        text = path.read_text(encoding="utf-8")
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in text), f"{path} holds Chinese text"


def test_pairs_file_is_the_candidates_marked_for_evaluation():
    cand = pd.read_csv(hp.CANDIDATES_FILE, dtype={"id_a": str, "id_b": str, "label": "Int64"})
    kept = cand[cand["in_eval"] == 1].reset_index(drop=True)
    assert kept[["source_a", "id_a", "source_b", "id_b"]].equals(PAIRS[["source_a", "id_a", "source_b", "id_b"]])
    assert (kept["label"].astype(int) == PAIRS["label"]).all()
    assert cand.loc[cand["label"].isna(), "reason"].eq("unsure").all()


@pytest.mark.skipif(not hp.shared_available(), reason="../shared/corpora (the real corpus) is absent")
def test_ids_resolve_to_real_appeals():
    pairs = hp.load_pairs()
    assert len(pairs) == len(PAIRS)
    assert pairs["text_a"].str.len().gt(0).all() and pairs["text_b"].str.len().gt(0).all()
    frame = hp.pair_frame(pairs)
    assert frame["id"].is_unique
    assert set(frame["id"]) == set(pairs["uid_a"]) | set(pairs["uid_b"])
    assert {"id", "time", "text", "district", "user"} <= set(frame.columns)


# --- the evaluator, on a tiny hand-made set (no real data) ---------------------------------

def _toy():
    frame = pd.DataFrame({"id": ["a1", "a2", "a3", "b1", "b2", "c1"],
                          "time": [None] * 6, "text": ["x"] * 6, "district": [None] * 6, "user": [None] * 6})
    truth = {"a1": 0, "a2": 0, "a3": 0, "b1": 1, "b2": 1, "c1": 2}
    ids = frame["id"].tolist()
    rows = [{"uid_a": x, "uid_b": y, "label": int(truth[x] == truth[y]), "reason": "toy"}
            for i, x in enumerate(ids) for y in ids[i + 1:]]
    return frame, pd.DataFrame(rows), truth


def test_perfect_grouping_scores_one():
    frame, pairs, truth = _toy()
    s = hp._score(pairs, frame, lambda f: np.array([truth[i] for i in f["id"]]))
    assert s["precision"] == 1.0 and s["recall"] == 1.0 and s["fp"] == 0 and s["fn"] == 0
    assert s["same"] == 4 and s["pairs"] == 15


def test_one_big_group_has_full_recall_and_precision_equal_to_the_same_share():
    frame, pairs, _ = _toy()
    s = hp._score(pairs, frame, lambda f: np.zeros(len(f), dtype=int))
    assert s["recall"] == 1.0
    assert s["precision"] == pytest.approx(pairs["label"].mean(), abs=1e-4)


def test_singletons_have_zero_recall_and_no_precision():
    frame, pairs, _ = _toy()
    s = hp._score(pairs, frame, lambda f: np.arange(len(f)))
    assert s["recall"] == 0.0 and s["precision"] is None and s["predicted_same"] == 0


def test_wilson_interval_brackets_the_estimate():
    s = hp.pairwise_scores([1] * 9 + [0], [True] * 10)
    lo, hi = s["precision_ci95"]
    assert lo < 0.9 < hi <= 1.0


def test_group_fn_must_return_one_id_per_row():
    frame, pairs, _ = _toy()
    with pytest.raises(ValueError):
        hp._score(pairs, frame, lambda f: np.zeros(2))


def test_reference_groupers_on_a_toy_frame():
    frame = pd.DataFrame({"id": list("abc"), "text": ["小区暖气不热，家里很冷，请尽快处理", "小区暖气不热，家里很冷，请尽快处理！",
                                                      "导游强制购物"]})
    g = hp.jaccard_groups(frame, 0.3)
    assert g[0] == g[1] != g[2]
    t = hp.tfidf_groups(frame)
    assert t[0] == t[1] != t[2]
