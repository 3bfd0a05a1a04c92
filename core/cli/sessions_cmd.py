"""``sessions`` and ``goals``: the calendar of each pairing and the goals people keep.

Times are printed in UTC with their offset. A time given without an offset (``--start``,
``reschedule WHEN``) is read in the learner's time zone, as the pairing would say it.
"""

from __future__ import annotations

from pathlib import Path

import click
from coachbridge.cli.app import App, pass_app
from coachbridge.cli.output import ROW_ID, emit, format_option
from coachbridge.cli.root import cli
from coachbridge.domain.goal import GoalStatus
from coachbridge.domain.session import SessionStatus
from coachbridge.pairings import goals as goal_service
from coachbridge.pairings import sessions as session_service

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
    if ics_dir is not None:
        export = session_service.export_calendars(
            app, ics_dir, program_id=program_id, person_ref=person_ref, status=status
        )
        click.echo(
            f"wrote {export.files} calendar file(s) with {export.sessions} session(s) to {ics_dir}"
        )
        return
    rows = session_service.list_sessions(
        app, program_id=program_id, person_ref=person_ref, status=status
    )
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
    for planned in session_service.schedule_sessions(app, program_id):
        click.echo(
            f"{planned.program}: {planned.sessions} session(s) scheduled for "
            f"{planned.pairings} pairing(s)"
        )


@sessions.command("mark")
@click.argument("session_id", type=ROW_ID, metavar="ID")
@click.argument("status", type=click.Choice(["held", "missed", "cancelled"]))
@click.option(
    "--person",
    "person_ref",
    metavar="REF",
    help="A circle meeting: record that this learner came (held) or missed it.",
)
@pass_app
def sessions_mark(app: App, session_id: int, status: str, person_ref: str | None) -> None:
    """Record that session ID was held, missed (once it has started) or cancelled.

    For a circle meeting, --person REF records one learner's attendance; without it, held or
    missed applies to the meeting and to every attendee not yet marked.
    """
    marked = session_service.mark_session(app, session_id, status, person_ref=person_ref)
    who = f" for {person_ref}" if person_ref else ""
    click.echo(
        f"session {marked.id}{who}: {'recorded' if marked.changed else 'already recorded'}; "
        f"the session is {marked.status}"
        if person_ref
        else f"session {marked.id} {'is now' if marked.changed else 'was already'} {marked.status}"
    )


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
    logged = session_service.log_session(app, pairing_id, when, minutes)
    verb = "logged" if logged.created else "was already logged as"
    click.echo(f"{verb} session {logged.id}: pairing {pairing_id} at {logged.start.isoformat()}")


@sessions.command("reschedule")
@click.argument("session_id", type=ROW_ID, metavar="ID")
@click.argument("when", metavar="WHEN")
@pass_app
def sessions_reschedule(app: App, session_id: int, when: str) -> None:
    """Move scheduled session ID to WHEN (checked against both people's other sessions).

    WHEN is ISO 8601, e.g. 2027-03-01T10:00 or 2027-03-01T10:00+01:00; without an offset it is
    in the learner's time zone. The calendar entry keeps its UID and gets a higher SEQUENCE.
    """
    moved = session_service.reschedule_session(app, session_id, when)
    click.echo(f"session {moved.id} moved to {moved.start.isoformat()}")
    for note in moved.notes:
        click.echo(f"note: {note}", err=True)


# -- goals -------------------------------------------------------------------------------


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
    rows = goal_service.list_goals(app, program_id=program_id, person_ref=person_ref, status=status)
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
    added = goal_service.add_goal(
        app,
        person_ref=person_ref,
        pairing_id=pairing_id,
        program_id=program_id,
        title=title,
        measure=measure,
        target=target,
        due=due,
    )
    if added.created:
        click.echo(f"added goal {added.id}: {added.title}")
    else:
        click.echo(f"goal {added.id} already exists: {added.title}")


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
    updated = goal_service.update_goal(
        app,
        goal_id,
        progress=progress,
        status=status,
        title=title,
        measure=measure,
        target=target,
        due=due,
    )
    click.echo(f"goal {updated.id}: progress {updated.progress:g}%, {updated.status}")
