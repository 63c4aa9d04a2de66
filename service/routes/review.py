"""The review queue (``GET /v1/review-queue``, ADR 0008): unlabelled appeals ranked by how
much a human label would help, or (``kind=suspect``) the likely label errors the last
retrain found.

The ranking is :func:`models.review.rank_tags` over stored predictions; this module only
reads the candidates (:func:`service.store.review_candidates`) and shapes the page.
Scoring every unlabelled appeal would mean segmenting every text on each request, so the
candidates are the least confident and the newest unlabelled appeals, a pool a few times
the page (measured in ADR 0008).
"""

import base64
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request

from corpora.text import join_title, redact_names
from service import store
from service.config import Settings
from service.deps import Reader, SessionDep, StrictJSONRoute
from service.schemas import ReviewPage

__all__ = ["router", "short_text", "POOL_MIN", "NEWEST_MIN"]

POOL_MIN = 500  # least confident unlabelled appeals scored, at least (4 × offset + limit above that)
NEWEST_MIN = 200  # newest unlabelled appeals scored, at least (offset + limit above that)
POOL_MAX = 20_000
SHORT_CHARS = 160
SIMILAR_SHOWN = 10


def short_text(title, text, *, chars: int = SHORT_CHARS) -> str:
    """The start of an appeal for a reviewer: personal data and names redacted first, then
    cut (so a cut cannot leave half a phone number that the redaction no longer recognises).

    >>> short_text("反映停水问题", "幸福里小区停水两天了，联系电话13812345678")
    '反映停水问题。幸福里小区停水两天了,联系电话[手机号]'
    >>> short_text("反映停水问题", "幸福里小区停水两天了，联系电话13812345678", chars=24)
    '反映停水问题。幸福里小区停水两天了,联系电话[手…'
    """
    shown = redact_names(join_title(title, text))
    return shown if len(shown) <= chars else shown[:chars] + "…"


def _encode(offset: int) -> str:
    return base64.urlsafe_b64encode(f"q{offset}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        digits = raw[1:]
        if not (raw.startswith("q") and digits.isascii() and digits.isdigit() and len(digits) < 10):
            raise ValueError
        return int(digits)
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(422, "cursor is not one this service returned") from None


def router(settings: Settings) -> APIRouter:
    r = APIRouter(prefix="/v1/review-queue", tags=["review"], route_class=StrictJSONRoute)

    @r.get("", response_model=ReviewPage)
    def review_queue(request: Request, s: SessionDep, _: Reader,
                     kind: Literal["unlabelled", "suspect"] = "unlabelled",
                     limit: Annotated[int, Query(ge=1, le=settings.page_size_max)] = 50,
                     cursor: Annotated[str | None, Query(max_length=64)] = None):
        """``kind=unlabelled`` (default): appeals without a human category label, the ones whose
        label would help most first (uncertain, contradicted by another signal, or full of
        words the model has never seen), one per near-duplicate group. ``kind=suspect``: the
        likely label errors the last retrain found (lowest label quality first). Follow
        ``next_cursor`` for the next page; a page is a slice of the ranking at request time."""
        offset = _decode(cursor) if cursor else 0
        if kind == "suspect":
            rows, more = store.list_label_suspects(s, offset=offset, limit=limit)
            data = [{"appeal_id": x.appeal_id, "source": x.source, "source_row": x.source_row,
                     "text": short_text(title, text) if text is not None else None, "field": x.field,
                     "given": x.given, "suggested": x.suggested, "score": x.score, "run_id": x.run_id,
                     "model_version": x.model_version, "found_at": x.found_at} for x, title, text in rows]
            return {"kind": kind, "data": data, "count": len(data),
                    "next_cursor": _encode(offset + limit) if more else None}
        return _unlabelled(request, s, offset=offset, limit=limit)

    return r


def _unlabelled(request: Request, s, *, offset: int, limit: int) -> dict:
    from models.review import rank_tags, word_vocabulary

    tagger = request.app.state.tagger  # read once: a model swap mid-request must not mix two models
    want = offset + limit
    rows = store.review_candidates(s, uncertain=min(max(POOL_MIN, 4 * want), POOL_MAX),
                                   newest=min(max(NEWEST_MIN, want), POOL_MAX))
    tags = [{"category": x.category, "category_scores": x.scores, "needs_review": x.needs_review,
             "urgency": x.urgency, "urgency_cues": x.cues or []} for x in rows]
    vocab, max_chars = word_vocabulary(tagger.category)
    ranked = rank_tags([join_title(x.title, x.text) for x in rows], tags, vocabulary=vocab, max_chars=max_chars,
                       router=tagger.router, k=want + 1)
    page = ranked.iloc[offset:want]
    data = []
    for i, score, margin, unknown, reasons, dups in page[["index", "score", "margin", "unknown_share", "reasons",
                                                           "duplicates"]].itertuples(index=False):
        x = rows[i]
        scores = x.scores or {}
        data.append({"id": x.id, "text": short_text(x.title, x.text), "category": x.category,
                     "confidence": x.confidence, "top_categories": sorted(scores, key=lambda c: -scores[c])[:3],
                     "urgency": x.urgency, "department": x.department, "topic": x.topic,
                     "model_version": x.model_version, "score": round(float(score), 4),
                     "margin": round(float(margin), 4), "unknown_share": round(float(unknown), 4),
                     "reasons": list(reasons), "similar": [rows[j].id for j in dups[:SIMILAR_SHOWN]]})
    return {"kind": "unlabelled", "data": data, "count": len(data),
            "next_cursor": _encode(want) if len(ranked) > want else None}
