"""``reviews``: the review-cycle results coachbridge has seen, from syncs and webhooks alike."""

from __future__ import annotations

import click
from coachbridge.cli.app import App, pass_app
from coachbridge.cli.output import emit, format_option
from coachbridge.cli.root import cli
from coachbridge.hris.people import resolve_person
from coachbridge.store.tables import EnrollmentRow, PersonRow, ReviewEventRow
from sqlalchemy import select

REVIEW_COLUMNS = (
    "id",
    "person_id",
    "cycle",
    "rating",
    "raw_rating",
    "scale_min",
    "scale_max",
    "completed_at",
    "source",
)


@cli.command()
@click.option("--program", help="Only people enrolled in this program (any role).")
@click.option("--person", help="Only this person (id, CONNECTOR:ID or work email).")
@click.option("--cycle", help="Only this review cycle, e.g. 2026-H1.")
@format_option()
@pass_app
def reviews(app: App, program: str | None, person: str | None, cycle: str | None, fmt: str) -> None:
    """List review events: rating normalized to 0..1 beside the raw rating and its scale."""
    if program:
        app.config.program(program)  # an unknown program is an error naming it
    with app.database().transaction() as s:
        stmt = (
            select(ReviewEventRow)
            .outerjoin(PersonRow, PersonRow.id == ReviewEventRow.person_id)
            # a forgotten person's ratings are no longer theirs to list
            .where((PersonRow.id.is_(None)) | (PersonRow.forgotten.is_(False)))
            .order_by(ReviewEventRow.completed_at, ReviewEventRow.id)
        )
        if person:
            stmt = stmt.where(ReviewEventRow.person_id == resolve_person(s, person).id)
        if program:
            enrolled = select(EnrollmentRow.person_id).where(EnrollmentRow.program_id == program)
            stmt = stmt.where(ReviewEventRow.person_id.in_(enrolled))
        if cycle:
            stmt = stmt.where(ReviewEventRow.cycle == cycle)
        rows = [{c: getattr(r, c) for c in REVIEW_COLUMNS} for r in s.scalars(stmt)]
    emit(rows, fmt, REVIEW_COLUMNS, empty="no review events: sync a connector with reviews")
