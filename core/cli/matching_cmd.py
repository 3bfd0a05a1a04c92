"""``match``, ``pairings`` and ``rematch``: proposing, approving, editing and ending pairings."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from coachbridge.cli import cli
from coachbridge.cli.app import App, pass_app
from coachbridge.cli.output import emit, format_option, to_json
from coachbridge.errors import RuntimeFailure, UserError
from coachbridge.lifecycle import OPEN, audit, end_pairing, pause_pairing, resume_pairing
from coachbridge.matching.importing import import_proposal
from coachbridge.matching.pool import check_weights
from coachbridge.matching.service import (
    REASON_TEXT,
    allowed_pairs,
    announce_after_commit,
    apply,
    explain,
    get_pairing,
    propose,
    rematch,
)
from coachbridge.people import resolve_person
from coachbridge.scheduling import session_model
from coachbridge.store.tables import PairingRow, PairRuleRow, PersonRow
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

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


def _now() -> datetime:
    return datetime.now(UTC)


def _program(app: App, program_id: str) -> Any:
    program = app.config.program(program_id)
    index = list(app.config.programs).index(program.id)
    check_weights(program, app.registry.criteria, index=index)
    return program


def _names(s: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {p.id: p.name for p in s.scalars(select(PersonRow).where(PersonRow.id.in_(ids)))}


def pairing_dict(row: PairingRow, names: dict[int, str] | None = None) -> dict[str, Any]:
    """The listing keys of one pairing (plus names for the table)."""
    out = {
        "id": row.id,
        "program": row.program_id,
        "learner_id": row.learner_id,
        "guide_id": row.guide_id,
        "score": row.score,
        "breakdown": dict(row.breakdown or {}),
        "status": row.status,
        "end_reason": row.end_reason,
        "flag": row.flag,
    }
    if names is not None:
        out["learner"] = names.get(row.learner_id, "")
        out["guide"] = names.get(row.guide_id, "")
    return out


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
    program = _program(app, program_id)
    db = app.database()
    now = _now()
    with db.transaction() as s:
        if explain_ref is not None:
            person = resolve_person(s, explain_ref)
            alternatives = explain(s, program, person.id, app.registry, now=now)
            names = _names(s, {a.guide_id for a in alternatives})
            rows = [
                {
                    "guide_id": a.guide_id,
                    "guide": names.get(a.guide_id, ""),
                    "score": a.score,
                    "breakdown": a.breakdown,
                    "outcome": a.why_not,
                }
                for a in alternatives
            ]
            if fmt == "table":
                click.echo(f"Top alternatives for learner {person.id} ({person.name}):")
            emit(
                rows,
                fmt,
                ("guide_id", "guide", "score", "breakdown", "outcome"),
                table_columns=("guide_id", "guide", "score", "outcome"),
                empty="no guides enrolled",
            )
            return
        if target is not None and all_pairs:
            count, blocks = allowed_pairs(s, program, app.registry, now=now)
            _write_pairs(target, blocks)
            click.echo(f"{count:,} allowed pair(s) written to {target}.", err=True)
        proposal = propose(s, program, app.registry, now=now)
        if target is not None and not all_pairs and proposal.arcs is not None:
            lids, gids, scores = proposal.arcs
            _write_pairs(target, iter([(lids.tolist(), gids.tolist(), scores.tolist())]))
            click.echo(f"{scores.size:,} candidate pair(s) written to {target}.", err=True)
        created = []
        if mode is not None:
            created = apply(
                s, program, proposal, status=mode, actor="cli", now=now, registry=app.registry
            )
        names = _names(
            s,
            {p.learner_id for p in proposal.pairs}
            | {p.guide_id for p in proposal.pairs}
            | {u.learner_id for u in proposal.unmatched},
        )
    for warning in proposal.warnings:
        click.echo(f"warning: {warning}", err=True)
    pairs = [
        p.as_dict() | {"learner": names.get(p.learner_id, ""), "guide": names.get(p.guide_id, "")}
        for p in proposal.pairs
    ]
    unmatched = [u.as_dict() | {"learner": names.get(u.learner_id, "")} for u in proposal.unmatched]
    if fmt == "json":
        data: dict[str, Any] = {
            "program": program.id,
            "pairs": pairs,
            "unmatched": unmatched,
            "guarantee": proposal.guarantee,
            "certified": proposal.certified,
            "allowed_pairs": proposal.allowed_pairs if proposal.certified else None,
        }
        if mode is not None:
            data["created"] = [r.id for r in created]
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
    if pairs:
        click.echo("\nWhy (weighted criteria, adding up to the score):")
        for p in pairs:
            parts = " + ".join(f"{k} {v:.3f}" for k, v in p["breakdown"].items())
            pin = " (pinned)" if p["pinned"] else ""
            click.echo(f"  {p['learner_id']} <- {p['guide_id']}: {parts} = {p['score']:.3f}{pin}")
    if unmatched:
        click.echo("\nUnmatched learners:")
        for u in unmatched:
            click.echo(
                f"  {u['learner_id']} {u['learner']}: {u['reason']} ({REASON_TEXT[u['reason']]})"
            )
    click.echo(f"\nMost learners matched, then the highest total score: {proposal.guarantee}.")
    if mode is not None:
        click.echo(f"\n{len(created)} pairing(s) stored as {mode}.")
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


def _write_pairs(path: Path, blocks: Iterator[tuple[list[int], list[int], list[float]]]) -> None:
    """``learner_id,guide_id,score`` rows, scores at full precision (``repr``), atomically."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write("learner_id,guide_id,score\n")
            for lids, gids, scores in blocks:
                fh.writelines(
                    f"{a},{b},{c!r}\n" for a, b, c in zip(lids, gids, scores, strict=True)
                )
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"--candidates {path}: cannot write: {exc.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@cli.group(invoke_without_command=True)
@click.option("--program", "program_id", help="Only this program.")
@click.option("--person", "person_ref", help="Only pairings of this person (either side).")
@click.option(
    "--status",
    type=click.Choice(["proposed", "active", "paused", "completed", "ended"]),
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
    if program_id is not None:
        app.config.program(program_id)
    with app.database().transaction() as s:
        stmt = select(PairingRow).order_by(PairingRow.id)
        if program_id:
            stmt = stmt.where(PairingRow.program_id == program_id)
        if person_ref:
            pid = resolve_person(s, person_ref).id
            stmt = stmt.where((PairingRow.learner_id == pid) | (PairingRow.guide_id == pid))
        if status:
            stmt = stmt.where(PairingRow.status == status)
        rows = list(s.scalars(stmt))
        names = _names(s, {r.learner_id for r in rows} | {r.guide_id for r in rows})
        out = [pairing_dict(r, names if fmt == "table" else None) for r in rows]
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
    if program_id is not None:
        app.config.program(program_id)
    now = _now()
    with app.database().transaction() as s:
        if pairing_id is not None:
            rows = [get_pairing(s, pairing_id)]
            if rows[0].status != "proposed":
                raise UserError(f"pairing {rows[0].id} is {rows[0].status}, not proposed")
        else:
            stmt = select(PairingRow).where(PairingRow.status == "proposed")
            if program_id:
                stmt = stmt.where(PairingRow.program_id == program_id)
            rows = list(s.scalars(stmt.order_by(PairingRow.id)))
        for row in rows:
            for pid in (row.learner_id, row.guide_id):
                person = s.get(PersonRow, pid)
                if person is None or person.status != "active":
                    raise UserError(f"pairing {row.id}: person {pid} is no longer active")
            row.status = "active"
            row.activated_at = now
            audit(s, "cli", "approve_pairing", "pairing", row.id, program=row.program_id)
        announce_after_commit(s, app.registry, rows)
        count = len(rows)
    click.echo(f"{count} pairing(s) approved.")


@pairings.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--program", "program_id", help="Program of rows without a program column.")
@pass_app
def pairings_import(app: App, file: Path, program_id: str | None) -> None:
    """Import a proposal edited in a spreadsheet (every constraint is checked again)."""
    if program_id is not None:
        app.config.program(program_id)
    with app.database().transaction() as s:
        result = import_proposal(
            s,
            file,
            dict(app.config.programs),
            dict(app.registry.criteria),
            default_program=program_id,
            now=_now(),
        )
    click.echo(
        f"imported: {result.kept} kept, {result.changed} guide(s) changed, {result.added} added, "
        f"{result.withdrawn} withdrawn (all proposed; approve with `pairings approve`)."
    )


def _reason(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise UserError("--reason: say why (it is kept in the record)")
    return text[:500]  # the column's size


@pairings.command("end")
@click.argument("pairing_id", metavar="ID")
@click.option("--reason", required=True, help="Why the pairing ends (kept in the record).")
@pass_app
def pairings_end(app: App, pairing_id: str, reason: str) -> None:
    """End an open pairing early; its future sessions are cancelled."""
    reason = _reason(reason)
    with app.database().transaction() as s:
        row = get_pairing(s, pairing_id)
        if row.status not in OPEN:
            raise UserError(f"pairing {row.id} is {row.status}, not open")
        cancelled = end_pairing(s, row, reason, _now(), actor="cli")
    click.echo(f"pairing {row.id} ended; {cancelled} future session(s) cancelled.")


@pairings.command("pause")
@click.argument("pairing_id", metavar="ID")
@click.option("--reason", required=True, help="Why (kept in the record), e.g. parental leave.")
@pass_app
def pairings_pause(app: App, pairing_id: str, reason: str) -> None:
    """Pause an active pairing; its future sessions are cancelled, the guide's place kept."""
    reason = _reason(reason)
    with app.database().transaction() as s:
        row = get_pairing(s, pairing_id)
        cancelled = pause_pairing(s, row, reason, _now(), actor="cli")
    click.echo(
        f"pairing {row.id} paused; {cancelled} future session(s) cancelled. "
        f"`coachbridge pairings resume {row.id}` plans them again (as many as fit in its term)."
    )


@pairings.command("resume")
@click.argument("pairing_id", metavar="ID")
@pass_app
def pairings_resume(app: App, pairing_id: str) -> None:
    """Make a paused pairing active again and plan the sessions its pause cancelled."""
    now = _now()
    try:
        with app.database().transaction() as s:
            row = get_pairing(s, pairing_id)
            program = app.config.program(row.program_id)
            created = resume_pairing(s, row, program, now, actor="cli")
            models = [session_model(r) for r in created]
            first = min((r.start for r in created), default=None)
    except IntegrityError:
        # Another process planned this pairing's sessions at the same moment; nothing stored.
        raise RuntimeFailure(
            "another process scheduled this pairing's sessions at the same time; nothing was "
            "changed, run the command again"
        ) from None
    when = f", the first on {first.isoformat()}" if first is not None else ""
    click.echo(
        f"pairing {row.id} resumed; {len(created)} session(s) planned{when}. "
        f"Calendar files: `coachbridge sessions --person {row.learner_id} --ics DIR`."
    )
    for model in models:  # observers run after the commit, so they see stored sessions
        app.registry.session_scheduled(model)


def _rule(app: App, program_id: str, learner: str, guide: str, kind: str) -> None:
    program = app.config.program(program_id)
    from coachbridge.enrollment import ensure_program_row

    with app.database().transaction() as s:
        lp, gp = resolve_person(s, learner), resolve_person(s, guide)
        if lp.id == gp.id:
            raise UserError("learner and guide are the same person")
        ensure_program_row(s, program)
        row = s.get(PairRuleRow, (program.id, lp.id, gp.id))
        if row is None:
            s.add(PairRuleRow(program_id=program.id, learner_id=lp.id, guide_id=gp.id, kind=kind))
        else:
            row.kind = kind
        audit(s, "cli", kind, "pair_rule", f"{program.id}:{lp.id}:{gp.id}")
    click.echo(f"{kind}: learner {lp.id} with guide {gp.id} in {program.id}.")


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
    reason = _reason(reason)
    with app.database().transaction() as s:
        old, new = rematch(
            s, dict(app.config.programs), pairing_id, app.registry, reason=reason, now=_now()
        )
        out = {"ended": pairing_dict(old), "new": None if new is None else pairing_dict(new)}
    if fmt == "json":
        click.echo(to_json(out))
    elif new is None:
        click.echo(f"pairing {old.id} ended; no guide with room fits learner {old.learner_id}.")
    else:
        click.echo(
            f"pairing {old.id} ended; learner {old.learner_id} now with guide "
            f"{new.guide_id} (pairing {new.id}, score {new.score:.3f})."
        )
