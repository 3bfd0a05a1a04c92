"""Sessions (check-ins) of a pairing. Private notes never leave the store."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from coachbridge.domain._base import DomainModel, utc
from pydantic import Field, field_validator


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    HELD = "held"
    MISSED = "missed"
    CANCELLED = "cancelled"


class Session(DomainModel):
    id: int | None = None
    pairing_id: int
    start: datetime
    minutes: int = Field(ge=5, le=480)
    status: SessionStatus = SessionStatus.SCHEDULED
    agenda: str | None = None
    action_items: list[str] = Field(default_factory=list)
    # repr=False: private notes must not leak through logs or tracebacks.
    private_notes: str | None = Field(default=None, repr=False, exclude=True)

    @field_validator("start")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return utc(value)
