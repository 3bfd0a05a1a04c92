"""Review events: a normalized review-cycle fact from any HRIS."""

from __future__ import annotations

import math
import re
from datetime import datetime

from coachbridge.domain._base import DomainModel, utc
from pydantic import Field, field_validator, model_validator

REVIEW_EVENT_TYPES = ("review.completed", "review_cycle.launched", "review_cycle.closed")


def normalize_rating(raw: float, scale_max: float, scale_min: float = 1.0) -> float:
    """Map a raw rating onto 0..1 as ``(raw - min) / (max - min)``: 2 on a 1-5 scale is 0.25.

    Raises ``ValueError`` for an empty scale or a rating outside it.
    """
    if not all(math.isfinite(v) for v in (raw, scale_max, scale_min)):
        raise ValueError("rating and scale must be finite numbers")
    if scale_max <= scale_min:
        raise ValueError(f"rating scale {scale_min}..{scale_max} is empty")
    if not scale_min <= raw <= scale_max:
        raise ValueError(f"rating {raw:g} is outside its scale {scale_min:g}..{scale_max:g}")
    return (raw - scale_min) / (scale_max - scale_min)


#: Unicode's control characters (category Cc).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


class ReviewEvent(DomainModel):
    """``person_id`` is None while the subject is not yet known (kept, processed after a sync)."""

    type: str = "review.completed"
    # Lengths are the store's columns: longer input is an input error naming the field.
    cycle: str | None = Field(default=None, max_length=200)
    person_id: int | None = None
    subject_external_id: str | None = Field(default=None, max_length=200)
    subject_email: str | None = Field(default=None, max_length=320)
    raw_rating: float | None = None
    scale_min: float = 1.0
    scale_max: float | None = None
    rating: float | None = Field(default=None, ge=0.0, le=1.0)
    completed_at: datetime | None = None
    source: str
    source_event_id: str = Field(min_length=1, max_length=300)

    @field_validator("completed_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else utc(value)

    @field_validator("type", "cycle", "subject_external_id", "subject_email", "source_event_id")
    @classmethod
    def _no_control(cls, value: str | None) -> str | None:
        # Identifiers, not text: a control character (a NUL cannot even be stored in
        # PostgreSQL) makes a review nobody can match, refused where it arrives.
        if value is not None and _CONTROL.search(value):
            raise ValueError("contains a control character")
        return value

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: object) -> object:
        if (
            isinstance(data, dict)
            and data.get("raw_rating") is not None
            and data.get("rating") is None
        ):
            if data.get("scale_max") is None:
                raise ValueError("a raw rating needs its scale_max")
            data = dict(data)
            data["rating"] = normalize_rating(
                float(data["raw_rating"]),
                float(data["scale_max"]),
                float(data.get("scale_min", 1.0)),
            )
        return data
