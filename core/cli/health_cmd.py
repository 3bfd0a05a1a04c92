"""``feedback``, ``nudge``, ``report``, ``audit`` and ``people forget``: program health and outcomes."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from coachbridge.cli.app import App, pass_app
from coachbridge.cli.output import FORMATS, ROW_ID, emit, format_option, to_json
from coachbridge.cli.people_cmd import people
from coachbridge.cli.root import cli
from coachbridge.domain import utc
from coachbridge.errors import UserError
from coachbridge.hris.privacy import forget
from coachbridge.pairings.feedback import add_feedback, list_feedback
from coachbridge.store.audit import audit_entries

AS_OF_HELP = "Evaluate as of this moment (ISO 8601; default: now)."


def _as_of(value: str | None, option: str = "--as-of") -> datetime:
    if not value:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(
            f"{option} {value!r} is not an ISO 8601 date or date and time (e.g. 2027-03-01)"
        ) from None
    try:
        return utc(moment)
    except ValueError as exc:
        raise UserError(f"{option} {value!r}: {exc}") from None


# -- feedback --------------------------------------------------------------------------------
@cli.group(invoke_without_command=True)
@click.option("--program", "program_id", metavar="PROGRAM", help="Only this program.")
@format_option()
@click.pass_context
def feedback(ctx: click.Context, program_id: str | None, fmt: str) -> None:
    """Session feedback. Without a subcommand: list it as the program owner sees it."""
    if ctx.invoked_subcommand is not None:
        return
    ctx.invoke(feedback_list, program_id=program_id, fmt=fmt)


@feedback.command("list")
@click.option("--program", "program_id", metavar="PROGRAM", help="Only this program.")
@format_option()
@pass_app
def feedback_list(app: App, program_id: str | None, fmt: str) -> None:
    """Ratings and comments for the program owner (private notes are never shown)."""
    rows = list_feedback(app, program_id)
    columns = (
        "id",
        "program",
        "pairing_id",
        "session_id",
        "from_person_id",
        "side",
        "rating",
        "outcome",
        "comment",
        "created_at",
        "updated_at",
    )
    emit(
        rows,
        fmt,
        columns,
        table_columns=("id", "program", "session_id", "side", "rating", "comment"),
        empty="no feedback yet",
    )


@feedback.command("add")
@click.argument("session_id", type=ROW_ID, metavar="SESSION")
@click.option("--from", "person_ref", required=True, metavar="PERSON", help="Learner or guide.")
@click.option("--rating", required=True, metavar="N", help="1 (poor) to 5 (excellent).")
@click.option("--comment", metavar="TEXT", help="For the program owner.")
@click.option("--private-note", metavar="TEXT", help="Only its author reads it back.")
@pass_app
def feedback_add(
    app: App,
    session_id: int,
    person_ref: str,
    rating: str,
    comment: str | None,
    private_note: str | None,
) -> None:
    """Record feedback on a held session (a second answer from the same person replaces it)."""
    done = add_feedback(
        app, session_id, person_ref, rating, comment=comment, private_note=private_note
    )
    verb = "replaced" if done.replaced else "recorded"
    click.echo(f"feedback {done.id} {verb}: session {session_id}, rating {done.rating}")


# -- nudges ----------------------------------------------------------------------------------
@cli.command("nudge")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; change nothing.")
@click.option("--as-of", "as_of", metavar="WHEN", help=AS_OF_HELP)
@click.option(
    "--force",
    is_flag=True,
    help="Run for real with a future --as-of (on a copy of the data, to play time forward).",
)
@format_option()
@pass_app
def nudge(app: App, dry_run: bool, as_of: str | None, force: bool, fmt: str) -> None:
    """Run the daily check now: finished pairings completed, learners waiting for a guide
    tried again; nudges, fit checks, pauses, feedback requests."""
    from coachbridge.jobs.daily import run_daily

    now = _as_of(as_of)
    if not (dry_run or force) and now > datetime.now(UTC) + timedelta(minutes=5):
        # It would complete pairings and date messages in the future, for real.
        raise UserError(
            "--as-of is in the future and the check changes data: add --dry-run to see that "
            "day (or --force, on a copy of the data)"
        )
    daily = run_daily(app, now=now, dry_run=dry_run)
    nudges, purged, completed, paired = daily.nudges, daily.purged, daily.completed, daily.paired
    choices = daily.choices
    rows = [n.as_row() for n in nudges]
    emit(
        rows,
        fmt,
        ("condition", "program", "pairing_id", "recipient_id", "action", "status", "key"),
        table_columns=("condition", "program", "pairing_id", "recipient_id", "action", "status"),
        empty="nothing to nudge",
    )
    if fmt == "table":
        what = "would send" if dry_run else "sent"
        click.echo(f"{len(nudges)} message(s) {what}", err=True)
        if completed:
            verb = "would be completed" if dry_run else "completed"
            click.echo(f"{completed} pairing(s) {verb}: their term is over", err=True)
        if paired:
            click.echo(f"{paired} learner(s) waiting for a guide paired", err=True)
        if choices is not None and (choices.expired or choices.reminded):
            click.echo(
                f"offers and requests: {choices.expired} expired, {choices.started} held "
                f"guide(s) taken, {choices.rematched} learner(s) re-matched, "
                f"{choices.reminded} reminder(s)",
                err=True,
            )
        if purged:
            click.echo(f"{purged} processed webhook delivery bodies purged", err=True)
        if daily.intake_reminders:
            verb = "would be sent" if dry_run else "sent"
            click.echo(
                f"{len(daily.intake_reminders)} intake reminder(s) {verb}: people invited to a "
                "questionnaire who have not answered",
                err=True,
            )


# -- report ----------------------------------------------------------------------------------
def _write_atomic(path: Path, text: str) -> None:
    path = path.expanduser()
    if not path.parent.exists():
        raise UserError(f"--html {path}: folder {path.parent} does not exist")
    if path.exists() and not path.is_file():
        # Replacing it would swap a device, a folder's link or a pipe for a regular file.
        raise UserError(f"--html {path}: not a regular file")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"--html {path}: cannot write: {exc.strerror}") from None


def _summary_row(r: dict[str, Any]) -> dict[str, Any]:
    def plain(x: Any) -> Any:
        return "suppressed" if isinstance(x, dict) and x.get("suppressed") else x

    def side(result: dict[str, Any], name: str) -> Any:
        v = result[name]
        return plain(v) if v.get("suppressed") else v.get("value")

    rating = r["rating"]
    return {
        "program": r["program"],
        "participants": plain(r["participants"]),
        "pairings": plain(r["pairings"]),
        "held": plain(r["sessions"]["held"]),
        "missed": plain(r["sessions"]["missed"]),
        "rating": plain(rating) if rating.get("suppressed") else rating.get("mean"),
        "retention_12m": side(r["retention_12m"], "participants"),
        "retention_cmp": side(r["retention_12m"], "comparison"),
        "rating_change": side(r["rating_change"], "participants"),
        "rating_change_cmp": side(r["rating_change"], "comparison"),
    }


@cli.command("report")
@click.argument("program_id", metavar="[PROGRAM]", required=False)
@click.option("--html", "html_path", metavar="FILE", help="Write the HTML report to FILE.")
@click.option("--as-of", "as_of", metavar="WHEN", help=AS_OF_HELP)
@click.option(
    "--culture",
    is_flag=True,
    help="The coaching-culture view across programs: guides trained and active, their load.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice((*FORMATS, "html")),
    default="table",
    show_default=True,
    help="Output format (html: the page on standard output).",
)
@pass_app
def report(
    app: App,
    program_id: str | None,
    html_path: str | None,
    as_of: str | None,
    culture: bool,
    fmt: str,
) -> None:
    """Outcome report of one program (default: every program), aggregates only."""
    from coachbridge.reports import program_reports, render_html

    now = _as_of(as_of)
    if html_path is not None and not html_path.strip():
        raise UserError("--html: give a file name")
    if culture:
        _culture(app, program_id, html_path, now, fmt)
        return
    reports = program_reports(app, program_id, now=now)
    k = app.config.reports.min_group_size
    if html_path:
        _write_atomic(Path(html_path), render_html(reports, now=now, min_group_size=k))
        click.echo(f"wrote {Path(html_path).expanduser().resolve()}", err=fmt != "table")
    if fmt == "html":
        click.echo(render_html(reports, now=now, min_group_size=k), nl=False)
    elif fmt == "json":
        click.echo(to_json(reports[0] if program_id is not None else reports))
    else:
        rows = [_summary_row(r) for r in reports]
        emit(rows, fmt, tuple(rows[0]) if rows else ("program",))
        if fmt == "table":
            for r in reports:
                for note in r["notes"]:
                    click.echo(f"{r['program']}: {note}", err=True)


CULTURE_COLUMNS = (
    "program",
    "kind",
    "guides",
    "guides_trained",
    "guides_active",
    "learners_per_guide",
    "sessions_per_guide_per_month",
    "guides_over_capacity",
    "managers",
    "managers_held_checkins",
)


def _culture_row(r: dict[str, Any]) -> dict[str, Any]:
    def plain(x: Any) -> Any:
        return "suppressed" if isinstance(x, dict) and x.get("suppressed") else x

    held = r.get("managers_held_checkins") or {}
    return {
        "program": r["program"] or "(all)",
        "kind": r["kind"],
        **{c: plain(r[c]) for c in CULTURE_COLUMNS[2:8]},
        "managers": plain(held.get("managers")),
        "managers_held_checkins": plain(held.get("share")),
    }


def _culture(
    app: App, program_id: str | None, html_path: str | None, now: datetime, fmt: str
) -> None:
    from coachbridge.reports import culture_view
    from coachbridge.reports.culture import render_culture_html

    if program_id is not None:
        raise UserError("--culture covers every program: leave out PROGRAM")
    data = culture_view(app, now=now)
    if html_path:
        _write_atomic(Path(html_path), render_culture_html(data))
        click.echo(f"wrote {Path(html_path).expanduser().resolve()}", err=fmt != "table")
    if fmt == "html":
        click.echo(render_culture_html(data), nl=False)
    elif fmt == "json":
        click.echo(to_json(data))
    else:
        rows = [_culture_row(r) for r in (data["overall"], *data["programs"])]
        emit(rows, fmt, CULTURE_COLUMNS)
        if fmt == "table":
            for note in data["notes"]:
                click.echo(note, err=True)


# -- audit -----------------------------------------------------------------------------------
@cli.command("audit")
@click.option("--action", help="Only this action (e.g. end_pairing, forget_person).")
@click.option("--since", metavar="WHEN", help="Only entries at or after this moment.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=200, show_default=True)
@format_option()
@pass_app
def audit_cmd(app: App, action: str | None, since: str | None, limit: int, fmt: str) -> None:
    """Who approved, paused, resumed, ended, completed, re-matched, flagged, corrected or
    erased what, and when (newest first)."""
    rows = audit_entries(
        app.database(),
        action=action,
        since=_as_of(since, "--since") if since else None,
        limit=limit,
    )
    emit(
        rows,
        fmt,
        ("id", "at", "actor", "action", "object_type", "object_id", "details"),
        empty="the audit log is empty",
    )


# -- people forget ---------------------------------------------------------------------------
@people.command("forget")
@click.argument("person_ref", metavar="PERSON")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--actor", default=None, help="Who approved the erasure (default: $USER).")
@pass_app
def people_forget(app: App, person_ref: str, yes: bool, actor: str | None) -> None:
    """Erase a person's personal data for good; anonymous counts stay."""

    def confirm(pid: int) -> None:
        click.confirm(f"Erase the personal data of person {pid}? This cannot be undone", abort=True)

    result = forget(app, person_ref, actor=actor, confirm=None if yes else confirm)
    pid = result.person_id
    if result.already:
        click.echo(f"person {pid} was already erased")
        return
    parts = ", ".join(
        f"{k.replace('_', ' ')}: {v}"
        for k, v in result.as_dict().items()
        if k not in ("person_id", "already")
    )
    click.echo(f"person {pid} erased ({parts})")
