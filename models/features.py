"""Text features shared by Suqiu's estimators: word (jieba) and character TF-IDF."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from corpora.text import normalise, tokenize
from models.charngrams import CharNgramTfidf

__all__ = ["WordCharTfidf", "word_bigrams"]


def word_bigrams(tokens: list[str]) -> list[str]:
    """Unigrams plus adjacent-word bigrams (joined with '_')."""
    return tokens + [f"{a}_{b}" for a, b in zip(tokens, tokens[1:])]


def _identity(x):
    return x


class WordCharTfidf(TransformerMixin, BaseEstimator):
    """Sublinear TF-IDF over jieba words (1–2-grams) and characters (1–3-grams), stacked.

    Takes raw appeal strings; normalises them first (idempotent).

    Parameters
    ----------
    char_ngram_range : tuple, default (1, 3)
    min_df : int, default 2
    max_char_features : int or None, default 300000
    """

    def __init__(self, *, char_ngram_range=(1, 3), min_df=2, max_char_features=300_000):
        self.char_ngram_range = char_ngram_range
        self.min_df = min_df
        self.max_char_features = max_char_features

    def _prep(self, X):
        texts = [normalise(x) for x in X]
        return texts, [word_bigrams(tokenize(t)) for t in texts]

    def fit(self, X, y=None):
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X, y=None):
        texts, tokens = self._prep(X)
        n = len(texts)
        min_df = self.min_df if n >= 50 else 1
        self.word_ = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, min_df=min_df)
        self.char_ = CharNgramTfidf(ngram_range=tuple(self.char_ngram_range), min_df=min_df,
                                    max_features=self.max_char_features)
        W = self.word_.fit_transform(tokens)
        C = self.char_.fit_transform(texts)
        self.n_features_out_ = W.shape[1] + C.shape[1]
        return sp.hstack([W, C], format="csr", dtype=np.float32)

    def transform(self, X):
        check_is_fitted(self, "word_")
        texts, tokens = self._prep(X)
        return sp.hstack([self.word_.transform(tokens), self.char_.transform(texts)], format="csr",
                         dtype=np.float32)
