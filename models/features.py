"""Text features shared by Suqiu's estimators: word (jieba) and character TF-IDF."""
from __future__ import annotations

from itertools import repeat

import numpy as np
import scipy.sparse as sp
from pandas._libs.hashtable import Int64HashTable
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
        self.__dict__.pop("_bigrams", None)  # a lookup table of the previous vocabulary
        min_df = self.min_df if len(docs) >= 50 else 1
        self.word_ = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, min_df=min_df)
        self.char_ = CharNgramTfidf(ngram_range=tuple(self.char_ngram_range), min_df=min_df,
                                    max_features=self.max_char_features, max_chars=self.max_chars)
        W = self.word_.fit_transform([d.words(self.max_chars) for d in docs])
        C = self.char_.fit_transform(docs)
        self.n_features_out_ = W.shape[1] + C.shape[1]
        return sp.hstack([W, C], format="csr", dtype=np.float32)

    def _bigram_index(self):
        """(hash table of packed word-id pairs, their columns): bigram columns found from the
        two words' ids, without building and hashing the ``a_b`` string for every adjacent pair.

        Exact when no vocabulary term holds two ``_``: then a pair's joined string is in the
        vocabulary only if both words are (a bigram's document frequency is at most each of
        its words', and ``min_df`` is the only pruning) and it splits one way. Otherwise None,
        and the strings are looked up. Built on first use, not saved (like the n-gram table).
        """
        if "_bigrams" not in self.__dict__:
            vocab = self.word_.vocabulary_
            index = None
            if not any(t.count("_") > 1 for t in vocab):
                pairs, columns = [], []
                for term, col in vocab.items():
                    a, sep, b = term.partition("_")
                    if sep and a in vocab and b in vocab:
                        pairs.append((vocab[a] << 32) | vocab[b])
                        columns.append(col)
                table = Int64HashTable(len(pairs))
                table.map_locations(np.array(pairs, dtype=np.int64))
                index = (table, np.array(columns, dtype=np.int64))
            self.__dict__["_bigrams"] = index
        return self.__dict__["_bigrams"]

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_bigrams", None)
        return state

    def _word_ids(self, doc) -> np.ndarray:
        """Vocabulary columns of a document's words and adjacent-word bigrams (-1: not in it)."""
        vocab = self.word_.vocabulary_
        index = self._bigram_index()
        if index is None:
            words = doc.words(self.max_chars)
            return np.fromiter(map(vocab.get, words, repeat(-1)), dtype=np.int64, count=len(words))
        tokens = doc.tokens(self.max_chars)
        ids = np.fromiter(map(vocab.get, tokens, repeat(-1)), dtype=np.int64, count=len(tokens))
        a, b = ids[:-1], ids[1:]
        known = (a >= 0) & (b >= 0)
        table, columns = index
        pos = table.lookup((a[known] << 32) | b[known])
        return np.concatenate([ids, columns[pos[pos >= 0]]])

    def _word_rows(self, docs) -> list[tuple[np.ndarray, np.ndarray]]:
        """The fitted word vectoriser's rows (tested equal to its ``transform``), looked up with
        one C-level ``map`` over the vocabulary instead of its per-token Python loop."""
        idf = self.word_.idf_
        rows = []
        for d in docs:
            ids = self._word_ids(d)
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
