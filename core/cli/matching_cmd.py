"""``match``, ``pairings`` and ``rematch``: proposing, approving, editing and ending pairings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from coachbridge.cli.app import App, pass_app
from coachbridge.cli.output import emit, format_option, to_json
from coachbridge.cli.root import cli
from coachbridge.errors import UserError
from coachbridge.matching.managers import DECIDED_BY
from coachbridge.matching.service import REASON_TEXT, explain_match
from coachbridge.pairings import service
from coachbridge.pairings.service import STATUSES
from coachbridge.programs.choice import match_and_offer

PAIRING_COLUMNS = (
    "id",
    "program",
    "learner_id",
    "guide_id",
    "score",
    "breakdown",
    "status",
    "end_reason",
    "flag",
)
PAIRING_TABLE = ("id", "program", "learner_id", "learner", "guide_id", "guide", "score", "status")


@cli.command()
@click.argument("program_id", metavar="PROGRAM")
@click.option("--apply", "apply_", is_flag=True, help="Store the proposal as active pairings.")
@click.option(
    "--propose", "propose_", is_flag=True, help="Store it as proposed pairings to approve."
)
@click.option("--explain", "explain_ref", metavar="PERSON", help="Why this learner got what.")
@click.option(
    "--candidates",
    "candidates_path",
    metavar="FILE.csv",
    help="Write every candidate pair the engine scored (learner_id, guide_id, score) to FILE.",
)
@click.option(
    "--all-pairs",
    is_flag=True,
    help="With --candidates: every pair the hard constraints allow (up to 20 million).",
)
@format_option()
@pass_app
def match(
    app: App,
    program_id: str,
    apply_: bool,
    propose_: bool,
    explain_ref: str | None,
    candidates_path: str | None,
    all_pairs: bool,
    fmt: str,
) -> None:
    """Propose pairings for PROGRAM (nothing is stored without --apply or --propose).

    Certified optimal over every allowed pair unless the program sets ``certify = false``
    (then optimal within each learner's top_k best guides); the output says which.
    """
    if apply_ and propose_:
        raise UserError("give --apply or --propose, not both")
    if all_pairs and candidates_path is None:
        raise UserError("--all-pairs needs --candidates FILE.csv (where to write the pairs)")
    if candidates_path is not None and explain_ref is not None:
        raise UserError("give --candidates or --explain, not both")
    target = _csv_target(candidates_path) if candidates_path is not None else None
    mode = "active" if apply_ else "proposed" if propose_ else None
    if explain_ref is not None:
        why = explain_match(app, program_id, explain_ref)
        if fmt == "table":
            click.echo(f"Top alternatives for learner {why.learner_id} ({why.learner}):")
        emit(
            why.alternatives,
            fmt,
            ("guide_id", "guide", "score", "breakdown", "outcome"),
            table_columns=("guide_id", "guide", "score", "outcome"),
            empty="no guides enrolled",
        )
        if fmt == "table" and why.alternatives:
            click.echo("\nEach criterion: weight x value = contribution (share of the score):")
            for a in why.alternatives:
                click.echo(f"  guide {a['guide_id']} {a['guide']}: score {a['score']:.3f}")
                for c in a["criteria"]:
                    note = f"  {c['note']}" if c["note"] else ""
                    click.echo(
                        f"    {c['criterion']:<22} {c['weight']:.2f} x {c['value']:.3f} = "
                        f"{c['contribution']:.3f} ({c['share']:6.1%}){note}"
                    )
        return
    outcome = match_and_offer(
        app, program_id, store_as=mode, candidates=target, all_pairs=all_pairs
    )
    if target is not None:
        what = "allowed" if all_pairs else "candidate"
        click.echo(f"{outcome.written:,} {what} pair(s) written to {target}.", err=True)
    for warning in outcome.warnings:
        click.echo(f"warning: {warning}", err=True)
    pairs, unmatched = outcome.pairs, outcome.unmatched
    if fmt == "json":
        data: dict[str, Any] = {
            "program": outcome.program,
            "pairs": pairs,
            "unmatched": unmatched,
            "guarantee": outcome.guarantee,
            "certified": outcome.certified,
            "allowed_pairs": outcome.allowed_pairs,
        }
        if outcome.created is not None:
            data["created"] = outcome.created
        click.echo(to_json(data))
        return
    if fmt == "csv":
        rows = pairs + [u | {"guide_id": None, "score": None} for u in unmatched]
        emit(
            rows,
            "csv",
            ("learner_id", "learner", "guide_id", "guide", "score", "breakdown", "reason"),
        )
        return
    emit(
        pairs,
        "table",
        ("learner_id", "learner", "guide_id", "guide", "score"),
        empty="no pairs proposed",
    )
    by_manager = outcome.guarantee == DECIDED_BY
    if pairs and not by_manager:
        click.echo("\nWhy (weighted criteria, adding up to the score):")
        for p in pairs:
            parts = " + ".join(f"{k} {v:.3f}" for k, v in p["breakdown"].items())
            pin = " (pinned)" if p["pinned"] else ""
            link = "&" if outcome.peer else "<-"  # a peer pair has no leader
            click.echo(
                f"  {p['learner_id']} {link} {p['guide_id']}: {parts} = {p['score']:.3f}{pin}"
            )
    if unmatched:
        click.echo("\nUnpaired participants:" if outcome.peer else "\nUnmatched learners:")
        for u in unmatched:
            click.echo(
                f"  {u['learner_id']} {u['learner']}: {u['reason']} ({REASON_TEXT[u['reason']]})"
            )
    if by_manager:
        click.echo(f"\nPairs: {outcome.guarantee}.")
    else:
        who = "people paired" if outcome.peer else "learners matched"
        click.echo(f"\nMost {who}, then the highest total score: {outcome.guarantee}.")
    if outcome.created is not None:
        choice = app.config.program(program_id).choice
        if mode == "active" and choice != "none":
            # Someone answers first (the program's choice): offered or requested, not active.
            click.echo(
                f"\n{len(outcome.created)} pairing(s) stored, waiting for an answer "
                f"(choice = {choice.value}): coachbridge offers {program_id}"
            )
        else:
            click.echo(f"\n{len(outcome.created)} pairing(s) stored as {mode}.")
    else:
        click.echo("\n(nothing stored: use --apply or --propose)")


def _csv_target(text: str) -> Path:
    """The --candidates file, checked before any work: its folder exists, it is no device."""
    if not text.strip():
        raise UserError("--candidates: give a file name")
    path = Path(text).expanduser()
    if not path.parent.exists():
        raise UserError(f"--candidates {path}: folder {path.parent} does not exist")
    if path.exists() and not path.is_file():
        raise UserError(f"--candidates {path}: not a regular file")
    return path


@cli.group(invoke_without_command=True)
@click.option("--program", "program_id", help="Only this program.")
@click.option("--person", "person_ref", help="Only pairings of this person (either side).")
@click.option(
    "--status",
    type=click.Choice(STATUSES),
    help="Only this status.",
)
@format_option()
@click.pass_context
def pairings(
    ctx: click.Context, program_id: str | None, person_ref: str | None, status: str | None, fmt: str
) -> None:
    """List pairings (and approve, import, end, pin and forbid them)."""
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.find_object(App)
    assert app is not None
    _ = app.config
    out = service.list_pairings(
        app,
        program_id=program_id,
        person_ref=person_ref,
        status=status,
        with_names=fmt == "table",
    )
    emit(out, fmt, PAIRING_COLUMNS, table_columns=PAIRING_TABLE, empty="no pairings")


@pairings.command("approve")
@click.argument("pairing_id", metavar="ID", required=False)
@click.option("--all", "approve_all", is_flag=True, help="Approve every proposed pairing.")
@click.option("--program", "program_id", help="With --all: only this program.")
@pass_app
def pairings_approve(
    app: App, pairing_id: str | None, approve_all: bool, program_id: str | None
) -> None:
    """Make proposed pairings active (one ID, or --all)."""
    if (pairing_id is None) == (not approve_all):
        raise UserError("give one pairing ID or --all")
    count = service.approve_pairings(app, pairing_id, program_id=program_id)
    click.echo(f"{count} pairing(s) approved.")


@pairings.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--program", "program_id", help="Program of rows without a program column.")
@pass_app
def pairings_import(app: App, file: Path, program_id: str | None) -> None:
    """Import a proposal edited in a spreadsheet (every constraint is checked again)."""
    result = service.import_pairings(app, file, program_id=program_id)
    click.echo(
        f"imported: {result.kept} kept, {result.changed} guide(s) changed, {result.added} added, "
        f"{result.withdrawn} withdrawn (all proposed; approve with `pairings approve`)."
    )


@pairings.command("end")
@click.argument("pairing_id", metavar="ID")
@click.option("--reason", required=True, help="Why the pairing ends (kept in the record).")
@pass_app
def pairings_end(app: App, pairing_id: str, reason: str) -> None:
    """End an open pairing early; its future sessions are cancelled."""
    ended = service.end_pairing(app, pairing_id, reason)
    click.echo(f"pairing {ended.id} ended; {ended.cancelled} future session(s) cancelled.")


@pairings.command("pause")
@click.argument("pairing_id", metavar="ID")
@click.option("--reason", required=True, help="Why (kept in the record), e.g. parental leave.")
@pass_app
def pairings_pause(app: App, pairing_id: str, reason: str) -> None:
    """Pause an active pairing; its future sessions are cancelled, the guide's place kept."""
    paused = service.pause_pairing(app, pairing_id, reason)
    click.echo(
        f"pairing {paused.id} paused; {paused.cancelled} future session(s) cancelled. "
        f"`coachbridge pairings resume {paused.id}` plans them again (as many as fit in its term)."
    )


@pairings.command("resume")
@click.argument("pairing_id", metavar="ID")
@pass_app
def pairings_resume(app: App, pairing_id: str) -> None:
    """Make a paused pairing active again and plan the sessions its pause cancelled."""
    resumed = service.resume_pairing(app, pairing_id)
    when = f", the first on {resumed.first.isoformat()}" if resumed.first is not None else ""
    click.echo(
        f"pairing {resumed.id} resumed; {resumed.sessions} session(s) planned{when}. "
        f"Calendar files: `coachbridge sessions --person {resumed.learner_id} --ics DIR`."
    )


def _rule(app: App, program_id: str, learner: str, guide: str, kind: str) -> None:
    rule = service.set_pair_rule(app, program_id, learner, guide, kind)
    click.echo(
        f"{rule.kind}: learner {rule.learner_id} with guide {rule.guide_id} in {rule.program}."
    )


@pairings.command("pin")
@click.option("--program", "program_id", required=True)
@click.option("--learner", required=True, help="Person (id, CONNECTOR:ID or email).")
@click.option("--guide", required=True, help="Person (id, CONNECTOR:ID or email).")
@pass_app
def pairings_pin(app: App, program_id: str, learner: str, guide: str) -> None:
    """Always pair this learner with this guide when matching (if the guide has room)."""
    _rule(app, program_id, learner, guide, "pin")


@pairings.command("forbid")
@click.option("--program", "program_id", required=True)
@click.option("--learner", required=True, help="Person (id, CONNECTOR:ID or email).")
@click.option("--guide", required=True, help="Person (id, CONNECTOR:ID or email).")
@pass_app
def pairings_forbid(app: App, program_id: str, learner: str, guide: str) -> None:
    """Never pair this learner with this guide."""
    _rule(app, program_id, learner, guide, "forbid")


@cli.command("rematch")
@click.argument("pairing_id", metavar="PAIRING")
@click.option("--reason", default="re-matched on request", show_default=True)
@format_option()
@pass_app
def rematch_cmd(app: App, pairing_id: str, reason: str, fmt: str) -> None:
    """End one pairing and find its learner a new guide, disturbing nobody else."""
    out = service.rematch_pairing(app, pairing_id, reason)
    old, new = out["ended"], out["new"]
    if fmt == "json":
        click.echo(to_json(out))
    elif new is None:
        click.echo(
            f"pairing {old['id']} ended; no guide with room fits learner {old['learner_id']}."
        )
    else:
        click.echo(
            f"pairing {old['id']} ended; learner {old['learner_id']} now with guide "
            f"{new['guide_id']} (pairing {new['id']}, score {new['score']:.3f})."
        )
