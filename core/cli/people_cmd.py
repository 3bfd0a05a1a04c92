"""``people``: who coachbridge knows, as the HRIS reported them."""

from __future__ import annotations

import click
from coachbridge.cli.app import App, pass_app
from coachbridge.cli.output import emit, format_option
from coachbridge.cli.root import cli
from coachbridge.domain import Person
from coachbridge.hris.people import external_ids_by_person, to_person
from coachbridge.store.tables import PersonRow
from sqlalchemy import select

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
    db = app.database()
    with db.transaction() as s:
        stmt = select(PersonRow).where(PersonRow.forgotten.is_(False)).order_by(PersonRow.id)
        if status:
            stmt = stmt.where(PersonRow.status == status)
        if department:
            stmt = stmt.where(PersonRow.department == department)
        rows = list(s.scalars(stmt))
        ext = external_ids_by_person(s)
        out = [to_person(r, ext.get(r.id)).model_dump(mode="json") for r in rows]
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
    from coachbridge.hris.people import resolve_person

    with app.database().transaction() as s:
        row = resolve_person(s, person)
        data = to_person(row, external_ids_by_person(s, [row.id]).get(row.id)).model_dump(
            mode="json"
        )
    if fmt == "table":
        for key in PEOPLE_COLUMNS:
            click.echo(f"{key:>16}: {data.get(key)}")
    else:
        emit([data], fmt, PEOPLE_COLUMNS)
