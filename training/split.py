"""Honest splitting: near-duplicate groups never straddle a split."""
from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from corpora.dedup import near_duplicate_groups

__all__ = ["near_duplicate_groups", "grouped_folds"]


def grouped_folds(y, groups, *, n_splits: int = 5, random_state: int = 0):
    """Stratified folds that keep every near-duplicate group on one side."""
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    return list(splitter.split(np.zeros(len(y)), y, groups))
