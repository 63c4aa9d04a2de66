"""Operations: liveness, readiness (model and database) and the Prometheus metrics."""

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text as sql_text
from sqlalchemy.exc import OperationalError

from service.config import Settings
from service.deps import MetricsReader, StrictJSONRoute


def router(settings: Settings) -> APIRouter:
    r = APIRouter(tags=["ops"], route_class=StrictJSONRoute)

    @r.get("/healthz")
    async def healthz():
        # on the event loop, not the thread pool that tagging shares: stays fast under load
        return {"status": "ok"}

    @r.get("/readyz")
    def readyz(request: Request):
        tagger = getattr(request.app.state, "tagger", None)  # once: a swap may happen meanwhile
        try:
            with request.app.state.engine.connect() as c:
                c.execute(sql_text("SELECT 1"))
            db = True
        except OperationalError:
            db = False
        body = {"model_loaded": tagger is not None, "model_version": tagger.version if tagger else None,
                "model_pinned": bool(getattr(request.app.state, "model_pinned", False)), "database": db}
        return JSONResponse(body, status_code=200 if tagger is not None and db else 503)

    @r.get("/metrics", response_class=Response)
    def prometheus(request: Request, _: MetricsReader):
        return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return r
