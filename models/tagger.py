"""Tagger: everything a dispatcher sees for one appeal, from a loaded bundle.

Used by the CLI (`suqiu classify`) and, later, the HTTP service, so both return the
same fields.
"""
from __future__ import annotations

import numpy as np

from corpora.rules import Router, default_router
from models.doc import as_docs
from models.registry import Bundle

__all__ = ["Tagger"]


class Tagger:
    """Combine the bundle's models and the routing table into one tag per appeal."""

    def __init__(self, bundle: Bundle, router: Router | None = None, *, top_k: int = 3, city: str | None = None):
        if "category" not in bundle.models:
            raise ValueError(f"bundle {bundle.path} has no category model")
        self.bundle = bundle
        self.category = bundle.models["category"]
        self.urgency = bundle.models.get("urgency")
        # categories an admin added to the city's catalogue route as they did when it trained
        self.router = (router or default_router()).with_categories(bundle.manifest.get("categories_added"))
        self.top_k = top_k
        # Deadlines are the serving city's rules (corpora/data/sla.csv), not the training city's.
        self.sla = None
        if city is not None:
            from models.urgency import load_sla

            self.sla = load_sla(city=city)

    @property
    def version(self) -> str:
        return self.bundle.version

    def tag(self, texts: list[str], received_at: list | None = None) -> list[dict]:
        """Tags for ``texts`` (model input: title and text already joined), in order."""
        if not texts:
            return []
        docs = as_docs(texts)  # normalised, segmented and counted once for both models
        proba = self.category.predict_proba(docs)
        review = self.category.needs_review(proba)
        classes = self.category.classes_
        urg = self.urgency.explain(docs, received_at=received_at, sla=self.sla) if self.urgency is not None else None
        out = []
        for i, text in enumerate(d.text for d in docs):
            p = proba[i]
            best = int(np.argmax(p))
            category = str(classes[best])
            department, topic = self.router.route(category, text)
            top = np.argsort(-p)[: self.top_k]
            tag = {
                "category": category,
                "confidence": round(float(p[best]), 4),
                "category_scores": {str(classes[j]): round(float(p[j]), 4) for j in range(len(classes))},
                "top_categories": [str(classes[j]) for j in top],
                "needs_review": bool(review[i]),
                "department": department,
                "topic": topic,
                "model_version": self.version,
            }
            if urg is not None:
                tag.update(urg[i])
            out.append(tag)
        return out


_WORKER: Tagger | None = None


def _init_worker(bundle_path: str, city: str | None) -> None:
    global _WORKER
    from models.registry import load_bundle

    _WORKER = Tagger(load_bundle(bundle_path), city=city)


def _tag_chunk(args):
    texts, received_at = args
    return _WORKER.tag(texts, received_at=received_at)


def tag_in_processes(bundle_path, texts, received_at=None, *, n_jobs=2, chunk_size=500, on_chunk=None,
                     on_ready=None, city=None):
    """Tag a large batch on ``n_jobs`` processes, each loading the bundle once (deadlines by
    ``city``'s rules, as :class:`Tagger`).

    Feature extraction is Python-bound, so processes (not threads) use every core.
    Results come back in input order; ``on_chunk(n)`` is called as chunks finish. With
    ``on_ready``, every worker first loads the bundle and tags one text, then
    ``on_ready()`` is called before the batch starts (benchmarks time from there).
    """
    from concurrent.futures import ProcessPoolExecutor

    received_at = received_at or [None] * len(texts)
    chunks = [(texts[i:i + chunk_size], received_at[i:i + chunk_size]) for i in range(0, len(texts), chunk_size)]
    out: list[dict] = []
    with ProcessPoolExecutor(max_workers=n_jobs, initializer=_init_worker, initargs=(str(bundle_path), city)) as pool:
        if on_ready:
            list(pool.map(_tag_chunk, [(["预热"], [None])] * n_jobs))
            on_ready()
        for tags in pool.map(_tag_chunk, chunks):
            out.extend(tags)
            if on_chunk:
                on_chunk(len(tags))
    return out
