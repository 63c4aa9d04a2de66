"""Appeals: store and tag (``POST /v1/appeals``), list and filter, one appeal in detail."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from service import hotspot_store, store
from service.config import Settings
from service.db import localize
from service.deps import Filter, Ingester, Reader, SessionDep, StrictJSONRoute
from service.ingest import records_of
from service.schemas import (AppealDetail, AppealOut, AppealsPage, HotspotRef, LabelOut, PredictionOut, TagsOut,
                             Time, request_bodies)


def router(settings: Settings) -> APIRouter:
    """The routes of ``settings``: request bodies hold at most ``max_batch`` appeals and
    pages at most ``page_size_max`` (both in the OpenAPI schema)."""
    r = APIRouter(prefix="/v1/appeals", tags=["appeals"], route_class=StrictJSONRoute)
    AppealBody, _ = request_bodies(settings.max_batch)

    @r.post("", response_model=TagsOut,
            responses={409: {"description": "id already stored with different text"},
                       413: {"description": "batch or body too large"}})
    async def post_appeals(body: AppealBody, request: Request, _: Ingester):
        """Store one appeal or a batch (≤ 1,000), tag each with the current model, return the tags.
        Idempotent on ``id``. The response is sent only after the commit."""
        records = records_of(body, timezone=settings.timezone)
        done = await request.app.state.ingest.submit(records, len(records))
        data = [{"id": r["id"], "created": c, **t} for r, c, t in zip(records, done.created, done.tags)]
        return {"data": data, "count": len(data)}

    @r.get("", response_model=AppealsPage)
    def get_appeals(s: SessionDep, _: Reader,
                    since: Time | None = None, until: Time | None = None, category: Filter = None,
                    urgency: Filter = None, district: Filter = None, needs_review: bool | None = None,
                    limit: Annotated[int, Query(ge=1, le=settings.page_size_max)] = 100,
                    cursor: str | None = None):
        """Appeals in arrival order, filtered; follow ``next_cursor`` for the next page."""
        try:
            after = store.decode_cursor(cursor) if cursor else 0
        except ValueError as err:
            raise HTTPException(422, str(err)) from None
        since, until = localize(since, settings.timezone), localize(until, settings.timezone)
        rows, nxt = store.list_appeals(s, since=since, until=until, category=category, urgency=urgency,
                                       district=district, needs_review=needs_review, after_seq=after, limit=limit)
        return {"data": [AppealOut.model_validate(r, from_attributes=True) for r in rows], "count": len(rows),
                "next_cursor": nxt}

    @r.get("/{appeal_id}", response_model=AppealDetail, responses={404: {"description": "unknown appeal"}})
    def get_appeal(appeal_id: str, s: SessionDep, _: Reader):
        found = store.get_detail(s, appeal_id=appeal_id) if "\x00" not in appeal_id else None
        if found is None:
            raise HTTPException(404, "Appeal not found")
        row, preds, labels = found
        hotspot = hotspot_store.appeal_hotspot(s, appeal_id=appeal_id)
        return {"appeal": AppealOut.model_validate(row, from_attributes=True),
                "predictions": [PredictionOut.model_validate(p, from_attributes=True) for p in preds],
                "labels": [LabelOut.model_validate(lab, from_attributes=True) for lab in labels],
                "hotspot": HotspotRef(**hotspot) if hotspot else None}

    return r
