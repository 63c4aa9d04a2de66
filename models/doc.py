"""One appeal's text, prepared once for every model that reads it.

Tagging runs the category and the urgency model over the same text; both need the
normalised text and character n-grams, the category model also the jieba words. A
:class:`Doc` computes each on first use and keeps it, so a tag normalises, segments and
counts n-grams once. Estimators accept plain strings too (scikit-learn contract); they
wrap them with :func:`as_docs`.
"""
from __future__ import annotations

import numpy as np

from corpora.text import normalise, tokenize
from models.charngrams import ngram_keys

__all__ = ["Doc", "as_docs", "word_bigrams"]


def word_bigrams(tokens: list[str]) -> list[str]:
    """Unigrams plus adjacent-word bigrams (joined with '_')."""
    return tokens + [f"{a}_{b}" for a, b in zip(tokens, tokens[1:])]


class Doc:
    """A normalised appeal text with its words and character n-gram counts, computed lazily.

    Examples
    --------
    >>> d = Doc("小區物業不管暖氣")
    >>> d.text, d.words[:4]
    ('小区物业不管暖气', ['小区', '物业', '不管', '暖气'])
    >>> keys, counts = d.char_grams((1, 1))
    >>> len(keys), int(counts.sum())
    (8, 8)
    """

    __slots__ = ("text", "_words", "_grams")

    def __init__(self, text: str, *, normalised: bool = False):
        self.text = text if normalised else normalise(text)
        self._words = None
        self._grams = {}

    @property
    def words(self) -> list[str]:
        """jieba words and adjacent-word bigrams."""
        if self._words is None:
            self._words = word_bigrams(tokenize(self.text))
        return self._words

    def char_grams(self, ngram_range=(1, 3)) -> tuple[np.ndarray, np.ndarray]:
        """Sorted unique packed n-gram keys (see :func:`ngram_keys`) and their counts."""
        key = tuple(ngram_range)
        if key not in self._grams:
            self._grams[key] = np.unique(ngram_keys(self.text, key), return_counts=True)
        return self._grams[key]


def as_docs(X) -> list[Doc]:
    return [x if isinstance(x, Doc) else Doc(str(x)) for x in X]
