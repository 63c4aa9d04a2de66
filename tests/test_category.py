import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import StratifiedGroupKFold

from corpora.records import appeal_texts
from models.category import CategoryClassifier, choose_review_threshold
from models.doc import as_docs
from training.split import near_duplicate_groups

X = ["小区暖气不热", "景区门票太贵", "暖气片不热家里冷", "导游强制购物", "供暖不达标", "旅行社欺骗游客",
     "停暖三天了", "景点乱收费"] * 4
Y = ["城乡建设", "商贸旅游"] * 16


def test_estimator_contract():
    clf = CategoryClassifier(C=2.0, calibration_folds=3)
    assert clf.get_params()["C"] == 2.0
    fitted = clf.fit(X, Y)
    assert fitted is clf
    assert list(clf.classes_) == ["商贸旅游", "城乡建设"]
    p = clf.predict_proba(["暖气不热", "导游强制购物"])
    np.testing.assert_allclose(p.sum(1), 1.0)
    assert list(clf.predict(["暖气不热", "导游强制购物"])) == ["城乡建设", "商贸旅游"]
    clone(clf)  # params round-trip


@pytest.mark.parametrize("kwargs, message", [
    ({"target_precision": 1.5}, "target_precision"),
    ({"calibration_folds": 1}, "calibration_folds"),
])
def test_bad_params_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CategoryClassifier(**kwargs).fit(X, Y)


def test_single_class_and_tiny_classes_are_refused():
    with pytest.raises(ValueError, match="at least 2 categories"):
        CategoryClassifier().fit(X[:4], ["城乡建设"] * 4)
    with pytest.raises(ValueError, match="fewer than 5 examples"):
        CategoryClassifier().fit(X + ["噪音"], Y + ["环境保护"])


def test_unfitted_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        CategoryClassifier().predict(["暖气"])


@pytest.mark.parametrize("proba, correct, target, expected", [
    ([0.9, 0.8, 0.7], [1, 1, 1], 0.95, 0.7),   # all right: accept everything
    ([0.9, 0.8, 0.7], [1, 1, 0], 0.95, 0.8),
    ([0.9, 0.8, 0.7], [0, 1, 1], 0.95, 1.0),   # the most confident is wrong: flag all
])
def test_review_threshold_table(proba, correct, target, expected):
    assert choose_review_threshold(np.array(proba), np.array(correct), target_precision=target) == expected


def test_needs_review_honours_the_fitted_threshold():
    """needs_review flags a top probability just below the fitted threshold, not one at it."""
    clf = CategoryClassifier(calibration_folds=3).fit(X, Y)
    t = clf.review_threshold_
    assert 0.5 < t < 1
    below = np.nextafter(t, 0)
    flags = clf.needs_review(np.array([[below, 1 - below], [t, 1 - t], [1 - below, below]]))
    assert flags.tolist() == [True, False, True]


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("target", [0.8, 0.95])
def test_review_threshold_meets_target_precision_out_of_fold(demo_frame, target):
    """review_threshold_ is the lowest top probability at which the out-of-fold tags it
    accepts reach target_precision (the out-of-fold scores are rebuilt here from the same
    grouped folds; they match the model's own oof_accuracy_)."""
    texts = appeal_texts(demo_frame)
    y = demo_frame["category"].to_numpy(dtype=object)
    clf = CategoryClassifier(target_precision=target).fit(texts, y)
    docs = as_docs(texts)
    F = clf.features_.transform(docs)
    oof = np.zeros((len(y), len(clf.classes_)))
    folds = StratifiedGroupKFold(clf.calibration_folds, shuffle=True, random_state=clf.random_state)
    for tr, te in folds.split(F, y, near_duplicate_groups([d.text for d in docs])):
        oof[te] = clf._svm().fit(F[tr], y[tr]).decision_function(F[te])
    proba = _softmax(oof * clf.temperature_)
    correct = clf.classes_[proba.argmax(1)] == y
    assert correct.mean() == pytest.approx(clf.oof_accuracy_)
    top = proba.max(1)
    accepted = top >= clf.review_threshold_
    assert 0 < accepted.sum() < len(y)  # neither everything nor nothing is flagged
    assert correct[accepted].mean() >= target
    # one step lower and the accepted tags fall short of the target
    assert correct[top >= top[~accepted].max()].mean() < target
