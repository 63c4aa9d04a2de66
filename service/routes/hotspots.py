"""Hotspots (ADR 0006): groups of appeals about one problem in one place."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from service import hotspot_store
from service.config import Settings
from service.db import localize
from service.deps import Filter, Reader, SessionDep, StrictJSONRoute
from service.schemas import HotspotDetail, HotspotOut, HotspotsPage, Time


def group_fields(g) -> dict:
    """The stored group ``g`` as the fields of :class:`service.schemas.HotspotOut`."""
    return {"group_id": g.id, **{k: getattr(g, k) for k in ("size", "people", "place", "first_time", "last_time",
                                                            "heat", "summary", "keywords", "districts",
                                                            "updated_at")}}


def router(settings: Settings) -> APIRouter:
    r = APIRouter(prefix="/v1/hotspots", tags=["hotspots"], route_class=StrictJSONRoute)

    @r.get("", response_model=HotspotsPage)
    def get_hotspots(s: SessionDep, _: Reader,
                     since: Time | None = None, until: Time | None = None, district: Filter = None,
                     limit: Annotated[int, Query(ge=1, le=settings.page_size_max)] = 50,
                     cursor: Annotated[str | None, Query(max_length=128)] = None):
        """Groups of two or more appeals about one problem in one place, hottest first (then by
        id); ``since`` / ``until``: groups with appeals in that period (first appeal before
        ``until``, last at or after ``since``); ``district``: groups with an appeal there.
        Follow ``next_cursor`` for the next page."""
        try:
            after = hotspot_store.decode_cursor(cursor) if cursor else None
        except ValueError as err:
            raise HTTPException(422, str(err)) from None
        since, until = localize(since, settings.timezone), localize(until, settings.timezone)
        if since is not None and until is not None and since >= until:
            raise HTTPException(422, "since must be before until")
        rows, nxt = hotspot_store.list_groups(s, since=since, until=until, district=district, after=after,
                                              limit=limit)
        data = [HotspotOut.model_validate(group_fields(g)) for g in rows]
        return {"data": data, "count": len(data), "next_cursor": nxt}

    @r.get("/{group_id}", response_model=HotspotDetail, responses={404: {"description": "unknown group"}})
    def get_hotspot(group_id: str, s: SessionDep, _: Reader):
        """One group with its appeal ids (in time order) and its repeat appeals."""
        found = hotspot_store.get_group(s, group_id=group_id) if hotspot_store.GROUP_ID.match(group_id) else None
        if found is None:
            raise HTTPException(404, "Hotspot not found")
        g, members = found
        return HotspotDetail.model_validate({**group_fields(g), "appeal_ids": [m[0] for m in members],
                                             "repeats": [{"id": i, "repeat_of": of or []}
                                                         for i, repeat, of in members if repeat]})

    return r
