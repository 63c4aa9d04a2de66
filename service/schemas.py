"""API schemas (pydantic): what goes in and out of /v1."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Union

from pydantic import (AfterValidator, BaseModel, ConfigDict, Discriminator, Field, StringConstraints,
                      create_model, model_validator)
from pydantic import Tag as Variant
from pydantic_core import PydanticCustomError

EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc)


def valid_unicode(value: str) -> str:
    """Refuse lone surrogates: no database stores them and no JSON response can carry them."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError("invalid_unicode", "contains invalid Unicode (a lone surrogate)") from None
    return value


def clean_text(value: str) -> str:
    """Short fields (district, user, channel …) may not hold NUL (PostgreSQL refuses it);
    appeal texts and titles have their control characters stripped instead."""
    if "\x00" in value:
        raise PydanticCustomError("nul_character", "contains a NUL character")
    return valid_unicode(value)


def bounded_time(value: datetime) -> datetime:
    """Times from 1970 to 2100 (an offset-less time is compared as if in UTC: the bounds are
    a sanity range, not a business rule)."""
    aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not EARLIEST <= aware < LATEST:
        raise PydanticCustomError("time_out_of_range", "time must lie between 1970 and 2100")
    return value


Clean = AfterValidator(clean_text)
Unicode = AfterValidator(valid_unicode)
Time = Annotated[datetime, AfterValidator(bounded_time)]


def clean_id(value: str) -> str:
    """Ids end up in URL paths (``/v1/appeals/{id}``): no control characters, no "/"."""
    if any(ord(c) < 0x20 or c in "\x7f/" for c in value):
        raise PydanticCustomError("invalid_id", "an id may not contain '/' or control characters")
    return value


Id = Annotated[str, StringConstraints(min_length=1, max_length=128), Clean, AfterValidator(clean_id)]
Short = Annotated[str, StringConstraints(max_length=64), Clean]       # the columns are 64 characters
Name = Annotated[str, StringConstraints(max_length=128), Clean]
Title = Annotated[str, StringConstraints(max_length=1000), Unicode]
Text = Annotated[str, StringConstraints(min_length=1), Unicode]
Level = Literal["critical", "urgent", "routine"]


class Strict(BaseModel):
    """Unknown fields are refused with one error naming a few of them, before any field is
    validated: a body with half a million stray keys costs one pass over its keys, not an
    error object each."""
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [k for k in data if k not in cls.model_fields]
            if unknown:
                names = ", ".join(repr(str(k)[:40]) for k in unknown[:5])
                raise PydanticCustomError("extra_forbidden", "unknown field(s) {names}{more}",
                                          {"names": names, "more": f" and {len(unknown) - 5:,} more"
                                           if len(unknown) > 5 else ""})
        return data


class AppealIn(Strict):
    """One appeal as the hotline sends it. ``text`` is required; control characters are
    stripped; a text over the configured maximum is refused, never truncated."""
    id: Id
    time: Time | None = None
    title: Title | None = None
    text: Text
    district: Short | None = None
    user: Name | None = None
    channel: Short | None = None


class ClassifyIn(Strict):
    id: Id | None = None
    time: Time | None = None
    title: Title | None = None
    text: Text


class AppealBatch(Strict):
    appeals: list[AppealIn] = Field(min_length=1)


class ClassifyBatch(Strict):
    appeals: list[ClassifyIn] = Field(min_length=1)


def _shape(value: Any) -> str:
    """One appeal or a batch, told by the ``appeals`` key, so a body is validated against one
    shape only."""
    if isinstance(value, dict):
        return "batch" if "appeals" in value else "one"
    return "batch" if isinstance(value, (AppealBatch, ClassifyBatch)) else "one"


def request_bodies(max_batch: int):
    """The request bodies of ``POST /v1/appeals`` and ``/v1/classify`` for a service whose
    batches hold at most ``max_batch`` appeals: a longer list is refused before its items
    are validated (the API answers 413)."""
    bodies = []
    for one, batch in ((AppealIn, AppealBatch), (ClassifyIn, ClassifyBatch)):
        item = batch.model_fields["appeals"].annotation.__args__[0]
        capped = create_model(batch.__name__, __base__=batch,
                              appeals=(list[item], Field(min_length=1, max_length=max_batch)))
        bodies.append(Annotated[Union[Annotated[one, Variant("one")], Annotated[capped, Variant("batch")]],
                                Discriminator(_shape)])
    return tuple(bodies)


class Cue(BaseModel):
    cue: str
    kind: str
    level: str
    start: int
    end: int
    match: str
    negated: bool


class Tag(BaseModel):
    id: str | None
    created: bool | None = None
    category: str
    confidence: float
    category_scores: dict[str, float]
    top_categories: list[str]
    needs_review: bool
    department: str | None
    topic: str | None
    urgency: Level | None = None
    urgency_score: float | None = None
    critical_score: float | None = None
    possible_critical: bool | None = None
    urgency_reason: str | None = None
    urgency_cues: list[Cue] = []
    deadlines: dict | None = None
    model_version: str


class TagsOut(BaseModel):
    data: list[Tag]
    count: int


class AppealOut(BaseModel):
    id: str
    time: datetime | None
    title: str | None
    text: str
    district: str | None
    user: str | None
    channel: str | None
    category: str | None
    urgency: str | None
    needs_review: bool
    received_at: datetime


class AppealsPage(BaseModel):
    data: list[AppealOut]
    count: int
    next_cursor: str | None


class PredictionOut(BaseModel):
    model_version: str
    category: str
    confidence: float
    scores: dict
    urgency: str | None
    urgency_score: float | None
    cues: list | None
    deadlines: dict | None
    needs_review: bool
    department: str | None
    topic: str | None
    created_at: datetime


class LabelIn(Strict):
    category: Short | None = None
    urgency: Level | None = None
    reason: Annotated[str, StringConstraints(max_length=2000), Clean] | None = None


class LabelOut(BaseModel):
    field: str
    old_value: str | None
    new_value: str
    reason: str | None
    author: str
    created_at: datetime


class HotspotRef(BaseModel):
    """An appeal's hotspot group (ADR 0006); ``place`` and ``summary`` are the group's, redacted."""
    group_id: str
    place: str | None
    size: int
    heat: float
    summary: str
    repeat: bool  # 重复诉求: the same sender again, a re-post, or a cue such as 多次反映
    repeat_of: list[str]  # the earlier appeals of the group it repeats


class AppealDetail(BaseModel):
    appeal: AppealOut
    predictions: list[PredictionOut]
    labels: list[LabelOut]
    hotspot: HotspotRef | None = None  # None until the appeal is grouped (a few seconds after it is stored)


class HotspotOut(BaseModel):
    """A group of appeals about one problem in one place. ``place``, ``summary``, ``keywords``
    and ``districts`` are redacted; ``heat`` (0–100) is as of the newest appeal the service had
    grouped when the group was last written (``updated_at``)."""
    group_id: str
    size: int
    people: int
    place: str | None
    first_time: datetime | None
    last_time: datetime | None
    heat: float
    summary: str
    keywords: list[str]
    districts: list[str]
    updated_at: datetime


class HotspotsPage(BaseModel):
    data: list[HotspotOut]
    count: int
    next_cursor: str | None


class RepeatOut(BaseModel):
    id: str
    repeat_of: list[str]


class HotspotDetail(HotspotOut):
    appeal_ids: list[str]  # in time order
    repeats: list[RepeatOut]


# --- review queue and taxonomy (ADR 0008) ---------------------------------------------------

class ReviewItem(BaseModel):
    """An unlabelled appeal ranked by how much a human label would help. ``text`` is the
    redacted start of title and text; ``reasons`` name the signals that fired (``uncertain``,
    ``needs_review``, ``possible_critical``, ``routing_disagrees``, ``new_vocabulary``),
    strongest first; ``similar``: unlabelled near-duplicates ranked below it, not listed
    separately (those among the appeals ranked up to the end of this page)."""
    id: str
    text: str
    category: str
    confidence: float
    top_categories: list[str]
    urgency: str | None
    department: str | None
    topic: str | None
    model_version: str
    score: float
    margin: float  # top-two category probability margin of the stored prediction
    unknown_share: float  # share of the appeal's words the serving model has never seen
    reasons: list[str]
    similar: list[str]


class SuspectItem(BaseModel):
    """A likely label error found by the last retrain: an appeal (``appeal_id``, with its
    redacted ``text``) or a base training file's row (``source``, ``source_row``)."""
    appeal_id: str | None
    source: str | None
    source_row: int | None
    text: str | None
    field: str
    given: str
    suggested: str
    score: float  # label quality 0-1: low = likely wrong
    run_id: str
    model_version: str | None
    found_at: datetime


class ReviewPage(BaseModel):
    kind: Literal["unlabelled", "suspect"]
    data: list[ReviewItem] | list[SuspectItem]
    count: int
    next_cursor: str | None


class CategoryIn(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=64), Clean]
    department: Annotated[str, StringConstraints(min_length=1, max_length=128), Clean]


class CategoryOut(BaseModel):
    """A first-level category: from the routing data (``source="routing"``) or added by an
    admin (``"added"``, with who and when); ``in_model``: the serving model predicts it."""
    name: str
    department: str
    source: Literal["routing", "added"]
    in_model: bool
    added_by: str | None = None
    added_at: datetime | None = None


class CategoriesOut(BaseModel):
    data: list[CategoryOut]
    count: int
