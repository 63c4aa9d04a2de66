"""Text features shared by Suqiu's estimators: word (jieba) and character TF-IDF."""
from __future__ import annotations

from itertools import repeat

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from models.charngrams import CharNgramTfidf, csr_from_rows, unit
from models.doc import as_docs

__all__ = ["WordCharTfidf", "linear_scores"]


def _identity(x):
    return x


def linear_scores(estimator, X) -> np.ndarray:
    """``X @ coef_.T + intercept_`` of a fitted linear scikit-learn model.

    The same numbers as its ``decision_function``, without the per-call input validation
    that dominates tagging one appeal at a time (the inputs are our own feature matrices).
    """
    scores = np.asarray(X @ estimator.coef_.T) + estimator.intercept_
    return scores.ravel() if scores.shape[1] == 1 else scores


class WordCharTfidf(TransformerMixin, BaseEstimator):
    """Sublinear TF-IDF over jieba words (1–2-grams) and characters (1–3-grams), stacked.

    Takes raw appeal strings or :class:`models.doc.Doc` objects; normalises strings first.

    Parameters
    ----------
    char_ngram_range : tuple, default (1, 3)
    min_df : int, default 2
    max_char_features : int or None, default 300000
    max_chars : int or None, default None
        Read only the first ``max_chars`` characters of each text (None: all).
    """

    max_chars = None  # models saved before the parameter existed read whole texts

    def __init__(self, *, char_ngram_range=(1, 3), min_df=2, max_char_features=300_000, max_chars=None):
        self.char_ngram_range = char_ngram_range
        self.min_df = min_df
        self.max_char_features = max_char_features
        self.max_chars = max_chars

    def fit(self, X, y=None):
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X, y=None):
        docs = as_docs(X)
        min_df = self.min_df if len(docs) >= 50 else 1
        self.word_ = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, min_df=min_df)
        self.char_ = CharNgramTfidf(ngram_range=tuple(self.char_ngram_range), min_df=min_df,
                                    max_features=self.max_char_features, max_chars=self.max_chars)
        W = self.word_.fit_transform([d.words(self.max_chars) for d in docs])
        C = self.char_.fit_transform(docs)
        self.n_features_out_ = W.shape[1] + C.shape[1]
        return sp.hstack([W, C], format="csr", dtype=np.float32)

    def _word_rows(self, docs) -> list[tuple[np.ndarray, np.ndarray]]:
        """The fitted word vectoriser's rows (tested equal to its ``transform``), looked up with
        one C-level ``map`` over the vocabulary instead of its per-token Python loop."""
        vocab, idf = self.word_.vocabulary_, self.word_.idf_
        rows = []
        for d in docs:
            words = d.words(self.max_chars)
            ids = np.fromiter(map(vocab.get, words, repeat(-1)), dtype=np.int64, count=len(words))
            idx, n = np.unique(ids[ids >= 0], return_counts=True)
            rows.append((idx, unit((1.0 + np.log(n)) * idf[idx])))
        return rows

    def transform(self, X):
        check_is_fitted(self, "word_")
        docs = as_docs(X)
        offset = len(self.word_.idf_)
        rows = [(np.concatenate([wi, ci + offset]), np.concatenate([wv, cv]))
                for (wi, wv), (ci, cv) in zip(self._word_rows(docs), self.char_.rows(docs))]
        return csr_from_rows(rows, self.n_features_out_, dtype=np.float32)
