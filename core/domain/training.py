"""Trainings: a course a person completed, as the HRIS records it, and when one still counts.

A program may admit as guides only people who hold a training (``[programs.guides]
trained_in``). A person may hold the same training several times (a renewal); the latest
record counts, and it counts while it has not expired and, when the program sets
``training_valid_days``, while it was completed within that many days.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from coachbridge.domain._base import YEARS, DomainModel
from pydantic import Field, model_validator

__all__ = ["TrainingRecord", "latest", "training_counts", "training_key"]


def training_key(name: str) -> str:
    """How training names compare: case and surrounding spaces do not matter."""
    return " ".join(name.split()).casefold()


class TrainingRecord(DomainModel):
    """One completed training of one person, as a connector reads it.

    ``expires_at`` None: it never expires. ``source_line`` is the line (or entry) it was read
    from, for error messages.
    """

    person_external_id: str = Field(min_length=1, max_length=200)
    training: str = Field(min_length=1, max_length=300)
    completed_at: date | None = None
    expires_at: date | None = None
    source_line: int | None = None

    @model_validator(mode="after")
    def _dates(self) -> TrainingRecord:
        for name, day in (("completed_at", self.completed_at), ("expires_at", self.expires_at)):
            if day is not None and day.year not in YEARS:
                raise ValueError(f"{name} {day} is outside {YEARS.start}-{YEARS.stop - 1}")
        if self.completed_at and self.expires_at and self.expires_at < self.completed_at:
            raise ValueError(
                f"expires_at {self.expires_at} is before completed_at {self.completed_at}"
            )
        return self


def latest(records: Iterable[tuple[date | None, date | None]]) -> tuple[date | None, date | None]:
    """The record that counts among several of one training: the latest completed (an unknown
    completion date is older than any known one). Records are ``(completed_at, expires_at)``."""
    return max(records, key=lambda r: (r[0] is not None, r[0] or date.min))


def training_counts(
    completed_at: date | None,
    expires_at: date | None,
    *,
    today: date,
    valid_days: int | None = None,
) -> bool:
    """Whether a training record counts on ``today``: unexpired (an expiry day itself no longer
    counts) and, with ``valid_days``, completed within that many days (an unknown completion
    date then does not count)."""
    if expires_at is not None and expires_at <= today:
        return False
    if valid_days is not None and (
        completed_at is None or completed_at < today - timedelta(days=valid_days)
    ):
        return False
    return completed_at is None or completed_at <= today
