"""Loading what a program report needs, column by column (no ORM objects: it must scale).

Everything is read in one transaction, once per report run, and shared by every program.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from coachbridge.store.tables import (
    EnrollmentRow,
    FeedbackRow,
    GoalRow,
    OfferRow,
    PairingRow,
    PersonHistoryRow,
    PersonRow,
    ReviewEventRow,
    SessionAttendanceRow,
    SessionRow,
)
from sqlalchemy import case, select
from sqlalchemy.orm import Session

MATCHED = ("active", "paused", "completed", "ended")


@dataclass
class PersonFacts:
    """What outcomes need about one person (no names: reports never hold any)."""

    id: int
    hire_date: date | None
    termination_date: date | None
    status: str
    department: str | None
    location: str | None
    level: int | None


@dataclass
class Company:
    """Everyone's facts, effective-dated history and review ratings."""

    people: dict[int, PersonFacts]
    # person -> field -> (sorted valid_from dates, the values from those dates)
    history: dict[int, dict[str, tuple[list[date], list[str | None]]]]
    # person -> sorted [(completed_at, normalized rating)]
    reviews: dict[int, list[tuple[datetime, float]]]

    def as_of(self, person_id: int, name: str, day: date) -> str | object | None:
        """The history value of ``name`` valid on ``day``; ``MISSING`` without history then."""
        fields = self.history.get(person_id)
        rows = fields.get(name) if fields else None
        if not rows:
            return MISSING
        idx = bisect.bisect_right(rows[0], day) - 1
        if idx < 0:
            return MISSING
        return rows[1][idx]

    def department_on(self, person_id: int, day: date) -> str | None:
        value = self.as_of(person_id, "department", day)
        return self.people[person_id].department if value is MISSING else value  # type: ignore[return-value]

    def level_on(self, person_id: int, day: date) -> int | None:
        value = self.as_of(person_id, "level", day)
        if value is MISSING:
            return self.people[person_id].level
        try:
            return int(value) if value is not None else None  # type: ignore[arg-type]
        except ValueError:
            return None

    def promoted(self, person_id: int, start: date, until: date) -> bool:
        """True when the person's level rose above its value on ``start`` by ``until``."""
        base = self.level_on(person_id, start)
        dates, values = self.history.get(person_id, {}).get("level") or ([], [])
        for valid_from, value in zip(dates, values, strict=True):
            if start < valid_from <= until and value is not None:
                try:
                    if base is not None and int(value) > base:
                        return True
                except ValueError:
                    continue
        return False

    def employed_on(self, person_id: int, day: date) -> bool:
        p = self.people[person_id]
        if p.hire_date is not None and p.hire_date > day:
            return False
        return p.termination_date is None or p.termination_date > day

    def review_before(self, person_id: int, moment: datetime) -> float | None:
        """The rating of the last review completed before ``moment``."""
        rows = self.reviews.get(person_id) or []
        idx = bisect.bisect_left(rows, moment, key=lambda r: r[0]) - 1
        return rows[idx][1] if idx >= 0 else None

    def review_after(self, person_id: int, moment: datetime) -> float | None:
        """The rating of the first review completed after ``moment``."""
        rows = self.reviews.get(person_id) or []
        idx = bisect.bisect_right(rows, moment, key=lambda r: r[0])
        return rows[idx][1] if idx < len(rows) else None


MISSING = object()


def load_company(s: Session) -> Company:
    """Read people (never forgotten-person contact data: only ids and HR facts), history, reviews."""
    conn = s.connection()  # Core rows: the ORM's per-row bookkeeping is not needed here
    people = {
        row[0]: PersonFacts(*row)
        for row in conn.execute(
            select(
                PersonRow.id,
                PersonRow.hire_date,
                PersonRow.termination_date,
                PersonRow.status,
                PersonRow.department,
                PersonRow.location,
                PersonRow.level,
            )
        )
    }
    history: dict[int, dict[str, tuple[list[date], list[str | None]]]] = defaultdict(dict)
    for pid, name, value, valid_from in conn.execute(
        select(
            PersonHistoryRow.person_id,
            PersonHistoryRow.field,
            PersonHistoryRow.value,
            PersonHistoryRow.valid_from,
        )
        .where(PersonHistoryRow.field.in_(["department", "level"]))
        .order_by(PersonHistoryRow.person_id, PersonHistoryRow.field, PersonHistoryRow.valid_from)
    ):
        dates, values = history[pid].setdefault(name, ([], []))
        dates.append(valid_from)
        values.append(value)
    reviews: dict[int, list[tuple[datetime, float]]] = defaultdict(list)
    for pid, rating, completed in conn.execute(
        select(ReviewEventRow.person_id, ReviewEventRow.rating, ReviewEventRow.completed_at)
        .where(
            ReviewEventRow.person_id.is_not(None),
            ReviewEventRow.rating.is_not(None),
            ReviewEventRow.completed_at.is_not(None),
        )
        .order_by(ReviewEventRow.person_id, ReviewEventRow.completed_at)
    ):
        reviews[pid].append((completed, float(rating)))
    # Most people never change department or level: a single history row equal to today's
    # value tells nothing the person row does not, so it is dropped (faster as-of lookups).
    for pid in list(history):
        fields = history[pid]
        person = people.get(pid)
        for name in list(fields):
            dates, values = fields[name]
            current = None if person is None else getattr(person, name)
            if len(values) == 1 and values[0] == (None if current is None else str(current)):
                del fields[name]
        if not fields:
            del history[pid]
    return Company(people, dict(history), dict(reviews))


@dataclass
class PairingFacts:
    id: int
    learner_id: int
    guide_id: int
    status: str
    flag: str | None
    created_at: datetime
    activated_at: datetime | None
    first_held: datetime | None = None
    last_held: datetime | None = None
    held: int = 0
    missed: int = 0
    planned: int = 0


@dataclass
class ProgramData:
    """One program's pairings, sessions, feedback, goals and enrollments."""

    program_id: str
    pairings: dict[int, PairingFacts] = field(default_factory=dict)
    held_sessions: list[tuple[int, datetime]] = field(default_factory=list)  # (pairing, start)
    feedback: list[tuple[int, int, int]] = field(default_factory=list)  # (pairing, from, rating)
    enrolled_learners: set[int] = field(default_factory=set)
    ever_enrolled: set[int] = field(default_factory=set)
    goals: list[tuple[int, float, str]] = field(default_factory=list)  # (owner, progress, status)
    enrolled_at: dict[int, datetime] = field(default_factory=dict)  # learner -> enrolled
    # Offers and requests (coachbridge.matching.offers): kind, rank, round, status, reason,
    # who answered ("daily" when the time ran out), the learner and the guide.
    offers: list[tuple[str, int, int | None, str, str | None, str | None, int, int]] = field(
        default_factory=list
    )


def load_program(s: Session, program_id: str) -> ProgramData:
    """Read one program's own rows."""
    data = ProgramData(program_id)
    conn = s.connection()
    for row in conn.execute(
        select(
            PairingRow.id,
            PairingRow.learner_id,
            PairingRow.guide_id,
            PairingRow.status,
            PairingRow.flag,
            PairingRow.created_at,
            PairingRow.activated_at,
        ).where(PairingRow.program_id == program_id)
    ):
        data.pairings[row[0]] = PairingFacts(*row)
    pairing_ids = select(PairingRow.id).where(PairingRow.program_id == program_id)
    one_to_one = select(SessionRow.pairing_id, SessionRow.start, SessionRow.status).where(
        SessionRow.pairing_id.in_(pairing_ids), SessionRow.circle_id.is_(None)
    )
    # A circle meeting counts for each learner by their attendance: held if they came, missed
    # if marked so; a meeting not cancelled was planned for each attendee.
    attended = (
        select(
            SessionAttendanceRow.pairing_id,
            SessionRow.start,
            case(
                (SessionRow.status == "cancelled", "cancelled"),
                else_=SessionAttendanceRow.status,
            ),
        )
        .join(SessionRow, SessionRow.id == SessionAttendanceRow.session_id)
        .where(SessionAttendanceRow.pairing_id.in_(pairing_ids))
    )
    for pairing_id, start, status in [*conn.execute(one_to_one), *conn.execute(attended)]:
        p = data.pairings[pairing_id]
        if status != "cancelled":
            p.planned += 1
        if status == "held":
            p.held += 1
            data.held_sessions.append((pairing_id, start))
            if p.first_held is None or start < p.first_held:
                p.first_held = start
            if p.last_held is None or start > p.last_held:
                p.last_held = start
        elif status == "missed":
            p.missed += 1
    data.feedback = [
        (pid, who, rating)
        for pid, who, rating in conn.execute(
            select(FeedbackRow.pairing_id, FeedbackRow.from_person_id, FeedbackRow.rating).where(
                FeedbackRow.pairing_id.in_(pairing_ids)
            )
        )
    ]
    for person_id, role, opted_out, enrolled in conn.execute(
        select(
            EnrollmentRow.person_id,
            EnrollmentRow.role,
            EnrollmentRow.opted_out,
            EnrollmentRow.created_at,
        ).where(EnrollmentRow.program_id == program_id)
    ):
        if role == "learner" and enrolled is not None:
            data.enrolled_at[person_id] = enrolled
        data.ever_enrolled.add(person_id)
        if role == "learner" and not opted_out:
            data.enrolled_learners.add(person_id)
    data.goals = [
        (owner, progress or 0.0, status)
        for owner, progress, status in conn.execute(
            select(GoalRow.owner_id, GoalRow.progress, GoalRow.status).where(
                (GoalRow.program_id == program_id) | GoalRow.pairing_id.in_(pairing_ids)
            )
        )
    ]
    data.offers = [
        tuple(row)  # type: ignore[misc]
        for row in s.execute(
            select(
                OfferRow.kind,
                OfferRow.rank,
                OfferRow.round_id,
                OfferRow.status,
                OfferRow.reason,
                OfferRow.answered_by,
                OfferRow.learner_id,
                OfferRow.guide_id,
            ).where(OfferRow.program_id == program_id)
        )
    ]
    return data
