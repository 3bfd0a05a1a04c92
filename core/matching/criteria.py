"""Matching criteria: how well one guide fits one learner, each in 0..1.

A program weighs the criteria it names in ``[programs.weights]``; a pair's score is the sum of
``weight * criterion(learner, guide)``, and that sum's parts are the pair's breakdown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Profile:
    """What a criterion may look at for one enrolled person."""

    person_id: int
    level: int | None = None
    department: str | None = None
    division: str | None = None
    location: str | None = None
    timezone: str | None = None
    utc_offset_hours: float | None = None
    skills: frozenset[str] = field(default_factory=frozenset)
    interests: frozenset[str] = field(default_factory=frozenset)
    languages: frozenset[str] = field(default_factory=frozenset)
    wants: frozenset[str] = field(default_factory=frozenset)
    offers: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Criterion:
    name: str
    score: Callable[[Profile, Profile], float]
    description: str = ""


BUILTIN_CRITERIA: frozenset[str] = frozenset(
    {"skills", "goals", "seniority", "timezone", "language", "department_diversity"}
)
