"""The review queue's ranking: which unlabelled appeals a human label would help most.

Every function is pure, over arrays, so the service (``GET /v1/review-queue``, from stored
predictions) and the retraining simulation (from a model's fresh probabilities) rank
alike. The contract: a higher ``score`` means a label is worth more. It adds three
signals (docs/adr/0008-label-quality-and-review-queue.md says why these, and the weights):

- **uncertainty**: ``1 - margin``, the margin between the top two category
  probabilities (margin sampling: the label most likely to move the decision boundary);
- **disagreement**: the share of the other signals that contradict the tag: the model
  flagged it ``needs_review``; a live critical risk cue fired but the urgency is not
  critical (``possible_critical``); the routing data's topic keywords point only to other
  categories than the predicted one;
- **novelty**: the share of the appeal's words the category model has never seen
  (new vocabulary: a new kind of appeal, perhaps a category the model does not know yet).

Near-duplicates add little once one of them is labelled, so the queue shows one appeal
per near-duplicate group (:func:`diverse_order`); the others are listed with it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["WEIGHTS", "REASON_THRESHOLDS", "SIGNALS", "margin_uncertainty", "proba_from_scores", "word_vocabulary",
           "unknown_share", "routing_disagreement", "possible_critical", "review_scores", "diverse_order",
           "rank_tags", "rank_for_review"]

# weights of the three signals in the score (sum 1): set by hand, checked by the simulation in ADR 0008
WEIGHTS = {"uncertainty": 0.6, "disagreement": 0.25, "novelty": 0.15}
# novelty is the unknown-word share over this (capped at 1): a quarter of the words unseen is as new as it gets
NOVELTY_FULL = 0.25
# a signal is named among an item's reasons at or above these values
REASON_THRESHOLDS = {"uncertain": 0.7, "new_vocabulary": 0.15}
SIGNALS = ("uncertain", "needs_review", "possible_critical", "routing_disagrees", "new_vocabulary")


def margin_uncertainty(proba) -> np.ndarray:
    """``1 - (p1 - p2)`` per row of class probabilities: 1 when the top two tie, 0 when one is certain.

    >>> margin_uncertainty(np.array([[0.5, 0.4, 0.1], [0.98, 0.01, 0.01]])).round(2).tolist()
    [0.9, 0.03]
    """
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(f"proba must be a 2-d array of class probabilities, got shape {p.shape}")
    if p.shape[1] == 1:
        return 1.0 - p[:, 0]
    top2 = -np.partition(-p, 1, axis=1)[:, :2]
    return np.clip(1.0 - (top2[:, 0] - top2[:, 1]), 0.0, 1.0)


def proba_from_scores(scores: list[dict | None]) -> np.ndarray:
    """A probability matrix from stored ``category_scores`` dicts (one per appeal; categories
    missing from a dict count 0; a missing dict is a uniform row).

    >>> proba_from_scores([{"a": 0.7, "b": 0.3}, {"b": 1.0}, None]).tolist()
    [[0.7, 0.3], [0.0, 1.0], [0.5, 0.5]]
    """
    names = sorted({k for s in scores if s for k in s})
    col = {k: j for j, k in enumerate(names)}
    out = np.zeros((len(scores), max(len(names), 1)))
    for i, s in enumerate(scores):
        if s:
            for k, v in s.items():
                out[i, col[k]] = float(v)
        else:
            out[i] = 1.0 / out.shape[1]
    return out


def word_vocabulary(model):
    """The words a fitted :class:`models.category.CategoryClassifier` knows (its word TF-IDF
    vocabulary) and the characters it reads (``max_chars``); (None, None) for a model
    without one, whose novelty is then 0."""
    features = getattr(model, "features_", None)
    word = getattr(features, "word_", None)
    vocab = getattr(word, "vocabulary_", None)
    return (vocab, getattr(features, "max_chars", None)) if vocab is not None else (None, None)


def unknown_share(docs, vocabulary, *, max_chars: int | None = None) -> np.ndarray:
    """Share of each text's jieba words (first ``max_chars`` characters) not in ``vocabulary``;
    0 for a text without words or when ``vocabulary`` is None.

    >>> from models.doc import as_docs
    >>> unknown_share(as_docs(["小区暖气不热", "共享单车乱停放"]), {"小区", "暖气", "不热"}).round(2).tolist()
    [0.0, 1.0]
    """
    from models.doc import as_docs

    docs = as_docs(docs)
    if vocabulary is None:
        return np.zeros(len(docs))
    out = np.zeros(len(docs))
    for i, d in enumerate(docs):
        words = d.tokens(max_chars)
        if words:
            out[i] = sum(w not in vocabulary for w in words) / len(words)
    return out


def routing_disagreement(router, categories, texts) -> np.ndarray:
    """True where the routing data's topic keywords occur only for categories other than
    the predicted one (``texts``: normalised model inputs).

    >>> from corpora.rules import load_router
    >>> routing_disagreement(load_router(), ["商贸旅游", "城乡建设", "商贸旅游"],
    ...                      ["小区暖气不热", "小区暖气不热", "导游强制购物"]).tolist()
    [True, False, False]
    """
    out = np.zeros(len(texts), dtype=bool)
    for i, (category, text) in enumerate(zip(categories, texts)):
        topics = router.topic_categories(text)
        out[i] = bool(topics) and category not in topics
    return out


def possible_critical(levels, cues) -> np.ndarray:
    """True where a live (not negated) critical cue fired but the urgency is not critical:
    the stored form of the tag's ``possible_critical`` cue alert.

    >>> fire = [{"cue": "火灾", "level": "critical", "negated": False}]
    >>> possible_critical(["routine", "critical", None], [fire, fire, []]).tolist()
    [True, False, False]
    """
    return np.array([level != "critical" and any(c.get("level") == "critical" and not c.get("negated")
                                                 for c in (cs or []))
                     for level, cs in zip(levels, cues)], dtype=bool)


def review_scores(uncertainty, *, disagreement: dict | None = None, novelty=None,
                  weights: dict | None = None) -> tuple[np.ndarray, list[list[str]]]:
    """The review score of each appeal (higher: a label helps more) and the reasons behind it.

    Parameters
    ----------
    uncertainty : array of float in [0, 1]
        :func:`margin_uncertainty` of the category probabilities.
    disagreement : dict of name -> bool array, optional
        The signals that contradict the tag (``needs_review``, ``possible_critical``,
        ``routing_disagrees``); their mean is the disagreement term.
    novelty : array of float in [0, 1], optional
        :func:`unknown_share`; scaled by ``NOVELTY_FULL`` and capped at 1.
    weights : dict, default :data:`WEIGHTS`

    Returns
    -------
    (score, reasons) : score in [0, 1] per appeal; per appeal the names of the signals
        that fired, strongest first.

    Examples
    --------
    >>> s, why = review_scores(np.array([0.9, 0.1]), disagreement={"needs_review": np.array([True, False])},
    ...                        novelty=np.array([0.0, 0.3]))
    >>> s.round(3).tolist(), why
    ([0.79, 0.21], [['uncertain', 'needs_review'], ['new_vocabulary']])
    """
    w = {**WEIGHTS, **(weights or {})}
    u = np.clip(np.asarray(uncertainty, dtype=float), 0, 1)
    n = len(u)
    flags = {k: np.asarray(v, dtype=bool) for k, v in (disagreement or {}).items()}
    for k, v in flags.items():
        if len(v) != n:
            raise ValueError(f"disagreement {k!r} has {len(v)} items, uncertainty {n}")
    d = np.mean(np.column_stack(list(flags.values())), axis=1) if flags else np.zeros(n)
    raw_nov = np.zeros(n) if novelty is None else np.asarray(novelty, dtype=float)
    nov = np.clip(raw_nov / NOVELTY_FULL, 0, 1)
    score = (w["uncertainty"] * u + w["disagreement"] * d + w["novelty"] * nov) / sum(w.values())
    reasons = []
    for i in range(n):
        fired = []
        if u[i] >= REASON_THRESHOLDS["uncertain"]:
            fired.append(("uncertain", w["uncertainty"] * u[i]))
        fired += [(k, w["disagreement"] / len(flags)) for k, v in flags.items() if v[i]]
        if raw_nov[i] >= REASON_THRESHOLDS["new_vocabulary"]:
            fired.append(("new_vocabulary", w["novelty"] * nov[i]))
        reasons.append([k for k, _ in sorted(fired, key=lambda kv: -kv[1])])
    return score, reasons


def _shingles(texts):
    """Rows of l2-normalised, sublinear character 3-gram counts (hashed: no fitted vocabulary
    or IDF, so an appeal's vector does not depend on which others are ranked with it)."""
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.preprocessing import normalize

    X = HashingVectorizer(analyzer="char", ngram_range=(3, 3), n_features=2 ** 20, alternate_sign=False,
                          norm=None, lowercase=True).transform(texts)
    X.data = 1.0 + np.log(X.data)
    return normalize(X)


def diverse_order(score, texts, *, threshold: float = 0.6, k: int | None = None):
    """Indices by ``score`` (highest first, ties by position), one per near-duplicate group.

    Walking down the ranking, an appeal whose character 3-gram cosine with an appeal
    already kept is at least ``threshold`` is not kept but listed with that appeal. Whether
    an appeal is kept depends only on those ranked above it, so the pages of a ranking
    do not change as more of it is read. ``k``: stop once ``k`` are kept.

    Returns (kept indices, {kept index: [near-duplicate indices]}).

    >>> order, dups = diverse_order([0.9, 0.8, 0.7], ["幸福里小区停水两天了请尽快恢复供水",
    ...                                              "幸福里小区停水两天了，请尽快恢复供水！", "导游强制游客购物"])
    >>> order.tolist(), dups
    ([0, 2], {0: [1]})
    """
    score = np.asarray(score, dtype=float)
    ranked = np.lexsort((np.arange(len(score)), -score))
    if len(ranked) == 0:
        return ranked, {}
    kept: list[int] = []
    dups: dict[int, list[int]] = {}
    step = max(64, 2 * (k or 0))
    start = 0
    while start < len(ranked) and (k is None or len(kept) < k):
        block = ranked[start:start + step]
        X = _shingles([texts[i] for i in block])
        K = _shingles([texts[i] for i in kept]) if kept else None
        S_block = (X @ X.T).toarray()
        S_kept = (X @ K.T).toarray() if K is not None else np.zeros((len(block), 0))
        kept_here: list[int] = []  # positions in block
        for pos, i in enumerate(block):
            if k is not None and len(kept) >= k:
                break
            sims = np.concatenate([S_kept[pos], S_block[pos, kept_here]])
            if len(sims) and sims.max() >= threshold:
                j = int(np.argmax(sims))
                leader = kept[j] if j < S_kept.shape[1] else int(block[kept_here[j - S_kept.shape[1]]])
                dups.setdefault(leader, []).append(int(i))
                continue
            kept.append(int(i))
            kept_here.append(pos)
        start += step
    return np.array(kept, dtype=int), dups


def rank_tags(texts, tags: list[dict], *, vocabulary=None, max_chars: int | None = None, router=None,
              weights: dict | None = None, threshold: float = 0.6, k: int | None = None) -> pd.DataFrame:
    """Rank appeals for review from their tags: the queue's whole ranking.

    Parameters
    ----------
    texts : sequence of str or :class:`models.doc.Doc`
        The model inputs (title and text joined).
    tags : list of dict
        Per appeal, as :class:`models.tagger.Tagger` returns them or as stored:
        ``category``, ``category_scores`` and, when known, ``needs_review``,
        ``possible_critical`` (or ``urgency`` with ``urgency_cues``, the stored form).
    vocabulary, max_chars : the words the serving model knows (:func:`word_vocabulary`).
    router : :class:`corpora.rules.Router`, optional
        Routing data for the routing disagreement (skipped when None).
    weights, threshold, k : see :func:`review_scores` and :func:`diverse_order`.

    Returns
    -------
    pandas.DataFrame
        One row per appeal kept (one per near-duplicate group), best first: ``index``,
        ``score``, ``margin`` (top-two probability margin), ``unknown_share``, ``reasons``
        (signal names), ``duplicates`` (indices of its near-duplicates).

    Examples
    --------
    >>> tags = [{"category": "城乡建设", "category_scores": {"城乡建设": 0.95, "环境保护": 0.05}},
    ...         {"category": "城乡建设", "category_scores": {"城乡建设": 0.5, "环境保护": 0.5},
    ...          "needs_review": True}]
    >>> rank_tags(["小区暖气不热", "河道有异味"], tags)[["index", "reasons"]].values.tolist()
    [[1, ['uncertain', 'needs_review']], [0, []]]
    """
    from models.doc import as_docs

    docs = as_docs(texts)
    if len(docs) != len(tags):
        raise ValueError(f"texts has {len(docs)} items but tags has {len(tags)}")
    norm = [d.text for d in docs]
    uncertainty = margin_uncertainty(proba_from_scores([t.get("category_scores") for t in tags]))
    flags = {}
    if any("needs_review" in t for t in tags):
        flags["needs_review"] = np.array([bool(t.get("needs_review")) for t in tags])
    if any("possible_critical" in t for t in tags):
        flags["possible_critical"] = np.array([bool(t.get("possible_critical")) for t in tags])
    elif any(t.get("urgency_cues") for t in tags):
        flags["possible_critical"] = possible_critical([t.get("urgency") for t in tags],
                                                       [t.get("urgency_cues") for t in tags])
    if router is not None:
        flags["routing_disagrees"] = routing_disagreement(router, [t["category"] for t in tags], norm)
    novelty = unknown_share(docs, vocabulary, max_chars=max_chars)
    score, reasons = review_scores(uncertainty, disagreement=flags, novelty=novelty, weights=weights)
    order, dups = diverse_order(score, norm, threshold=threshold, k=k)
    return pd.DataFrame({"index": order, "score": score[order], "margin": 1.0 - uncertainty[order],
                         "unknown_share": novelty[order], "reasons": [reasons[i] for i in order],
                         "duplicates": [dups.get(int(i), []) for i in order]})


def rank_for_review(model, texts, *, router=None, urgency=None, weights: dict | None = None,
                    k: int | None = None, threshold: float = 0.6) -> pd.DataFrame:
    """Rank unlabelled ``texts`` for review with a fitted category ``model`` (and optionally
    an urgency model), tagging them fresh: the retraining simulation's queue, ranked as
    ``GET /v1/review-queue`` ranks stored tags (:func:`rank_tags`; ``router``: default the
    shipped routing data)."""
    from corpora.rules import default_router
    from models.doc import as_docs

    docs = as_docs(texts)
    proba = model.predict_proba(docs)
    classes = [str(c) for c in model.classes_]
    review = model.needs_review(proba) if hasattr(model, "needs_review") else np.zeros(len(docs), dtype=bool)
    tags = [{"category": classes[int(p.argmax())], "category_scores": dict(zip(classes, p.tolist())),
             "needs_review": bool(r)} for p, r in zip(proba, review)]
    if urgency is not None:
        for t, e in zip(tags, urgency.explain(docs)):
            t["possible_critical"] = bool(e["possible_critical"])
    vocab, max_chars = word_vocabulary(model)
    return rank_tags(docs, tags, vocabulary=vocab, max_chars=max_chars, router=router or default_router(),
                     weights=weights, threshold=threshold, k=k)
