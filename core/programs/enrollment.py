"""Enrollment: who takes part in a program, as a learner or a guide.

Programs live in the config; ``ensure_program_row`` mirrors one into the ``programs`` table so
that enrollments, pairings and goals can refer to it. Automatic enrollment follows the
program's ``[programs.learners]`` and ``[programs.guides]`` eligibility; an opt-out is recorded
on the enrollment row and is never overridden by automatic enrollment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from coachbridge.domain.enrollment import Role, normalize_role
from coachbridge.domain.program import Eligibility, Program, ProgramKind
from coachbridge.errors import NotFoundError, UserError
from coachbridge.store.audit import audit
from coachbridge.store.programs import ensure_program_row
from coachbridge.store.tables import EnrollmentRow, PersonRow
from sqlalchemy import select
from sqlalchemy.orm import Session

__all__ = [
    "EnrollResult",
    "RoleCounts",
    "enroll_eligible",
    "enroll_person",
    "ensure_program_row",
    "is_eligible",
    "opt_out",
]


def _norm(value: str | None) -> str:
    return (value or "").strip().casefold()


def _in(value: str | None, allowed: Iterable[str]) -> bool:
    return _norm(value) in {_norm(a) for a in allowed}


def is_eligible(person: PersonRow, rules: Eligibility, *, today: date) -> bool:
    """True when ``person`` passes every filter of ``rules`` (each given filter must hold).

    Text filters (departments, divisions, locations, status) compare case-insensitively; a
    person whose level or hire date is unknown fails a level or tenure filter.
    """
    if person.forgotten:
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


@dataclass
class RoleCounts:
    """What automatic enrollment did for one role."""

    configured: bool = False  # the program has eligibility rules for this role
    eligible: int = 0  # people who pass the rules
    added: int = 0  # newly enrolled now
    already: int = 0  # eligible and already enrolled
    opted_out: int = 0  # eligible but opted out: left alone


@dataclass
class EnrollResult:
    """The counts of one ``enroll_eligible`` run, per role."""

    program: str
    learner: RoleCounts = field(default_factory=RoleCounts)
    guide: RoleCounts = field(default_factory=RoleCounts)
    peer: bool = False  # one pool, ``[programs.participants]``, enrolled in both roles

    @property
    def added(self) -> int:
        return self.learner.added + self.guide.added

    def _roles(self) -> tuple[tuple[str, RoleCounts, str], ...]:
        if self.peer:  # both roles come from one key: speak of it once
            return (("participants", self.learner, "participants"),)
        return (("learners", self.learner, "learners"), ("guides", self.guide, "guides"))

    def matches_nobody(self) -> list[str]:
        """Messages for each role whose configured eligibility selects nobody at all."""
        return [
            f"program {self.program!r}: the [programs.{key}] eligibility matches nobody in "
            "the store; check its filters (or run a sync first)"
            for _, counts, key in self._roles()
            if counts.configured and counts.eligible == 0
        ]

    def problems(self) -> list[str]:
        """Plain-language warnings: a role without eligibility rules, rules that match nobody."""
        out = []
        for role, counts, key in self._roles():
            if not counts.configured:
                out.append(
                    f"program {self.program!r} has no [programs.{key}] eligibility: "
                    f"no {role} are enrolled automatically (enroll them by hand or with rules)"
                )
        return out + self.matches_nobody()


def enroll_eligible(
    s: Session,
    program: Program,
    *,
    today: date,
    roles: tuple[Role, ...] = (Role.LEARNER, Role.GUIDE),
) -> EnrollResult:
    """Enroll everyone eligible for ``program`` in ``roles`` (both by default). Idempotent.

    A person who already has an enrollment in a role (including an opted-out one) is left as
    they are, so re-running never duplicates anyone and never undoes an opt-out.
    """
    ensure_program_row(s, program)
    result = EnrollResult(program=program.id, peer=program.kind == ProgramKind.PEER)
    existing = {
        (row.person_id, row.role): row
        for row in s.scalars(select(EnrollmentRow).where(EnrollmentRow.program_id == program.id))
    }
    people = list(s.scalars(select(PersonRow).order_by(PersonRow.id)))
    for role, rules, counts in (
        (Role.LEARNER, program.eligibility("learner"), result.learner),
        (Role.GUIDE, program.eligibility("guide"), result.guide),
    ):
        if rules is None or role not in roles:
            continue
        counts.configured = True
        for person in people:
            if not is_eligible(person, rules, today=today):
                continue
            counts.eligible += 1
            row = existing.get((person.id, role.value))
            if row is not None:
                if row.opted_out:
                    counts.opted_out += 1
                else:
                    counts.already += 1
                continue
            row = EnrollmentRow(
                program_id=program.id, person_id=person.id, role=role.value, source="eligibility"
            )
            s.add(row)
            existing[(person.id, role.value)] = row
            counts.added += 1
    s.flush()
    return result


def _role(value: str | Role) -> Role:
    if isinstance(value, Role):
        return value
    try:
        return normalize_role(value)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _person(s: Session, person_id: int) -> PersonRow:
    person = s.get(PersonRow, person_id)
    if person is None or person.forgotten:
        raise NotFoundError(f"unknown person id {person_id}")
    return person


def enroll_person(
    s: Session,
    program: Program,
    person_id: int,
    role: str | Role,
    *,
    capacity: int | None = None,
    source: str = "manual",
) -> EnrollmentRow:
    """Enroll one person in one role (``learner``/``guide`` or an alias). Idempotent.

    ``capacity`` (guides only) overrides the program's default number of learners per guide.
    An opted-out enrollment is re-activated only by a manual enrollment (HR acting on the
    person's request); automatic sources such as rules leave the opt-out in place.
    """
    role = _role(role)
    if capacity is not None and capacity < 0:
        raise UserError(f"capacity must be 0 or more, not {capacity}")
    if capacity is not None and role is not Role.GUIDE:
        raise UserError("capacity applies to guides only (learners have one guide each)")
    person = _person(s, person_id)
    if person.status != "active":
        raise UserError(f"person {person_id} ({person.name}) is inactive and cannot be enrolled")
    ensure_program_row(s, program)
    row = s.scalars(
        select(EnrollmentRow).where(
            EnrollmentRow.program_id == program.id,
            EnrollmentRow.person_id == person_id,
            EnrollmentRow.role == role.value,
        )
    ).one_or_none()
    if row is None:
        row = EnrollmentRow(
            program_id=program.id,
            person_id=person_id,
            role=role.value,
            capacity=capacity,
            source=source,
        )
        s.add(row)
        s.flush()
        if source == "manual":
            audit(s, "cli", "enroll", "enrollment", row.id, program=program.id, role=role.value)
        return row
    if row.opted_out:
        if source != "manual":
            return row
        row.opted_out = False
        audit(s, "cli", "opt_in", "enrollment", row.id, program=program.id, role=role.value)
    if capacity is not None and row.capacity != capacity:
        row.capacity = capacity
    return row


def opt_out(
    s: Session, program: Program, person_id: int, role: str | Role | None = None
) -> list[EnrollmentRow]:
    """Record that a person does not take part in ``program`` (in ``role``, or in any role).

    Without a role, every enrollment of the person in the program is opted out; a person not
    enrolled yet gets opted-out rows for both roles, so later automatic enrollment and matching
    leave them alone. Open pairings are not ended here: that is a separate, audited decision.
    """
    _person(s, person_id)
    ensure_program_row(s, program)
    roles = [_role(role)] if role is not None else None
    rows = list(
        s.scalars(
            select(EnrollmentRow).where(
                EnrollmentRow.program_id == program.id, EnrollmentRow.person_id == person_id
            )
        )
    )
    if roles is not None:
        rows = [r for r in rows if r.role == roles[0].value]
    wanted = roles if roles is not None else ([] if rows else [Role.LEARNER, Role.GUIDE])
    have = {r.role for r in rows}
    for missing in wanted:
        if missing.value not in have:
            row = EnrollmentRow(
                program_id=program.id,
                person_id=person_id,
                role=missing.value,
                opted_out=True,
                source="opt_out",
            )
            s.add(row)
            rows.append(row)
    changed = [row for row in rows if not row.opted_out or row.id is None]
    for row in rows:
        row.opted_out = True
    s.flush()
    for row in changed:  # a repeated opt-out changes nothing and is not audited again
        audit(s, "cli", "opt_out", "enrollment", row.id, program=program.id, role=row.role)
    return rows
