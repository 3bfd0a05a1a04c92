"""Programs: coaching (short, goal-focused) and mentoring (long, relationship-focused) and kin."""

from __future__ import annotations

import math
from datetime import date
from enum import StrEnum

from coachbridge.domain._base import YEARS, DomainModel
from pydantic import Field, StrictBool, field_validator, model_validator


class ProgramKind(StrEnum):
    COACHING = "coaching"
    MENTORING = "mentoring"
    PEER = "peer"
    REVERSE = "reverse"
    GROUP = "group"


class Eligibility(DomainModel):
    """Who is enrolled automatically in one role. Every given filter must hold."""

    level: tuple[int, int] | None = None
    departments: list[str] | None = None
    divisions: list[str] | None = None
    locations: list[str] | None = None
    status: list[str] = Field(default_factory=lambda: ["active"])
    min_tenure_days: int | None = Field(default=None, ge=0)
    max_tenure_days: int | None = Field(default=None, ge=0)
    # Guides only (docs/programs.md, "Trained guides"): a training the HRIS records, counted
    # while unexpired and, with training_valid_days, completed within that many days.
    trained_in: list[str] | None = None
    training_valid_days: int | None = Field(default=None, ge=1)
    # Guides only: the average session rating a guide received, once at least min_ratings.
    min_guide_rating: float | None = Field(default=None, ge=1.0, le=5.0)
    min_ratings: int = Field(default=5, ge=1)

    @field_validator("trained_in")
    @classmethod
    def _trained_in(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value or any(not name.strip() for name in value):
                raise ValueError("give at least one training name, none of them empty")
            value = [name.strip() for name in value]
        return value

    @property
    def guide_only_keys(self) -> list[str]:
        """The guide-only keys this filter sets (an error under [programs.learners])."""
        keys = ("trained_in", "training_valid_days", "min_guide_rating", "min_ratings")
        return [key for key in keys if key in self.model_fields_set]

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, value: object) -> object:
        if isinstance(value, int):
            return (value, value)
        return value

    @model_validator(mode="after")
    def _ranges(self) -> Eligibility:
        if self.level is not None and self.level[0] > self.level[1]:
            raise ValueError(
                f"level range {list(self.level)} is empty: the low end is above the high end"
            )
        if (
            self.min_tenure_days is not None
            and self.max_tenure_days is not None
            and self.min_tenure_days > self.max_tenure_days
        ):
            raise ValueError("min_tenure_days is above max_tenure_days")
        if self.training_valid_days is not None and self.trained_in is None:
            raise ValueError("training_valid_days needs trained_in (the trainings it applies to)")
        return self


class Limits(DomainModel):
    per_guide_per_department: int | None = Field(default=None, ge=1)


class Program(DomainModel):
    """A program as configured in ``[[programs]]``.

    Without ``start`` the program is rolling: each pairing's sessions start from the day it is made.
    """

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    name: str = ""
    kind: ProgramKind
    objective: str = ""
    owner: str | None = None
    start: date | None = None
    end: date | None = None
    duration_weeks: int = Field(default=12, ge=1, le=520)
    cadence_days: int = Field(default=14, ge=1, le=365)
    session_minutes: int = Field(default=45, ge=5, le=480)
    capacity: int = Field(default=3, ge=0, le=1000)
    min_score: float = 0.0
    top_k: int = Field(default=50, ge=1)
    # Prove the match optimal over every allowed pair (pricing with the solve's duals); false
    # keeps the optimum within each learner's top_k best guides (faster at company scale).
    certify: StrictBool = True
    # The webhook worker gathers review events for up to this many seconds (from the oldest
    # waiting delivery) or this many events, and matches their learners in one solve.
    burst_window_seconds: float = Field(default=2.0, gt=0, allow_inf_nan=False)
    burst_max: int = Field(default=1000, ge=1)
    holidays: str | None = None
    working_hours: tuple[int, int] = (9, 17)
    learners: Eligibility | None = None
    guides: Eligibility | None = None
    weights: dict[str, float] = Field(
        default_factory=lambda: {"skills": 0.4, "seniority": 0.2, "timezone": 0.2, "language": 0.2}
    )
    limits: Limits = Field(default_factory=Limits)
    settings: dict[str, int | float | str | bool] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: object) -> object:
        if isinstance(data, dict):
            data = dict(data)
            if not data.get("name") and data.get("id"):
                data["name"] = data["id"]
            start, end = data.get("start"), data.get("end")
            if isinstance(start, date) and isinstance(end, date) and "duration_weeks" not in data:
                data["duration_weeks"] = max(1, ((end - start).days + 6) // 7)
        return data

    @model_validator(mode="after")
    def _dates(self) -> Program:
        if self.learners is not None and self.learners.guide_only_keys:
            key = self.learners.guide_only_keys[0]
            raise ValueError(f"learners.{key} applies to guides only: move it to [programs.guides]")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        for name, day in (("start", self.start), ("end", self.end)):
            if day is not None and day.year not in YEARS:
                raise ValueError(f"{name} {day} is outside {YEARS.start}-{YEARS.stop - 1}")
        lo, hi = self.working_hours
        if not (0 <= lo < hi <= 24):
            raise ValueError(
                "working_hours must be [start_hour, end_hour] with 0 <= start < end <= 24"
            )
        for key, weight in self.weights.items():
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"weights.{key} must be a number, not negative")
        return self

    @property
    def sessions_planned(self) -> int:
        """How many sessions a pairing gets: ``duration_weeks * 7 // cadence_days``."""
        return self.duration_weeks * 7 // self.cadence_days
