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
from models.urgency import LEVELS, UrgencyModel, default_cues, wilson
from training.metrics import classification_summary
from training.split import grouped_folds, near_duplicate_groups

log = logging.getLogger(__name__)

__all__ = ["keyword_grade", "train_urgency", "cross_validate_urgency", "evaluate_urgency_model", "prevalence_corrected"]


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
            "recall_ci95": wilson(caught[crit].sum(), crit.sum()),
            "share_of_appeals_alerted": round(float(caught.mean()), 4),
            "precision": round(float(crit[caught].mean()), 4) if caught.any() else None}
    return s


def prevalence_corrected(y, pred, alert, sampling, strata) -> dict | None:
    """Figures for the appeals a hotline receives, not for the enriched labelled mix.

    The labelled rows come from draws that over-sample risky appeals (``sampling``); only
    the ``random`` draw is a plain sample of the stream. The screens picked appeals by
    their words, so rows are put in ``strata`` by words too (the keyword grader's level:
    a live critical cue, an urgent cue, neither). Within a stratum the draws are pooled
    (assumed alike given their words); the strata are weighted by their share of the
    random draw. This gives the confusion matrix of the real stream: its macro-F1,
    per-level precision and recall, predicted shares, and the alert's firing rate and
    precision. The random draw's own firing rate is beside it, measured directly with a
    95% interval. Returns None when there is no random draw.

    Examples
    --------
    >>> y = np.array(["critical", "urgent", "routine", "routine", "critical", "urgent"], dtype=object)
    >>> pred = np.array(["critical", "urgent", "routine", "urgent", "urgent", "urgent"], dtype=object)
    >>> s = np.array(["random"] * 4 + ["critical-screen"] * 2, dtype=object)
    >>> strata = np.array(["critical", "urgent", "routine", "routine", "critical", "urgent"], dtype=object)
    >>> r = prevalence_corrected(y, pred, np.zeros(6, bool), s, strata)
    >>> r["stratum_share"], r["predicted_share"]["critical"], r["per_class"]["critical"]["recall"]
    ({'critical': 0.25, 'routine': 0.5, 'urgent': 0.25}, 0.125, 0.5)
    """
    y, pred = np.asarray(y, dtype=object), np.asarray(pred, dtype=object)
    sampling, strata = np.asarray(sampling, dtype=object), np.asarray(strata, dtype=object)
    rnd = sampling == "random"
    if not rnd.any():
        return None
    caught = (pred == "critical") | np.asarray(alert, dtype=bool)
    joint = np.zeros((len(LEVELS), len(LEVELS)))  # rows true, columns predicted, as shares of the stream
    fires = crit_caught = 0.0
    shares = {}
    for st in sorted(set(strata[rnd])):
        w, rows = (strata[rnd] == st).mean(), strata == st
        shares[str(st)] = round(float(w), 4)
        for i, t in enumerate(LEVELS):
            for j, p in enumerate(LEVELS):
                joint[i, j] += w * ((y[rows] == t) & (pred[rows] == p)).mean()
        fires += w * caught[rows].mean()
        crit_caught += w * (caught[rows] & (y[rows] == "critical")).mean()
    per_class, f1s = {}, []
    for i, lev in enumerate(LEVELS):
        tp, pp, tt = joint[i, i], joint[:, i].sum(), joint[i, :].sum()
        prec = tp / pp if pp else 0.0
        rec = tp / tt if tt else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per_class[lev] = {"precision": round(float(prec), 4), "recall": round(float(rec), 4), "f1": round(float(f1), 4)}
        if tt:
            f1s.append(f1)
    return {
        "method": "strata by the keyword grader's level, weighted by their share of the random draw; "
                  "draws pooled within a stratum",
        "n_random": int(rnd.sum()),
        "stratum_share": shares,
        "gold_share": {lev: round(float(joint[i, :].sum()), 4) for i, lev in enumerate(LEVELS)},
        "predicted_share": {lev: round(float(joint[:, i].sum()), 4) for i, lev in enumerate(LEVELS)},
        "macro_f1": round(float(np.mean(f1s)), 4),
        "per_class": per_class,
        "critical_alert": {
            "fires_on": round(float(fires), 4),
            "precision": round(float(crit_caught / fires), 4) if fires else None,
            "fires_on_random_draw": round(float(caught[rnd].mean()), 4),
            "fires_on_random_draw_ci95": wilson(caught[rnd].sum(), rnd.sum())},
    }


def _explained(model, texts):
    ex = model.explain(texts)
    return (np.array([e["urgency"] for e in ex], dtype=object),
            np.array([e["possible_critical"] for e in ex], dtype=bool))


def _draw_figures(report: dict, keywords, y, pred, alert, sampling) -> None:
    """Add per-draw and prevalence-corrected figures to ``report`` (when draws are known);
    ``keywords``, the keyword grader's levels, are the strata of the correction."""
    if sampling is None:
        return
    sampling = np.asarray(sampling, dtype=object)
    report["by_sampling"] = {s: _summary(y[sampling == s], pred[sampling == s], alert[sampling == s])
                             for s in sorted(set(sampling))}
    corrected = prevalence_corrected(y, pred, alert, sampling, keywords)
    if corrected is not None:
        report["prevalence_corrected"] = corrected


def evaluate_urgency_model(model, texts, y, sampling=None) -> dict:
    """Metrics of a fitted model on labelled texts, with the keyword baseline alongside;
    per draw and corrected for prevalence when ``sampling`` is given."""
    y = np.asarray(y, dtype=object)
    pred, alert = _explained(model, texts)
    keywords = keyword_grade(texts)
    out = {"model": _summary(y, pred, alert), "operating_point": _operating_point(model),
           "keyword_baseline": _summary(y, keywords)}
    _draw_figures(out, keywords, y, pred, alert, sampling)
    return out


def cross_validate_urgency(texts, y, sampling=None, *, model=None, n_splits=5, random_state=0,
                           progress=True) -> dict:
    """Grouped k-fold CV of the urgency model and the keyword baseline on the same folds.

    Each fold's model chooses its own operating point (inner out-of-fold predictions on
    its training rows, the alert's budget on their random draw), so the held-out fold
    judges the whole procedure.
    """
    y = np.asarray(y, dtype=object)
    sampling = None if sampling is None else np.asarray(sampling, dtype=object)
    model = model if model is not None else UrgencyModel(random_state=random_state)
    groups = near_duplicate_groups(texts)
    folds = grouped_folds(y, groups, n_splits=n_splits, random_state=random_state)
    pred = np.empty(len(y), dtype=object)
    alert = np.zeros(len(y), dtype=bool)
    for tr, te in tqdm(folds, desc="urgency CV folds", disable=not progress):
        m = clone(model).fit([texts[i] for i in tr], y[tr], sampling=None if sampling is None else sampling[tr])
        pred[te], alert[te] = _explained(m, [texts[i] for i in te])
    keywords = keyword_grade(texts)
    report = {
        "protocol": {"folds": n_splits, "grouping": "near-duplicate groups", "n": int(len(y)),
                     "random_state": random_state,
                     "operating_point": {
                         "level": "thresholds maximising out-of-fold macro-F1",
                         "critical_alert": f"most critical appeals caught while firing on <= {model.alert_budget:.0%} "
                                           "of the random draw",
                         "chosen_on": "out-of-fold predictions inside each training fold"}},
        "model": _summary(y, pred, alert),
        "keyword_baseline": _summary(y, keywords),
    }
    _draw_figures(report, keywords, y, pred, alert, sampling)
    return report


def _finite(x: float) -> float | None:
    return round(float(x), 4) if np.isfinite(x) else None


def _operating_point(model) -> dict:
    return {"critical_threshold": round(model.critical_threshold_, 4),
            "urgent_threshold": round(model.urgent_threshold_, 4),
            "alert_threshold": _finite(model.alert_threshold_),
            "alert_cue_threshold": _finite(model.alert_cue_threshold_),
            "alert_budget": getattr(model, "alert_budget", None),
            "alert_in_fit": getattr(model, "alert_oof_", None),
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
    sampling = lab["sampling"].to_numpy(dtype=object) if "sampling" in lab.columns else None
    model = UrgencyModel(random_state=random_state)
    metrics = {}
    if evaluate:
        log.info("urgency: grouped %d-fold cross-validation on %d appeals", folds, len(texts))
        metrics["urgency_cv"] = cross_validate_urgency(texts, y, sampling, model=model, n_splits=folds,
                                                       random_state=random_state, progress=progress)
    log.info("fitting the urgency model on %d appeals", len(texts))
    model.fit(texts, y, sampling=sampling)
    info = {"n": len(texts), "sha256": data_hash(texts, y), "operating_point": _operating_point(model)}
    return model, metrics, info
