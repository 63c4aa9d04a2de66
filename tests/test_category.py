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
    ([0.9, 0.9, 0.7], [1, 0, 1], 0.9, 1.0),    # a threshold of 0.9 accepts both tied tags: 1 of 2 right
    ([0.9, 0.9, 0.7], [0, 1, 1], 0.9, 1.0),    # whatever the order of the tie
    ([0.95, 0.9, 0.9, 0.7], [1, 1, 0, 1], 0.6, 0.7),
    ([0.95, 0.9, 0.9, 0.7], [1, 1, 0, 1], 0.9, 0.95),  # a tie below the top: accepting it gives 2/3
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


# --- fit: what it accepts and refuses ---------------------------------------------------------

def test_texts_and_labels_must_pair_up():
    with pytest.raises(ValueError, match="^X has 32 texts but y has 31 labels$"):
        CategoryClassifier(calibration_folds=3).fit(X, Y[:-1])


@pytest.mark.parametrize("target", [0.0, -0.1, 1.0001])
def test_target_precision_outside_zero_one_is_refused(target):
    with pytest.raises(ValueError, match=r"target_precision must be in \(0, 1\], got"):
        CategoryClassifier(target_precision=target, calibration_folds=3).fit(X, Y)


def test_the_edges_of_the_allowed_values_fit():
    """target_precision 1 and 2 calibration folds are allowed; a category with exactly as many
    examples as folds is enough."""
    clf = CategoryClassifier(target_precision=1.0, calibration_folds=2).fit(X, Y)
    assert clf.review_threshold_ <= 1.0
    three = X + ["噪音扰民", "油烟扰民", "垃圾站太臭"]
    clf = CategoryClassifier(calibration_folds=3).fit(three, Y + ["环境保护"] * 3)
    assert list(clf.classes_) == ["商贸旅游", "城乡建设", "环境保护"]
    assert clf.predict_proba(["噪音"]).shape == (1, 3)


def test_tiny_categories_are_named_in_the_error():
    with pytest.raises(ValueError, match=r"^categories \['环境保护'\] have fewer than 3 examples; add examples"):
        CategoryClassifier(calibration_folds=3).fit(X + ["噪音", "油烟"], Y + ["环境保护"] * 2)


def test_the_text_window_is_the_category_models_parameter():
    """max_chars reaches the features: text after the window changes nothing."""
    clf = CategoryClassifier(calibration_folds=3, max_chars=6).fit(X, Y)
    tail = "导游强制购物景区门票太贵" * 3
    np.testing.assert_array_equal(clf.predict_proba(["小区暖气不热" + tail]), clf.predict_proba(["小区暖气不热"]))
    assert clf.features_.max_chars == 6
    whole = CategoryClassifier(calibration_folds=3, max_chars=None).fit(X, Y)
    assert not np.array_equal(whole.predict_proba(["小区暖气不热" + tail]), whole.predict_proba(["小区暖气不热"]))


def test_binary_scores_are_two_columns_in_class_order():
    clf = CategoryClassifier(calibration_folds=3).fit(X, Y)
    s = clf.decision_function(["暖气不热", "导游强制购物"])
    assert s.shape == (2, 2)
    np.testing.assert_allclose(s[:, 0], -s[:, 1])
    assert s[0].argmax() == list(clf.classes_).index("城乡建设")
    assert s[1].argmax() == list(clf.classes_).index("商贸旅游")


def test_regularisation_and_class_weight_reach_the_svm():
    clf = CategoryClassifier(C=0.01, class_weight=None, calibration_folds=3, random_state=3).fit(X, Y)
    assert (clf.svm_.C, clf.svm_.class_weight, clf.svm_.random_state) == (0.01, None, 3)
    wide = CategoryClassifier(C=10.0, calibration_folds=3).fit(X, Y)
    assert np.abs(wide.svm_.coef_).max() > np.abs(clf.svm_.coef_).max()


def test_fitting_is_reproducible():
    a = CategoryClassifier(calibration_folds=3).fit(X, Y)
    b = CategoryClassifier(calibration_folds=3).fit(X, Y)
    assert (a.temperature_, a.review_threshold_, a.oof_accuracy_) == (b.temperature_, b.review_threshold_,
                                                                       b.oof_accuracy_)


def test_only_the_categories_short_of_examples_are_named():
    with pytest.raises(ValueError, match=r"^categories \['环境保护'\] have fewer than 3"):
        CategoryClassifier(calibration_folds=3).fit(X + ["噪音", "油烟", "工资", "欠薪", "讨薪"],
                                                    Y + ["环境保护"] * 2 + ["劳动和社会保障"] * 3)


def test_a_category_a_calibration_fold_never_saw_gets_no_out_of_fold_vote():
    """Three near-duplicate appeals of a third category form one group, so one calibration
    fold's SVM never sees that category: those three are wrong out of fold (the unseen category
    scores below every other), everything else right; the final model, which saw them, knows it."""
    from corpora.dedup import near_duplicate_groups

    places = ["幸福里小区", "阳光花园", "金色家园", "滨江新城", "翠湖苑", "梧桐郡", "东方明珠城", "绿地世纪城", "万科城", "碧桂园"]
    noise = ["夜里广场舞噪音太大，吵得睡不着觉", "夜里广场舞噪音太大，吵得根本睡不着觉", "夜里广场舞噪音太大吵得睡不着觉啊"]
    texts = [f"{p}暖气不热" for p in places] + [f"{p}附近景区导游强制购物" for p in places] + noise
    labels = ["城乡建设"] * 10 + ["商贸旅游"] * 10 + ["环境保护"] * 3
    assert len(set(near_duplicate_groups(texts).tolist())) == 21  # the three are one group
    clf = CategoryClassifier(calibration_folds=3).fit(texts, labels)
    assert clf.oof_accuracy_ == pytest.approx(20 / 23)
    assert list(clf.predict(noise)) == ["环境保护"] * 3


def test_balanced_class_weight_lifts_a_rare_category():
    """With balanced weights a rare category scores higher on an unrelated text than without."""
    texts = X + ["噪音扰民", "油烟扰民", "垃圾站太臭"]
    labels = Y + ["环境保护"] * 3
    scores = {}
    for cw in ("balanced", None):
        clf = CategoryClassifier(calibration_folds=3, class_weight=cw).fit(texts, labels)
        scores[cw] = clf.decision_function(["今天想咨询一件事"])[0, list(clf.classes_).index("环境保护")]
    assert CategoryClassifier().class_weight == "balanced"
    assert scores["balanced"] > scores[None]


def test_softmax_is_stable_for_large_scores():
    from models.category import _softmax

    p = _softmax(np.array([[1000.0, 0.0], [0.0, -1000.0], [3.0, 3.0]]))
    np.testing.assert_allclose(p, [[1, 0], [1, 0], [0.5, 0.5]])


def test_fold_scores_are_aligned_to_every_category():
    """A fold model's scores go to their categories' columns; a category it never saw scores
    below every score the fold model gave."""
    from models.category import _align

    got = _align(np.array([[1.0, -2.0], [0.5, 3.0], [0.0, 0.0]]), ["b", "a"], ["a", "b", "c"])
    np.testing.assert_array_equal(got[:, :2], [[-2.0, 1.0], [3.0, 0.5], [0.0, 0.0]])
    assert (got[:, 2] < -2.0).all()
    binary = _align(np.array([0.5, -2.0]), ["a", "b"], ["a", "b", "c"])  # one score per row: the second class's
    np.testing.assert_array_equal(binary[:, :2], [[-0.5, 0.5], [2.0, -2.0]])
    assert (binary[:, 2] < -2.0).all()
    np.testing.assert_array_equal(_align(np.array([[1.0, 2.0]]), ["a", "b"], ["a", "b"]), [[1.0, 2.0]])


def test_documented_defaults():
    assert CategoryClassifier().get_params() == {
        "C": 1.0, "class_weight": "balanced", "calibration_folds": 5, "target_precision": 0.95,
        "max_chars": 1500, "random_state": 0}


def test_calibration_uses_as_many_folds_as_asked():
    """Four near-duplicate groups allow three grouped folds but not five."""
    texts = ["小区暖气不热", "暖气片不热家里冷", "导游强制购物", "景区门票太贵"] * 3
    labels = ["城乡建设", "城乡建设", "商贸旅游", "商贸旅游"] * 3
    assert CategoryClassifier(calibration_folds=3).fit(texts, labels).oof_accuracy_ >= 0
    with pytest.raises(ValueError, match="number of groups"):
        CategoryClassifier(calibration_folds=5).fit(texts * 2, labels * 2)
