"""Goals: the SMART goals people keep, added by hand, by a rule or imported from the HRIS.

``create_goal`` is the one place a goal row is made (idempotent by ``source_key``, so a rule
or an import that sees the same goal again changes nothing); ``add_goal``, ``update_goal`` and
``list_goals`` are the use cases of ``coachbridge goals``. Error messages name the fields as
the command line spells them (``--title``, ``--due``), which is how people give them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

from coachbridge.context import Context, check_program
from coachbridge.domain.goal import GoalStatus
from coachbridge.errors import NotFoundError, UserError
from coachbridge.store.audit import audit
from coachbridge.store.people import resolve_person
from coachbridge.store.programs import ensure_program_row
from coachbridge.store.tables import GoalRow, PairingRow
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

#: A goal still being worked on: progress may move it along, and the same title is not added twice.
UNFINISHED = (GoalStatus.OPEN.value, GoalStatus.IN_PROGRESS.value)
TEXT_LIMIT = 500  # the title, measure and target columns' size


@dataclass(frozen=True)
class GoalAdded:
    id: int
    title: str
    created: bool  # False: the same unfinished goal existed, nothing was added


@dataclass(frozen=True)
class GoalUpdated:
    id: int
    progress: float
    status: str


def goal_dict(row: GoalRow, program_id: str | None) -> dict[str, Any]:
    """The listing keys of one goal."""
    return {
        "id": row.id,
        "owner_id": row.owner_id,
        "pairing_id": row.pairing_id,
        "program": program_id,
        "title": row.title,
        "measure": row.measure,
        "target": row.target,
        "due_date": row.due_date.isoformat() if row.due_date else None,
        "progress": row.progress,
        "status": row.status,
    }


def parse_due(value: str | date | None) -> date | None:
    """A due date given as an ISO date (``2027-06-30``); ``UserError`` otherwise."""
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise UserError(f"--due {value!r}: not an ISO date (e.g. 2027-06-30)") from None


def clean_text(name: str, value: str | None, limit: int = TEXT_LIMIT) -> str | None:
    """``value`` stripped (None when blank); ``UserError`` naming ``name`` when too long."""
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        raise UserError(f"{name}: at most {limit} characters")
    return value or None


def _title(value: str) -> str:
    title = clean_text("--title", value)
    if not title:
        raise UserError("--title must not be empty")
    return title


def _progress(value: float) -> float:
    # NaN passes every range comparison, so it is refused by name.
    if math.isnan(value) or not 0 <= value <= 100:
        raise UserError(f"--progress {value!r}: give a percentage from 0 to 100")
    return float(value)


def _status(value: str) -> str:
    try:
        return GoalStatus(value).value
    except ValueError:
        known = ", ".join(g.value for g in GoalStatus)
        raise UserError(f"--status {value!r}: one of {known}") from None


def create_goal(
    s: Session,
    *,
    owner_id: int,
    title: str,
    pairing_id: int | None = None,
    program_id: str | None = None,
    measure: str | None = None,
    target: str | None = None,
    due_date: date | None = None,
    progress: float = 0.0,
    status: str = GoalStatus.OPEN.value,
    source_key: str | None = None,
) -> tuple[GoalRow, bool]:
    """Store one goal; returns (the row, whether it is new).

    With a ``source_key`` (a rule's or an import's natural key), an existing goal with that key
    is returned unchanged, so a caller that sees the same goal again adds nothing. The caller
    has checked the values; the row is flushed, so it has its id.
    """
    if source_key is not None:
        existing = s.scalars(select(GoalRow).where(GoalRow.source_key == source_key)).first()
        if existing is not None:
            return existing, False
    row = GoalRow(
        owner_id=owner_id,
        pairing_id=pairing_id,
        program_id=program_id,
        title=title,
        measure=measure,
        target=target,
        due_date=due_date,
        progress=progress,
        status=status,
        source_key=source_key,
    )
    s.add(row)
    s.flush()
    return row, True


def add_goal(
    ctx: Context,
    *,
    person_ref: str,
    title: str,
    pairing_id: int | None = None,
    program_id: str | None = None,
    measure: str | None = None,
    target: str | None = None,
    due: str | date | None = None,
    actor: str = "cli",
) -> GoalAdded:
    """Add a goal owned by ``person_ref`` (one side of ``pairing_id``, or in ``program_id``).

    Adding the same unfinished title again for the same owner and pairing adds nothing.
    """
    clean_title = _title(title)
    due_date = parse_due(due)
    with ctx.database().transaction() as s:
        owner = resolve_person(s, person_ref)
        if owner.forgotten:
            raise UserError(f"person {owner.id} was erased: nothing new is recorded about them")
        program: str | None = None
        if pairing_id is not None:
            pairing = s.get(PairingRow, pairing_id)
            if pairing is None:
                raise NotFoundError(f"unknown pairing id {pairing_id}")
            if owner.id not in (pairing.learner_id, pairing.guide_id):
                raise UserError(
                    f"person {owner.id} is not in pairing {pairing_id} (learner "
                    f"{pairing.learner_id}, guide {pairing.guide_id})"
                )
            if program_id is not None and program_id != pairing.program_id:
                raise UserError(
                    f"pairing {pairing_id} belongs to program {pairing.program_id!r}, "
                    f"not {program_id!r}"
                )
            program = pairing.program_id
        elif program_id is not None:
            program = ensure_program_row(s, ctx.config.program(program_id)).id
        existing = s.scalars(
            select(GoalRow).where(
                GoalRow.owner_id == owner.id,
                GoalRow.pairing_id.is_(None)
                if pairing_id is None
                else GoalRow.pairing_id == pairing_id,
                GoalRow.title == clean_title,
                GoalRow.status.in_(UNFINISHED),
            )
        ).first()
        if existing is not None:
            return GoalAdded(existing.id, existing.title, created=False)
        row, _ = create_goal(
            s,
            owner_id=owner.id,
            pairing_id=pairing_id,
            program_id=program,
            title=clean_title,
            measure=clean_text("--measure", measure),
            target=clean_text("--target", target),
            due_date=due_date,
        )
        audit(s, actor, "goal_added", "goal", row.id, owner=owner.id)
        return GoalAdded(row.id, clean_title, created=True)


def update_goal(
    ctx: Context,
    goal_id: int,
    *,
    progress: float | None = None,
    status: str | None = None,
    title: str | None = None,
    measure: str | None = None,
    target: str | None = None,
    due: str | date | None = None,
    actor: str = "cli",
) -> GoalUpdated:
    """Change goal ``goal_id``. Progress 100 completes an unfinished goal, progress above 0
    starts it, unless a ``status`` is given or the goal is already closed."""
    if all(v is None for v in (progress, status, title, measure, target, due)):
        raise UserError("nothing to update: give --progress, --status, --title, --measure, ...")
    if progress is not None:
        progress = _progress(progress)
    if status is not None:
        status = _status(status)
    due_date = parse_due(due)
    with ctx.database().transaction() as s:
        row = s.get(GoalRow, goal_id)
        if row is None:
            raise NotFoundError(f"unknown goal id {goal_id}")
        if title is not None:
            row.title = _title(title)
        if measure is not None:
            row.measure = clean_text("--measure", measure)
        if target is not None:
            row.target = clean_text("--target", target)
        if due_date is not None:
            row.due_date = due_date
        if progress is not None:
            row.progress = progress
            if status is None and row.status in UNFINISHED:
                if progress >= 100:
                    row.status = GoalStatus.COMPLETED.value
                elif progress > 0:
                    row.status = GoalStatus.IN_PROGRESS.value
        if status is not None:
            row.status = status
        audit(s, actor, "goal_updated", "goal", row.id, progress=row.progress, status=row.status)
        return GoalUpdated(row.id, row.progress, row.status)


def list_goals(
    ctx: Context,
    *,
    program_id: str | None = None,
    person_ref: str | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """Goals by id, each with its program (its own, else its pairing's)."""
    pairing = aliased(PairingRow)
    with ctx.database().transaction() as s:
        stmt = (
            select(GoalRow, pairing.program_id)
            .outerjoin(pairing, pairing.id == GoalRow.pairing_id)
            .order_by(GoalRow.id)
        )
        if program_id is not None:
            check_program(ctx, s, program_id)
            stmt = stmt.where(
                or_(GoalRow.program_id == program_id, pairing.program_id == program_id)
            )
        if person_ref is not None:
            stmt = stmt.where(GoalRow.owner_id == resolve_person(s, person_ref).id)
        if status is not None:
            stmt = stmt.where(GoalRow.status == status)
        return [
            goal_dict(goal, goal.program_id or via_pairing) for goal, via_pairing in s.execute(stmt)
        ]
