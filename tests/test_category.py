import numpy as np
import pytest
from sklearn.base import clone

from models.category import CategoryClassifier, choose_review_threshold

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
    assert 0 <= clf.review_threshold_ <= 1
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


def test_needs_review_honours_threshold():
    clf = CategoryClassifier(calibration_folds=3).fit(X, Y)
    clf.review_threshold_ = 0.8
    flags = clf.needs_review(np.array([[0.79, 0.21], [0.81, 0.19]]))
    assert flags.tolist() == [True, False]
