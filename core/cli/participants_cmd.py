"""``intake``, ``profile`` and ``feedback link``: participants' own answers, and their links."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from coachbridge.cli.app import App, pass_app
from coachbridge.cli.health_cmd import feedback
from coachbridge.cli.output import ROW_ID, emit, format_option, to_json, to_table
from coachbridge.cli.root import cli
from coachbridge.errors import RuntimeFailure
from coachbridge.pairings.feedback import feedback_link
from coachbridge.programs.intake import intake_links, send_invitations
from coachbridge.programs.profiles import import_profiles, set_profile, show_profiles

LINK_COLUMNS = ("person_id", "email", "role", "url", "status")
PROFILE_COLUMNS = (
    "person_id",
    "program",
    "topics",
    "goal",
    "languages",
    "availability",
    "answered_at",
)


# -- intake ----------------------------------------------------------------------------------
@cli.group()
def intake() -> None:
    """The intake questionnaire of a program: mail its links, or list them."""


@intake.command("send")
@click.argument("program_id", metavar="PROGRAM")
@click.option("--dry-run", is_flag=True, help="Show who would be mailed; send and store nothing.")
@format_option()
@pass_app
def intake_send(app: App, program_id: str, dry_run: bool, fmt: str) -> None:
    """Mail each enrolled person who has not answered a signed link to the questionnaire."""
    sent = send_invitations(app, program_id, dry_run=dry_run)
    emit(
        [item.as_row() for item in sent],
        fmt,
        ("program", "person_id", "email", "role", "kind", "status"),
        empty="nobody to invite: everyone enrolled has answered or was invited today",
    )
    failed = sum(1 for item in sent if item.status == "failed")
    if fmt == "table":
        verb = "would be mailed" if dry_run else "mailed"
        no_email = sum(1 for item in sent if item.status == "no email")
        click.echo(
            f"{len(sent) - no_email - failed} invitation(s) {verb}"
            + (f", {failed} failed" if failed else "")
            + (
                f"; {no_email} without a work email (send theirs from `intake links`)"
                if no_email
                else ""
            ),
            err=True,
        )
    if failed:
        raise RuntimeFailure(
            f"{failed} invitation(s) could not be sent by any channel (the log says why); "
            f"they do not count as sent: run `coachbridge intake send {program_id}` again once "
            "mail works"
        )


@intake.command("links")
@click.argument("program_id", metavar="PROGRAM")
@format_option()
@pass_app
def intake_links_cmd(app: App, program_id: str, fmt: str) -> None:
    """Every enrolled person's link and whether they answered (to send through your channel)."""
    rows = intake_links(app, program_id)
    if fmt == "table" and rows:
        # A cut link is of no use: the table shows each url whole.
        click.echo(to_table(rows, LINK_COLUMNS, max_width=2000))
        return
    emit(rows, fmt, LINK_COLUMNS, empty=f"nobody is enrolled in {program_id}")


# -- profile ---------------------------------------------------------------------------------
@cli.group()
def profile() -> None:
    """Participants' intake answers: HR answering on someone's behalf, or reading them."""


@profile.command("set")
@click.argument("person_ref", metavar="PERSON")
@click.option("--program", "program_id", required=True, metavar="PROGRAM")
@click.option("--topics", metavar="A,B", help="Topics from the program's list, most wanted first.")
@click.option("--goal", metavar="TEXT", help="The learner's goal, or the guide's 'how I can help'.")
@click.option("--languages", metavar="DE,EN", help="ISO 639-1 codes ('' for the HRIS's).")
@click.option("--availability", metavar="MON-AM,TUE-PM", help="Weekday half-days, own time zone.")
@pass_app
def profile_set(
    app: App,
    person_ref: str,
    program_id: str,
    topics: str | None,
    goal: str | None,
    languages: str | None,
    availability: str | None,
) -> None:
    """Answer for PERSON (id, CONNECTOR:ID or work email); options not given stay as they were."""
    saved = set_profile(
        app,
        person_ref,
        program_id,
        topics=topics,
        goal=goal,
        languages=languages,
        availability=availability,
    )
    verb = "updated" if saved.replaced else "recorded"
    click.echo(f"answer {verb}: person {saved.person_id} in {saved.program}")


@profile.command("import")
@click.argument("path", metavar="FILE.csv", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--program", "program_id", required=True, metavar="PROGRAM")
@pass_app
def profile_import(app: App, path: Path, program_id: str) -> None:
    """Answers from a spreadsheet: columns person, topics, goal, languages, availability
    (several values in one cell separated by ';'). Checked whole before anything is written."""
    saved = import_profiles(app, path, program_id)
    replaced = sum(1 for x in saved if x.replaced)
    click.echo(
        f"{len(saved)} answer(s) imported into {program_id} "
        f"({len(saved) - replaced} new, {replaced} replaced)"
    )


@profile.command("show")
@click.argument("person_ref", metavar="PERSON")
@click.option("--program", "program_id", metavar="PROGRAM", help="Only this program.")
@format_option()
@pass_app
def profile_show(app: App, person_ref: str, program_id: str | None, fmt: str) -> None:
    """A person's answers, per program."""
    rows = show_profiles(app, person_ref, program_id)
    if fmt == "json":
        click.echo(to_json(rows))
        return
    if fmt == "csv":
        flat = [
            {k: ";".join(v) if isinstance(v, list) else v for k, v in row.items()} for row in rows
        ]
        emit(flat, fmt, PROFILE_COLUMNS)
        return
    if not rows:
        click.echo("(no answers)")
    for row in rows:
        for key in PROFILE_COLUMNS:
            value = row[key]
            if isinstance(value, list):
                value = ", ".join(value) or "-"
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif value is None:
                value = "(HRIS)" if key == "languages" else "-"
            click.echo(f"{key:>13}: {value}")
        click.echo()


# -- feedback link ---------------------------------------------------------------------------
@feedback.command("link")
@click.argument("session_id", type=ROW_ID, metavar="SESSION_ID")
@click.option("--person", "person_ref", required=True, metavar="PERSON", help="Learner or guide.")
@pass_app
def feedback_link_cmd(app: App, session_id: int, person_ref: str) -> None:
    """Print a fresh feedback link for one person of a session (to send it again)."""
    click.echo(feedback_link(app, session_id, person_ref))
