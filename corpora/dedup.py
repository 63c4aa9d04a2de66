"""Near-duplicate groups: the same appeal re-posted, or with and without its title.

Honest splitting puts each group wholly on one side of a split.

Two appeals are near-duplicates when the cosine similarity of their character 3-gram
TF-IDF vectors (sublinear tf, so a phrase said many times does not swamp the rest) is at
least ``threshold`` (the same appeal with and without its title,
re-posts with small edits), or when one text contains the other: after dropping case,
whitespace and punctuation, a text of at least ``min_contained`` characters appears
verbatim inside the other (a short appeal quoted in, or grown into, a long one, where the
long text dilutes the cosine far below the threshold). Groups are the connected
components of that relation.

Containment is found without comparing all pairs: a text can only be contained in texts
that hold its rarest 3-gram (of the stripped texts), so only those (usually none or a
handful) are tested with ``in``.
"""
from __future__ import annotations

import re

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.feature_extraction.text import TfidfVectorizer

__all__ = ["near_duplicate_groups"]

_NOT_WORD = re.compile(r"[\W_]+")  # whitespace and punctuation: ignored by containment


def near_duplicate_groups(texts, *, threshold: float = 0.6, min_contained: int = 20,
                          block_size: int = 2000) -> np.ndarray:
    """Return a group id per text; near-duplicates share an id.

    ``min_contained``: the fewest characters (whitespace and punctuation not counted) a
    text needs for containment in another to make them near-duplicates, so that a short
    text does not join every appeal that happens to contain it.

    Examples
    --------
    >>> near_duplicate_groups(["小区暖气不热，家里很冷", "标题。小区暖气不热，家里很冷", "导游强制购物"]).tolist()
    [0, 0, 1]
    """
    texts = [str(t) for t in texts]
    n = len(texts)
    if n == 0:
        return np.zeros(0, dtype=int)
    vec = TfidfVectorizer(analyzer="char", ngram_range=(3, 3), min_df=1, sublinear_tf=True)
    X = vec.fit_transform(texts)
    rows, cols = [], []
    for start in range(0, n, block_size):
        sims = (X[start:start + block_size] @ X.T).tocoo()
        keep = (sims.data >= threshold) & (sims.row + start != sims.col)
        rows.append(sims.row[keep] + start)
        cols.append(sims.col[keep])
    r, c = _containment_pairs([_NOT_WORD.sub("", t.lower()) for t in texts], min_contained)
    rows.append(r)
    cols.append(c)

    r = np.concatenate(rows).astype(np.int64)
    c = np.concatenate(cols).astype(np.int64)
    graph = coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # Renumber in order of first appearance for readable, stable ids.
    _, first = np.unique(labels, return_index=True)
    order = {lab: i for i, lab in enumerate(labels[np.sort(first)])}
    return np.array([order[lab] for lab in labels], dtype=int)


def _containment_pairs(stripped: list[str], min_contained: int):
    """(container, contained) index pairs among the ``stripped`` texts.

    Every 3-gram of a contained text occurs in its container, so the only candidates for
    containing text ``j`` are the texts holding ``j``'s rarest 3-gram. 3-grams are coded
    exactly as three 21-bit code points in one int64, all texts at once.
    """
    n = len(stripped)
    length = np.fromiter((len(s) for s in stripped), dtype=np.int64, count=n)
    empty = np.zeros(0, dtype=np.int64)
    if (length >= min_contained).sum() < 2:
        return empty, empty
    # No lone surrogate survives the stripping (it is \W), so every text encodes.
    codes = np.frombuffer("".join(stripped).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    doc = np.repeat(np.arange(n), length)
    inside = doc[:-2] == doc[2:]  # 3-grams that do not cross from one text into the next
    gram = ((codes[:-2] << 42) | (codes[1:-1] << 21) | codes[2:])[inside]
    doc = doc[:-2][inside]
    # One (3-gram, text) pair per text holding the 3-gram, sorted by 3-gram: the postings.
    order = np.lexsort((doc, gram))
    gram, doc = gram[order], doc[order]
    first = np.ones(len(gram), dtype=bool)
    first[1:] = (gram[1:] != gram[:-1]) | (doc[1:] != doc[:-1])
    gram, doc = gram[first], doc[first]
    new_gram = np.ones(len(gram), dtype=bool)
    new_gram[1:] = gram[1:] != gram[:-1]
    gram_id = np.cumsum(new_gram) - 1
    starts = np.append(np.nonzero(new_gram)[0], len(gram))
    df = np.diff(starts)
    # Each long-enough text's rarest 3-gram.
    by_doc = np.lexsort((df[gram_id], doc))
    lead = np.ones(len(by_doc), dtype=bool)
    lead[1:] = doc[by_doc][1:] != doc[by_doc][:-1]
    anchor_doc, anchor = doc[by_doc][lead], gram_id[by_doc][lead]
    out_r, out_c = [], []
    for j, g in zip(anchor_doc.tolist(), anchor.tolist()):
        if length[j] < min_contained or df[g] < 2:
            continue
        s = stripped[j]
        for i in doc[starts[g]:starts[g + 1]].tolist():
            if i != j and length[i] >= length[j] and s in stripped[i]:
                out_r.append(i)
                out_c.append(j)
    return np.array(out_r, dtype=np.int64), np.array(out_c, dtype=np.int64)
