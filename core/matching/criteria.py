"""Matching criteria: how well one guide fits one learner, each in 0..1.

A program weighs the criteria it names in ``[programs.weights]``; a pair's score is the sum of
``weight * criterion(learner, guide)``, and that sum's parts are the pair's breakdown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["ANSWER_CRITERIA", "BUILTIN_CRITERIA", "Criterion", "Profile"]


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
    # The person's intake answer in this program (docs/participants.md); empty when none.
    # ``languages`` above already holds the answer's languages when it gave some.
    topics: tuple[str, ...] = ()  # a learner's picks in priority order; a guide's offers
    goal: str | None = None  # the learner's goal; the guide's "how I can help"
    availability: frozenset[str] = field(default_factory=frozenset)  # mon-am .. fri-pm


@dataclass(frozen=True)
class Criterion:
    """A matching criterion from a plugin, in one of two forms (or both).

    Per pair: ``score(learner, guide)`` takes two ``Profile`` objects and returns a number in
    0..1; simple, but plain Python once per (learner, guide) pair.

    Vectorised: ``features(profiles)`` turns a list of profiles into a numpy array with one row
    per person (called once per side and cached), and ``score_block(learner_rows, guides)``
    takes a block of those learner rows and all guide rows and returns a
    ``(len(learner_rows), len(guides))`` float array of scores in 0..1. Matching then scores it
    block by block with the built-in criteria, at about their cost. When both forms are given,
    the vectorised one is used.
    """

    name: str
    score: Callable[[Profile, Profile], float] | None = None
    description: str = ""
    features: Callable[[Sequence[Profile]], NDArray[Any]] | None = None
    score_block: Callable[[NDArray[Any], NDArray[Any]], NDArray[np.float64]] | None = None

    @property
    def vectorised(self) -> bool:
        return self.features is not None and self.score_block is not None

    def problem(self) -> str | None:
        """Why this criterion cannot be used, or None."""
        if (self.features is None) != (self.score_block is None):
            return "give both features and score_block (the vectorised form), or neither"
        if self.score is None and not self.vectorised:
            return "give score(learner, guide) or features and score_block"
        return None


BUILTIN_CRITERIA: frozenset[str] = frozenset(
    {
        "skills",
        "goals",
        "seniority",
        "timezone",
        "language",
        "department_diversity",
        "guide_rating",
        "topics",
        "goal_text",
        "availability",
    }
)

#: The criteria that read participants' intake answers (``language`` reads them too, when an
#: answer gives languages, and falls back to the HRIS's).
ANSWER_CRITERIA: frozenset[str] = frozenset({"topics", "goal_text", "availability"})
