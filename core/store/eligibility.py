"""Who a program's eligibility admits: the person filters, and for guides the trainings they
hold and the session rating they received (both read from the store).

``programs.enrollment`` (who is enrolled), ``matching.pool`` (who may be matched) and
``hris.sync`` (whose trainings to read) all decide with these functions, so the three agree.
Only ratings are read from feedback: comments and private notes never are.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from coachbridge.domain.program import Eligibility
from coachbridge.domain.training import latest, training_counts, training_key
from coachbridge.store.tables import FeedbackRow, PairingRow, SessionRow, TrainingRow
from sqlalchemy import func, select
from sqlalchemy.orm import Session

__all__ = [
    "GuideFacts",
    "guide_ratings",
    "guide_reason",
    "load_guide_facts",
    "needs_facts",
    "passes_filters",
    "stored_training_names",
    "trainings_of",
]


def _norm(value: str | None) -> str:
    return (value or "").strip().casefold()


def _in(value: str | None, allowed: Iterable[str]) -> bool:
    return _norm(value) in {_norm(a) for a in allowed}


def passes_filters(person: Any, rules: Eligibility, *, today: date) -> bool:
    """True when ``person`` (a ``PersonRow`` or anything with its fields) passes every person
    filter of ``rules``: status, level, departments, divisions, locations, tenure. The guide
    facts (trainings, rating) are ``guide_reason``'s.

    Text filters compare case-insensitively; a person whose level or hire date is unknown
    fails a level or tenure filter.
    """
    if getattr(person, "forgotten", False):
        return False
    if rules.status and not (
        _in(person.status, rules.status) or _in(person.hris_status, rules.status)
    ):
        return False
    if rules.level is not None:
        low, high = rules.level
        if person.level is None or not low <= person.level <= high:
            return False
    if rules.departments is not None and not _in(person.department, rules.departments):
        return False
    if rules.divisions is not None and not _in(person.division, rules.divisions):
        return False
    if rules.locations is not None and not _in(person.location, rules.locations):
        return False
    if rules.min_tenure_days is not None or rules.max_tenure_days is not None:
        if person.hire_date is None:
            return False
        tenure = (today - person.hire_date).days
        if rules.min_tenure_days is not None and tenure < rules.min_tenure_days:
            return False
        if rules.max_tenure_days is not None and tenure > rules.max_tenure_days:
            return False
    return True


Held = tuple[date | None, date | None]  # (completed_at, expires_at) of the record that counts


@dataclass
class GuideFacts:
    """Trainings (the latest record of each, by ``training_key``) and received ratings
    (average, count) of some people."""

    trainings: dict[int, dict[str, Held]] = field(default_factory=dict)
    ratings: dict[int, tuple[float, int]] = field(default_factory=dict)

    def rating(self, person_id: int, min_ratings: int) -> float | None:
        """The person's average received rating, or None below ``min_ratings`` ratings."""
        avg, count = self.ratings.get(person_id, (0.0, 0))
        return avg if count >= min_ratings else None


def needs_facts(rules: Eligibility | None) -> bool:
    """Whether ``rules`` judge guide facts (a training, a rating) besides the person filters."""
    return rules is not None and (
        rules.trained_in is not None or rules.min_guide_rating is not None
    )


def trainings_of(
    s: Session, person_ids: Collection[int] | None = None
) -> dict[int, dict[str, Held]]:
    """Person -> training key -> the record that counts (the latest), from every source."""
    stmt = select(
        TrainingRow.person_id,
        TrainingRow.training,
        TrainingRow.completed_at,
        TrainingRow.expires_at,
    )
    if person_ids is not None:
        stmt = stmt.where(TrainingRow.person_id.in_(list(person_ids)))
    grouped: dict[int, dict[str, list[Held]]] = {}
    for pid, name, completed, expires in s.execute(stmt):
        grouped.setdefault(pid, {}).setdefault(training_key(name), []).append((completed, expires))
    return {
        pid: {key: latest(held) for key, held in by_name.items()}
        for pid, by_name in grouped.items()
    }


def guide_ratings(
    s: Session, person_ids: Collection[int] | None = None
) -> dict[int, tuple[float, int]]:
    """Guide -> (average, count) of the session ratings their learners gave them, across
    programs. A guide's own feedback on their sessions does not count; only the rating column
    is read (never a comment or a private note)."""
    stmt = (
        select(PairingRow.guide_id, func.avg(FeedbackRow.rating), func.count(FeedbackRow.id))
        .join(PairingRow, PairingRow.id == FeedbackRow.pairing_id)
        .join(SessionRow, SessionRow.id == FeedbackRow.session_id)
        .where(FeedbackRow.from_person_id != PairingRow.guide_id)
        .group_by(PairingRow.guide_id)
    )
    if person_ids is not None:
        stmt = stmt.where(PairingRow.guide_id.in_(list(person_ids)))
    return {gid: (float(avg), int(n)) for gid, avg, n in s.execute(stmt)}


def load_guide_facts(
    s: Session, rules: Eligibility | None, person_ids: Collection[int] | None = None
) -> GuideFacts:
    """What ``guide_reason`` needs for ``rules`` about these people (all people: None)."""
    facts = GuideFacts()
    if rules is None:
        return facts
    if rules.trained_in is not None:
        facts.trainings = trainings_of(s, person_ids)
    if rules.min_guide_rating is not None:
        facts.ratings = guide_ratings(s, person_ids)
    return facts


def guide_reason(
    person_id: int, rules: Eligibility | None, facts: GuideFacts, *, today: date
) -> str | None:
    """Why the guide facts of ``rules`` do not admit this person, or None when they do."""
    if rules is None:
        return None
    if rules.trained_in is not None:
        held = facts.trainings.get(person_id, {})
        for name in rules.trained_in:
            record = held.get(training_key(name))
            if record is None:
                return f"no {name!r} training"
            if not training_counts(
                record[0], record[1], today=today, valid_days=rules.training_valid_days
            ):
                return f"{name!r} training expired or too old"
    if rules.min_guide_rating is not None:
        rating = facts.rating(person_id, rules.min_ratings)
        if rating is not None and rating < rules.min_guide_rating:
            return f"guide rating {rating:.2f} below {rules.min_guide_rating:g}"
    return None


def stored_training_names(s: Session) -> set[str] | None:
    """The training keys any stored record holds; None when the store holds no trainings."""
    keys = {training_key(name) for name in s.scalars(select(TrainingRow.training).distinct())}
    return keys or None
