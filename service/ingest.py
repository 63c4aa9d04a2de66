"""Tagging and storing appeals for the API: request bodies to records, the tagger, and the
group commit behind ``POST /v1/appeals`` (service/batcher.py).

Every function takes the app's ``state`` (what the lifespan in service/api.py sets up:
``settings``, ``tagger``, ``metrics``, ``engine``, ``write_lock``), so the routers stay thin.
"""
from __future__ import annotations

import logging

from fastapi import HTTPException
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from corpora.text import join_title, strip_control
from service import store
from service.batcher import Outcome
from service.db import localize
from service.schemas import AppealBatch, ClassifyBatch

__all__ = ["UNAVAILABLE", "RETRY", "unavailable", "records_of", "model_inputs", "tag", "failed", "ingest_group"]

log = logging.getLogger(__name__)

UNAVAILABLE = {"detail": "database unavailable; retry shortly"}
RETRY = {"Retry-After": "1"}


def unavailable(err: Exception) -> bool:
    """The database cannot be reached (as opposed to refusing a value)."""
    return isinstance(err, OperationalError) or isinstance(err, DBAPIError) and err.connection_invalidated


def records_of(body, *, timezone: str) -> list[dict]:
    """The appeals of a request body (one or a batch) as records: control characters
    stripped from texts and titles, times on the hotline's clock (``timezone``)."""
    # isinstance, not hasattr: a missing attribute costs pydantic a raised AttributeError
    items = body.appeals if isinstance(body, (AppealBatch, ClassifyBatch)) else [body]
    out = []
    for a in items:
        d = a.model_dump()
        d["text"] = strip_control(d["text"])
        d["title"] = strip_control(d.get("title"))
        d["time"] = localize(d.get("time"), timezone)
        out.append(d)
    return out


def model_inputs(records: list[dict], *, max_text_chars: int) -> tuple[list[str], list[str | None]]:
    """Texts (title joined) and times the tagger reads; 422 for a text too long or empty."""
    for r in records:
        if len(r["text"]) > max_text_chars:
            raise HTTPException(422, f"appeal {r.get('id')!r}: text is {len(r['text']):,} characters; "
                                     f"the maximum is {max_text_chars:,}")
    texts = [join_title(r.get("title"), r["text"]) for r in records]
    for r, t in zip(records, texts):
        if not t:
            raise HTTPException(422, f"appeal {r.get('id')!r}: text is empty after removing control "
                                     "characters and markup")
    return texts, [r["time"].isoformat() if r.get("time") else None for r in records]


def tag(state, texts: list[str], times: list[str | None], *, tagger=None) -> list[dict]:
    """Tags of ``texts`` by ``tagger`` (default: the one served now, ``state.tagger``, read
    once: service/model_watch.py may swap it at any time)."""
    tags = (tagger or state.tagger).tag(texts, received_at=times)
    state.metrics.observe_tags(tags)
    return tags


def failed(err: Exception) -> Outcome:
    """The answer for one request whose appeals could not be tagged or stored: its own
    exception object (never one shared with other requests), nothing quoted from the input."""
    if isinstance(err, HTTPException):
        return Outcome(error=err)
    if isinstance(err, store.ConflictError):
        return Outcome(error=HTTPException(409, str(err)))
    if unavailable(err):
        return Outcome(error=HTTPException(503, UNAVAILABLE["detail"], headers=RETRY))
    if isinstance(err, DBAPIError):  # the database refused a value (DataError and the like)
        return Outcome(error=HTTPException(422, "the database refused a value of this appeal "
                                                f"({type(err.orig).__name__})"))
    return Outcome(error=HTTPException(500, f"this appeal could not be processed ({type(err).__name__})"))


def _store_one(state, records: list[dict], tags: list[dict]) -> Outcome:
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


def _tag_each(state, valid) -> list[list[dict] | Exception]:
    """Tags per request: one tagging call for the group; if it fails, each request alone,
    so an appeal the tagger cannot take fails only its own request. One tagger for the whole
    group, read once, even if the model is swapped meanwhile: a group is stored in one
    transaction whose predictions are of one model version (store.ingest)."""
    tagger = state.tagger
    try:
        tags = tag(state, [t for *_, texts, _ in valid for t in texts], [x for *_, times in valid for x in times],
                   tagger=tagger)
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
            parts.append(tag(state, texts, times, tagger=tagger))
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
            valid.append((k, records, *model_inputs(records, max_text_chars=state.settings.max_text_chars)))
        except HTTPException as err:
            out[k] = Outcome(error=err)
    tagged = []
    for v, part in zip(valid, _tag_each(state, valid)):
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
            if unavailable(err):
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
        out[k] = _store_one(state, records, part)
    return out
