"""The model registry (ADR 0007): list the versions, promote one, roll back.

The registry is the directory ``SUQIU_REGISTRY_DIR`` (models/registry.py); a promotion
points its ``CURRENT`` at a version, and every server process switches to it within
``SUQIU_MODEL_POLL_S`` plus the time to load it (service/model_watch.py) — unless
``SUQIU_MODEL_DIR`` pins the model, which responses say (``pinned``). Who acts is the API
key's name, kept in the registry's history and in the audit log.
"""

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, StringConstraints
from sqlalchemy.exc import SQLAlchemyError

from models.registry import (
    BundleError,
    NothingToRollBackError,
    UnknownVersionError,
    list_versions,
    promote,
    rollback,
)
from service.config import Settings
from service.db import ApiKey, AuditLog
from service.deps import ModelAdmin, ModelReader, SessionDep, StrictJSONRoute
from service.retrain_jobs import RetrainBusy, read_job, start_job
from service.schemas import Clean, Strict

log = logging.getLogger(__name__)

Version = Annotated[str, Path(max_length=128)]


class ModelOut(BaseModel):
    version: str  # the registry's name (a directory); what promote takes
    status: str  # champion | candidate | rejected | retired
    created: str | None
    metrics: dict
    by: str | None  # who made its latest status change
    reason: str | None
    at: str | None  # when
    model_version: str | None  # the manifest's version: what predictions and /readyz carry
    data: dict  # rows and SHA-256 of the training data, per model
    promoted_by: str | None
    promoted_at: str | None
    report: dict | None


class ModelsPage(BaseModel):
    data: list[ModelOut]
    count: int


class PromoteIn(Strict):
    reason: Annotated[str, StringConstraints(max_length=2000), Clean] | None = None


class ModelEvent(BaseModel):
    version: str  # the champion now
    status: str
    by: str
    reason: str | None
    at: str
    previous: str | None  # the champion before
    pinned: bool  # this service pins its model (SUQIU_MODEL_DIR) and will not switch


class RetrainJob(BaseModel):
    job: str
    status: str  # running | done | failed
    by: str
    started: str
    finished: str | None = None
    result: dict | None = None  # champion, challenger, promoted, reason, rules, metrics of both
    error: str | None = None


def _why(err: BundleError) -> str:
    """A bundle's fault without the server's file path it starts with."""
    return str(err).split(": ", 1)[-1]


def _audit(request: Request, s, key: ApiKey, action: str, target: str, detail: dict) -> None:
    """An audit-log row for a registry change. The registry's history already holds who and
    when, so a database that cannot take the row does not undo the change: it is logged."""
    try:
        with request.app.state.write_lock:
            s.add(AuditLog(actor=key.name, action=action, target=target, detail=detail))
            s.commit()
    except SQLAlchemyError as err:
        s.rollback()
        log.warning("%s of %s by %s is not in the audit log (%s)", action, target, key.name, type(err).__name__)


def router(settings: Settings) -> APIRouter:
    r = APIRouter(prefix="/v1/models", tags=["models"], route_class=StrictJSONRoute)
    pinned = settings.model_dir is not None

    @r.get("", response_model=ModelsPage)
    def get_models(_: ModelReader):
        """Every version of the registry, newest first, with its status, metrics, training-data
        hashes and who changed its status last."""
        data = list_versions(registry=settings.registry_dir)
        return {"data": data, "count": len(data)}

    @r.post("/retrain", status_code=202, response_model=RetrainJob,
            responses={409: {"description": "a retrain is running, or no base training data is configured"}})
    def post_retrain(request: Request, s: SessionDep, key: ModelAdmin):
        """Start ``suqiu retrain`` in the background: the base files (``SUQIU_RETRAIN_DATA``)
        plus every human label; the gate promotes the challenger or keeps it rejected. Poll
        ``GET /v1/models/retrain/{job}`` for the result."""
        try:
            job = start_job(settings, by=key.name)
        except (RetrainBusy, ValueError) as err:
            raise HTTPException(409, str(err)) from None
        _audit(request, s, key, "model.retrain", job["job"], {})
        return job

    @r.get("/retrain/{job}", response_model=RetrainJob, responses={404: {"description": "unknown job"}})
    def get_retrain(job: Annotated[str, Path(max_length=64)], _: ModelReader):
        """A retrain job: ``running``, ``done`` (with the gate's decision and both models'
        held-out figures) or ``failed`` (with the error)."""
        try:
            return read_job(settings, job)
        except KeyError:
            raise HTTPException(404, "Retrain job not found") from None


    @r.post("/rollback", response_model=ModelEvent,
            responses={409: {"description": "nothing to roll back to"},
                       422: {"description": "the earlier champion's bundle fails verification"}})
    def post_rollback(request: Request, s: SessionDep, key: ModelAdmin):
        """Make the champion that the current one replaced champion again; the current one is
        retired ("rolled back")."""
        try:
            event = rollback(by=key.name, registry=settings.registry_dir)
        except NothingToRollBackError as err:
            raise HTTPException(409, str(err)) from None
        except BundleError as err:
            raise HTTPException(422, f"the earlier champion fails verification: {_why(err)}") from None
        _audit(request, s, key, "model.rollback", event["version"], {"from": event["previous"]})
        return {**event, "pinned": pinned}

    @r.post("/{version}/promote", response_model=ModelEvent,
            responses={404: {"description": "unknown version"},
                       422: {"description": "the bundle fails verification"}})
    def post_promote(version: Version, request: Request, s: SessionDep, key: ModelAdmin,
                     body: PromoteIn | None = None):
        """Make ``version`` the champion once its bundle verifies (hashes, then loading); the
        champion it replaces is retired. Running services switch to it within seconds."""
        reason = body.reason if body is not None else None
        try:
            event = promote(version, by=key.name, reason=reason, registry=settings.registry_dir)
        except UnknownVersionError:
            raise HTTPException(404, "Model version not found") from None
        except BundleError as err:
            raise HTTPException(422, f"model version {version} fails verification: {_why(err)}") from None
        _audit(request, s, key, "model.promote", version, {"previous": event["previous"], "reason": reason})
        return {**event, "pinned": pinned}

    return r
