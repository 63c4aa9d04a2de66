"""Category-model behaviour that a change must not lose (issue 13): a fitted temperature
that makes held-out probabilities better than the raw SVM softmax, and near-duplicate
groups that never straddle a calibration split or an evaluation split.

Uses the shipped demo corpus: ~650 appeals in ~55 near-duplicate groups, so a split
that ignored the groups would put copies of most held-out appeals in training.
"""
from collections import Counter

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import log_loss

from corpora.records import appeal_texts
from models.category import CategoryClassifier
from training.evaluate import cross_validate_category
from training.split import grouped_folds, near_duplicate_groups


@pytest.fixture(scope="module")
def demo(demo_frame):
    texts = appeal_texts(demo_frame)
    y = demo_frame["category"].to_numpy(dtype=object)
    return texts, y, near_duplicate_groups(texts)


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_temperature_is_fitted_and_lowers_held_out_log_loss(demo):
    """predict_proba is the softmax of the SVM scores times a fitted temperature far from 1;
    on near-duplicate groups the model never saw, its log-loss is lower than temperature 1's."""
    texts, y, groups = demo
    truth, calibrated, raw = [], [], []
    for tr, te in grouped_folds(y, groups, n_splits=3, random_state=0):
        clf = CategoryClassifier().fit([texts[i] for i in tr], y[tr])
        assert abs(np.log(clf.temperature_)) > np.log(1.5), f"temperature {clf.temperature_} is about 1"
        held = [texts[i] for i in te]
        scores, proba = clf.decision_function(held), clf.predict_proba(held)
        np.testing.assert_allclose(proba, _softmax(scores * clf.temperature_), rtol=1e-6)
        assert (proba.argmax(1) == scores.argmax(1)).all()  # calibration never re-ranks categories
        assert list(clf.classes_) == sorted(set(y))
        truth.append(y[te])
        calibrated.append(proba)
        raw.append(_softmax(scores))
    truth, labels = np.concatenate(truth), sorted(set(y))
    ll_cal = log_loss(truth, np.vstack(calibrated), labels=labels)
    ll_raw = log_loss(truth, np.vstack(raw), labels=labels)
    assert ll_cal < ll_raw - 0.05, (ll_cal, ll_raw)


def test_calibration_folds_keep_near_duplicates_together(demo):
    """The calibrator's out-of-fold scores come from SVMs that saw no near-duplicate of the
    appeal: with a random category per near-duplicate group (learnable only by recognising a
    copy) the model is right in-sample but out-of-fold accuracy stays at chance."""
    texts, y, groups = demo
    rng = np.random.default_rng(0)
    ids = np.unique(groups)
    by_group = dict(zip(ids, rng.choice(np.unique(y), len(ids))))
    y_random = np.array([by_group[g] for g in groups], dtype=object)
    clf = CategoryClassifier().fit(texts, y_random)
    majority = max(Counter(y_random).values()) / len(y_random)
    assert (clf.predict(texts) == y_random).mean() > 0.9  # copies are easy to recognise ...
    assert clf.oof_accuracy_ < majority + 0.1, \
        f"out-of-fold accuracy {clf.oof_accuracy_:.2f} on random group labels: copies crossed a calibration split"


class _Spy(ClassifierMixin, BaseEstimator):
    """Records the texts each fold's model is fitted on and asked about; predicts uniformly."""

    log: list = []
    target_precision = 0.95

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        _Spy.log.append(("fit", list(X)))
        return self

    def predict_proba(self, X):
        _Spy.log.append(("ask", list(X)))
        return np.full((len(X), len(self.classes_)), 1 / len(self.classes_))

    def needs_review(self, proba):
        return np.zeros(len(proba), dtype=bool)


def test_evaluation_folds_keep_near_duplicates_together(demo):
    """cross_validate_category holds every appeal out once, and no fold's model is fitted on
    a near-duplicate of an appeal it is scored on."""
    texts, y, groups = demo
    _Spy.log = []
    report = cross_validate_category(texts, y, model=_Spy(), n_splits=5, progress=False)
    group_of = dict(zip(texts, groups))
    fitted = [x for k, x in _Spy.log if k == "fit"]
    asked = [x for k, x in _Spy.log if k == "ask"]
    assert len(fitted) == len(asked) == 5
    assert sorted(t for a in asked for t in a) == sorted(texts)
    for fit_texts, ask_texts in zip(fitted, asked):
        shared = {group_of[t] for t in fit_texts} & {group_of[t] for t in ask_texts}
        assert not shared, f"near-duplicate groups {sorted(shared)[:5]} on both sides of a fold"
    assert report["protocol"]["n_groups"] == len(set(groups))
