"""models/features.py: word + character TF-IDF and the fast linear scores."""
import numpy as np
import pytest

from models.doc import Doc
from models.features import WordCharTfidf, linear_scores

BASE = ["小区暖气不热家里冷", "导游强制购物不买不让走", "工地夜间施工噪音扰民", "公司拖欠工资三个月"]


def _corpus(n):
    """n texts: the four bases repeated, plus one text with words and characters of its own."""
    return [BASE[i % 4] for i in range(n - 1)] + ["鳄鱼咬人"]


@pytest.mark.parametrize("n, rare_kept", [(49, True), (50, False)])
def test_min_df_applies_from_fifty_texts(n, rare_kept):
    """Below 50 texts every word and n-gram counts; from 50 on, one seen once is dropped."""
    f = WordCharTfidf().fit(_corpus(n))
    assert ("鳄鱼" in f.word_.vocabulary_) is rare_kept
    assert (f.transform(["鳄鱼"]).nnz > 0) is rare_kept


def test_blocks_follow_the_parameters():
    f = WordCharTfidf(min_df=1, char_ngram_range=(1, 1), max_char_features=5).fit(BASE)
    n_words = len(f.word_.vocabulary_)
    assert len(f.char_.keys_) == 5 and f.n_features_out_ == n_words + 5
    X = f.transform(BASE)
    assert X.shape == (4, n_words + 5) and X.dtype == np.float32
    assert all(k < 1 << 21 for k in f.char_.keys_.tolist())  # single characters only
    assert ord("不") in f.char_.keys_.tolist()  # the most frequent character (3 times) is kept


def test_rows_are_unit_length_in_each_block():
    f = WordCharTfidf(min_df=1).fit(BASE)
    X = f.transform(BASE + ["暖气不热，工资拖欠", "完全无关的字"]).toarray()
    w = len(f.word_.idf_)
    np.testing.assert_allclose((X[:5, :w] ** 2).sum(1), 1, rtol=1e-5)
    np.testing.assert_allclose((X[:5, w:] ** 2).sum(1), 1, rtol=1e-5)


def test_repeated_words_weigh_sublinearly():
    """A word said three times gets 1 + ln 3 times its idf, as scikit-learn's sublinear tf."""
    f = WordCharTfidf(min_df=1).fit(BASE + ["暖气 暖气 暖气 工资"])
    ref = f.word_.transform([Doc("暖气 暖气 暖气 工资").words()]).toarray()
    ours = f.transform(["暖气 暖气 暖气 工资"]).toarray()[:, : ref.shape[1]]
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    v = f.word_.vocabulary_
    idf = f.word_.idf_
    ratio = ours[0, v["暖气"]] / ours[0, v["工资"]]
    assert ratio == pytest.approx((1 + np.log(3)) * idf[v["暖气"]] / idf[v["工资"]], rel=1e-5)


def test_the_window_applies_to_words_too():
    long = "小区暖气不热" + "鳄鱼咬人" * 5
    f = WordCharTfidf(min_df=1, max_chars=6).fit(BASE + [long])
    assert "鳄鱼" not in f.word_.vocabulary_  # fitting reads the window only
    assert (abs(f.transform([long]) - f.transform(["小区暖气不热"]))).max() == 0


def test_linear_scores_of_a_binary_model_are_one_column():
    from sklearn.svm import LinearSVC

    f = WordCharTfidf(min_df=1)
    X = f.fit_transform(BASE)
    svm = LinearSVC().fit(X, [0, 1, 0, 1])
    s = linear_scores(svm, X)
    assert s.shape == (4,)
    np.testing.assert_allclose(s, svm.decision_function(X), rtol=1e-6)


def test_a_bigram_whose_second_word_is_the_first_vocabulary_term_is_found():
    f = WordCharTfidf(min_df=1).fit(["暖气 0 不热", "工资 拖欠"])
    v = f.word_.vocabulary_
    assert v["0"] == 0 and "暖气_0" in v
    ref = f.word_.transform([Doc("暖气 0 不热").words()]).toarray()
    np.testing.assert_allclose(f.transform(["暖气 0 不热"]).toarray()[:, : ref.shape[1]], ref, rtol=1e-6)


def test_the_window_applies_when_bigrams_are_looked_up_by_string():
    # A vocabulary term with two '_' makes the word lookup go by strings: the window still holds.
    long = "小区暖气不热" + "导游强制购物" * 5
    f = WordCharTfidf(min_df=1, max_chars=6).fit(BASE + [long, "a_b_c"])
    assert (abs(f.transform([long]) - f.transform(["小区暖气不热"]))).max() == 0
    assert f.__dict__["_bigrams"] is None


def test_default_min_df_keeps_words_in_two_texts():
    texts = _corpus(49) + ["鳄鱼咬人"]  # 50 texts, 鳄鱼 in two of them
    assert "鳄鱼" in WordCharTfidf().fit(texts).word_.vocabulary_


def test_char_block_reads_the_ngram_range_and_fit_transform_is_csr_float32():
    f = WordCharTfidf(min_df=1, char_ngram_range=(1, 1))
    X = f.fit_transform(BASE)
    assert len(f.char_.keys_) == len(set("".join(BASE)))
    assert X.format == "csr" and X.dtype == np.float32


def test_documented_defaults():
    assert WordCharTfidf().get_params() == {"char_ngram_range": (1, 3), "min_df": 2,
                                            "max_char_features": 300_000, "max_chars": None}


def test_refitting_replaces_the_bigram_lookup():
    first = ["暖气 不热 三天", "路灯 坏了 没人修"] * 3
    second = ["噪音 扰民 严重", "垃圾 清运 不及时", "噪音 扰民 夜里"] * 3
    v = WordCharTfidf()
    v.fit(first).transform(first)  # builds the first vocabulary's bigram table
    refit = v.fit(second).transform(second)
    fresh = WordCharTfidf().fit(second).transform(second)
    assert (refit != fresh).nnz == 0
