"""One appeal's text, prepared once for every model that reads it.

Tagging runs the category and the urgency model over the same text; both need the
normalised text and character n-grams, the category model also the jieba words. A
:class:`Doc` computes each on first use and keeps it, so a tag normalises, segments and
counts n-grams once. Estimators accept plain strings too (scikit-learn contract); they
wrap them with :func:`as_docs`.

Text features may read only the first ``max_chars`` characters (an estimator parameter):
tagging cost grows with length, and the long tail of appeals (9% of the real ones are over
1,000 characters, holding 36% of all characters) goes on with history and detail after the
point. The category model reads the first :data:`MAX_CHARS` (grouped 5-fold CV on the real
labels, an exploratory run: within a thousandth of macro-F1 of reading everything); the
urgency model, its risk cues and the routing keywords read the whole text.
"""
from __future__ import annotations

import numpy as np

from corpora.text import normalise, tokenize
from models.charngrams import ngram_keys

__all__ = ["Doc", "as_docs", "word_bigrams", "MAX_CHARS"]

MAX_CHARS = 1500  # the category model's default text window (see the module docstring)


def word_bigrams(tokens: list[str]) -> list[str]:
    """Unigrams plus adjacent-word bigrams (joined with '_')."""
    return tokens + [f"{a}_{b}" for a, b in zip(tokens, tokens[1:])]


class Doc:
    """A normalised appeal text with its words and character n-gram counts, computed lazily.

    Examples
    --------
    >>> d = Doc("小區物業不管暖氣")
    >>> d.text, d.words()[:4]
    ('小区物业不管暖气', ['小区', '物业', '不管', '暖气'])
    >>> keys, counts = d.char_grams((1, 1))
    >>> len(keys), int(counts.sum())
    (8, 8)
    >>> d.words(max_chars=4)
    ['小区', '物业', '小区_物业']
    """

    __slots__ = ("text", "_cache")

    def __init__(self, text: str, *, normalised: bool = False):
        self.text = text if normalised else normalise(text)
        self._cache = {}

    def _window(self, max_chars: int | None) -> int | None:
        """The cache key of a window: None when it holds the whole text (shared by all such)."""
        return None if max_chars is None or max_chars >= len(self.text) else max_chars

    def tokens(self, max_chars: int | None = None) -> list[str]:
        """jieba words (of the first ``max_chars`` characters)."""
        key = ("tokens", self._window(max_chars))
        if key not in self._cache:
            self._cache[key] = tokenize(self.text[:key[1]])
        return self._cache[key]

    def words(self, max_chars: int | None = None) -> list[str]:
        """jieba words and adjacent-word bigrams (of the first ``max_chars`` characters)."""
        key = ("words", self._window(max_chars))
        if key not in self._cache:
            self._cache[key] = word_bigrams(self.tokens(max_chars))
        return self._cache[key]

    def char_grams(self, ngram_range=(1, 3), max_chars: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Sorted unique packed n-gram keys (see :func:`ngram_keys`) and their counts."""
        key = (tuple(ngram_range), self._window(max_chars))
        if key not in self._cache:
            self._cache[key] = np.unique(ngram_keys(self.text[:key[1]], key[0]), return_counts=True)
        return self._cache[key]


def as_docs(X) -> list[Doc]:
    return [x if isinstance(x, Doc) else Doc(str(x)) for x in X]
