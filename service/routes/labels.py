"""Human corrections of an appeal's tags (``POST /v1/appeals/{id}/labels``), audited."""

from fastapi import APIRouter, HTTPException, Request

from corpora.text import normalise
from service import store
from service.config import Settings
from service.deps import Labeller, SessionDep, StrictJSONRoute
from service.routes.categories import allowed_categories
from service.schemas import LabelIn, LabelOut


def router(settings: Settings) -> APIRouter:
    r = APIRouter(prefix="/v1/appeals", tags=["labels"], route_class=StrictJSONRoute)

    @r.post("/{appeal_id}/labels", response_model=list[LabelOut], responses={404: {"description": "unknown appeal"}})
    def post_labels(appeal_id: str, body: LabelIn, request: Request, s: SessionDep, key: Labeller):
        """A human correction of category and/or urgency; kept with who, when, old → new and why."""
        changes = {k: v for k, v in (("category", body.category), ("urgency", body.urgency)) if v is not None}
        if not changes:
            raise HTTPException(422, "give a new category and/or urgency")
        if "category" in changes:
            changes["category"] = normalise(changes["category"])
            allowed = allowed_categories(request.app.state.tagger, s)  # routing data + categories an admin added
            if changes["category"] not in allowed:
                raise HTTPException(422, f"unknown category {changes['category']!r}; allowed: {allowed} "
                                         "(an admin adds a category with POST /v1/categories)")
        try:
            with request.app.state.write_lock:
                labels = store.add_labels(s, appeal_id=appeal_id, changes=changes, reason=body.reason,
                                          author=key.name)
        except KeyError:
            raise HTTPException(404, "Appeal not found") from None
        return [LabelOut.model_validate(lab, from_attributes=True) for lab in labels]

    return r
