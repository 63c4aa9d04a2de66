"""The Suqiu HTTP service (FastAPI): ingest, auto-tag, correct, query; digests and a dashboard.

Shaped like FastAPI's full-stack template: one router per resource in ``service/routes/``,
the shared dependencies (settings, session, key and role) in ``service/deps.py``, tagging
and storing in ``service/ingest.py``. :func:`create_app` only assembles: the app, its
middleware (metrics and security headers), exception handlers and routers. The model
bundle and database are opened in :func:`lifespan`, never at import time; a missing
bundle stops startup. Unless ``SUQIU_MODEL_DIR`` pins the model, each server process then
follows the registry's champion and swaps to a newly promoted one without a restart
(service/model_watch.py, ADR 0007). The API docs (``/docs``, ``/redoc``) load Swagger UI and ReDoc from
files served by the app (fastapi-offline), so they work on networks with no internet.
"""

import gc
import logging
import os
import time
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool

from service import hotspot_store, model_watch, store
from service.batcher import GroupCommitter
from service.config import Settings
from service.db import WriteLock, make_engine, upgrade
from service.deps import JSONLimits, printable
from service.ingest import RETRY, UNAVAILABLE, failed, ingest_group
from service.routes import api_router

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


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Load the model bundle, migrate and open the database, start ingest, hotspots and the
    model watcher; close them at shutdown."""
    from models.registry import current_version

    settings: Settings = app.state.settings
    pinned = settings.model_dir is not None
    path = settings.model_dir or current_version(settings.registry_dir)
    if path is None or not Path(path).exists():
        raise RuntimeError(f"no model bundle: set SUQIU_MODEL_DIR or train one into {settings.registry_dir} "
                           "('make run' does this)")
    serving = model_watch.stamp(path, settings.registry_dir)  # before loading: a promotion meanwhile is seen
    model_watch.limit_torch_threads(settings.torch_threads)
    tagger = model_watch.load_tagger(path, city=settings.city)  # warmed before the first request
    # The model's hundreds of thousands of objects never die: keep them out of the cyclic
    # collector, whose full passes over them took ~60 ms, stalling every request in flight.
    gc.collect()
    gc.freeze()
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    app.state.tagger = tagger  # read once per request (service/model_watch.py swaps it)
    app.state.model_pinned = pinned
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
    app.state.model_watcher = None
    if not pinned:
        app.state.model_watcher = model_watch.ModelWatcher(app.state, registry=settings.registry_dir,
                                                           interval_s=settings.model_poll_s, serving=serving,
                                                           city=settings.city)
        app.state.model_watcher.start()
    log.info("serving model %s%s on %s", tagger.version, " (pinned by SUQIU_MODEL_DIR)" if pinned else "",
             engine.url.render_as_string(hide_password=True))
    yield
    if app.state.model_watcher is not None:
        await run_in_threadpool(app.state.model_watcher.stop)
    if app.state.hotspots is not None:
        await run_in_threadpool(app.state.hotspots.stop)
    engine.dispose()
    app.state.write_lock.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service for ``settings`` (default: from the environment)."""
    settings = settings or Settings()
    options = dict(title="Suqiu (诉求) API", version="1", lifespan=lifespan,
                   description="Auto-tagging of citizen appeals: category, department, urgency and deadlines.",
                   # Suqiu exports its own Prometheus metrics (/metrics); FastAPI's OpenTelemetry hooks
                   # would only add per-request work.
                   telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
                   # 413 for a body over the limit, by its Content-Length or by the bytes read
                   max_body_size=settings.max_body_bytes)
    if settings.api_docs:  # /docs and /redoc load Swagger UI and ReDoc from the app (fastapi-offline), not a CDN
        from fastapi_offline import FastAPIOffline

        app = FastAPIOffline(**options)
    else:
        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, **options)
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.key_cache = {}  # raw key -> (valid until, ApiKey): service/deps.py
    app.state.json_limits = JSONLimits(settings.max_batch)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        """422 naming at most 20 fields, quoting nothing of the input (it may hold personal
        data, NaN or lone surrogates that JSON cannot carry); 413 for a batch over the limit."""
        errors = exc.errors()
        if any(e["type"] == "too_long" and e["loc"][-1:] == ("appeals",) for e in errors[:3]):
            return JSONResponse({"detail": f"a batch holds at most {settings.max_batch:,} appeals per request"},
                                status_code=413)
        shown = [{"loc": [x if isinstance(x, int) else printable(x) for x in e["loc"]],
                  "msg": printable(e["msg"] if e["type"] != "json_invalid"
                                   else f"invalid JSON: {e.get('ctx', {}).get('error', '')}"),
                  "type": e["type"]} for e in errors[:20]]
        return JSONResponse({"detail": shown, "error_count": len(errors)}, status_code=422)

    @app.exception_handler(OperationalError)
    async def database_unavailable(request: Request, exc: OperationalError):
        log.warning("database unavailable: %s", type(exc.orig).__name__)
        return JSONResponse(UNAVAILABLE, status_code=503, headers=RETRY)

    app.add_middleware(Measure, metrics=app.state.metrics)
    app.include_router(api_router(settings))
    return app
