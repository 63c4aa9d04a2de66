"""Near-duplicate groups: the same appeal re-posted, or with and without its title.

Honest splitting puts each group wholly on one side of a split.

Two appeals are near-duplicates when the cosine similarity of their character 3-gram
TF-IDF vectors is at least ``threshold`` (the same appeal with and without its title,
re-posts with small edits), or when one text contains the other. Groups are the
connected components of that relation.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse.csgraph import connected_components
from sklearn.feature_extraction.text import TfidfVectorizer

__all__ = ["near_duplicate_groups"]


def near_duplicate_groups(texts, *, threshold: float = 0.6, block_size: int = 2000) -> np.ndarray:
    """Return a group id per text; near-duplicates share an id.

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
    from scipy.sparse import coo_matrix

    r = np.concatenate(rows) if rows else np.zeros(0, dtype=int)
    c = np.concatenate(cols) if cols else np.zeros(0, dtype=int)
    graph = coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # Renumber in order of first appearance for readable, stable ids.
    _, first = np.unique(labels, return_index=True)
    order = {lab: i for i, lab in enumerate(labels[np.sort(first)])}
    return np.array([order[lab] for lab in labels], dtype=int)
