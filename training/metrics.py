"""Classification metrics used in every Suqiu report."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

__all__ = ["expected_calibration_error", "classification_summary"]


def expected_calibration_error(confidence, correct, *, n_bins: int = 15) -> float:
    """ECE of top-label confidence with equal-width bins.

    Examples
    --------
    >>> round(expected_calibration_error([0.9, 0.9, 0.6, 0.6], [1, 1, 1, 0]), 3)
    0.1
    """
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - confidence[m].mean())
    return float(ece)


def classification_summary(y_true, y_pred, labels, confidence=None) -> dict:
    """Macro-F1, accuracy, per-class precision/recall/F1/support, confusion matrix, ECE."""
    y_true, y_pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    out = {
        "n": int(len(y_true)),
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)), 4),
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "per_class": {lab: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4),
                            "f1": round(float(f[i]), 4), "support": int(s[i])} for i, lab in enumerate(labels)},
        "confusion_matrix": {"labels": list(labels),
                             "rows_true_cols_pred": confusion_matrix(y_true, y_pred, labels=labels).tolist()},
    }
    if confidence is not None:
        out["ece"] = round(expected_calibration_error(confidence, y_true == y_pred), 4)
    return out
