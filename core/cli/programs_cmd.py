"""``programs``, ``enroll`` and ``enrollments``: programs from the config and who takes part."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

import click
from coachbridge.cli.app import App, pass_app
from coachbridge.cli.output import emit, format_option
from coachbridge.cli.root import cli
from coachbridge.domain.enrollment import normalize_role
from coachbridge.errors import UserError
from coachbridge.hris.people import resolve_person
from coachbridge.programs import enrollment
from coachbridge.programs.enrollment import RoleCounts
from coachbridge.store.tables import EnrollmentRow, PersonRow, ProgramRow
from sqlalchemy import select

PROGRAM_COLUMNS = (
    "id",
    "name",
    "kind",
    "start",
    "end",
    "duration_weeks",
    "cadence_days",
    "session_minutes",
    "sessions_planned",
    "capacity",
    "min_score",
    "owner",
)


@cli.command()
@format_option()
@pass_app
def programs(app: App, fmt: str) -> None:
    """List the configured programs."""
    rows = []
    for program in app.config.programs.values():
        data = program.model_dump(mode="json")
        data["sessions_planned"] = program.sessions_planned
        rows.append(data)
    emit(
        rows,
        fmt,
        PROGRAM_COLUMNS,
        table_columns=("id", "name", "kind", "start", "duration_weeks", "cadence_days", "capacity"),
        empty="no programs: add [[programs]] tables to the config",
    )


ENROLLMENT_COLUMNS = ("program", "person_id", "name", "role", "capacity", "opted_out", "source")


def _counts_line(role: str, counts: RoleCounts) -> str:
    if not counts.configured:
        return f"  {role}: no eligibility rules"
    return (
        f"  {role}: {counts.eligible} eligible, {counts.added} newly enrolled, "
        f"{counts.already} already enrolled, {counts.opted_out} opted out"
    )


@cli.command()
@click.argument("program_id", metavar="PROGRAM")
@click.option(
    "--person", "person_ref", metavar="REF", help="One person: id, CONNECTOR:ID or email."
)
@click.option("--role", help="learner or guide (aliases: coachee, mentee, coach, mentor).")
@click.option(
    "--capacity",
    type=click.IntRange(0, 1000),
    help="Learners this guide takes (default: program's).",
)
@click.option("--opt-out", is_flag=True, help="Record that --person does not take part.")
@format_option()
@pass_app
def enroll(
    app: App,
    program_id: str,
    person_ref: str | None,
    role: str | None,
    capacity: int | None,
    opt_out: bool,
    fmt: str,
) -> None:
    """Enroll everyone eligible for PROGRAM in both roles, or one --person.

    Without --person, the program's [programs.learners] and [programs.guides] eligibility
    decides; re-running adds only people who became eligible and never undoes an opt-out.
    With --person and --role, one person is enrolled (a manual enrollment also reverses that
    person's earlier opt-out). With --person and --opt-out, the person is opted out (of --role,
    or of the whole program), and later enrollment and matching leave them alone.
    """
    program = app.config.program(program_id)
    if person_ref is None:
        if role or capacity is not None or opt_out:
            raise UserError("--role, --capacity and --opt-out need --person")
        with app.database().transaction() as s:
            result = enrollment.enroll_eligible(s, program, today=datetime.now(UTC).date())
            empty = result.matches_nobody()
            if empty:
                # Rules that select nobody are a configuration mistake: say so, store nothing.
                raise UserError("\n".join(empty))
        if fmt == "table":
            click.echo(f"{program.id}: {result.added} newly enrolled")
            click.echo(_counts_line("learners", result.learner))
            click.echo(_counts_line("guides", result.guide))
        else:
            data = {"program": program.id, "learner": asdict(result.learner)}
            data["guide"] = asdict(result.guide)
            data["warnings"] = result.problems()
            emit([data], fmt, ("program", "learner", "guide", "warnings"))
        for problem in result.problems():
            click.echo(f"warning: {problem}", err=True)
        return
    with app.database().transaction() as s:
        person = resolve_person(s, person_ref)
        if opt_out:
            if capacity is not None:
                raise UserError("--capacity does not go with --opt-out")
            rows = enrollment.opt_out(s, program, person.id, role)
            message = f"{person.name} (id {person.id}) opted out of {program.id} as " + ", ".join(
                sorted(r.role for r in rows)
            )
        else:
            if role is None:
                raise UserError("--person needs --role (learner or guide) or --opt-out")
            row = enrollment.enroll_person(s, program, person.id, role, capacity=capacity)
            message = f"{person.name} (id {person.id}) enrolled in {program.id} as {row.role}"
            if row.capacity is not None:
                message += f" (capacity {row.capacity})"
    click.echo(message)


@cli.command()
@click.option("--program", "program_id", metavar="PROGRAM", help="Only this program.")
@click.option("--person", "person_ref", metavar="REF", help="Only this person.")
@click.option("--role", help="Only this role (learner or guide).")
@format_option()
@pass_app
def enrollments(
    app: App, program_id: str | None, person_ref: str | None, role: str | None, fmt: str
) -> None:
    """List enrollments: program, person_id, role, capacity, opted_out."""
    with app.database().transaction() as s:
        stmt = (
            select(EnrollmentRow, PersonRow)
            .join(PersonRow, PersonRow.id == EnrollmentRow.person_id)
            .order_by(EnrollmentRow.program_id, EnrollmentRow.role, EnrollmentRow.person_id)
        )
        if program_id is not None:
            if program_id not in app.config.programs and s.get(ProgramRow, program_id) is None:
                app.config.program(program_id)  # raises, naming the known programs
            stmt = stmt.where(EnrollmentRow.program_id == program_id)
        if person_ref is not None:
            stmt = stmt.where(EnrollmentRow.person_id == resolve_person(s, person_ref).id)
        if role is not None:
            try:
                stmt = stmt.where(EnrollmentRow.role == normalize_role(role).value)
            except ValueError as exc:
                raise UserError(str(exc)) from None
        rows = [
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
    emit(rows, fmt, ENROLLMENT_COLUMNS, empty="no enrollments: run `coachbridge enroll PROGRAM`")
