"""Character n-gram TF-IDF with vectorised n-gram extraction.

Functionally the same as ``TfidfVectorizer(analyzer="char", sublinear_tf=True)`` (smooth
IDF, l2 rows, the most frequent ``max_features`` n-grams with ``min_df``), but each
n-gram is packed into one int64 from its code points (21 bits each, so up to trigrams)
and looked up in a hash table of int64 keys instead of a Python dict of strings: tagging
was bound by scikit-learn's per-n-gram Python loop (docs/adr/0002-category-model.md).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pandas._libs.hashtable import Int64HashTable
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

__all__ = ["CharNgramTfidf", "ngram_keys", "unit", "csr_from_rows"]

_BITS = 21  # Unicode code points fit in 21 bits


def ngram_keys(text: str, ngram_range=(1, 3)) -> np.ndarray:
    """Packed int64 keys of every character n-gram of ``text`` (lower-cased).

    Examples
    --------
    >>> k = ngram_keys("暖气", (1, 2))
    >>> len(k), int(k[0]) == ord("暖"), int(k[2]) == (ord("暖") << 21) | ord("气")
    (3, True, True)
    """
    lo, hi = ngram_range
    if not 1 <= lo <= hi <= 3:
        raise ValueError(f"ngram_range must lie within (1, 3), got {ngram_range!r}")
    cp = np.frombuffer(" ".join(text.lower().split()).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    parts = []
    for n in range(lo, hi + 1):
        if len(cp) < n:
            break
        key = cp[: len(cp) - n + 1].copy()
        for j in range(1, n):
            key = (key << _BITS) | cp[j: len(cp) - n + 1 + j]
        parts.append(key)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class CharNgramTfidf(TransformerMixin, BaseEstimator):
    """Sublinear, l2-normalised TF-IDF over character 1–3-grams.

    Parameters
    ----------
    ngram_range : tuple, default (1, 3)
    min_df : int, default 2
    max_features : int or None, default None
    max_chars : int or None, default None
        Read only the first ``max_chars`` characters of each text (None: all).

    Examples
    --------
    >>> v = CharNgramTfidf(min_df=1).fit(["暖气不热", "景区门票"])
    >>> X = v.transform(["暖气"])
    >>> X.shape[0], round(float((X.multiply(X)).sum()), 6)
    (1, 1.0)
    """

    max_chars = None  # models saved before the parameter existed read whole texts

    def __init__(self, *, ngram_range=(1, 3), min_df=2, max_features=None, max_chars=None):
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_features = max_features
        self.max_chars = max_chars

    def _grams(self, x):
        if isinstance(x, str):
            return np.unique(ngram_keys(x[:self.max_chars], self.ngram_range), return_counts=True)
        return x.char_grams(self.ngram_range, self.max_chars)  # a models.doc.Doc

    def fit(self, X, y=None):
        docs = [self._grams(x) for x in X]
        n = len(docs)
        if n == 0:
            raise ValueError("cannot fit on zero texts")
        allkeys = np.concatenate([k for k, _ in docs])
        allcounts = np.concatenate([c for _, c in docs])
        keys, inv = np.unique(allkeys, return_inverse=True)
        df = np.bincount(inv, minlength=len(keys))
        tf = np.bincount(inv, weights=allcounts, minlength=len(keys))
        keep = df >= self.min_df
        if self.max_features is not None and keep.sum() > self.max_features:
            idx = np.nonzero(keep)[0]
            top = idx[np.argsort(-tf[idx], kind="stable")[: self.max_features]]
            keep = np.zeros_like(keep)
            keep[top] = True
        self.keys_ = keys[keep]
        self.idf_ = np.log((1 + n) / (1 + df[keep])) + 1.0
        self.__dict__.pop("_index", None)  # a lookup table of the previous vocabulary
        return self

    def _columns(self, keys: np.ndarray) -> np.ndarray:
        """Column of each packed n-gram, -1 where it is not in the vocabulary.

        A hash table of the int64 keys (pandas' ``Int64HashTable``; pandas is pinned and
        tests/test_charngrams.py checks it against scikit-learn), built on first use and not
        saved with the model: 12 vs 104 µs for a binary search over 300,000 sorted keys with
        800 n-grams (a one-off timing).
        """
        table = self.__dict__.get("_index")
        if table is None:
            check_is_fitted(self, "keys_")
            table = Int64HashTable(len(self.keys_))
            table.map_locations(self.keys_)
            self.__dict__["_index"] = table
        return table.lookup(keys)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_index", None)
        return state

    def rows(self, X) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per text: (column indices, unit-l2 TF-IDF values) — :meth:`transform` without the matrix,
        for callers that stack several feature blocks into one (see :func:`csr_from_rows`)."""
        out = []
        for x in X:
            k, c = self._grams(x)
            pos = self._columns(k)
            hit = pos >= 0
            out.append((pos[hit], unit((1.0 + np.log(c[hit])) * self.idf_[pos[hit]])))
        return out

    def transform(self, X):
        """Rows for strings, or for :class:`models.doc.Doc` objects (their n-grams are reused)."""
        return csr_from_rows(self.rows(X), len(self.keys_))


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to unit l2 norm; all zeros stay zeros (as ``sklearn.preprocessing.normalize``)."""
    norm = float(np.sqrt(v @ v))  # 0.0 for an empty vector
    return v / norm if norm > 0 else v


def csr_from_rows(rows: list[tuple[np.ndarray, np.ndarray]], n_features: int, dtype=np.float64) -> sp.csr_matrix:
    """A CSR matrix from per-row (column indices, values).

    Examples
    --------
    >>> csr_from_rows([(np.array([0, 2]), np.array([0.6, 0.8])), (np.array([], int), np.array([]))], 3).toarray()
    array([[0.6, 0. , 0.8],
           [0. , 0. , 0. ]])
    """
    indptr = np.zeros(len(rows) + 1, dtype=np.int32)  # int32 like the indices: scipy then copies nothing
    np.cumsum([len(i) for i, _ in rows], out=indptr[1:])
    indices = np.concatenate([i for i, _ in rows]) if rows else np.zeros(0)
    data = np.concatenate([v for _, v in rows]) if rows else np.zeros(0)
    return sp.csr_matrix((data.astype(dtype, copy=False), indices.astype(np.int32, copy=False), indptr),
                         shape=(len(rows), n_features))
