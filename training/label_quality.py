"""Label quality: likely label errors in training data, found by confident learning.

Confident learning (Northcutt, Jiang & Chuang 2021, the ``cleanlab`` package) compares
each example's given label with a model's *out-of-fold* predicted probabilities: per
class it learns how confident the model is on examples that really carry that label
(the class's average self-confidence), counts the joint of given and likely-true labels,
and flags as many examples as the estimated noise rates say are mislabelled, those the
model contradicts most first. It needs probabilities from a model that did not train on
the example, so :func:`find_label_issues` fits a fast model (character 1–3-gram TF-IDF,
:class:`models.charngrams.CharNgramTfidf`, and a logistic-loss linear model by SGD) on
grouped folds: near-duplicates (:mod:`corpora.dedup`) sit wholly in one fold, so a
re-posted appeal cannot vouch for its own label.

Suspects are listed for review (``GET /v1/review-queue?kind=suspect``), never dropped:
a "suspect" may be a hard case the fast model gets wrong, and removing data silently is
how a model quietly forgets a category. Measured figures: docs/adr/0008.

Command line (the figures of ADR 0008, real data; prints counts, never texts)::

    python -m training.label_quality --data ../shared/corpora/tipdm2020c/appeals_labelled_dev.csv --flip 0.05
"""
from __future__ import annotations

import argparse
import logging
import time
import warnings

import numpy as np
import pandas as pd

__all__ = ["find_label_issues", "flip_labels", "out_of_fold_proba", "SUSPECT_COLUMNS"]

log = logging.getLogger(__name__)

SUSPECT_COLUMNS = ["index", "source", "given", "suggested", "score", "suggested_score"]


def _fast_model(random_state):
    from sklearn.linear_model import SGDClassifier

    # logistic loss: probabilities; class-balanced so small categories are not drowned out
    return SGDClassifier(loss="log_loss", alpha=1e-5, class_weight="balanced", random_state=random_state)


def out_of_fold_proba(docs, y_idx: np.ndarray, n_classes: int, *, groups: np.ndarray, folds: int = 3,
                      random_state=0, max_chars: int | None = None) -> np.ndarray:
    """Out-of-fold class probabilities (rows sum to 1, columns ``0 .. n_classes - 1``) of
    the fast text model, on stratified folds that keep each group of ``groups`` together.

    The TF-IDF vocabulary and weights are fitted once on all texts (no labels are used);
    only the classifier is refitted per fold.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    from models.charngrams import CharNgramTfidf

    X = CharNgramTfidf(min_df=2, max_chars=max_chars).fit_transform(docs)
    proba = np.zeros((len(y_idx), n_classes))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=random_state)
    with warnings.catch_warnings():  # a class rarer than the folds is spread as well as it can be
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        splits = list(splitter.split(X, y_idx, groups))
    for train, test in splits:
        have = np.unique(y_idx[train])
        if len(have) == 1:  # one class left in the fold: it is all the model can say
            proba[np.ix_(test, have)] = 1.0
            continue
        model = _fast_model(random_state).fit(X[train], y_idx[train])
        proba[np.ix_(test, model.classes_)] = model.predict_proba(X[test])
    # a class absent from a fold's training part has probability 0 there; keep rows valid
    proba = np.clip(proba, 1e-6, None)
    return proba / proba.sum(1, keepdims=True)


def find_label_issues(texts, labels, *, sources=None, groups=None, folds: int = 3, random_state=0,
                      filter_by: str = "prune_by_noise_rate", max_chars: int | None = 1500) -> pd.DataFrame:
    """Likely label errors among ``labels`` of ``texts``, worst first.

    Parameters
    ----------
    texts : sequence of str or :class:`models.doc.Doc`
        Model inputs (title and text joined). Docs are reused as given (pass the same Docs
        to the category model and each text is normalised once).
    labels : sequence of str
        The given labels (categories). Missing labels are not allowed.
    sources : sequence, optional
        Where each row came from (e.g. ``appeal:ID`` or ``file:ROW``); copied to the
        ``source`` column of its suspect row. Default: the row index.
    groups : array of int, optional
        Near-duplicate group of each text (:func:`corpora.dedup.near_duplicate_groups`);
        computed when not given (~9 s on 5,700 appeals: pass them if you have them).
    folds : int, default 3
        Grouped cross-validation folds for the out-of-fold probabilities.
    random_state : int, default 0
    filter_by : str, default "prune_by_noise_rate"
        cleanlab's rule for how many to flag (``cleanlab.filter.find_label_issues``).
    max_chars : int or None, default 1500
        The fast model reads the first ``max_chars`` characters (the category model's window).

    Returns
    -------
    pandas.DataFrame
        One row per suspect, lowest ``score`` first, columns ``index`` (position in the
        input), ``source``, ``given``, ``suggested`` (the label the model prefers),
        ``score`` (cleanlab's label quality: the out-of-fold probability of the given
        label, 0–1, low = likely wrong) and ``suggested_score`` (probability of the
        suggested label). Rows whose label has fewer than ``folds`` examples are never
        flagged: the model cannot learn such a label out of fold (a just-added category).

    Examples
    --------
    >>> heat = ["小区暖气不热家里很冷", "暖气片冰凉供暖不达标", "供热公司不开暖气", "冬季采暖温度太低",
    ...         "家里暖气一直不热", "暖气不热老人受冻"]
    >>> tour = ["导游强制游客购物", "景区门票价格太贵", "旅行社欺骗游客", "景区宰客乱收费",
    ...         "旅游团强制消费", "导游辱骂游客"]
    >>> texts = [f"{t}，第{i}次反映" for i in range(4) for t in heat + tour]
    >>> labels = (["城乡建设"] * 6 + ["商贸旅游"] * 6) * 4
    >>> labels[0] = "商贸旅游"  # a heating complaint mislabelled
    >>> issues = find_label_issues(texts, labels, groups=np.arange(len(texts)))
    >>> first = issues.iloc[0]
    >>> int(first["index"]), first["given"], first["suggested"]
    (0, '商贸旅游', '城乡建设')
    """
    import cleanlab.filter
    import cleanlab.rank

    from corpora.dedup import near_duplicate_groups
    from models.doc import as_docs

    docs = as_docs(texts)
    given = np.asarray(labels, dtype=object)
    if len(docs) != len(given):
        raise ValueError(f"texts has {len(docs)} items but labels has {len(given)}")
    if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in given):
        raise ValueError("labels hold missing values; give only labelled rows")
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds!r}")
    sources = np.arange(len(docs)) if sources is None else np.asarray(list(sources), dtype=object)
    if len(sources) != len(docs):
        raise ValueError(f"sources has {len(sources)} items but texts has {len(docs)}")
    classes, y_idx, counts = np.unique(given.astype(str), return_inverse=True, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"need at least 2 labels to judge label quality, got {[str(c) for c in classes]}")
    groups = near_duplicate_groups([d.text for d in docs]) if groups is None else np.asarray(groups)
    if len(groups) != len(docs):
        raise ValueError(f"groups has {len(groups)} items but texts has {len(docs)}")
    if len(np.unique(groups)) < folds:
        raise ValueError(f"{len(np.unique(groups))} near-duplicate groups cannot fill {folds} folds")
    t0 = time.perf_counter()
    proba = out_of_fold_proba(docs, y_idx, len(classes), groups=groups, folds=folds, random_state=random_state,
                              max_chars=max_chars)
    found = cleanlab.filter.find_label_issues(y_idx, proba, filter_by=filter_by,
                                              return_indices_ranked_by="self_confidence", n_jobs=1)
    found = found[counts[y_idx[found]] >= folds]
    quality = cleanlab.rank.get_label_quality_scores(y_idx, proba, method="self_confidence")
    suggested = proba.argmax(1)
    out = pd.DataFrame({"index": found.astype(int), "source": sources[found], "given": classes[y_idx[found]],
                        "suggested": classes[suggested[found]], "score": quality[found].round(4),
                        "suggested_score": proba[found, suggested[found]].round(4)}, columns=SUSPECT_COLUMNS)
    out = out.sort_values(["score", "index"], kind="stable").reset_index(drop=True)
    log.info("label quality: %d suspects among %d labels (%d classes) in %.1f s", len(out), len(docs),
             len(classes), time.perf_counter() - t0)
    return out


def flip_labels(labels, fraction: float, *, random_state=0) -> tuple[np.ndarray, np.ndarray]:
    """A copy of ``labels`` with ``fraction`` of them changed to another label drawn at
    random, and the positions changed (sorted): the sanity check of ADR 0008.

    >>> y, flipped = flip_labels(["a", "b"] * 10, 0.1, random_state=0)
    >>> len(flipped), all(y[i] != ["a", "b"][i % 2] for i in flipped)
    (2, True)
    """
    y = np.asarray(labels, dtype=object).copy()
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    classes = np.unique(y.astype(str))
    rng = np.random.default_rng(random_state)
    flipped = np.sort(rng.choice(len(y), size=round(fraction * len(y)), replace=False))
    for i in flipped:
        y[i] = rng.choice([c for c in classes if c != y[i]])
    return y, flipped


def main(argv=None) -> int:
    from corpora.dedup import near_duplicate_groups
    from corpora.records import appeal_texts, read_appeals
    from models.doc import as_docs

    ap = argparse.ArgumentParser(prog="python -m training.label_quality", description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="a labelled appeals file (category column)")
    ap.add_argument("--flip", type=float, default=0.0, help="also flip this share of labels at random and "
                                                            "report precision / recall at finding them")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=1, help="repeat the flip check with this many seeds")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log.info("training.label_quality %s", vars(args))
    frame = read_appeals(args.data).frame
    frame = frame[frame["category"].notna()].reset_index(drop=True)
    t0 = time.perf_counter()
    docs = as_docs(appeal_texts(frame))
    groups = near_duplicate_groups([d.text for d in docs])
    t_groups = time.perf_counter() - t0
    y = frame["category"].to_numpy(dtype=object)
    t1 = time.perf_counter()
    issues = find_label_issues(docs, y, groups=groups, folds=args.folds)
    t_find = time.perf_counter() - t1
    print(f"{len(y)} labelled appeals: {len(issues)} suspects ({len(issues) / len(y):.1%}); "
          f"{t_find:.1f} s (+ {t_groups:.1f} s near-duplicate groups, normalising)")
    print("suspects by given -> suggested:", issues.groupby(["given", "suggested"]).size()
          .sort_values(ascending=False).head(8).to_dict())
    for seed in range(args.seeds if args.flip else 0):
        noisy, flipped = flip_labels(y, args.flip, random_state=seed)
        t1 = time.perf_counter()
        found = find_label_issues(docs, noisy, groups=groups, folds=args.folds, random_state=seed)
        hit = int(np.isin(found["index"], flipped).sum())
        # flagged rows that were not flipped but are suspects of the unflipped labels too
        already = int((~np.isin(found["index"], flipped) & np.isin(found["index"], issues["index"])).sum())
        print(f"seed {seed}: flipped {len(flipped)} ({args.flip:.0%}); flagged {len(found)}, of which flipped {hit}: "
              f"precision {hit / max(len(found), 1):.3f}, recall {hit / max(len(flipped), 1):.3f} "
              f"(chance precision {len(flipped) / len(y):.3f}); {already} of the other {len(found) - hit} "
              f"are suspects without flipping too; {time.perf_counter() - t1:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
