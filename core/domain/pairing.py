"""Pairings: one learner with one guide in one program, and why they were matched."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum

from coachbridge.domain._base import DomainModel
from pydantic import Field, model_validator


class PairingStatus(StrEnum):
    PROPOSED = "proposed"
    OFFERED = "offered"  # the learner's best guide, held while they choose among offers
    REQUESTED = "requested"  # waiting for the guide to accept
    WITHDRAWN = "withdrawn"  # an offered or requested pairing that never started
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    ENDED = "ended"  # ended early; ``end_reason`` says why


OPEN_PAIRING_STATUSES = (
    PairingStatus.PROPOSED,
    PairingStatus.ACTIVE,
    PairingStatus.PAUSED,
    PairingStatus.OFFERED,
    PairingStatus.REQUESTED,
)
#: The same, as stored: the statuses of a pairing that still holds a guide's place.
OPEN = [s.value for s in OPEN_PAIRING_STATUSES]


class Pairing(DomainModel):
    id: int | None = None
    program: str
    learner_id: int
    guide_id: int
    score: float = 0.0
    breakdown: dict[str, float] = Field(default_factory=dict)
    status: PairingStatus = PairingStatus.PROPOSED
    end_reason: str | None = None
    flag: str | None = None
    created_at: datetime | None = None
    ended_at: datetime | None = None

    @model_validator(mode="after")
    def _check(self) -> Pairing:
        if self.learner_id == self.guide_id:
            raise ValueError("a person cannot be paired with themselves")
        if not math.isfinite(self.score):
            raise ValueError("score must be a finite number")
        if self.status == PairingStatus.ENDED and not self.end_reason:
            raise ValueError("an ended pairing needs an end_reason")
        return self
