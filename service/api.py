"""The Suqiu HTTP service (FastAPI): ingest, auto-tag, correct, query.

``create_app(settings)`` builds the app; the model bundle and database are opened in
the lifespan, never at import time. A missing bundle stops startup.
"""

import asyncio
import gc
import json
import logging
import math
import os
import time
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import text as sql_text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from corpora.text import join_title, normalise, strip_control
from service import hotspot_store, store
from service.auth import PERMISSIONS, lookup
from service.batcher import GroupCommitter, Outcome
from service.config import Settings
from service.db import ApiKey, WriteLock, localize, make_engine, upgrade
from service.schemas import (AppealBatch, AppealDetail, AppealOut, AppealsPage, ClassifyBatch, HotspotDetail,
                             HotspotOut, HotspotRef, HotspotsPage, LabelIn, LabelOut, PredictionOut, TagsOut, Time,
                             request_bodies)

log = logging.getLogger(__name__)


class Metrics:
    """The service's Prometheus metrics.

    Under `suqiu serve --workers N` each worker process counts its own requests; with
    ``PROMETHEUS_MULTIPROC_DIR`` set (the multi-worker server sets it) they count in files
    there (prometheus_client's multiprocess mode), and :meth:`exposition` sums every
    worker's, so a scrape sees the whole server whichever worker answers it.
    """

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("suqiu_requests", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("suqiu_request_seconds", "Request latency", ["route"], registry=self.registry,
                                 buckets=(.005, .01, .02, .05, .1, .2, .5, 1, 2, 5))
        self.predictions = Counter("suqiu_predictions", "Tags produced", ["category", "urgency"],
                                   registry=self.registry)
        self.review = Counter("suqiu_predictions_needs_review", "Tags flagged for review", registry=self.registry)

    def observe_tags(self, tags):
        for t in tags:
            self.predictions.labels(t["category"], t.get("urgency") or "none").inc()
            if t["needs_review"]:
                self.review.inc()

    def exposition(self) -> bytes:
        """Prometheus text format: the counters (summed over workers in multiprocess mode)
        and the share of tags flagged for review, computed from them."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            source = CollectorRegistry()
            MultiProcessCollector(source)
        else:
            source = self.registry
        families = list(source.collect())
        sums = {"suqiu_predictions_total": 0.0, "suqiu_predictions_needs_review_total": 0.0}
        for family in families:
            for sample in family.samples:
                if sample.name in sums:
                    sums[sample.name] += sample.value
        total, review = sums.values()
        families.append(GaugeMetricFamily("suqiu_review_share", "Share of tags flagged for review since start",
                                          value=review / total if total else 0.0))
        return generate_latest(_Families(families))


class _Families:
    """Metric families already collected, as a collector for ``generate_latest``."""

    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


SECURITY_HEADERS = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]


class Measure:
    """ASGI middleware counting requests and latency per route, adding SECURITY_HEADERS to
    every response (plain ASGI: Starlette's BaseHTTPMiddleware costs a task and a stream
    per request)."""

    def __init__(self, app, *, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500

        async def send_and_note(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # responses carry appeal texts and personal data: never cached, never sniffed
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, send_and_note)
        finally:
            name = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], name, str(status)).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - t0)


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
                raise json.JSONDecodeError(f"duplicate key {_printable(k)[:40]!r}", "", 0)
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


class StrictJSONRequest(Request):
    """A request whose JSON body is parsed by :func:`strict_json` after cheap byte counts.

    A batch of N appeals holds N + 1 objects and a handful of keys each, so a body with more
    ``{`` than ``max_objects`` or more ``:`` than ``max_colons`` cannot be one the API
    accepts: it is refused (413) unparsed, whatever it holds (both characters inside texts
    count too, hence the slack in the limits). A large body is parsed in a worker thread, so
    the event loop keeps answering /healthz, and at most ``parsing`` large bodies at a time,
    so a flood of them cannot swell the process.
    """

    max_objects: int | None = None
    max_colons: int | None = None
    parsing: asyncio.Semaphore | None = None

    async def json(self):
        if not hasattr(self, "_json"):
            body = await self.body()
            if self.max_objects is not None and (body.count(b"{") > self.max_objects
                                                 or body.count(b":") > self.max_colons):
                raise HTTPException(413, "a body holds at most one batch of appeals "
                                         f"({self.max_objects:,} JSON objects, {self.max_colons:,} colons); "
                                         "send large batches in several requests")
            if len(body) < 65536:  # a single appeal parses in microseconds, less than a thread hop costs
                self._json = strict_json(body)
            else:
                async with self.parsing:
                    self._json = await run_in_threadpool(strict_json, body)
        return self._json


def strict_json_route(max_batch: int) -> type[APIRoute]:
    """Routes whose JSON bodies are read by :class:`StrictJSONRequest` (FastAPI's documented
    way to change how a request body is parsed: a custom Request in a custom route class),
    with limits for batches of at most ``max_batch`` appeals."""

    class Strict(StrictJSONRequest):
        max_objects = 4 * max_batch + 64
        max_colons = 32 * max_batch + 64
        parsing = asyncio.Semaphore(2)

    class StrictJSONRoute(APIRoute):
        def get_route_handler(self):
            handler = super().get_route_handler()

            async def route(request: Request):
                return await handler(Strict(request.scope, request.receive))

            return route

    return StrictJSONRoute


UNAVAILABLE = {"detail": "database unavailable; retry shortly"}
RETRY = {"Retry-After": "1"}


def _unavailable(err: Exception) -> bool:
    """The database cannot be reached (as opposed to refusing a value)."""
    return isinstance(err, OperationalError) or isinstance(err, DBAPIError) and err.connection_invalidated


def _printable(value) -> str:
    """``value`` as text any JSON response can carry (lone surrogates escaped), at most 200 characters."""
    return str(value)[:200].encode("utf-8", "backslashreplace").decode("utf-8")


def _group_fields(g) -> dict:
    return {"group_id": g.id, **{k: getattr(g, k) for k in ("size", "people", "place", "first_time", "last_time",
                                                            "heat", "summary", "keywords", "districts",
                                                            "updated_at")}}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from models.registry import current_version, load_bundle
        from models.tagger import Tagger

        path = settings.model_dir or current_version(settings.registry_dir)
        if path is None or not Path(path).exists():
            raise RuntimeError(f"no model bundle: set SUQIU_MODEL_DIR or train one into {settings.registry_dir} "
                               "('make run' does this)")
        tagger = Tagger(load_bundle(path), city=settings.city)
        tagger.tag(["预热"])  # load segmenter and converters before the first request
        # The model's hundreds of thousands of objects never die: keep them out of the cyclic
        # collector, whose full passes over them took ~60 ms, stalling every request in flight.
        gc.collect()
        gc.freeze()
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        app.state.tagger = tagger
        app.state.engine = engine
        app.state.sessions = sessionmaker(engine, expire_on_commit=False)
        app.state.write_lock = WriteLock(settings.database_url)
        app.state.ingest = GroupCommitter(partial(ingest_group, app.state), max_appeals=settings.max_batch,
                                          linger=settings.group_linger_ms / 1000,
                                          failure=lambda err: failed(err).error)
        with app.state.sessions() as s:
            store.register_model(s, version=tagger.version, path=str(path), manifest=tagger.bundle.manifest)
        app.state.hotspots = None
        if settings.hotspots:  # one process at a time groups (the lease); each runs a refresher to take over
            app.state.hotspots = hotspot_store.HotspotRefresher(
                engine, write_lock=app.state.write_lock, interval_s=settings.hotspots_interval_s,
                lease_s=settings.hotspots_lease_s)
            app.state.hotspots.start()
        log.info("serving model %s on %s", tagger.version, engine.url.render_as_string(hide_password=True))
        yield
        if app.state.hotspots is not None:
            await run_in_threadpool(app.state.hotspots.stop)
        engine.dispose()
        app.state.write_lock.close()

    docs = {} if settings.api_docs else {"docs_url": None, "redoc_url": None, "openapi_url": None}
    app = FastAPI(title="Suqiu (诉求) API", version="1", lifespan=lifespan, **docs,
                  description="Auto-tagging of citizen appeals: category, department, urgency and deadlines.",
                  # Suqiu exports its own Prometheus metrics (/metrics); FastAPI's OpenTelemetry hooks
                  # would only add per-request work.
                  telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
                  # 413 for a body over the limit, by its Content-Length or by the bytes read
                  max_body_size=settings.max_body_bytes)
    app.router.route_class = strict_json_route(settings.max_batch)
    metrics = Metrics()
    app.state.metrics = metrics
    AppealBody, ClassifyBody = request_bodies(settings.max_batch)
    Filter = Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00]*$")]

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        """422 naming at most 20 fields, quoting nothing of the input (it may hold personal
        data, NaN or lone surrogates that JSON cannot carry); 413 for a batch over the limit."""
        errors = exc.errors()
        if any(e["type"] == "too_long" and e["loc"][-1:] == ("appeals",) for e in errors[:3]):
            return JSONResponse({"detail": f"a batch holds at most {settings.max_batch:,} appeals per request"},
                                status_code=413)
        shown = [{"loc": [x if isinstance(x, int) else _printable(x) for x in e["loc"]],
                  "msg": _printable(e["msg"] if e["type"] != "json_invalid"
                                    else f"invalid JSON: {e.get('ctx', {}).get('error', '')}"),
                  "type": e["type"]} for e in errors[:20]]
        return JSONResponse({"detail": shown, "error_count": len(errors)}, status_code=422)

    @app.exception_handler(OperationalError)
    async def database_unavailable(request: Request, exc: OperationalError):
        log.warning("database unavailable: %s", type(exc.orig).__name__)
        return JSONResponse(UNAVAILABLE, status_code=503, headers=RETRY)

    app.add_middleware(Measure, metrics=metrics)

    def session(request: Request):
        with request.app.state.sessions() as s:
            yield s

    SessionDep = Annotated[Session, Depends(session)]

    key_cache: dict[str, tuple[float, ApiKey]] = {}

    def lookup_key(request: Request, raw: str) -> ApiKey | None:
        with request.app.state.sessions() as s:
            key = lookup(s, raw)
            if key is not None:
                s.expunge(key)
            return key

    def require(permission: str):
        async def dep(request: Request) -> ApiKey:
            raw = request.headers.get("x-api-key")
            if not raw:
                raise HTTPException(401, "missing API key (header X-API-Key)")
            hit = key_cache.get(raw)
            if hit is not None and hit[0] > time.monotonic():
                key = hit[1]
            else:
                key = await run_in_threadpool(lookup_key, request, raw)
                if key is None:
                    key_cache.pop(raw, None)
                    raise HTTPException(401, "invalid or revoked API key")
                key_cache[raw] = (time.monotonic() + settings.key_cache_seconds, key)
            if permission not in PERMISSIONS[key.role]:
                raise HTTPException(403, f"role '{key.role}' may not {permission}")
            return key
        return dep

    def model_inputs(records: list[dict]) -> tuple[list[str], list[str | None]]:
        """Texts (title joined) and times the tagger reads; 422 for a text too long or empty."""
        for r in records:
            if len(r["text"]) > settings.max_text_chars:
                raise HTTPException(422, f"appeal {r.get('id')!r}: text is {len(r['text']):,} characters; "
                                         f"the maximum is {settings.max_text_chars:,}")
        texts = [join_title(r.get("title"), r["text"]) for r in records]
        for r, t in zip(records, texts):
            if not t:
                raise HTTPException(422, f"appeal {r.get('id')!r}: text is empty after removing control "
                                         "characters and markup")
        return texts, [r["time"].isoformat() if r.get("time") else None for r in records]

    def tag(state, texts: list[str], times: list[str | None]) -> list[dict]:
        tags = state.tagger.tag(texts, received_at=times)
        metrics.observe_tags(tags)
        return tags

    def failed(err: Exception) -> Outcome:
        """The answer for one request whose appeals could not be tagged or stored: its own
        exception object (never one shared with other requests), nothing quoted from the input."""
        if isinstance(err, HTTPException):
            return Outcome(error=err)
        if isinstance(err, store.ConflictError):
            return Outcome(error=HTTPException(409, str(err)))
        if _unavailable(err):
            return Outcome(error=HTTPException(503, UNAVAILABLE["detail"], headers=RETRY))
        if isinstance(err, DBAPIError):  # the database refused a value (DataError and the like)
            return Outcome(error=HTTPException(422, "the database refused a value of this appeal "
                                                    f"({type(err.orig).__name__})"))
        return Outcome(error=HTTPException(500, f"this appeal could not be processed ({type(err).__name__})"))

    def store_one(state, records: list[dict], tags: list[dict]) -> Outcome:
        try:
            with state.write_lock, state.engine.connect() as s:
                for _ in range(3):
                    try:
                        return Outcome(tags=tags, created=store.ingest(s, appeals=records, tags=tags))
                    except IntegrityError:  # a concurrent request stored the same id first: retry sees it
                        s.rollback()
            return Outcome(error=HTTPException(409, "concurrent writes to the same appeal ids; retry"))
        except Exception as err:  # noqa: BLE001 — this request's own answer; the others go on
            if not isinstance(err, (store.ConflictError, DBAPIError)):
                log.exception("storing one request of %d appeals failed", len(records))
            return failed(err)

    def tag_each(state, valid) -> list[list[dict] | Exception]:
        """Tags per request: one tagging call for the group; if it fails, each request alone,
        so an appeal the tagger cannot take fails only its own request."""
        try:
            tags = tag(state, [t for *_, texts, _ in valid for t in texts], [x for *_, times in valid for x in times])
        except Exception:  # noqa: BLE001
            log.exception("tagging a group of %d requests failed; tagging them one by one", len(valid))
        else:
            parts, start = [], 0
            for _, records, _, _ in valid:
                parts.append(tags[start:start + len(records)])
                start += len(records)
            return parts
        parts = []
        for _, _, texts, times in valid:
            try:
                parts.append(tag(state, texts, times))
            except Exception as err:  # noqa: BLE001
                log.exception("tagging one request of %d appeals failed", len(texts))
                parts.append(err)
        return parts

    def ingest_group(state, group: list[list[dict]]) -> list[Outcome]:
        """Tag every request of the group at once; store them in one transaction when they can
        share one, else one by one (see service/batcher.py). A request that cannot be tagged
        or stored fails alone: the rest of the group is stored."""
        out: list[Outcome | None] = [None] * len(group)
        valid = []
        for k, records in enumerate(group):
            try:
                valid.append((k, records, *model_inputs(records)))
            except HTTPException as err:
                out[k] = Outcome(error=err)
        tagged = []
        for v, part in zip(valid, tag_each(state, valid)):
            if isinstance(part, Exception):
                out[v[0]] = failed(part)
            else:
                tagged.append((v[0], v[1], part))
        if not tagged:
            return out
        ids = [r["id"] for _, records, _ in tagged for r in records]
        if len(set(ids)) == len(ids):
            try:  # a connection closed mid-transaction rolls it back
                with state.write_lock, state.engine.connect() as s:
                    created = store.ingest(s, appeals=[r for _, records, _ in tagged for r in records],
                                           tags=[t for *_, part in tagged for t in part])
            except Exception as err:  # noqa: BLE001 — stored one by one below, each with its own answer
                if _unavailable(err):
                    for k, *_ in tagged:
                        out[k] = failed(err)
                    return out
            else:
                start = 0
                for k, _, part in tagged:
                    out[k] = Outcome(tags=part, created=created[start:start + len(part)])
                    start += len(part)
                return out
        for k, records, part in tagged:
            out[k] = store_one(state, records, part)
        return out

    def records_of(body) -> list[dict]:
        # isinstance, not hasattr: a missing attribute costs pydantic a raised AttributeError
        items = body.appeals if isinstance(body, (AppealBatch, ClassifyBatch)) else [body]
        out = []
        for a in items:
            d = a.model_dump()
            d["text"] = strip_control(d["text"])
            d["title"] = strip_control(d.get("title"))
            d["time"] = localize(d.get("time"), settings.timezone)
            out.append(d)
        return out

    @app.get("/healthz", tags=["ops"])
    async def healthz():
        # on the event loop, not the thread pool that tagging shares: stays fast under load
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz(request: Request):
        tagger = getattr(request.app.state, "tagger", None)
        try:
            with request.app.state.engine.connect() as c:
                c.execute(sql_text("SELECT 1"))
            db = True
        except OperationalError:
            db = False
        body = {"model_loaded": tagger is not None, "model_version": tagger.version if tagger else None,
                "database": db}
        return JSONResponse(body, status_code=200 if tagger is not None and db else 503)

    @app.get("/metrics", tags=["ops"], response_class=Response)
    def prometheus(_: Annotated[ApiKey, Depends(require("metrics"))]):
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/appeals", response_model=TagsOut, tags=["appeals"],
              responses={409: {"description": "id already stored with different text"},
                         413: {"description": "batch or body too large"}})
    async def post_appeals(body: AppealBody, request: Request,
                           _: Annotated[ApiKey, Depends(require("appeals:write"))]):
        """Store one appeal or a batch (≤ 1,000), tag each with the current model, return the tags.
        Idempotent on ``id``. The response is sent only after the commit."""
        records = records_of(body)
        done = await request.app.state.ingest.submit(records, len(records))
        data = [{"id": r["id"], "created": c, **t} for r, c, t in zip(records, done.created, done.tags)]
        return {"data": data, "count": len(data)}

    @app.post("/v1/classify", response_model=TagsOut, tags=["appeals"])
    def classify(body: ClassifyBody, request: Request,
                 _: Annotated[ApiKey, Depends(require("classify"))]):
        """Tag without storing."""
        records = records_of(body)
        tags = tag(request.app.state, *model_inputs(records))
        data = [{"id": r.get("id"), **t} for r, t in zip(records, tags)]
        return {"data": data, "count": len(data)}

    @app.get("/v1/appeals", response_model=AppealsPage, tags=["appeals"])
    def get_appeals(s: SessionDep, _: Annotated[ApiKey, Depends(require("appeals:read"))],
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

    @app.get("/v1/appeals/{appeal_id}", response_model=AppealDetail, tags=["appeals"],
             responses={404: {"description": "unknown appeal"}})
    def get_appeal(appeal_id: str, s: SessionDep, _: Annotated[ApiKey, Depends(require("appeals:read"))]):
        found = store.get_detail(s, appeal_id=appeal_id) if "\x00" not in appeal_id else None
        if found is None:
            raise HTTPException(404, "Appeal not found")
        row, preds, labels = found
        hotspot = hotspot_store.appeal_hotspot(s, appeal_id=appeal_id)
        return {"appeal": AppealOut.model_validate(row, from_attributes=True),
                "predictions": [PredictionOut.model_validate(p, from_attributes=True) for p in preds],
                "labels": [LabelOut.model_validate(lab, from_attributes=True) for lab in labels],
                "hotspot": HotspotRef(**hotspot) if hotspot else None}

    @app.get("/v1/hotspots", response_model=HotspotsPage, tags=["hotspots"])
    def get_hotspots(s: SessionDep, _: Annotated[ApiKey, Depends(require("appeals:read"))],
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
        data = [HotspotOut.model_validate({**_group_fields(g)}) for g in rows]
        return {"data": data, "count": len(data), "next_cursor": nxt}

    @app.get("/v1/hotspots/{group_id}", response_model=HotspotDetail, tags=["hotspots"],
             responses={404: {"description": "unknown group"}})
    def get_hotspot(group_id: str, s: SessionDep, _: Annotated[ApiKey, Depends(require("appeals:read"))]):
        """One group with its appeal ids (in time order) and its repeat appeals."""
        found = hotspot_store.get_group(s, group_id=group_id) if hotspot_store.GROUP_ID.match(group_id) else None
        if found is None:
            raise HTTPException(404, "Hotspot not found")
        g, members = found
        return HotspotDetail.model_validate({**_group_fields(g), "appeal_ids": [m[0] for m in members],
                                             "repeats": [{"id": i, "repeat_of": of or []}
                                                         for i, repeat, of in members if repeat]})

    @app.post("/v1/appeals/{appeal_id}/labels", response_model=list[LabelOut], tags=["labels"],
              responses={404: {"description": "unknown appeal"}})
    def post_labels(appeal_id: str, body: LabelIn, request: Request, s: SessionDep,
                    key: Annotated[ApiKey, Depends(require("labels:write"))]):
        """A human correction of category and/or urgency; kept with who, when, old → new and why."""
        changes = {k: v for k, v in (("category", body.category), ("urgency", body.urgency)) if v is not None}
        if not changes:
            raise HTTPException(422, "give a new category and/or urgency")
        if "category" in changes:
            allowed = request.app.state.tagger.router.categories
            changes["category"] = normalise(changes["category"])
            if changes["category"] not in allowed:
                raise HTTPException(422, f"unknown category {changes['category']!r}; allowed: {allowed}")
        try:
            with request.app.state.write_lock:
                labels = store.add_labels(s, appeal_id=appeal_id, changes=changes, reason=body.reason,
                                          author=key.name)
        except KeyError:
            raise HTTPException(404, "Appeal not found") from None
        return [LabelOut.model_validate(lab, from_attributes=True) for lab in labels]

    return app
