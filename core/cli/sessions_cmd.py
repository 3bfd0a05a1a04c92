"""``sessions`` and ``goals``: the calendar of each pairing and the goals people keep.

Times are printed in UTC with their offset. A time given without an offset (``--start``,
``reschedule WHEN``) is read in the learner's time zone, as the pairing would say it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click
from coachbridge.cli.app import App, pass_app
from coachbridge.cli.output import ROW_ID, emit, format_option
from coachbridge.cli.root import cli
from coachbridge.domain.goal import GoalStatus
from coachbridge.domain.program import Program
from coachbridge.domain.session import SessionStatus
from coachbridge.errors import NotFoundError, RuntimeFailure, UserError
from coachbridge.hris.people import resolve_person
from coachbridge.pairings import scheduling
from coachbridge.pairings.calendar import write_calendars
from coachbridge.programs.enrollment import ensure_program_row
from coachbridge.store.audit import audit
from coachbridge.store.tables import GoalRow, PairingRow, PersonRow, ProgramRow, SessionRow
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

SESSION_COLUMNS = (
    "id",
    "pairing_id",
    "program",
    "learner_id",
    "guide_id",
    "seq",
    "start",
    "minutes",
    "status",
    "agenda",
)
SESSION_TABLE = (
    "id",
    "pairing_id",
    "program",
    "learner_id",
    "guide_id",
    "start",
    "minutes",
    "status",
)
GOAL_COLUMNS = (
    "id",
    "owner_id",
    "pairing_id",
    "program",
    "title",
    "measure",
    "target",
    "due_date",
    "progress",
    "status",
)
GOAL_TABLE = ("id", "owner_id", "pairing_id", "title", "due_date", "progress", "status")
WHEN_HELP = (
    "ISO 8601, e.g. 2027-03-01T10:00 or 2027-03-01T10:00+01:00; "
    "without an offset the time is in the learner's time zone."
)


def _now() -> datetime:
    return datetime.now(UTC)


def _check_program(app: App, s: Session, program_id: str) -> None:
    if program_id not in app.config.programs and s.get(ProgramRow, program_id) is None:
        app.config.program(program_id)  # raises NotFoundError naming the known programs


def _program_for(app: App, s: Session, program_id: str) -> Program | ProgramRow | None:
    return app.config.programs.get(program_id) or s.get(ProgramRow, program_id)


def _session_dict(row: SessionRow, pairing: PairingRow) -> dict[str, Any]:
    # private_notes are deliberately absent: they never leave the store.
    return {
        "id": row.id,
        "pairing_id": row.pairing_id,
        "program": pairing.program_id,
        "learner_id": pairing.learner_id,
        "guide_id": pairing.guide_id,
        "seq": row.seq,
        "start": row.start.astimezone(UTC).isoformat(),
        "minutes": row.minutes,
        "status": row.status,
        "agenda": row.agenda,
    }


class _Percent(click.FloatRange):
    """0 to 100; ``nan`` passes a float range's comparisons, so it is refused by name."""

    def convert(self, value: object, param: object, ctx: object) -> float:
        number = super().convert(value, param, ctx)  # type: ignore[arg-type]
        if number != number:  # NaN
            self.fail(f"{value!r} is not a number", param, ctx)  # type: ignore[arg-type]
        return float(number)


PERCENT = _Percent(0, 100)


@cli.group(invoke_without_command=True)
@click.option("--program", "program_id", metavar="PROGRAM", help="Only this program.")
@click.option("--person", "person_ref", metavar="REF", help="Only this person's sessions.")
@click.option("--status", type=click.Choice([s.value for s in SessionStatus]), help="Only this.")
@click.option(
    "--ics",
    "ics_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write one calendar file per person (DIR/person-<id>.ics) instead of listing.",
)
@format_option()
@click.pass_context
def sessions(
    ctx: click.Context,
    program_id: str | None,
    person_ref: str | None,
    status: str | None,
    ics_dir: Path | None,
    fmt: str,
) -> None:
    """List sessions (start in UTC), or write calendar files with --ics DIR.

    Calendar files keep one stable UID per session, so importing a newer export updates
    events instead of duplicating them; cancelled sessions are written as cancellations.
    """
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.find_object(App)
    assert app is not None
    _ = app.config
    with app.database().transaction() as s:
        stmt = (
            select(SessionRow, PairingRow)
            .join(PairingRow, PairingRow.id == SessionRow.pairing_id)
            .order_by(SessionRow.start, SessionRow.id)
        )
        if program_id is not None:
            _check_program(app, s, program_id)
            stmt = stmt.where(PairingRow.program_id == program_id)
        if person_ref is not None:
            pid = resolve_person(s, person_ref).id
            stmt = stmt.where(or_(PairingRow.learner_id == pid, PairingRow.guide_id == pid))
        if status is not None:
            stmt = stmt.where(SessionRow.status == status)
        found = list(s.execute(stmt))
        if ics_dir is not None:
            count = write_calendars(s, found, ics_dir, lambda pid: _program_for(app, s, pid))
            click.echo(f"wrote {count} calendar file(s) with {len(found)} session(s) to {ics_dir}")
            return
        rows = [_session_dict(row, pairing) for row, pairing in found]
    emit(
        rows,
        fmt,
        SESSION_COLUMNS,
        table_columns=SESSION_TABLE,
        empty="no sessions: run `coachbridge sessions schedule`",
    )


@sessions.command("schedule")
@click.argument("program_id", metavar="[PROGRAM]", required=False)
@pass_app
def sessions_schedule(app: App, program_id: str | None) -> None:
    """Plan the sessions of every active pairing that lacks them (all programs by default).

    Sessions fall one per cadence period, inside working hours in both people's time zones
    (else the learner's), on weekdays, away from the program's public holidays and from
    either person's other sessions. Re-running plans only what is missing.
    """
    programs = (
        [app.config.program(program_id)] if program_id else list(app.config.programs.values())
    )
    if not programs:
        raise UserError("no programs configured: add [[programs]] tables to the config")
    now = _now()
    created: list[tuple[str, list[SessionRow]]] = []
    try:
        with app.database().transaction() as s:
            for program in programs:
                ensure_program_row(s, program)
                created.append((program.id, scheduling.schedule_pairings(s, program, now=now)))
            models = [scheduling.session_model(row) for _, rows in created for row in rows]
    except IntegrityError:
        # Another process planned the same sessions at the same moment; nothing was stored.
        raise RuntimeFailure(
            "another process scheduled these sessions at the same time; nothing was changed, "
            "run the command again"
        ) from None
    for pid, rows in created:
        pairings = len({r.pairing_id for r in rows})
        click.echo(f"{pid}: {len(rows)} session(s) scheduled for {pairings} pairing(s)")
    for model in models:  # observers run after the commit, so they see stored sessions
        app.registry.session_scheduled(model)


@sessions.command("mark")
@click.argument("session_id", type=ROW_ID, metavar="ID")
@click.argument("status", type=click.Choice(["held", "missed", "cancelled"]))
@pass_app
def sessions_mark(app: App, session_id: int, status: str) -> None:
    """Record that session ID was held, missed (once it has started) or cancelled."""
    with app.database().transaction() as s:
        row, changed = scheduling.mark_session(s, session_id, status, now=_now())
    click.echo(f"session {row.id} {'is now' if changed else 'was already'} {row.status}")


def _pairing(s: Session, pairing_id: int) -> PairingRow:
    pairing = s.get(PairingRow, pairing_id)
    if pairing is None:
        raise NotFoundError(f"unknown pairing id {pairing_id}")
    return pairing


def _learner_zone(s: Session, pairing: PairingRow) -> Any:
    return scheduling.person_zone(s.get(PersonRow, pairing.learner_id))


@sessions.command("log")
@click.argument("pairing_id", type=ROW_ID, metavar="PAIRING")
@click.option("--start", "when", required=True, metavar="WHEN", help=WHEN_HELP)
@click.option(
    "--minutes",
    type=click.IntRange(5, 480),
    help="How long it lasted (default: the program's session length).",
)
@pass_app
def sessions_log(app: App, pairing_id: int, when: str, minutes: int | None) -> None:
    """Record a session of PAIRING that already happened outside the plan (status held)."""
    with app.database().transaction() as s:
        pairing = _pairing(s, pairing_id)
        start = scheduling.parse_when(when, _learner_zone(s, pairing))
        if minutes is None:
            program = app.config.programs.get(pairing.program_id)
            minutes = (
                program.session_minutes
                if program
                else Program.model_fields["session_minutes"].default
            )
        row, created = scheduling.log_session(s, pairing_id, start, minutes, now=_now())
    verb = "logged" if created else "was already logged as"
    click.echo(f"{verb} session {row.id}: pairing {pairing_id} at {row.start.isoformat()}")


@sessions.command("reschedule")
@click.argument("session_id", type=ROW_ID, metavar="ID")
@click.argument("when", metavar="WHEN")
@pass_app
def sessions_reschedule(app: App, session_id: int, when: str) -> None:
    """Move scheduled session ID to WHEN (checked against both people's other sessions).

    WHEN is ISO 8601, e.g. 2027-03-01T10:00 or 2027-03-01T10:00+01:00; without an offset it is
    in the learner's time zone. The calendar entry keeps its UID and gets a higher SEQUENCE.
    """
    with app.database().transaction() as s:
        row = s.get(SessionRow, session_id)
        if row is None:
            raise NotFoundError(f"unknown session id {session_id}")
        pairing = _pairing(s, row.pairing_id)
        zone = _learner_zone(s, pairing)
        row = scheduling.reschedule_session(
            s, session_id, scheduling.parse_when(when, zone), now=_now()
        )
        program = app.config.programs.get(pairing.program_id)
        notes = []
        if program is not None:
            guide_zone = scheduling.person_zone(s.get(PersonRow, pairing.guide_id))
            notes = scheduling.slot_notes(
                program, row.start, row.minutes, [("learner", zone), ("guide", guide_zone)]
            )
    click.echo(f"session {row.id} moved to {row.start.isoformat()}")
    for note in notes:
        click.echo(f"note: {note}", err=True)


# -- goals -------------------------------------------------------------------------------


def _goal_dict(row: GoalRow, program_id: str | None) -> dict[str, Any]:
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


def _parse_due(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise UserError(f"--due {value!r}: not an ISO date (e.g. 2027-06-30)") from None


def _text(name: str, value: str | None, limit: int = 500) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        raise UserError(f"{name}: at most {limit} characters")
    return value or None


@cli.group(invoke_without_command=True)
@click.option("--program", "program_id", metavar="PROGRAM", help="Only this program.")
@click.option("--person", "person_ref", metavar="REF", help="Only goals this person owns.")
@click.option("--status", type=click.Choice([g.value for g in GoalStatus]), help="Only this.")
@format_option()
@click.pass_context
def goals(
    ctx: click.Context, program_id: str | None, person_ref: str | None, status: str | None, fmt: str
) -> None:
    """List goals: id, owner_id, pairing_id, title, measure, target, due_date, progress, status."""
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.find_object(App)
    assert app is not None
    _ = app.config
    pairing = aliased(PairingRow)
    with app.database().transaction() as s:
        stmt = (
            select(GoalRow, pairing.program_id)
            .outerjoin(pairing, pairing.id == GoalRow.pairing_id)
            .order_by(GoalRow.id)
        )
        if program_id is not None:
            _check_program(app, s, program_id)
            stmt = stmt.where(
                or_(GoalRow.program_id == program_id, pairing.program_id == program_id)
            )
        if person_ref is not None:
            stmt = stmt.where(GoalRow.owner_id == resolve_person(s, person_ref).id)
        if status is not None:
            stmt = stmt.where(GoalRow.status == status)
        rows = [
            _goal_dict(goal, goal.program_id or via_pairing)
            for goal, via_pairing in s.execute(stmt)
        ]
    emit(rows, fmt, GOAL_COLUMNS, table_columns=GOAL_TABLE, empty="no goals")


@goals.command("add")
@click.option("--person", "person_ref", required=True, metavar="REF", help="The goal's owner.")
@click.option(
    "--pairing", "pairing_id", type=ROW_ID, metavar="ID", help="The pairing it belongs to."
)
@click.option("--program", "program_id", metavar="PROGRAM", help="The program (without --pairing).")
@click.option("--title", required=True, help="What the goal is.")
@click.option("--measure", help="How progress is measured.")
@click.option("--target", help="The value that means done.")
@click.option("--due", metavar="DATE", help="Due date, e.g. 2027-06-30.")
@pass_app
def goals_add(
    app: App,
    person_ref: str,
    pairing_id: int | None,
    program_id: str | None,
    title: str,
    measure: str | None,
    target: str | None,
    due: str | None,
) -> None:
    """Add a goal. Adding the same open title again for the same owner and pairing is a no-op."""
    clean_title = _text("--title", title)
    if not clean_title:
        raise UserError("--title must not be empty")
    due_date = _parse_due(due)
    with app.database().transaction() as s:
        owner = resolve_person(s, person_ref)
        if owner.forgotten:
            raise UserError(f"person {owner.id} was erased: nothing new is recorded about them")
        program: str | None = None
        if pairing_id is not None:
            pairing = _pairing(s, pairing_id)
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
            program = ensure_program_row(s, app.config.program(program_id)).id
        existing = s.scalars(
            select(GoalRow).where(
                GoalRow.owner_id == owner.id,
                GoalRow.pairing_id.is_(None)
                if pairing_id is None
                else GoalRow.pairing_id == pairing_id,
                GoalRow.title == clean_title,
                GoalRow.status.in_([GoalStatus.OPEN.value, GoalStatus.IN_PROGRESS.value]),
            )
        ).first()
        if existing is not None:
            click.echo(f"goal {existing.id} already exists: {existing.title}")
            return
        row = GoalRow(
            owner_id=owner.id,
            pairing_id=pairing_id,
            program_id=program,
            title=clean_title,
            measure=_text("--measure", measure),
            target=_text("--target", target),
            due_date=due_date,
        )
        s.add(row)
        s.flush()
        audit(s, "cli", "goal_added", "goal", row.id, owner=owner.id)
        goal_id = row.id
    click.echo(f"added goal {goal_id}: {clean_title}")


@goals.command("update")
@click.argument("goal_id", type=ROW_ID, metavar="ID")
@click.option("--progress", type=PERCENT, help="Percent done, 0 to 100.")
@click.option("--status", type=click.Choice([g.value for g in GoalStatus]))
@click.option("--title")
@click.option("--measure")
@click.option("--target")
@click.option("--due", metavar="DATE", help="Due date, e.g. 2027-06-30.")
@pass_app
def goals_update(
    app: App,
    goal_id: int,
    progress: float | None,
    status: str | None,
    title: str | None,
    measure: str | None,
    target: str | None,
    due: str | None,
) -> None:
    """Update goal ID. Progress 100 completes an open goal; progress above 0 starts it."""
    if all(v is None for v in (progress, status, title, measure, target, due)):
        raise UserError("nothing to update: give --progress, --status, --title, --measure, ...")
    due_date = _parse_due(due)
    with app.database().transaction() as s:
        row = s.get(GoalRow, goal_id)
        if row is None:
            raise NotFoundError(f"unknown goal id {goal_id}")
        if title is not None:
            clean = _text("--title", title)
            if not clean:
                raise UserError("--title must not be empty")
            row.title = clean
        if measure is not None:
            row.measure = _text("--measure", measure)
        if target is not None:
            row.target = _text("--target", target)
        if due_date is not None:
            row.due_date = due_date
        if progress is not None:
            row.progress = progress
            # Progress implies a status unless one was given or the goal is already closed.
            if status is None and row.status in (
                GoalStatus.OPEN.value,
                GoalStatus.IN_PROGRESS.value,
            ):
                if progress >= 100:
                    row.status = GoalStatus.COMPLETED.value
                elif progress > 0:
                    row.status = GoalStatus.IN_PROGRESS.value
        if status is not None:
            row.status = status
        audit(s, "cli", "goal_updated", "goal", row.id, progress=row.progress, status=row.status)
        summary = f"goal {row.id}: progress {row.progress:g}%, {row.status}"
    click.echo(summary)
