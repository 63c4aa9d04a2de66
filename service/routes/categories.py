"""The city's catalogue of first-level categories (ADR 0008): the routing data's categories
plus those an admin added (``GET`` / ``POST /v1/categories``). A label may use an added
category at once; the model learns it at the next retrain, which routes it to its
department (``Router.with_categories``)."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from corpora.text import normalise
from service import store
from service.config import Settings
from service.db import ApiKey
from service.deps import Reader, SessionDep, StrictJSONRoute, require
from service.schemas import CategoriesOut, CategoryIn, CategoryOut

__all__ = ["router", "allowed_categories"]

CategoryWriter = Annotated[ApiKey, Depends(require("categories:write"))]


def allowed_categories(tagger, session) -> list[str]:
    """The categories a label may use: the serving routing data's, then those an admin added."""
    routed = tagger.router.categories
    return routed + [c for c in store.added_categories(session) if c not in routed]


def router(settings: Settings) -> APIRouter:
    r = APIRouter(prefix="/v1/categories", tags=["categories"], route_class=StrictJSONRoute)

    @r.get("", response_model=CategoriesOut)
    def get_categories(request: Request, s: SessionDep, _: Reader):
        """Every category with its department: the routing data's first, then those added."""
        tagger = request.app.state.tagger
        known = {str(c) for c in tagger.category.classes_}
        added = store.list_added_categories(s)
        names = {c.name for c in added}
        # a bundle trained with an added category routes it too (Router.with_categories): still "added"
        data = [CategoryOut(name=c, department=d, source="routing", in_model=c in known)
                for c, d in tagger.router.default.items() if c not in names]
        data += [CategoryOut(name=c.name, department=c.department, source="added", in_model=c.name in known,
                             added_by=c.added_by, added_at=c.added_at) for c in added]
        return {"data": data, "count": len(data)}

    @r.post("", response_model=CategoryOut, status_code=201,
            responses={409: {"description": "the category exists already"}})
    def post_category(body: CategoryIn, request: Request, s: SessionDep, key: CategoryWriter):
        """Add a category to the city's catalogue (admin), with its department. Its name is
        normalised as labels are (traditional to simplified, full-width to half-width)."""
        name, department = normalise(body.name), normalise(body.department)
        if not name or not department:
            raise HTTPException(422, "name and department must hold more than spaces and control characters")
        if len(name) > 64:
            raise HTTPException(422, "name is longer than 64 characters once normalised")
        tagger = request.app.state.tagger
        if name in tagger.router.default:
            raise HTTPException(409, f"category {name!r} already exists")
        try:
            with request.app.state.write_lock:
                row = store.add_category(s, name=name, department=department[:128], added_by=key.name)
        except store.ConflictError as err:
            raise HTTPException(409, str(err)) from None
        return CategoryOut(name=row.name, department=row.department, source="added",
                           in_model=name in {str(c) for c in tagger.category.classes_},
                           added_by=row.added_by, added_at=row.added_at)

    return r
