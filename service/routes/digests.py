"""The weekly risk digest (issue 15), from the service's database: ``GET /v1/digests/{week_ending}``
answers HTML, Markdown or JSON by the request's ``Accept`` header."""

import re
import threading
from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from service.config import Settings
from service.deps import Reader, StrictJSONRoute

__all__ = ["router", "WeekEnding", "negotiate", "HTML_POLICY"]

_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
EARLIEST, LATEST = date(1970, 1, 1), date(2100, 1, 1)
FORMATS = {"application/json": "json", "text/html": "html", "text/markdown": "md"}
# the digest is one self-contained page: inline styles and SVG, no script, nothing fetched
HTML_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def week_ending(value):
    """A date written ``YYYY-MM-DD``, from 1970 to 2099 (the API's time bounds).

    >>> week_ending("2025-11-16")
    datetime.date(2025, 11, 16)
    >>> week_ending("2025-02-30")
    Traceback (most recent call last):
    pydantic_core._pydantic_core.PydanticCustomError: week_ending is not a calendar date
    """
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise PydanticCustomError("date_format", "week_ending must be a date written YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("date_invalid", "week_ending is not a calendar date") from None
    if not EARLIEST <= day < LATEST:
        raise PydanticCustomError("time_out_of_range", "week_ending must lie between 1970 and 2100")
    return day


WeekEnding = Annotated[date, BeforeValidator(week_ending),
                       Path(description="the last day of the week (YYYY-MM-DD, the hotline's calendar)")]


def negotiate(accept: str | None) -> str | None:
    """The digest format ("json", "html" or "md") the ``Accept`` header prefers; JSON when it
    names none (or ``*/*`` only), None when it accepts none of them. Ties go to JSON, then HTML.

    >>> negotiate("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
    'html'
    >>> negotiate(None), negotiate("*/*"), negotiate("text/*"), negotiate("image/png")
    ('json', 'json', 'html', None)
    """
    if not accept or not accept.strip():
        return "json"
    q = dict.fromkeys(FORMATS, 0.0)
    specificity = dict.fromkeys(FORMATS, -1)
    for part in accept.split(",")[:50]:
        media, *params = (p.strip() for p in part.split(";"))
        media = media.lower()
        weight = 1.0
        for p in params:
            name, _, value = p.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    weight = 0.0
        for m in FORMATS:
            kind = m.split("/")[0]
            level = 2 if media == m else 1 if media == f"{kind}/*" else 0 if media == "*/*" else -1
            if level > specificity[m]:  # the most specific range that matches decides (RFC 9110)
                specificity[m], q[m] = level, weight
    best = max(FORMATS, key=lambda m: q[m])  # first of the best: JSON, then HTML, then Markdown
    return FORMATS[best] if q[best] > 0 else None


def router(settings: Settings) -> APIRouter:
    r = APIRouter(prefix="/v1/digests", tags=["digests"], route_class=StrictJSONRoute)
    drawing = threading.Lock()

    @r.get("/{week_ending}", response_class=Response,
           responses={200: {"content": {"application/json": {}, "text/html": {}, "text/markdown": {}},
                            "description": "the digest in the format the Accept header prefers"},
                      404: {"description": "no appeals stored up to that week"},
                      406: {"description": "Accept names none of JSON, HTML and Markdown"}})
    def get_digest(week_ending: WeekEnding, request: Request, _: Reader):
        """The weekly risk digest for the week ending on ``week_ending`` (that day included):
        headline figures, risks that need action, seasonal issues coming up, hotspots, critical
        and urgent appeals, model health — every figure with the appeal ids behind it.
        ``Accept: text/html`` gives one self-contained page (what a browser asks for),
        ``text/markdown`` Markdown, anything else JSON."""
        fmt = negotiate(request.headers.get("accept"))
        if fmt is None:
            raise HTTPException(406, "the digest is served as application/json, text/html or text/markdown")
        from service.digest import digest_from_db, render  # lazily: the digest pulls in its own libraries

        try:
            digest = digest_from_db(settings.database_url, week_ending, tagger=request.app.state.tagger,
                                    timezone=settings.timezone, cache=settings.digest_cache)
        except ValueError:  # the digest's refusal of its input: nothing stored up to that week
            raise HTTPException(404, f"No digest for the week ending {week_ending}: no appeals stored up to it") \
                from None
        with drawing:  # matplotlib's pyplot, which draws the HTML's charts, is not thread-safe
            body = render(digest, fmt)
        if fmt == "html":
            return Response(body, media_type="text/html; charset=utf-8",
                            headers={"Content-Security-Policy": HTML_POLICY, "Vary": "Accept"})
        media = "application/json" if fmt == "json" else "text/markdown; charset=utf-8"
        return Response(body, media_type=media, headers={"Vary": "Accept"})

    return r
