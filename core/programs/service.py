"""The programs use cases: listing programs, enrolling (everyone eligible or one person),
opting out, listing enrollments and what in ``[[rules]]`` will surprise later (``check``),
each in one transaction of its own.

The rules of enrollment themselves are ``coachbridge.programs.enrollment``; this module finds
the program and the person named by the caller and returns plain data ready for output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from coachbridge.config import Config
from coachbridge.context import Context, check_program
from coachbridge.domain.enrollment import normalize_role
from coachbridge.domain.program import ProgramKind
from coachbridge.errors import UserError
from coachbridge.matching.pool import free_capacity
from coachbridge.programs import enrollment
from coachbridge.programs.enrollment import EnrollResult
from coachbridge.store.people import resolve_person
from coachbridge.store.tables import EnrollmentRow, PersonRow
from sqlalchemy import select


@dataclass(frozen=True)
class Enrolled:
    person_id: int
    name: str
    program: str
    role: str
    capacity: int | None


@dataclass(frozen=True)
class OptedOut:
    person_id: int
    name: str
    program: str
    roles: list[str]  # sorted


def list_programs(ctx: Context) -> list[dict[str, Any]]:
    """The configured programs, each with the number of sessions its term plans."""
    rows = []
    for program in ctx.config.programs.values():
        data = program.model_dump(mode="json")
        data["sessions_planned"] = program.sessions_planned
        rows.append(data)
    return rows


def enroll_eligible(ctx: Context, program_id: str, *, today: date | None = None) -> EnrollResult:
    """Enroll everyone the program's eligibility selects, in both roles (opt-outs stand).

    Eligibility that selects nobody at all is a configuration mistake: ``UserError``, nothing
    stored.
    """
    program = ctx.config.program(program_id)
    with ctx.database().transaction() as s:
        result = enrollment.enroll_eligible(s, program, today=today or datetime.now(UTC).date())
        empty = result.matches_nobody()
        if empty:
            raise UserError("\n".join(empty))
    return result


def enroll_person(
    ctx: Context, program_id: str, person_ref: str, role: str, *, capacity: int | None = None
) -> Enrolled:
    """Enroll one person in one role (a manual enrollment also reverses their opt-out)."""
    program = ctx.config.program(program_id)
    with ctx.database().transaction() as s:
        person = resolve_person(s, person_ref)
        row = enrollment.enroll_person(s, program, person.id, role, capacity=capacity)
        return Enrolled(person.id, person.name, program.id, row.role, row.capacity)


def opt_out(ctx: Context, program_id: str, person_ref: str, role: str | None = None) -> OptedOut:
    """Record that a person does not take part (in ``role``, or in the whole program)."""
    program = ctx.config.program(program_id)
    with ctx.database().transaction() as s:
        person = resolve_person(s, person_ref)
        rows = enrollment.opt_out(s, program, person.id, role)
        return OptedOut(person.id, person.name, program.id, sorted(r.role for r in rows))


def list_enrollments(
    ctx: Context,
    *,
    program_id: str | None = None,
    person_ref: str | None = None,
    role: str | None = None,
) -> list[dict[str, Any]]:
    """Enrollments by program, role and person (an erased person's name is blank)."""
    with ctx.database().transaction() as s:
        stmt = (
            select(EnrollmentRow, PersonRow)
            .join(PersonRow, PersonRow.id == EnrollmentRow.person_id)
            .order_by(EnrollmentRow.program_id, EnrollmentRow.role, EnrollmentRow.person_id)
        )
        if program_id is not None:
            check_program(ctx, s, program_id)
            stmt = stmt.where(EnrollmentRow.program_id == program_id)
        if person_ref is not None:
            stmt = stmt.where(EnrollmentRow.person_id == resolve_person(s, person_ref).id)
        if role is not None:
            try:
                stmt = stmt.where(EnrollmentRow.role == normalize_role(role).value)
            except ValueError as exc:
                raise UserError(str(exc)) from None
        return [
            {
                "program": e.program_id,
                "person_id": e.person_id,
                "name": "" if p.forgotten else p.name,
                "role": e.role,
                "capacity": e.capacity,
                "opted_out": e.opted_out,
                "source": e.source,
            }
            for e, p in s.execute(stmt)
        ]


def rule_warnings(ctx: Context) -> list[str]:
    """What in ``[[rules]]`` works today but will surprise later (``check`` prints these)."""
    config = ctx.config
    if not config.rules:
        return []
    with ctx.database().transaction() as s:

        def enrolled_guides(program_id: str) -> int:
            return len(free_capacity(s, config.programs[program_id]))

        return _rule_warnings(config, enrolled_guides)


def _rule_warnings(config: Config, enrolled_guides: Callable[[str], int]) -> list[str]:
    """What in ``[[rules]]`` works today but will surprise later (``check`` prints these).

    ``enrolled_guides(program_id)`` counts the program's enrolled guides who could take a
    learner (active, not opted out).
    """
    out = []
    if len(config.rules) > 1:
        for index, rule in enumerate(config.rules):
            if not rule.name:
                out.append(
                    f"rules[{index}] has no name: its cooldowns and goals are keyed by its "
                    "position, so reordering the rules mixes them up; give each rule a name"
                )
    for program_id in sorted(
        {r.then.enroll for r in config.rules if r.then.role.value == "learner"}
    ):
        program = config.programs.get(program_id)
        if (
            program is not None
            and program.kind != ProgramKind.MANAGER  # its guides are the learners' managers
            and program.guides is None
            and enrolled_guides(program_id) == 0
        ):
            out.append(
                f"program {program_id!r}: rules enroll learners, but it has no enrolled guide "
                "and no [programs.guides] to enroll from, so each such event ends 'no guide "
                "available' (enroll guides with `coachbridge enroll --person REF --role guide`)"
            )
    return out
