"""``programs``, ``enroll`` and ``enrollments``: programs from the config and who takes part."""

from __future__ import annotations

from dataclasses import asdict

import click
from coachbridge.cli.app import App, pass_app
from coachbridge.cli.output import emit, format_option
from coachbridge.cli.root import cli
from coachbridge.errors import UserError
from coachbridge.programs import service
from coachbridge.programs.enrollment import RoleCounts

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
    emit(
        service.list_programs(app),
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
    app.config.program(program_id)  # an unknown program is the first error named
    if person_ref is None:
        if role or capacity is not None or opt_out:
            raise UserError("--role, --capacity and --opt-out need --person")
        result = service.enroll_eligible(app, program_id)
        if fmt == "table":
            click.echo(f"{result.program}: {result.added} newly enrolled")
            click.echo(_counts_line("learners", result.learner))
            click.echo(_counts_line("guides", result.guide))
        else:
            data = {"program": result.program, "learner": asdict(result.learner)}
            data["guide"] = asdict(result.guide)
            data["warnings"] = result.problems()
            emit([data], fmt, ("program", "learner", "guide", "warnings"))
        for problem in result.problems():
            click.echo(f"warning: {problem}", err=True)
        return
    if opt_out:
        if capacity is not None:
            raise UserError("--capacity does not go with --opt-out")
        out = service.opt_out(app, program_id, person_ref, role)
        message = f"{out.name} (id {out.person_id}) opted out of {out.program} as " + ", ".join(
            out.roles
        )
    else:
        if role is None:
            raise UserError("--person needs --role (learner or guide) or --opt-out")
        done = service.enroll_person(app, program_id, person_ref, role, capacity=capacity)
        message = f"{done.name} (id {done.person_id}) enrolled in {done.program} as {done.role}"
        if done.capacity is not None:
            message += f" (capacity {done.capacity})"
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
    rows = service.list_enrollments(app, program_id=program_id, person_ref=person_ref, role=role)
    emit(rows, fmt, ENROLLMENT_COLUMNS, empty="no enrollments: run `coachbridge enroll PROGRAM`")
