"""The dashboard (issue 15): HTML pages for analysts, served by the service itself.

Pages: this week's early-warning alerts (``/dashboard``), the weeks with a link to each
week's digest (``/dashboard/weeks``), the week's hotspots (``/dashboard/hotspots``) and a
district × category heat table (``/dashboard/heat``). They need no JavaScript and load
nothing from outside the service (one stylesheet, ``/dashboard/style.css``); a
Content-Security-Policy forbids scripts and foreign resources.

Signing in: the login form posts an API key whose role reads appeals (analyst or admin);
it is kept in an HttpOnly, SameSite=Strict cookie, which the dashboard pages and the
read-only GET endpoints accept (why that is safe from cross-site request forgery:
:func:`service.deps.reader`). The login form is refused when the browser says it was
sent from another origin (login CSRF).

Times: the "week" of the dashboard is the stream's week — as of the newest stored
appeal's day (not after today), on the hotline's clock (``SUQIU_TIMEZONE``) — so a
replayed or paused stream shows its own last week rather than an empty one. Weeks end
on Sunday, like the digest's.
"""

import logging
import threading
import time as clock
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import BigInteger, Integer, cast, func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from corpora.text import join_title
from service import hotspot_store
from service.config import Settings
from service.db import Appeal
from service.deps import COOKIE, StrictJSONRoute, authenticate
from service.routes.digests import week_ending

__all__ = ["router", "AlertCache", "PAGE_POLICY", "stream_day", "week_end_of"]

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
PAGE_POLICY = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
               "base-uri 'none'; frame-ancestors 'none'")
COOKIE_SECONDS = 8 * 3600  # one working day
HISTORY_DAYS = 3 * 365 + 7  # what the early-warning detector reads: seasons of the past years
KINDS = {"spike": "突增", "seasonal_onset": "季节性上升", "emerging": "新出现的问题", "forecast": "预计到来"}


def week_end_of(day: date) -> date:
    """The Sunday ending ``day``'s week.

    >>> week_end_of(date(2025, 12, 17)), week_end_of(date(2025, 12, 21))
    (datetime.date(2025, 12, 21), datetime.date(2025, 12, 21))
    """
    return day + timedelta(days=6 - day.weekday())


def _local(value: datetime, zone: ZoneInfo) -> datetime:
    """A stored (UTC) time as a naive wall-clock time on the hotline's clock."""
    return value.astimezone(zone).replace(tzinfo=None)


def _start(day: date, zone: ZoneInfo) -> datetime:
    """The instant ``day`` starts on the hotline's clock."""
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def stream_day(session: Session, zone: ZoneInfo) -> date | None:
    """The newest stored appeal's day on the hotline's clock (not after today); None when
    nothing is stored."""
    newest = session.scalar(select(func.max(Appeal.time))) or session.scalar(select(func.max(Appeal.received_at)))
    if newest is None:
        return None
    newest = newest.replace(tzinfo=timezone.utc) if newest.tzinfo is None else newest
    return min(_local(newest, zone).date(), datetime.now(zone).date())


def _when(row) -> datetime:
    return row.time if row.time is not None else row.received_at


def stream_frame(session: Session, zone: ZoneInfo, *, first: date, last: date):
    """The stored appeals of days ``first`` to ``last`` as the stream the early-warning
    detector reads: ``id, time`` (wall clock), ``text`` (title joined), ``district``,
    ``category``, ``user``."""
    import pandas as pd

    when = func.coalesce(Appeal.time, Appeal.received_at)
    rows = session.execute(select(Appeal.id, Appeal.time, Appeal.received_at, Appeal.title, Appeal.text,
                                  Appeal.district, Appeal.category, Appeal.user)
                           .where(when >= _start(first, zone), when < _start(last + timedelta(days=1), zone))
                           .order_by(Appeal.seq)).all()
    return pd.DataFrame({"id": [r.id for r in rows],
                         "time": pd.to_datetime([_local(_when(r), zone) for r in rows]),
                         "text": [join_title(r.title, r.text) for r in rows],
                         "district": [r.district for r in rows], "category": [r.category for r in rows],
                         "user": [r.user for r in rows]})


class AlertCache:
    """The early-warning alerts of the stream's current day, computed once per day.

    Fitting the detector reads up to three years of appeals (seconds on a large database),
    so the alerts are kept until the stream's day changes; requests that arrive while they
    are computed wait for that one computation.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._day: date | None = None
        self._value: dict | None = None

    def get(self, day: date, compute) -> dict:
        with self._lock:
            if self._day != day:
                self._value, self._day = compute(day), day
            return self._value


def _alerts(session: Session, zone: ZoneInfo, day: date) -> dict:
    """The detector's alerts as of the end of ``day`` for the 7 days up to it."""
    from models.trends import TrendDetector

    t0 = clock.perf_counter()
    frame = stream_frame(session, zone, first=day - timedelta(days=HISTORY_DAYS), last=day)
    if frame.empty:
        return {"alerts": [], "coming": [], "appeals": 0, "seconds": 0.0}
    found = TrendDetector().fit(frame).detect(day.isoformat(), since_days=7)
    found.sort(key=lambda a: -a["score"])
    seconds = round(clock.perf_counter() - t0, 2)
    log.info("dashboard alerts as of %s: %d from %d appeals in %.2f s", day, len(found), len(frame), seconds)
    return {"alerts": [a for a in found if a["kind"] != "forecast"],
            "coming": [a for a in found if a["kind"] == "forecast"], "appeals": len(frame), "seconds": seconds}


BUCKET_S = 900  # appeals are counted per quarter hour in SQL: every zone's offset is a whole number of them


def _bucket(session: Session, column):
    """The quarter hour (since 1970) of a stored instant, in SQL (SQLite stores UTC text)."""
    if session.get_bind().dialect.name == "sqlite":
        return cast(func.strftime("%s", column), Integer) / BUCKET_S  # integer division
    return cast(func.floor(func.extract("epoch", column) / BUCKET_S), BigInteger)


def _weeks(session: Session, zone: ZoneInfo, last: date, *, weeks: int = 104) -> list[dict]:
    """Per week (ending Sunday), newest first, the last ``weeks`` weeks up to ``last``'s:
    appeals, critical and urgent ones, and those flagged for review. The database counts
    them per quarter hour (a few thousand rows for two years, not one per appeal); each
    quarter hour then falls in its week on the hotline's clock."""
    first = week_end_of(last) - timedelta(days=7 * weeks - 1)
    when = func.coalesce(Appeal.time, Appeal.received_at)
    bucket = _bucket(session, when).label("bucket")
    rows = session.execute(select(bucket, Appeal.urgency, Appeal.needs_review, func.count())
                           .where(when >= _start(first, zone))
                           .group_by(bucket, Appeal.urgency, Appeal.needs_review)).all()
    out: dict[date, Counter] = {}
    week_of: dict[int, date] = {}
    for b, urgency, review, n in rows:
        b = int(b)
        if b not in week_of:
            week_of[b] = week_end_of(datetime.fromtimestamp(b * BUCKET_S, timezone.utc).astimezone(zone).date())
        c = out.setdefault(week_of[b], Counter())
        c["appeals"] += n
        c[urgency or "none"] += n
        c["review"] += n if review else 0
    return [{"week_ending": w, "appeals": c["appeals"], "critical": c["critical"], "urgent": c["urgent"],
             "review": c["review"]} for w, c in sorted(out.items(), reverse=True)]


def _heat(session: Session, zone: ZoneInfo, week: date) -> dict:
    """Appeals per district × category in the week ending ``week``, with each cell's shade
    (0–5, by its share of the busiest cell)."""
    when = func.coalesce(Appeal.time, Appeal.received_at)
    rows = session.execute(select(Appeal.district, Appeal.category, func.count())
                           .where(when >= _start(week - timedelta(days=6), zone),
                                  when < _start(week + timedelta(days=1), zone))
                           .group_by(Appeal.district, Appeal.category)).all()
    cells = {(d or "（未填）", c or "（未分类）"): n for d, c, n in rows}
    by_district, by_category = Counter(), Counter()
    for (d, c), n in cells.items():
        by_district[d] += n
        by_category[c] += n
    districts = [d for d, _ in by_district.most_common()]
    categories = [c for c, _ in by_category.most_common()]
    top = max(cells.values(), default=0)
    table = [{"district": d, "total": by_district[d],
              "cells": [{"n": cells.get((d, c), 0),
                         "shade": 0 if not cells.get((d, c)) else 1 + min(4, int(5 * cells[(d, c)] / (top + 1)))}
                        for c in categories]} for d in districts]
    return {"categories": categories, "rows": table, "column_totals": [by_category[c] for c in categories],
            "total": sum(cells.values())}


def _group_view(g, zone: ZoneInfo) -> dict:
    """A stored hotspot group as the hotspots page shows it (times on the hotline's clock)."""
    return {"id": g.id, "place": g.place, "size": g.size, "people": g.people, "heat": g.heat, "summary": g.summary,
            "keywords": g.keywords or [], "districts": g.districts or [],
            "first": _local(g.first_time, zone) if g.first_time else None,
            "last": _local(g.last_time, zone) if g.last_time else None}


def _same_origin(request: Request) -> bool:
    """The form was sent from this service's own pages: the browser's ``Origin`` (or, when
    absent, ``Referer``) names this host. Clients that send neither (curl) pass."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True
    return urlsplit(source).netloc.lower() == (request.headers.get("host") or "").lower()


def router(settings: Settings) -> APIRouter:
    r = APIRouter(prefix="/dashboard", include_in_schema=False, route_class=StrictJSONRoute)
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.globals.update(kinds=KINDS, timedelta=timedelta)
    zone = ZoneInfo(settings.timezone)
    alerts = AlertCache()

    def page(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
        response = templates.TemplateResponse(request, name, context, status_code=status)
        response.headers["Content-Security-Policy"] = PAGE_POLICY
        return response

    async def viewer(request: Request):
        """The signed-in key (header or cookie) when its role reads appeals, else None."""
        raw = request.headers.get("x-api-key") or request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            key = await authenticate(request, raw)
        except HTTPException:
            return None
        return key if key.role in ("analyst", "admin") else None

    def login_page(request: Request, message: str | None = None, status: int = 200) -> HTMLResponse:
        return page(request, "dashboard_login.html", status, message=message)

    def week_param(request: Request) -> date | None:
        """The week (ending Sunday) of the ``week`` query parameter, if given: any day of it."""
        raw = request.query_params.get("week")
        if raw is None:
            return None
        try:
            return week_end_of(week_ending(raw))
        except ValueError:
            raise HTTPException(422, "week must be a date written YYYY-MM-DD between 1970 and 2100") from None

    @r.get("/style.css")
    def stylesheet():
        return FileResponse(TEMPLATES / "dashboard.css", media_type="text/css")

    @r.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request):
        return login_page(request)

    @r.post("/login")
    async def login(request: Request):
        if not _same_origin(request):
            return login_page(request, "请从本服务的登录页登录（跨站提交已拒绝）。", 403)
        form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
        raw = (form.get("key") or [""])[0].strip()
        if not raw:
            return login_page(request, "请输入 API 密钥。", 401)
        try:
            key = await authenticate(request, raw)
        except HTTPException:
            return login_page(request, "密钥无效或已吊销。", 401)
        if key.role not in ("analyst", "admin"):
            return login_page(request, f"角色「{key.role}」不能查看数据，请使用分析员（analyst）密钥。", 403)
        response = RedirectResponse("/dashboard", status_code=303)
        response.set_cookie(COOKIE, raw, max_age=COOKIE_SECONDS, path="/", httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    @r.post("/logout")
    async def logout(request: Request):
        response = RedirectResponse("/dashboard/login", status_code=303)
        if _same_origin(request):
            response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                                   secure=request.url.scheme == "https")
        return response

    async def show(request: Request, name: str, section: str, data) -> Response:
        """Page ``name`` for the signed-in key (else the login form): ``data(session, day)``,
        run in the thread pool, gives its context; ``day`` is the stream's day."""
        key = await viewer(request)
        if key is None:
            return RedirectResponse("/dashboard/login", status_code=303)

        def work():
            with request.app.state.sessions() as s:
                day = stream_day(s, zone)
                return day, data(s, day)

        day, context = await run_in_threadpool(work)
        return page(request, name, key=key, day=day, section=section, **context)

    @r.get("", response_class=HTMLResponse)
    async def home(request: Request):
        def data(s, day):
            return {"week": week_end_of(day) if day else None,
                    "found": alerts.get(day, lambda d: _alerts(s, zone, d)) if day else None}
        return await show(request, "dashboard_home.html", "home", data)

    @r.get("/weeks", response_class=HTMLResponse)
    async def weeks(request: Request):
        return await show(request, "dashboard_weeks.html", "weeks",
                          lambda s, day: {"weeks": _weeks(s, zone, day) if day else []})

    @r.get("/hotspots", response_class=HTMLResponse)
    async def hotspots(request: Request):
        asked = week_param(request)

        def data(s, day):
            week = asked or (week_end_of(day) if day else None)
            if week is None:
                return {"week": None, "groups": []}
            groups, _ = hotspot_store.list_groups(s, since=_start(week - timedelta(days=6), zone),
                                                  until=_start(week + timedelta(days=1), zone), limit=50)
            return {"week": week, "groups": [_group_view(g, zone) for g in groups]}
        return await show(request, "dashboard_hotspots.html", "hotspots", data)

    @r.get("/heat", response_class=HTMLResponse)
    async def heat(request: Request):
        asked = week_param(request)

        def data(s, day):
            week = asked or (week_end_of(day) if day else None)
            return {"week": week, "heat": _heat(s, zone, week) if week else None}
        return await show(request, "dashboard_heat.html", "heat", data)

    return r
