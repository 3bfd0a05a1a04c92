"""What happens to pairings and sessions as time and people change: leavers, new managers,
terms that end, pauses and resumptions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from coachbridge.domain import Program, ProgramKind
from coachbridge.domain.pairing import OPEN
from coachbridge.errors import UserError
from coachbridge.pairings.scheduling import schedule_pairings
from coachbridge.pairings.terms import term_end
from coachbridge.store.audit import audit
from coachbridge.store.people import chain_above
from coachbridge.store.tables import (
    AuditRow,
    OfferRow,
    PairingRow,
    PersonRow,
    ProgramRow,
    SessionRow,
)
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

REPORTING_FLAG = "guide is now in the learner's reporting chain; review this pairing"
GUIDE_LEFT = "guide left the company"


def cancel_future_sessions(s: Session, pairing: PairingRow, now: datetime) -> int:
    """Cancel a pairing's sessions that have not started; their invitations become cancellations."""
    return len(_cancel_future(s, pairing, now))


def _cancel_future(s: Session, pairing: PairingRow, now: datetime) -> list[int]:
    ids = []
    for session in s.scalars(
        select(SessionRow)
        .where(
            SessionRow.pairing_id == pairing.id,
            SessionRow.status == "scheduled",
            SessionRow.start > now,
        )
        .order_by(SessionRow.id)
    ):
        session.status = "cancelled"
        session.ics_sequence += 1
        ids.append(session.id)
    return ids


def end_pairing(
    s: Session, pairing: PairingRow, reason: str, now: datetime, *, actor: str = "coachbridge"
) -> int:
    """End an open pairing early with ``reason``; returns how many sessions were cancelled.

    A pairing still ``offered`` or ``requested`` takes its open offers or request with it (the
    whole round of offers: the learner is matched afresh, never twice)."""
    if pairing.status in ("offered", "requested"):
        rounds = select(OfferRow.round_id).where(OfferRow.pairing_id == pairing.id)
        s.execute(
            update(OfferRow)
            .where(
                or_(OfferRow.pairing_id == pairing.id, OfferRow.round_id.in_(rounds)),
                OfferRow.status == "open",
            )
            .values(status="withdrawn", answered_at=now, answered_by=actor[:200])
            .execution_options(synchronize_session=False)
        )
    pairing.status = "ended"
    pairing.end_reason = reason
    pairing.ended_at = now
    audit(s, actor, "end_pairing", "pairing", pairing.id, reason=reason)
    return cancel_future_sessions(s, pairing, now)


def end_pairings_of_leaver(s: Session, person: PersonRow, now: datetime) -> tuple[int, int]:
    """A person left: their open pairings end (freeing the guide's capacity), future sessions cancel."""
    ended = cancelled = 0
    for pairing in s.scalars(
        select(PairingRow).where(
            PairingRow.status.in_(OPEN),
            (PairingRow.learner_id == person.id) | (PairingRow.guide_id == person.id),
        )
    ):
        reason = "learner left the company" if pairing.learner_id == person.id else GUIDE_LEFT
        cancelled += end_pairing(s, pairing, reason, now, actor="sync")
        ended += 1
    return ended, cancelled


def flag_reporting_conflicts(s: Session, changed: Iterable[int] | None = None) -> int:
    """Flag open pairings whose guide is now the learner's manager or anyone above them.

    ``changed`` is informational (whose manager changed); a move anywhere can affect everyone
    below it, so every open pairing is re-checked. Returns how many pairings were newly flagged.
    """
    del changed
    managers: dict[int, int | None] = {
        pid: mid for pid, mid in s.execute(select(PersonRow.id, PersonRow.manager_id))
    }
    # Reverse and peer pairs: neither may be above the other.
    both_ways = set(
        s.scalars(select(ProgramRow.id).where(ProgramRow.kind.in_(("reverse", "peer"))))
    )
    flagged = 0
    # In a manager program the guide is the learner's manager by design.
    managed = select(ProgramRow.id).where(ProgramRow.kind == ProgramKind.MANAGER.value)
    for pairing in s.scalars(
        select(PairingRow).where(PairingRow.status.in_(OPEN), PairingRow.program_id.not_in(managed))
    ):
        in_chain = pairing.guide_id in chain_above(managers, pairing.learner_id) or (
            pairing.program_id in both_ways
            and pairing.learner_id in chain_above(managers, pairing.guide_id)
        )
        if in_chain and pairing.flag != REPORTING_FLAG:
            pairing.flag = REPORTING_FLAG
            audit(s, "sync", "flag_pairing", "pairing", pairing.id, reason=REPORTING_FLAG)
            flagged += 1
    return flagged


def finished_pairings(s: Session, program: Program, now: datetime) -> list[PairingRow]:
    """The program's active or paused pairings whose term is over at ``now``."""
    return [
        pairing
        for pairing in s.scalars(
            select(PairingRow)
            .where(PairingRow.program_id == program.id, PairingRow.status.in_(["active", "paused"]))
            .order_by(PairingRow.id)
        )
        if term_end(program, pairing) <= now
    ]


def complete_finished_pairings(s: Session, program: Program, now: datetime) -> int:
    """Mark pairings completed once their term is over (``term_end``), cancelling any session
    still scheduled after ``now``; returns how many pairings completed.

    Sessions between the term's end and ``now`` are left for people to mark: the check may run
    days late (a worker that was down), and a session held then must stay recordable.
    """
    count = 0
    for pairing in finished_pairings(s, program, now):
        end = term_end(program, pairing)
        pairing.status = "completed"
        pairing.ended_at = end
        # Nothing is planned after the term, but a session moved there by hand would be left
        # in people's calendars for a pairing that is over.
        cancelled = cancel_future_sessions(s, pairing, now)
        audit(
            s,
            "coachbridge",
            "complete_pairing",
            "pairing",
            pairing.id,
            program=program.id,
            **({"sessions_cancelled": cancelled} if cancelled else {}),
        )
        count += 1
    return count


def _lock(s: Session, pairing: PairingRow) -> None:
    # Read the status again under a row lock: of two people pausing or resuming the same
    # pairing at once, the second then sees what the first did.
    s.refresh(pairing, with_for_update=True)


def pause_pairing(
    s: Session, pairing: PairingRow, reason: str, now: datetime, *, actor: str
) -> int:
    """Pause an active pairing with ``reason`` (leave, a run of missed sessions ...); its
    sessions that have not started are cancelled. Returns how many were cancelled.

    The guide's place stays taken (a paused pairing is open). The audit row is dated ``now``
    (the health check counts missed sessions after it) and lists the sessions this pause
    cancelled, which are the ones ``resume_pairing`` plans again.
    """
    _lock(s, pairing)
    if pairing.status != "active":
        raise UserError(f"pairing {pairing.id} is {pairing.status}; only active pairings pause")
    pairing.status = "paused"
    pairing.end_reason = reason
    cancelled = _cancel_future(s, pairing, now)
    audit(
        s,
        actor,
        "pause_pairing",
        "pairing",
        pairing.id,
        at=now,
        reason=reason,
        sessions_cancelled=cancelled,
    )
    return len(cancelled)


def _last_pause(s: Session, pairing_id: int) -> AuditRow | None:
    return s.scalars(
        select(AuditRow)
        .where(
            AuditRow.action == "pause_pairing",
            AuditRow.object_type == "pairing",
            AuditRow.object_id == str(pairing_id),
        )
        .order_by(AuditRow.at.desc(), AuditRow.id.desc())
        .limit(1)
    ).first()


def resume_pairing(
    s: Session, pairing: PairingRow, program: Program, now: datetime, *, actor: str
) -> list[SessionRow]:
    """Make a paused pairing active again and plan the sessions its pause cancelled.

    Refused (``UserError``) when the pairing is not paused, either person is no longer
    active, or the pairing's term is over. The sessions the pause cancelled (listed in its
    audit row) stay in the record as cancelled, so their calendar events stay cancelled, but
    leave the plan; the planner then schedules the plan's missing sessions from ``now`` at the
    program's cadence, as many as fit before the term ends, as new sessions with new calendar
    events. Returns the sessions planned.
    """

    _lock(s, pairing)
    if pairing.status != "paused":
        raise UserError(f"pairing {pairing.id} is {pairing.status}, not paused")
    for pid in (pairing.learner_id, pairing.guide_id):
        person = s.get(PersonRow, pid)
        if person is None or person.status != "active":
            raise UserError(
                f"pairing {pairing.id}: person {pid} is no longer active; end the pairing "
                "instead (`coachbridge pairings end`)"
            )
    end = term_end(program, pairing)
    if now >= end:
        raise UserError(
            f"pairing {pairing.id}: its term ended on {end.date().isoformat()}; the daily "
            "check completes it"
        )
    pause = _last_pause(s, pairing.id)
    freed = (pause.details or {}).get("sessions_cancelled") if pause is not None else None
    # Exactly what the pause cancelled: a session someone cancelled by hand before it stays out
    # of the plan. A pause recorded without that list (before coachbridge kept it) frees what
    # was cancelled after it began.
    which = (
        SessionRow.id.in_([int(i) for i in freed])
        if isinstance(freed, list)
        else SessionRow.start > (pause.at if pause is not None else now)
    )
    for session in s.scalars(
        select(SessionRow).where(
            which,
            SessionRow.pairing_id == pairing.id,
            SessionRow.status == "cancelled",
            SessionRow.seq.is_not(None),
        )
    ):
        session.seq = None
    s.flush()  # the freed places in the plan must be visible to the planner's query
    reason = pairing.end_reason
    pairing.status = "active"
    pairing.end_reason = None
    audit(s, actor, "resume_pairing", "pairing", pairing.id, at=now, paused_for=reason)
    return schedule_pairings(s, program, [pairing.id], now=now)
