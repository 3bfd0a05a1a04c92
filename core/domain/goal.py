"""Goals: SMART goals owned by a learner, optionally tied to a pairing."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from coachbridge.domain._base import DomainModel
from pydantic import Field


class GoalStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Goal(DomainModel):
    id: int | None = None
    owner_id: int
    pairing_id: int | None = None
    program: str | None = None
    title: str = Field(min_length=1, max_length=500)
    measure: str | None = None
    target: str | None = None
    due_date: date | None = None
    progress: float = Field(default=0.0, ge=0, le=100)
    status: GoalStatus = GoalStatus.OPEN
