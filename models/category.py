"""Category classifier: official first-level category of an appeal, with calibrated confidence.

Design (see docs/adr/0002-category-model.md): word + character TF-IDF, a class-weighted
linear SVM, and temperature scaling (softmax of the SVM scores times one learned
factor) fitted on out-of-fold SVM scores, so ``predict_proba`` is calibrated on data the
SVM did not see and never changes the SVM's ranking of categories. The same out-of-fold
probabilities choose ``review_threshold_``: the lowest top-probability at which accepted
(not flagged) tags reach ``target_precision``.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from corpora.dedup import near_duplicate_groups
from models.doc import MAX_CHARS, as_docs
from models.features import WordCharTfidf, linear_scores

__all__ = ["CategoryClassifier", "choose_review_threshold"]


def choose_review_threshold(proba: np.ndarray, correct: np.ndarray, *, target_precision: float) -> float:
    """Lowest top-probability threshold whose accepted predictions reach ``target_precision``.

    Examples
    --------
    >>> p = np.array([0.99, 0.95, 0.9, 0.6, 0.5])
    >>> choose_review_threshold(p, np.array([1, 1, 1, 0, 1]), target_precision=0.95)
    0.9
    """
    order = np.argsort(-proba, kind="stable")
    p_sorted, c_sorted = proba[order], correct[order].astype(float)
    precision = np.cumsum(c_sorted) / np.arange(1, len(c_sorted) + 1)
    # A threshold accepts every prediction tied with it: precision counts only at the end of a tie.
    end_of_tie = np.r_[p_sorted[1:] != p_sorted[:-1], True]
    ok = np.nonzero((precision >= target_precision) & end_of_tie)[0]
    if len(ok) == 0:
        return 1.0
    # accept everything down to the last position where the running precision still holds
    return float(p_sorted[ok[-1]])


class CategoryClassifier(ClassifierMixin, BaseEstimator):
    """Tag appeals with an official first-level category.

    Parameters
    ----------
    C : float, default 1.0
        Inverse regularisation of the linear SVM.
    class_weight : {"balanced", None}, default "balanced"
    calibration_folds : int, default 5
        Grouped folds (near-duplicates kept together) for the out-of-fold scores that fit
        the calibrator and choose the review threshold.
    target_precision : float, default 0.95
        Accuracy required of tags that are not flagged for review.
    max_chars : int or None, default models.doc.MAX_CHARS
        Text features read the first ``max_chars`` characters (None: all).
    random_state : int or None, default 0

    Examples
    --------
    >>> X = ["小区暖气不热", "景区门票太贵", "暖气片不热家里冷", "导游强制购物", "供暖不达标", "旅行社欺骗游客"] * 5
    >>> y = ["城乡建设", "商贸旅游", "城乡建设", "商贸旅游", "城乡建设", "商贸旅游"] * 5
    >>> clf = CategoryClassifier(calibration_folds=3).fit(X, y)
    >>> clf.predict(["家里暖气不热"])[0]
    '城乡建设'
    """

    max_chars = None  # models saved before the parameter existed read whole texts

    def __init__(self, *, C=1.0, class_weight="balanced", calibration_folds=5, target_precision=0.95,
                 max_chars=MAX_CHARS, random_state=0):
        self.C = C
        self.max_chars = max_chars
        self.class_weight = class_weight
        self.calibration_folds = calibration_folds
        self.target_precision = target_precision
        self.random_state = random_state

    def _svm(self):
        return LinearSVC(C=self.C, class_weight=self.class_weight, random_state=self.random_state)

    def fit(self, X, y):
        X = as_docs(X)
        y = np.asarray(y, dtype=object)
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} texts but y has {len(y)} labels")
        if not 0 < self.target_precision <= 1:
            raise ValueError(f"target_precision must be in (0, 1], got {self.target_precision!r}")
        if self.calibration_folds < 2:
            raise ValueError(f"calibration_folds must be >= 2, got {self.calibration_folds!r}")
        self.classes_, counts = np.unique(y, return_counts=True)
        if len(self.classes_) < 2:
            raise ValueError(f"need at least 2 categories to train, got {list(self.classes_)}")
        if counts.min() < self.calibration_folds:
            small = self.classes_[counts < self.calibration_folds]
            raise ValueError(f"categories {list(small)} have fewer than {self.calibration_folds} examples; "
                             "add examples or lower calibration_folds")
        self.features_ = WordCharTfidf(max_chars=self.max_chars)
        F = self.features_.fit_transform(X)
        oof = np.zeros((len(y), len(self.classes_)))
        # Grouped folds: a re-posted appeal on both sides would make the calibrator overconfident.
        folds = StratifiedGroupKFold(self.calibration_folds, shuffle=True, random_state=self.random_state)
        for tr, te in folds.split(F, y, near_duplicate_groups([d.text for d in X])):
            svm = self._svm().fit(F[tr], y[tr])
            oof[te] = _align(svm.decision_function(F[te]), svm.classes_, self.classes_)
        y_idx = np.searchsorted(self.classes_, y)
        self.temperature_ = _fit_temperature(oof, y_idx)
        self.svm_ = self._svm().fit(F, y)
        oof_proba = _softmax(oof * self.temperature_)
        correct = oof_proba.argmax(1) == y_idx
        self.review_threshold_ = choose_review_threshold(oof_proba.max(1), correct,
                                                         target_precision=self.target_precision)
        self.oof_accuracy_ = float(correct.mean())
        return self

    def decision_function(self, X):
        check_is_fitted(self, "svm_")
        return _two_column(linear_scores(self.svm_, self.features_.transform(as_docs(X))))

    def predict_proba(self, X):
        """Calibrated probabilities, columns in ``classes_`` order."""
        return _softmax(self.decision_function(X) * self.temperature_)

    def predict(self, X):
        check_is_fitted(self, "svm_")
        return self.classes_[self.predict_proba(X).argmax(1)]

    def needs_review(self, proba: np.ndarray) -> np.ndarray:
        """True where the top probability is below the validation-chosen threshold."""
        check_is_fitted(self, "review_threshold_")
        return proba.max(1) < self.review_threshold_


def _softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _fit_temperature(scores, y_idx) -> float:
    """The factor on SVM scores that minimises out-of-fold log-loss."""
    from scipy.optimize import minimize_scalar

    def nll(log_t):
        p = _softmax(scores * np.exp(log_t))
        return -np.mean(np.log(p[np.arange(len(y_idx)), y_idx] + 1e-12))

    return float(np.exp(minimize_scalar(nll, bounds=(-3, 5), method="bounded").x))


def _two_column(scores):
    return np.column_stack([-scores, scores]) if scores.ndim == 1 else scores


def _align(scores, have, want):
    scores = _two_column(scores)
    if list(have) == list(want):
        return scores
    out = np.full((scores.shape[0], len(want)), scores.min() - 1.0)
    for j, c in enumerate(have):
        out[:, list(want).index(c)] = scores[:, j]
    return out
