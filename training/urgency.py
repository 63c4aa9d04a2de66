"""Train and evaluate the urgency model, side by side with a keyword-only grader."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import clone
from tqdm.auto import tqdm

from corpora.records import appeal_texts
from corpora.text import normalise
from models.registry import data_hash
from models.urgency import LEVELS, UrgencyModel, default_cues
from training.metrics import classification_summary
from training.split import grouped_folds, near_duplicate_groups

log = logging.getLogger(__name__)

__all__ = ["keyword_grade", "train_urgency", "cross_validate_urgency", "evaluate_urgency_model"]


def keyword_grade(texts) -> np.ndarray:
    """Keyword-only baseline: any live critical cue → critical; any live urgent cue → urgent."""
    lex = default_cues()
    out = []
    for t in texts:
        live = {c["level"] for c in lex.find(normalise(t)) if not c["negated"]}
        out.append("critical" if "critical" in live else "urgent" if "urgent" in live else "routine")
    return np.array(out, dtype=object)


def _summary(y, pred, alert=None) -> dict:
    s = classification_summary(y, pred, list(LEVELS))
    y, pred = np.asarray(y, dtype=object), np.asarray(pred, dtype=object)
    up, crit = y != "routine", y == "critical"
    s["critical_recall"] = s["per_class"]["critical"]["recall"]
    s["critical_or_urgent_recall"] = round(float((pred[up] != "routine").mean()), 4) if up.any() else None
    if alert is not None:
        caught = (pred == "critical") | np.asarray(alert, dtype=bool)
        s["critical_alert"] = {
            "recall": round(float(caught[crit].mean()), 4) if crit.any() else None,
            "share_of_appeals_alerted": round(float(caught.mean()), 4),
            "share_of_random_draw_alerted": None,
            "precision": round(float(crit[caught].mean()), 4) if caught.any() else None}
    return s


def _explained(model, texts):
    ex = model.explain(texts)
    return (np.array([e["urgency"] for e in ex], dtype=object),
            np.array([e["possible_critical"] for e in ex], dtype=bool))


def evaluate_urgency_model(model, texts, y) -> dict:
    """Metrics of a fitted model on labelled texts, with the keyword baseline alongside."""
    pred, alert = _explained(model, texts)
    out = _summary(y, pred, alert)
    out["operating_point"] = _operating_point(model)
    out["keyword_baseline"] = _summary(y, keyword_grade(texts))
    return out


def cross_validate_urgency(texts, y, sampling=None, *, model=None, n_splits=5, random_state=0,
                           progress=True) -> dict:
    """Grouped k-fold CV of the urgency model and the keyword baseline on the same folds."""
    y = np.asarray(y, dtype=object)
    model = model if model is not None else UrgencyModel(random_state=random_state)
    groups = near_duplicate_groups(texts)
    folds = grouped_folds(y, groups, n_splits=n_splits, random_state=random_state)
    pred = np.empty(len(y), dtype=object)
    alert = np.zeros(len(y), dtype=bool)
    for tr, te in tqdm(folds, desc="urgency CV folds", disable=not progress):
        m = clone(model).fit([texts[i] for i in tr], y[tr])
        pred[te], alert[te] = _explained(m, [texts[i] for i in te])
    report = {
        "protocol": {"folds": n_splits, "grouping": "near-duplicate groups", "n": int(len(y)),
                     "operating_point": {
                         "level": "thresholds maximising out-of-fold macro-F1",
                         "critical_alert": f"critical score at out-of-fold critical recall >= {model.critical_recall}",
                         "chosen_on": "out-of-fold predictions inside each training fold"}},
        "model": _summary(y, pred, alert),
        "keyword_baseline": _summary(y, keyword_grade(texts)),
    }
    if sampling is not None:
        sampling = np.asarray(sampling, dtype=object)
        report["by_sampling"] = {s: _summary(y[sampling == s], pred[sampling == s])["macro_f1"]
                                 for s in sorted(set(sampling))}
        rnd = sampling == "random"
        if rnd.any():
            caught = (pred == "critical") | alert
            report["model"]["critical_alert"]["share_of_random_draw_alerted"] = round(float(caught[rnd].mean()), 4)
            report["random_draw_rates"] = {
                "gold": {lev: round(float((y[rnd] == lev).mean()), 4) for lev in LEVELS},
                "predicted": {lev: round(float((pred[rnd] == lev).mean()), 4) for lev in LEVELS}}
    return report


def _operating_point(model) -> dict:
    return {"critical_threshold": round(model.critical_threshold_, 4),
            "urgent_threshold": round(model.urgent_threshold_, 4),
            "alert_threshold": round(model.alert_threshold_, 4),
            "critical_recall_target": model.critical_recall,
            "oof_macro_f1": round(model.oof_macro_f1_, 4)}


def train_urgency(frame: pd.DataFrame, *, evaluate=True, folds=5, random_state=0, progress=True):
    """Fit the urgency model on rows with an ``urgency`` label; returns (model, metrics, info)."""
    if "urgency" not in frame.columns:
        raise ValueError("urgency data has no 'urgency' column (critical / urgent / routine)")
    lab = frame[frame["urgency"].notna()].reset_index(drop=True)
    bad = sorted(set(lab["urgency"]) - set(LEVELS))
    if bad:
        raise ValueError(f"unknown urgency labels {bad}; allowed: {list(LEVELS)}")
    texts = appeal_texts(lab)
    y = lab["urgency"].to_numpy(dtype=object)
    sampling = lab["sampling"].tolist() if "sampling" in lab.columns else None
    model = UrgencyModel(random_state=random_state)
    metrics = {}
    if evaluate:
        log.info("urgency: grouped %d-fold cross-validation on %d appeals", folds, len(texts))
        metrics["urgency_cv"] = cross_validate_urgency(texts, y, sampling, model=model, n_splits=folds,
                                                       random_state=random_state, progress=progress)
    log.info("fitting the urgency model on %d appeals", len(texts))
    model.fit(texts, y)
    info = {"n": len(texts), "sha256": data_hash(texts, y), "operating_point": _operating_point(model)}
    return model, metrics, info
