"""Enrollments: a person in a program as a learner or a guide."""

from __future__ import annotations

from enum import StrEnum

from coachbridge.domain._base import DomainModel
from pydantic import Field, field_validator


class Role(StrEnum):
    LEARNER = "learner"
    GUIDE = "guide"


_ALIASES = {
    "learner": Role.LEARNER,
    "coachee": Role.LEARNER,
    "mentee": Role.LEARNER,
    "guide": Role.GUIDE,
    "coach": Role.GUIDE,
    "mentor": Role.GUIDE,
}


def normalize_role(value: str) -> Role:
    """Map ``learner``/``guide`` and their aliases (coachee, mentee, coach, mentor) to a Role."""
    try:
        return _ALIASES[value.strip().lower()]
    except KeyError:
        raise ValueError(
            f"unknown role {value!r}: use learner or guide (coachee, mentee, coach, mentor are aliases)"
        ) from None


class Enrollment(DomainModel):
    program: str
    person_id: int
    role: Role
    capacity: int | None = Field(default=None, ge=0)
    opted_out: bool = False
    preferences: dict[str, list[str] | str] = Field(default_factory=dict)

    @field_validator("role", mode="before")
    @classmethod
    def _role(cls, value: object) -> object:
        return normalize_role(value) if isinstance(value, str) else value
