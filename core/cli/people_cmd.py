"""``people``: who coachbridge knows, as the HRIS reported them."""

from __future__ import annotations

import click
from coachbridge.cli.app import App, pass_app
from coachbridge.cli.output import emit, format_option
from coachbridge.cli.root import cli
from coachbridge.domain import Person
from coachbridge.hris.people import list_people, show_person

# Every field of the Person model, in its order: the CSV export cannot drift from the JSON.
PEOPLE_COLUMNS = tuple(Person.model_fields)
TABLE_COLUMNS = ("id", "name", "email", "job_title", "department", "level", "status", "manager_id")


@cli.group(invoke_without_command=True)
@click.option("--status", type=click.Choice(["active", "inactive"]), help="Only this status.")
@click.option("--department", help="Only this department.")
@format_option()
@click.pass_context
def people(ctx: click.Context, status: str | None, department: str | None, fmt: str) -> None:
    """List people (everyone, active and inactive, unless filtered)."""
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.find_object(App)
    assert app is not None
    _ = app.config
    out = list_people(app, status=status, department=department)
    emit(
        out,
        fmt,
        PEOPLE_COLUMNS,
        table_columns=TABLE_COLUMNS,
        empty="no people: run `coachbridge sync`",
    )


@people.command("show")
@click.argument("person")
@format_option()
@pass_app
def people_show(app: App, person: str, fmt: str) -> None:
    """Show one person (id, CONNECTOR:ID or work email)."""
    data = show_person(app, person)
    trainings = data.get("trainings") or []
    if fmt == "table":
        for key in PEOPLE_COLUMNS:
            click.echo(f"{key:>16}: {data.get(key)}")
        click.echo(f"{'trainings':>16}: {'none' if not trainings else ''}".rstrip())
        for t in trainings:
            until = f", expires {t['expires_at']}" if t["expires_at"] else ", never expires"
            state = "valid" if t["valid"] else ("expired" if t["current"] else "superseded")
            click.echo(
                f"{'':>18}{t['training']}: completed {t['completed_at'] or 'unknown'}{until} "
                f"({state}; {t['source']})"
            )
    elif fmt == "csv":
        flat = dict(data)
        flat["trainings"] = "; ".join(
            f"{t['training']} {t['completed_at'] or ''}".strip() for t in trainings if t["current"]
        )
        emit([flat], fmt, (*PEOPLE_COLUMNS, "trainings"))
    else:
        emit([data], fmt, PEOPLE_COLUMNS)
