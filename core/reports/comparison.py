"""The comparison group: similar people who were employed at the program's start and never enrolled.

Matching is coarsened exact matching: people fall into strata by department, level, tenure
band and prior review-rating band, all as of the index date; comparison people are drawn only
from strata that hold participants, up to ``RATIO`` per participant in each stratum (a seeded
draw, so the same data gives the same report). Participants in a stratum with nobody to compare
with are counted as unmatched.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from coachbridge.reports.data import Company

RATIO = 5
Stratum = tuple[str, int | None, str, str]


def tenure_band(hire: date | None, day: date) -> str:
    """Years of service on ``day`` in bands: <1, 1-3, 3-5, 5-10, 10+."""
    if hire is None:
        return "unknown"
    years = (day - hire).days / 365.25
    for limit, label in ((1, "<1"), (3, "1-3"), (5, "3-5"), (10, "5-10")):
        if years < limit:
            return label
    return "10+"


def rating_band(rating: float | None) -> str:
    """The last review rating before the index date, on the 0..1 scale, in three bands."""
    if rating is None:
        return "none"
    if rating < 0.4:
        return "low"
    if rating < 0.7:
        return "middle"
    return "high"


def start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def stratum(
    company: Company, person_id: int, day: date, head: tuple[str, int | None] | None = None
) -> Stratum:
    """The matching cell of a person on ``day`` (``head``: department and level, if known)."""
    if head is None:
        head = (
            (company.department_on(person_id, day) or "").casefold(),
            company.level_on(person_id, day),
        )
    return (
        head[0],
        head[1],
        tenure_band(company.people[person_id].hire_date, day),
        rating_band(company.review_before(person_id, start_of(day))),
    )


@dataclass
class Comparison:
    """The drawn comparison people, each with the index date they are followed from."""

    index: dict[int, date]
    matched_participants: int
    unmatched_participants: int

    @property
    def people(self) -> list[int]:
        return sorted(self.index)


def match(
    company: Company,
    participants: Iterable[tuple[int, date]],
    reference_day: date,
    excluded: set[int],
    *,
    seed: str,
    ratio: int = RATIO,
) -> Comparison:
    """Draw the comparison group for ``participants`` (each with their index date).

    Strata of comparison people are taken on ``reference_day`` (the program's start, or the
    median first session of a rolling program).
    """
    wanted: dict[Stratum, int] = defaultdict(int)
    days: dict[Stratum, list[date]] = defaultdict(list)
    for pid, day in participants:
        cell = stratum(company, pid, day)
        wanted[cell] += 1
        days[cell].append(day)
    # Cheap fields first: most of a large company shares no department and level with anyone
    # in the program, so the review lookup is skipped for them.
    coarse = {(cell[0], cell[1]) for cell in wanted}
    pool: dict[Stratum, list[int]] = defaultdict(list)
    for pid in sorted(company.people):
        if pid in excluded or not company.employed_on(pid, reference_day):
            continue
        head = (
            (company.department_on(pid, reference_day) or "").casefold(),
            company.level_on(pid, reference_day),
        )
        if head not in coarse:
            continue
        cell = stratum(company, pid, reference_day, head)
        if cell in wanted:
            pool[cell].append(pid)
    rng = random.Random(seed)
    chosen: dict[int, date] = {}
    matched = unmatched = 0
    for cell in sorted(wanted, key=repr):
        candidates = pool.get(cell, [])
        if not candidates:
            unmatched += wanted[cell]
            continue
        matched += wanted[cell]
        take = min(len(candidates), ratio * wanted[cell])
        # Each comparison person is followed from the index date of a participant in the same
        # cell (for a fixed-date program that is always the start; for a rolling one it spreads
        # the comparison group over the same calendar as the participants).
        for pid in rng.sample(candidates, take):
            chosen[pid] = rng.choice(days[cell])
    return Comparison(chosen, matched, unmatched)
