"""Grouped cross-validation of the category classifier, side by side with a plain baseline."""
from __future__ import annotations

import logging
import time

import numpy as np
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC
from tqdm.auto import tqdm

from models.category import CategoryClassifier, choose_review_threshold
from training.metrics import classification_summary
from training.split import grouped_folds, near_duplicate_groups

log = logging.getLogger(__name__)

__all__ = ["baseline_classifier", "cross_validate_category", "evaluate_bundle_on", "urgency_summary"]


def baseline_classifier():
    """The plain baseline of issue #2: character 1–3-gram TF-IDF + LinearSVC."""
    return make_pipeline(TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True), LinearSVC())


def cross_validate_category(texts, y, *, model=None, n_splits=5, random_state=0, groups=None,
                            progress=True) -> dict:
    """Grouped k-fold CV: near-duplicates never straddle a split.

    Returns a report with the model's and the baseline's metrics on the same folds, the
    out-of-fold review threshold and the share of appeals it flags.
    """
    texts = list(texts)
    y = np.asarray(y, dtype=object)
    model = model if model is not None else CategoryClassifier()
    if groups is None:
        groups = near_duplicate_groups(texts)
    folds = grouped_folds(y, groups, n_splits=n_splits, random_state=random_state)
    labels = sorted(set(y))
    pred = np.empty(len(y), dtype=object)
    base_pred = np.empty(len(y), dtype=object)
    proba = np.zeros((len(y), len(labels)))
    flagged = np.zeros(len(y), dtype=bool)
    t0 = time.perf_counter()
    for tr, te in tqdm(folds, desc="grouped CV folds", disable=not progress):
        m = clone(model).fit([texts[i] for i in tr], y[tr])
        p = m.predict_proba([texts[i] for i in te])
        cols = [list(m.classes_).index(c) for c in labels]
        proba[te] = p[:, cols]
        pred[te] = m.classes_[p.argmax(1)]
        flagged[te] = m.needs_review(p)
        b = baseline_classifier().fit([texts[i] for i in tr], y[tr])
        base_pred[te] = b.predict([texts[i] for i in te])
    conf = proba.max(1)
    correct = pred == y
    report = {
        "protocol": {"folds": n_splits, "grouping": "near-duplicate groups (char 3-gram cosine >= 0.6)",
                     "n_groups": int(len(set(groups))), "random_state": random_state,
                     "seconds": round(time.perf_counter() - t0, 1)},
        "model": classification_summary(y, pred, labels, conf),
        "baseline": {"name": "char 1-3-gram TF-IDF + LinearSVC",
                     **classification_summary(y, base_pred, labels)},
        "review": {
            "share_flagged": round(float(flagged.mean()), 4),
            "accuracy_not_flagged": round(float(correct[~flagged].mean()), 4) if (~flagged).any() else None,
            "accuracy_flagged": round(float(correct[flagged].mean()), 4) if flagged.any() else None,
            "oof_threshold_for_target": choose_review_threshold(conf, correct,
                                                                target_precision=model.target_precision),
        },
    }
    report["macro_f1_gain_over_baseline"] = round(report["model"]["macro_f1"] - report["baseline"]["macro_f1"], 4)
    return report


def evaluate_bundle_on(tagger, frame, texts, *, cross_validate=False, folds=5) -> dict:
    """Score a trained bundle on labelled appeals it may not have seen.

    Category metrics when ``frame`` has ``category`` labels, urgency metrics when it has
    ``urgency`` labels; with ``cross_validate`` also a grouped CV (retraining) on the data.
    """
    report: dict = {"model_version": tagger.version, "n": len(texts), "summary": {}}
    has_cat = "category" in frame.columns and frame["category"].notna().any()
    has_urg = "urgency" in frame.columns and frame["urgency"].notna().any() and tagger.urgency is not None
    if not has_cat and not has_urg:
        raise ValueError("the data has no 'category' or 'urgency' labels to evaluate against")
    if has_cat:
        m = frame["category"].notna().to_numpy()
        sub = [t for t, k in zip(texts, m) if k]
        y = frame["category"][m].to_numpy(dtype=object)
        proba = tagger.category.predict_proba(sub)
        pred = tagger.category.classes_[proba.argmax(1)]
        labels = sorted(set(y) | set(tagger.category.classes_))
        report["category"] = classification_summary(y, pred, labels, proba.max(1))
        flagged = tagger.category.needs_review(proba)
        report["category"]["review"] = {
            "threshold": tagger.category.review_threshold_,
            "share_flagged": round(float(flagged.mean()), 4),
            "accuracy_not_flagged": round(float((pred == y)[~flagged].mean()), 4) if (~flagged).any() else None}
        report["summary"]["category_macro_f1"] = report["category"]["macro_f1"]
        report["summary"]["category_accuracy"] = report["category"]["accuracy"]
        report["summary"]["category_ece"] = report["category"]["ece"]
        if cross_validate:
            report["category_cv"] = cross_validate_category(sub, y, n_splits=folds)
            report["summary"]["category_cv_macro_f1"] = report["category_cv"]["model"]["macro_f1"]
            report["summary"]["baseline_cv_macro_f1"] = report["category_cv"]["baseline"]["macro_f1"]
    if has_urg:
        from training.urgency import evaluate_urgency_model

        m = frame["urgency"].notna().to_numpy()
        sub = [t for t, k in zip(texts, m) if k]
        sampling = frame["sampling"][m].to_numpy(dtype=object) if "sampling" in frame.columns else None
        report["urgency"] = evaluate_urgency_model(tagger.urgency, sub, frame["urgency"][m].tolist(), sampling)
        report["summary"].update(urgency_summary(report["urgency"], ""))
        if cross_validate:
            from training.urgency import cross_validate_urgency

            report["urgency_cv"] = cross_validate_urgency(sub, frame["urgency"][m].to_numpy(dtype=object), sampling,
                                                          n_splits=folds)
            report["summary"].update(urgency_summary(report["urgency_cv"], "_cv"))
            report["summary"]["keyword_cv_macro_f1"] = report["urgency_cv"]["keyword_baseline"]["macro_f1"]
    return report


def urgency_summary(rep: dict, suffix: str) -> dict:
    """The headline urgency figures of a report (``suffix`` tells CV figures apart)."""
    m = rep["model"]
    out = {f"urgency{suffix}_macro_f1": m["macro_f1"],
           f"urgency{suffix}_critical_recall": m["critical_recall"],
           f"urgency{suffix}_critical_or_urgent_recall": m["critical_or_urgent_recall"],
           f"urgency{suffix}_alert_recall": m["critical_alert"]["recall"]}
    if "prevalence_corrected" in rep:
        pc = rep["prevalence_corrected"]
        out[f"urgency{suffix}_alert_fires_on_random_draw"] = pc["critical_alert"]["fires_on_random_draw"]
        out[f"urgency{suffix}_macro_f1_prevalence_corrected"] = pc["macro_f1"]
    return out
