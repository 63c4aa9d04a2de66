"""The API's routers, one per resource (FastAPI full-stack template's ``app/api/routes/``).

Each module has ``router(settings) -> APIRouter``: a few limits of the settings are part of
the OpenAPI schema (batch size, page size), so routers are built per app. Shared
dependencies live in :mod:`service.deps`; :func:`service.api.create_app` includes
:func:`api_router`. Router modules do not use ``from __future__ import annotations``:
FastAPI must resolve the annotations of the body types built inside ``router()``.
"""
from __future__ import annotations

from fastapi import APIRouter

from service.config import Settings

__all__ = ["api_router"]


def api_router(settings: Settings) -> APIRouter:
    """Every route of the service."""
    from service.routes import appeals, categories, classify, dashboard, digests, hotspots, labels, models, ops, review

    r = APIRouter()
    for module in (ops, appeals, classify, hotspots, labels, digests, dashboard, models, review, categories):
        r.include_router(module.router(settings))
    return r
