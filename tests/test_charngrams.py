import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from models.charngrams import CharNgramTfidf, ngram_keys

DOCS = ["小区暖气不热，家里只有十三度", "导游强制购物 不买不让走", "工地夜间施工噪音扰民", "暖气不热已经三天",
        "景区门票太贵，导游态度差", "ABC abc 😡 emoji 与 English"]


@pytest.mark.parametrize("min_df, max_features", [(1, None), (2, None), (1, 40)])
def test_matches_scikit_learn_char_tfidf(min_df, max_features):
    ours = CharNgramTfidf(min_df=min_df, max_features=max_features).fit(DOCS)
    ref = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=min_df,
                          max_features=max_features).fit(DOCS)
    if max_features is None:
        assert len(ours.keys_) == len(ref.vocabulary_)
    A, B = ours.transform(DOCS + ["新文本 暖气"]), ref.transform(DOCS + ["新文本 暖气"])
    for i in range(A.shape[0]):
        if max_features is None:
            np.testing.assert_allclose(np.sort(A[i].data), np.sort(B[i].data), rtol=1e-9)
        else:  # ties at the cut may pick different n-grams; the kept count is the same
            assert A.shape[1] == B.shape[1] == 40


def test_keys_are_unique_per_ngram():
    keys = ngram_keys("一一一二", (1, 3))
    grams = ["一", "一", "一", "二", "一一", "一一", "一二", "一一一", "一一二"]
    assert len(keys) == len(grams)
    assert len(set(keys.tolist())) == len(set(grams))


def test_empty_and_short_texts():
    v = CharNgramTfidf(min_df=1).fit(DOCS)
    X = v.transform(["", "暖"])
    assert X.shape == (2, len(v.keys_)) and X[0].nnz == 0 and X[1].nnz == 1


def test_word_char_features_match_scikit_learn_blocks():
    """WordCharTfidf's own word lookup and row stacking give scikit-learn's numbers."""
    import scipy.sparse as sp

    from models.doc import Doc
    from models.features import WordCharTfidf

    f = WordCharTfidf(min_df=1).fit(DOCS)
    new = DOCS + ["新文本 暖气不热", ""]
    docs = [Doc(t) for t in new]
    ref = sp.hstack([f.word_.transform([d.words() for d in docs]), f.char_.transform([d.text for d in docs])])
    np.testing.assert_allclose(f.transform(new).toarray(), ref.toarray(), rtol=1e-6)
    np.testing.assert_allclose(f.transform(docs).toarray(), f.transform(new).toarray())
    np.testing.assert_allclose(f.fit_transform(DOCS).toarray(), f.transform(DOCS).toarray(), rtol=1e-6)


@pytest.mark.parametrize("extra, by_ids", [([], True), (["账号user_name登录失败 error_code 12", "user_name 登录"], False)])
def test_bigrams_found_by_word_ids_or_by_strings_match_scikit_learn(extra, by_ids):
    """Bigram columns come from word-id pairs, or (a term with two '_', where a pair's string
    could split two ways) from the joined strings: scikit-learn's numbers either way."""
    import pickle

    from models.doc import Doc
    from models.features import WordCharTfidf

    train = DOCS + extra
    f = WordCharTfidf(min_df=1).fit(train)
    new = train + ["新文本 暖气不热", "", "暖气", "user_name error_code"]
    ref = f.word_.transform([Doc(t).words() for t in new])
    ours = f.transform(new)[:, : ref.shape[1]]
    np.testing.assert_allclose(ours.toarray(), ref.toarray(), rtol=1e-6)
    assert (f.__dict__["_bigrams"] is not None) == by_ids
    assert "_bigrams" not in f.__getstate__()
    assert (abs(pickle.loads(pickle.dumps(f)).transform(new) - f.transform(new))).max() == 0


def test_linear_scores_equal_decision_function():
    from sklearn.svm import LinearSVC

    from models.features import WordCharTfidf, linear_scores

    X = WordCharTfidf(min_df=1).fit_transform(DOCS)
    for y in ([0, 1, 0, 1, 1, 0], [0, 1, 2, 0, 1, 2]):
        svm = LinearSVC().fit(X, y)
        np.testing.assert_allclose(linear_scores(svm, X), svm.decision_function(X), rtol=1e-6)


def test_text_window_reads_only_the_first_max_chars():
    from models.doc import Doc
    from models.features import WordCharTfidf

    long = DOCS[0] + "。" + "与本诉求无关的很长的经过和细节" * 20
    for vec in (CharNgramTfidf(min_df=1, max_chars=14), WordCharTfidf(min_df=1, max_chars=14)):
        vec.fit(DOCS + [long])
        windowed = vec.transform([long, Doc(long)])
        head = vec.transform([long[:14], Doc(Doc(long).text[:14], normalised=True)])
        assert (abs(windowed - head)).max() == 0  # strings and Docs alike (the tail is in the vocabulary)


def test_models_saved_before_the_window_existed_read_whole_texts():
    import pickle

    vec = CharNgramTfidf(min_df=1).fit(DOCS)
    state = vec.__getstate__()
    del state["max_chars"]  # what a bundle pickled before the parameter holds
    old = CharNgramTfidf.__new__(CharNgramTfidf)
    old.__setstate__(state)
    assert old.max_chars is None
    assert (abs(pickle.loads(pickle.dumps(old)).transform(DOCS) - vec.transform(DOCS))).max() == 0


def test_lookup_table_is_rebuilt_not_saved():
    import pickle

    vec = CharNgramTfidf(min_df=1).fit(DOCS)
    before = vec.transform(DOCS)
    assert "_index" in vec.__dict__ and "_index" not in vec.__getstate__()
    assert (abs(pickle.loads(pickle.dumps(vec)).transform(DOCS) - before)).max() == 0


@pytest.mark.parametrize("bad", [(0, 1), (2, 1), (1, 4), (4, 4)])
def test_ngram_range_outside_one_to_three_is_refused(bad):
    with pytest.raises(ValueError, match=r"^ngram_range must lie within \(1, 3\), got"):
        ngram_keys("暖气", bad)


def test_ngram_keys_lower_case_and_collapse_whitespace():
    assert ngram_keys("AB  c\n", (1, 3)).tolist() == ngram_keys("ab c", (1, 3)).tolist()
    assert ngram_keys("A", (1, 1)).tolist() == [ord("a")]
    assert ngram_keys(" 暖 ", (1, 1)).tolist() == [ord("暖")]  # outer whitespace dropped
    assert ngram_keys("暖气", (2, 3)).tolist() == [(ord("暖") << 21) | ord("气")]  # too short for a trigram
    assert ngram_keys("", (1, 3)).tolist() == [] and ngram_keys("暖", (2, 2)).tolist() == []
    k = ngram_keys("煤气味", (3, 3))
    assert k.tolist() == [(ord("煤") << 42) | (ord("气") << 21) | ord("味")]


def test_fitting_on_nothing_is_refused():
    with pytest.raises(ValueError, match="^cannot fit on zero texts$"):
        CharNgramTfidf().fit([])


def test_min_df_and_max_features_keep_the_most_frequent_ngrams():
    docs = ["甲甲甲乙", "甲乙丙", "丁"]
    v = CharNgramTfidf(ngram_range=(1, 1), min_df=2).fit(docs)
    assert sorted(chr(k) for k in v.keys_) == ["乙", "甲"]  # in two texts each; 丙 and 丁 in one
    v = CharNgramTfidf(ngram_range=(1, 1), min_df=1, max_features=2).fit(docs)
    assert sorted(chr(k) for k in v.keys_) == ["乙", "甲"]  # 甲 4 times, 乙 twice, 丙 and 丁 once
    v = CharNgramTfidf(ngram_range=(1, 1), min_df=1, max_features=1).fit(docs)
    assert [chr(k) for k in v.keys_] == ["甲"]
    v = CharNgramTfidf(ngram_range=(1, 1), min_df=1, max_features=10).fit(docs)
    assert len(v.keys_) == 4


def test_idf_and_sublinear_tf_values():
    docs = ["甲甲甲乙", "甲乙丙", "丁"]
    v = CharNgramTfidf(ngram_range=(1, 1), min_df=1).fit(docs)
    idf = dict(zip((chr(k) for k in v.keys_), v.idf_))
    assert idf["甲"] == pytest.approx(np.log(4 / 3) + 1) and idf["丁"] == pytest.approx(np.log(4 / 2) + 1)
    row = v.transform(["甲甲甲乙"]).toarray()[0]
    cols = {chr(k): j for j, k in enumerate(v.keys_)}
    ratio = row[cols["甲"]] / row[cols["乙"]]
    assert ratio == pytest.approx((1 + np.log(3)) * idf["甲"] / idf["乙"])
    assert float(row @ row) == pytest.approx(1.0)


def test_unit_and_csr_from_rows_edges():
    from models.charngrams import csr_from_rows, unit

    assert unit(np.array([3.0, 4.0])).tolist() == [0.6, 0.8]
    assert unit(np.array([0.0, 0.0])).tolist() == [0.0, 0.0] and unit(np.array([])).tolist() == []
    empty = csr_from_rows([], 4)
    assert empty.shape == (0, 4) and empty.nnz == 0
    m = csr_from_rows([(np.array([3]), np.array([1.5]))], 4, dtype=np.float32)
    assert m.dtype == np.float32 and m.toarray().tolist() == [[0, 0, 0, 1.5]]


def test_default_min_df_keeps_ngrams_in_two_texts():
    v = CharNgramTfidf(ngram_range=(1, 1)).fit(["甲乙", "甲丙", "丁"])
    assert [chr(k) for k in v.keys_] == ["甲"]


def test_unit_scales_short_vectors_up_too():
    from models.charngrams import unit

    np.testing.assert_allclose(unit(np.array([0.3, 0.4])), [0.6, 0.8])


def test_refitting_replaces_the_vocabulary_lookup():
    # fit() again on other texts (scikit-learn's contract: a second fit starts afresh): the
    # lookup table built for the first vocabulary must not map the new one's n-grams.
    first = CharNgramTfidf(min_df=1).fit(DOCS[:3])
    first.transform(DOCS[:3])  # builds the lookup table of the first vocabulary
    first.fit(DOCS[3:])
    fresh = CharNgramTfidf(min_df=1).fit(DOCS[3:])
    assert first.keys_.tolist() == fresh.keys_.tolist()
    assert (abs(first.transform(DOCS) - fresh.transform(DOCS))).max() == 0
    assert first.transform(DOCS[3:4]).nnz > 0


def test_lookup_table_is_built_once_on_first_use(monkeypatch):
    import models.charngrams as charngrams

    built, table = [], charngrams.Int64HashTable

    def counted_table(size):
        built.append(size)
        return table(size)

    monkeypatch.setattr(charngrams, "Int64HashTable", counted_table)
    vec = CharNgramTfidf(min_df=1).fit(DOCS)
    assert built == []  # not at fit: on first use
    first = vec.transform(DOCS)
    assert (abs(vec.transform(DOCS[::-1]) - first[::-1])).max() == 0
    vec.rows(["暖气"])
    assert len(built) == 1
