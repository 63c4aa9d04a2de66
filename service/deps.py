"""What every router shares (FastAPI full-stack template's ``app/api/deps.py``): the
settings, a database session, the API key and its role, and the route class that reads
JSON bodies strictly.

Dependencies are typed ``Annotated`` aliases (``SessionDep``, ``Reader`` …) and read what
the lifespan put on ``app.state`` (service/api.py), so routers are plain modules and
``create_app`` only assembles them.

Keys travel in the ``X-API-Key`` header. A browser cannot send a header on a link, so the
dashboard's login form (service/routes/dashboard.py) keeps the key in a cookie, and the
cookie is accepted by :func:`reader` only — see its docstring for why that is safe.
"""
from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from service.auth import PERMISSIONS, lookup
from service.config import Settings
from service.db import ApiKey

__all__ = ["SettingsDep", "SessionDep", "Filter", "COOKIE", "authenticate", "require", "reader", "Ingester",
           "Classifier", "Labeller", "Reader", "MetricsReader", "ModelReader", "ModelAdmin", "StrictJSONRoute",
           "strict_json", "printable"]

COOKIE = "suqiu_key"  # the dashboard's cookie (HttpOnly, SameSite=Strict), holding an API key


def printable(value) -> str:
    """``value`` as text any JSON response can carry (lone surrogates escaped), at most 200 characters."""
    return str(value)[:200].encode("utf-8", "backslashreplace").decode("utf-8")


# --- settings and database --------------------------------------------------------------------

def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(request: Request):
    with request.app.state.sessions() as s:
        yield s


SessionDep = Annotated[Session, Depends(get_session)]
# a short text filter of a query string (district, category …): no NUL, which PostgreSQL refuses
Filter = Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00]*$")]


# --- keys and roles ---------------------------------------------------------------------------

def _lookup(request: Request, raw: str) -> ApiKey | None:
    with request.app.state.sessions() as s:
        key = lookup(s, raw)
        if key is not None:
            s.expunge(key)
        return key


async def authenticate(request: Request, raw: str) -> ApiKey:
    """The key ``raw`` names (401 when unknown or revoked), cached for
    ``SUQIU_KEY_CACHE_SECONDS`` so that a request costs no key look-up."""
    cache: dict[str, tuple[float, ApiKey]] = request.app.state.key_cache
    hit = cache.get(raw)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    key = await run_in_threadpool(_lookup, request, raw)
    if key is None:
        cache.pop(raw, None)
        raise HTTPException(401, "invalid or revoked API key")
    cache[raw] = (time.monotonic() + request.app.state.settings.key_cache_seconds, key)
    return key


def _allow(key: ApiKey, permission: str) -> ApiKey:
    if permission not in PERMISSIONS[key.role]:
        raise HTTPException(403, f"role '{key.role}' may not {permission}")
    return key


def require(permission: str):
    """A dependency: the ``X-API-Key`` header's key, which must hold ``permission``
    (401 without a valid key, 403 when its role lacks the permission)."""
    async def dep(request: Request) -> ApiKey:
        raw = request.headers.get("x-api-key")
        if not raw:
            raise HTTPException(401, "missing API key (header X-API-Key)")
        return _allow(await authenticate(request, raw), permission)
    return dep


async def reader(request: Request) -> ApiKey:
    """The key of a read-only GET endpoint: the ``X-API-Key`` header, or else the
    dashboard's cookie; its role must read appeals.

    Why a cookie is safe here (cross-site request forgery): a cookie is an ambient
    credential — the browser attaches it by itself — so a page on another site could try
    to make a logged-in analyst's browser send requests that carry it.

    * The cookie is ``SameSite=Strict``: the browser attaches it only to requests that
      start on this site — never to a link, form, image or fetch from another site. That
      alone stops classic CSRF.
    * It is honoured only on GET endpoints that read (this dependency), which change
      nothing. A request that slipped through anyway (a sibling host of the same *site*,
      which SameSite does not separate) could only trigger a read, and the same-origin
      policy keeps the answer from the other page: the service sends no CORS headers.
    * Every endpoint that changes data (``POST /v1/appeals``, labels, classify) takes the
      ``X-API-Key`` header only (:func:`require`). Another origin cannot add a custom
      header to a request without a CORS pre-flight, which this service never grants.
    * The login form itself checks ``Origin`` (service/routes/dashboard.py), so another
      site cannot log a browser in with the other site's key.
    * ``HttpOnly``: no script can read the key; the dashboard runs no script at all and
      forbids it by Content-Security-Policy, and its templates escape every value.
    """
    raw = request.headers.get("x-api-key") or request.cookies.get(COOKIE)
    if not raw:
        raise HTTPException(401, "missing API key (header X-API-Key)")
    return _allow(await authenticate(request, raw), "appeals:read")


Ingester = Annotated[ApiKey, Depends(require("appeals:write"))]
Classifier = Annotated[ApiKey, Depends(require("classify"))]
Labeller = Annotated[ApiKey, Depends(require("labels:write"))]
Reader = Annotated[ApiKey, Depends(reader)]
MetricsReader = Annotated[ApiKey, Depends(require("metrics"))]
ModelReader = Annotated[ApiKey, Depends(require("models:read"))]  # the registry: analysts and admins
ModelAdmin = Annotated[ApiKey, Depends(require("models:write"))]  # promote, roll back, retrain: admins


# --- strict JSON bodies -----------------------------------------------------------------------

def strict_json(body: bytes):
    """JSON as the API takes it: a key twice in one object, NaN, Infinity or a number too big
    for a float is an error (``json.JSONDecodeError``, answered 422), not a silent choice.

    >>> strict_json(b'{"a": 1, "a": 2}')
    Traceback (most recent call last):
    json.decoder.JSONDecodeError: duplicate key 'a': line 1 column 1 (char 0)
    """
    def pairs(items):
        out = {}
        for k, v in items:
            if k in out:
                raise json.JSONDecodeError(f"duplicate key {printable(k)[:40]!r}", "", 0)
            out[k] = v
        return out

    def number(raw: str) -> float:
        value = float(raw)
        if not math.isfinite(value):
            raise json.JSONDecodeError(f"number out of range ({raw[:20]}…)", "", 0)
        return value

    def constant(name: str):
        raise json.JSONDecodeError(f"{name} is not JSON", "", 0)

    return json.loads(body, object_pairs_hook=pairs, parse_float=number, parse_constant=constant)


class JSONLimits:
    """The cheap byte counts of :class:`StrictJSONRequest` for batches of at most
    ``max_batch`` appeals, and the semaphore that lets at most two large bodies be parsed
    at a time (one per app: ``app.state.json_limits``)."""

    def __init__(self, max_batch: int):
        self.max_objects = 4 * max_batch + 64
        self.max_colons = 32 * max_batch + 64
        self.parsing = asyncio.Semaphore(2)


class StrictJSONRequest(Request):
    """A request whose JSON body is parsed by :func:`strict_json` after cheap byte counts.

    A batch of N appeals holds N + 1 objects and a handful of keys each, so a body with more
    ``{`` than ``max_objects`` or more ``:`` than ``max_colons`` cannot be one the API
    accepts: it is refused (413) unparsed, whatever it holds (both characters inside texts
    count too, hence the slack in the limits). A large body is parsed in a worker thread, so
    the event loop keeps answering /healthz, and at most two large bodies at a time, so a
    flood of them cannot swell the process.
    """

    async def json(self):
        if not hasattr(self, "_json"):
            limits: JSONLimits = self.app.state.json_limits
            body = await self.body()
            if body.count(b"{") > limits.max_objects or body.count(b":") > limits.max_colons:
                raise HTTPException(413, "a body holds at most one batch of appeals "
                                         f"({limits.max_objects:,} JSON objects, {limits.max_colons:,} colons); "
                                         "send large batches in several requests")
            if len(body) < 65536:  # a single appeal parses in microseconds, less than a thread hop costs
                self._json = strict_json(body)
            else:
                async with limits.parsing:
                    self._json = await run_in_threadpool(strict_json, body)
        return self._json


class StrictJSONRoute(APIRoute):
    """Routes whose JSON bodies are read by :class:`StrictJSONRequest` (FastAPI's documented
    way to change how a request body is parsed: a custom Request in a custom route class).
    Every router of the API uses it."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route(request: Request):
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return route
