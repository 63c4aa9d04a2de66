"""Train a model bundle: category classifier (and urgency model when labels are given)."""
from __future__ import annotations

import logging
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

from corpora.records import appeal_texts
from corpora.rules import default_router
from models.category import CategoryClassifier
from models.registry import REGISTRY_DIR, Bundle, data_hash, save_bundle, set_current as _set_current

log = logging.getLogger(__name__)

__all__ = ["train_bundle", "check_labels"]


def check_labels(values, allowed, *, field: str) -> None:
    """Refuse labels outside ``allowed``, naming them and where they are."""
    bad = {}
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v not in allowed:
            bad.setdefault(str(v), []).append(i + 1)
    if bad:
        detail = "; ".join(f"{k!r} at records {v[:5]}{'…' if len(v) > 5 else ''}" for k, v in list(bad.items())[:5])
        raise ValueError(f"unknown {field} labels: {detail}. Allowed: {sorted(allowed)}. "
                         f"Fix the labels or add the {field} to corpora/data/.")


def train_bundle(data: pd.DataFrame, out, *, urgency_data: pd.DataFrame | None = None, evaluate=True,
                 folds=5, random_state=0, set_current=False, progress=True) -> Bundle:
    """Fit the models on ``data`` (and ``urgency_data``), evaluate honestly, save a bundle."""
    from training.evaluate import cross_validate_category

    if "category" not in data.columns or data["category"].isna().all():
        raise ValueError("training data has no 'category' column with labels (一级标签)")
    labelled = data[data["category"].notna()].reset_index(drop=True)
    router = default_router()
    check_labels(labelled["category"].tolist(), set(router.categories), field="category")
    texts = appeal_texts(labelled)
    y = labelled["category"].to_numpy(dtype=object)
    metrics = {}
    t0 = time.perf_counter()
    model = CategoryClassifier(random_state=random_state)
    if evaluate:
        log.info("grouped %d-fold cross-validation on %d appeals", folds, len(texts))
        metrics["cv"] = cross_validate_category(texts, y, model=model, n_splits=folds,
                                                random_state=random_state, progress=progress)
    t1 = time.perf_counter()
    log.info("fitting the category model on %d appeals", len(texts))
    model.fit(texts, y)
    train_seconds = time.perf_counter() - t1
    models = {"category": model}
    extra = {"labels": {"category": [str(c) for c in model.classes_]},
             "data": {"category": {"n": len(texts), "sha256": data_hash(texts, y)}},
             "review_threshold": model.review_threshold_}
    if urgency_data is None and "urgency" in data.columns and data["urgency"].notna().any():
        urgency_data = data
    if urgency_data is not None:
        from training.urgency import train_urgency

        umodel, umetrics, uinfo = train_urgency(urgency_data, evaluate=evaluate, folds=folds,
                                                random_state=random_state, progress=progress)
        models["urgency"] = umodel
        metrics.update(umetrics)
        extra["labels"]["urgency"] = [str(c) for c in umodel.classes_]
        extra["data"]["urgency"] = uinfo
    extra["metrics"] = metrics
    extra["train_seconds"] = round(train_seconds, 1)
    extra["total_seconds"] = round(time.perf_counter() - t0, 1)
    extra["train_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    bundle = save_bundle(out, models, extra=extra)
    if set_current:
        out = Path(out).resolve()
        if out.parent != REGISTRY_DIR.resolve():
            raise ValueError(f"--set-current needs --out inside {REGISTRY_DIR}")
        _set_current(out)
    log.info("saved bundle %s to %s", bundle.version, bundle.path)
    return bundle
