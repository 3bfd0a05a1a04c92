"""``reviews``: the review-cycle results coachbridge has seen, from syncs and webhooks alike."""

from __future__ import annotations

import click
from coachbridge.cli.app import App, pass_app
from coachbridge.cli.output import emit, format_option
from coachbridge.cli.root import cli
from coachbridge.hris.reviews import REVIEW_COLUMNS, list_reviews


@cli.command()
@click.option("--program", help="Only people enrolled in this program (any role).")
@click.option("--person", help="Only this person (id, CONNECTOR:ID or work email).")
@click.option("--cycle", help="Only this review cycle, e.g. 2026-H1.")
@format_option()
@pass_app
def reviews(app: App, program: str | None, person: str | None, cycle: str | None, fmt: str) -> None:
    """List review events: rating normalized to 0..1 beside the raw rating and its scale."""
    rows = list_reviews(app, program_id=program, person_ref=person, cycle=cycle)
    emit(rows, fmt, REVIEW_COLUMNS, empty="no review events: sync a connector with reviews")
