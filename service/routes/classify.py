"""Tagging without storing (``POST /v1/classify``)."""

from fastapi import APIRouter, Request

from service.config import Settings
from service.deps import Classifier, StrictJSONRoute
from service.ingest import model_inputs, records_of, tag
from service.schemas import TagsOut, request_bodies


def router(settings: Settings) -> APIRouter:
    r = APIRouter(prefix="/v1/classify", tags=["appeals"], route_class=StrictJSONRoute)
    _, ClassifyBody = request_bodies(settings.max_batch)

    @r.post("", response_model=TagsOut)
    def classify(body: ClassifyBody, request: Request, _: Classifier):
        """Tag without storing."""
        records = records_of(body, timezone=settings.timezone)
        tags = tag(request.app.state, *model_inputs(records, max_text_chars=settings.max_text_chars))
        data = [{"id": r.get("id"), **t} for r, t in zip(records, tags)]
        return {"data": data, "count": len(data)}

    return r
