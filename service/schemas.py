"""API schemas (pydantic): what goes in and out of /v1."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
Short = Annotated[str, StringConstraints(max_length=128)]
Level = Literal["critical", "urgent", "routine"]


class AppealIn(BaseModel):
    """One appeal as the hotline sends it. ``text`` is required; control characters are
    stripped; a text over the configured maximum is refused, never truncated."""
    model_config = ConfigDict(extra="forbid")
    id: Id
    time: datetime | None = None
    title: Annotated[str, StringConstraints(max_length=1000)] | None = None
    text: str = Field(min_length=1)
    district: Short | None = None
    user: Short | None = None
    channel: Short | None = None


class ClassifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Id | None = None
    time: datetime | None = None
    title: Annotated[str, StringConstraints(max_length=1000)] | None = None
    text: str = Field(min_length=1)


class AppealBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    appeals: list[AppealIn] = Field(min_length=1)


class ClassifyBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    appeals: list[ClassifyIn] = Field(min_length=1)


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


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: Short | None = None
    urgency: Level | None = None
    reason: Annotated[str, StringConstraints(max_length=2000)] | None = None


class LabelOut(BaseModel):
    field: str
    old_value: str | None
    new_value: str
    reason: str | None
    author: str
    created_at: datetime


class AppealDetail(BaseModel):
    appeal: AppealOut
    predictions: list[PredictionOut]
    labels: list[LabelOut]
