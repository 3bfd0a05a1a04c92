"""The pairings use cases: listing pairings, approving proposed ones, importing an edited
proposal, pausing, resuming and ending a pairing, pinning or forbidding a pair, re-matching.

Each runs in one transaction of its own and returns plain data ready for output. Observers are
told after the commit: new active pairings through the matching service's after-commit
announcement, sessions planned on resume through ``coachbridge_on_session_scheduled``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coachbridge.context import Context, Hooks
from coachbridge.domain.pairing import OPEN
from coachbridge.domain.program import Program
from coachbridge.errors import NotFoundError, RuntimeFailure, UserError
from coachbridge.matching import service as matching
from coachbridge.matching.importing import ImportResult, import_proposal
from coachbridge.pairings import lifecycle
from coachbridge.pairings.scheduling import session_model
from coachbridge.store.audit import audit
from coachbridge.store.people import resolve_person
from coachbridge.store.programs import ensure_program_row
from coachbridge.store.tables import PairingRow, PairRuleRow, PersonRow
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

#: Pairing statuses, as ``--status`` filters them.
STATUSES = (
    "proposed",
    "offered",
    "requested",
    "active",
    "paused",
    "completed",
    "ended",
    "withdrawn",
)
REASON_LIMIT = 500  # the end_reason column's size


@dataclass(frozen=True)
class StoppedPairing:
    """A pairing paused or ended, and how many of its future sessions that cancelled."""

    id: int
    cancelled: int


@dataclass(frozen=True)
class ResumedPairing:
    id: int
    learner_id: int
    sessions: int  # planned again
    first: datetime | None  # the first of them


@dataclass(frozen=True)
class PairRule:
    kind: str  # pin or forbid
    program: str
    learner_id: int
    guide_id: int


def _now() -> datetime:
    return datetime.now(UTC)


def clean_reason(text: str) -> str:
    """Why a pairing stops, on one line; ``UserError`` when blank (it is kept in the record)."""
    text = " ".join(text.split())
    if not text:
        raise UserError("--reason: say why (it is kept in the record)")
    return text[:REASON_LIMIT]


def pairing_dict(row: PairingRow, names: dict[int, str] | None = None) -> dict[str, Any]:
    """The listing keys of one pairing (plus the people's names, when given)."""
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


def list_pairings(
    ctx: Context,
    *,
    program_id: str | None = None,
    person_ref: str | None = None,
    status: str | None = None,
    with_names: bool = False,
) -> list[dict[str, Any]]:
    """Pairings by id (of one program, one person on either side, one status)."""
    if program_id is not None:
        ctx.config.program(program_id)
    with ctx.database().transaction() as s:
        stmt = select(PairingRow).order_by(PairingRow.id)
        if program_id:
            stmt = stmt.where(PairingRow.program_id == program_id)
        if person_ref:
            pid = resolve_person(s, person_ref).id
            stmt = stmt.where((PairingRow.learner_id == pid) | (PairingRow.guide_id == pid))
        if status:
            stmt = stmt.where(PairingRow.status == status)
        rows = list(s.scalars(stmt))
        names = None
        if with_names:
            names = matching.person_names(
                s, {r.learner_id for r in rows} | {r.guide_id for r in rows}
            )
        return [pairing_dict(r, names) for r in rows]


def approve_pairings(
    ctx: Context,
    pairing_id: str | int | None = None,
    *,
    program_id: str | None = None,
    now: datetime | None = None,
    actor: str = "cli",
) -> int:
    """Make one proposed pairing active, or (without ``pairing_id``) every proposed pairing
    (of ``program_id``). Returns how many; they are announced after the commit."""
    if program_id is not None:
        ctx.config.program(program_id)
    now = now or _now()
    with ctx.database().transaction() as s:
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
            audit(s, actor, "approve_pairing", "pairing", row.id, program=row.program_id)
        matching.announce_after_commit(s, ctx.registry, rows)
        return len(rows)


def import_pairings(
    ctx: Context,
    path: Path,
    *,
    program_id: str | None = None,
    now: datetime | None = None,
    actor: str = "cli",
) -> ImportResult:
    """Make a proposal edited in a spreadsheet the programs' proposals (every row is checked
    again; one bad row stores nothing)."""
    if program_id is not None:
        ctx.config.program(program_id)
    with ctx.database().transaction() as s:
        return import_proposal(
            s,
            path,
            dict(ctx.config.programs),
            dict(ctx.registry.criteria),
            default_program=program_id,
            now=now or _now(),
            actor=actor,
        )


def end_pairing(
    ctx: Context,
    pairing_id: str | int,
    reason: str,
    *,
    now: datetime | None = None,
    actor: str = "cli",
) -> StoppedPairing:
    """End an open pairing early; its future sessions are cancelled."""
    reason = clean_reason(reason)
    with ctx.database().transaction() as s:
        row = get_pairing(s, pairing_id)
        if row.status not in lifecycle.OPEN:
            raise UserError(f"pairing {row.id} is {row.status}, not open")
        cancelled = lifecycle.end_pairing(s, row, reason, now or _now(), actor=actor)
        return StoppedPairing(row.id, cancelled)


def pause_pairing(
    ctx: Context,
    pairing_id: str | int,
    reason: str,
    *,
    now: datetime | None = None,
    actor: str = "cli",
) -> StoppedPairing:
    """Pause an active pairing; its future sessions are cancelled, the guide's place kept."""
    reason = clean_reason(reason)
    with ctx.database().transaction() as s:
        row = get_pairing(s, pairing_id)
        cancelled = lifecycle.pause_pairing(s, row, reason, now or _now(), actor=actor)
        return StoppedPairing(row.id, cancelled)


def resume_pairing(
    ctx: Context, pairing_id: str | int, *, now: datetime | None = None, actor: str = "cli"
) -> ResumedPairing:
    """Make a paused pairing active again and plan the sessions its pause cancelled (as many
    as fit in its term); session observers are told after the commit."""
    now = now or _now()
    try:
        with ctx.database().transaction() as s:
            row = get_pairing(s, pairing_id)
            program = ctx.config.program(row.program_id)
            created = lifecycle.resume_pairing(s, row, program, now, actor=actor)
            models = [session_model(r) for r in created]
            first = min((r.start for r in created), default=None)
            result = ResumedPairing(row.id, row.learner_id, len(created), first)
    except IntegrityError:
        # Another process planned this pairing's sessions at the same moment; nothing stored.
        raise RuntimeFailure(
            "another process scheduled this pairing's sessions at the same time; nothing was "
            "changed, run the command again"
        ) from None
    for model in models:  # after the commit, so observers see stored sessions
        ctx.registry.session_scheduled(model)
    return result


def set_pair_rule(
    ctx: Context,
    program_id: str,
    learner_ref: str,
    guide_ref: str,
    kind: str,
    *,
    actor: str = "cli",
) -> PairRule:
    """Always (``pin``) or never (``forbid``) pair this learner with this guide."""
    if kind not in ("pin", "forbid"):
        raise UserError(f"a pair rule is pin or forbid, not {kind!r}")
    program = ctx.config.program(program_id)
    with ctx.database().transaction() as s:
        lp, gp = resolve_person(s, learner_ref), resolve_person(s, guide_ref)
        if lp.id == gp.id:
            raise UserError("learner and guide are the same person")
        ensure_program_row(s, program)
        row = s.get(PairRuleRow, (program.id, lp.id, gp.id))
        if row is None:
            s.add(PairRuleRow(program_id=program.id, learner_id=lp.id, guide_id=gp.id, kind=kind))
        else:
            row.kind = kind
        audit(s, actor, kind, "pair_rule", f"{program.id}:{lp.id}:{gp.id}")
        return PairRule(kind, program.id, lp.id, gp.id)


def rematch_pairing(
    ctx: Context,
    pairing_id: str | int,
    reason: str,
    *,
    now: datetime | None = None,
    actor: str = "cli",
) -> dict[str, Any]:
    """End one pairing and find its learner a new guide, disturbing nobody else.

    Returns ``{"ended": <pairing>, "new": <pairing> or None}`` (listing keys).
    """
    reason = clean_reason(reason)
    with ctx.database().transaction() as s:
        old, new = rematch(
            s,
            dict(ctx.config.programs),
            pairing_id,
            ctx.registry,
            reason=reason,
            now=now or _now(),
            actor=actor,
        )
        return {"ended": pairing_dict(old), "new": None if new is None else pairing_dict(new)}


def get_pairing(s: Session, pairing_id: int | str) -> PairingRow:
    """The pairing with this id, or ``NotFoundError`` naming it."""
    text = str(pairing_id).strip()
    numeric = text.isascii() and text.isdigit() and int(text) < 2**63
    row = s.get(PairingRow, int(text)) if numeric else None
    if row is None:
        raise NotFoundError(f"unknown pairing {text!r}")
    return row


def rematch(
    s: Session,
    programs: Mapping[str, Program],
    pairing_id: int | str,
    registry: Hooks | None,
    *,
    reason: str,
    now: datetime,
    actor: str = "cli",
) -> tuple[PairingRow, PairingRow | None]:
    """End one open pairing with ``reason`` and find the learner a new guide; nobody else moves.

    The old guide is not proposed again (an earlier pairing of the same two people never is).
    Returns (the ended pairing, the new one or None when no guide fits).
    """
    old = get_pairing(s, pairing_id)
    if old.status not in OPEN:
        raise UserError(f"pairing {old.id} is {old.status}, not open: nothing to re-match")
    if old.status == "proposed":
        # Re-matching makes an active pairing: a proposal is edited and approved instead.
        raise UserError(
            f"pairing {old.id} is only proposed: edit the proposal (`pairings import`) or "
            "approve it first"
        )
    program = programs.get(old.program_id)
    if program is None:
        raise NotFoundError(f"pairing {old.id}: program {old.program_id!r} is not in the config")
    lifecycle.end_pairing(s, old, reason, now, actor=actor)
    s.flush()
    new = matching.match_one(s, program, old.learner_id, registry, now=now, actor=actor)
    audit(
        s,
        actor,
        "rematch",
        "pairing",
        old.id,
        reason=reason,
        new_pairing=None if new is None else new.id,
    )
    return old, new
