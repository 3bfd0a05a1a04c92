"""What happens to pairings and sessions when people change: leavers, new managers."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from coachbridge.domain.pairing import OPEN_PAIRING_STATUSES
from coachbridge.store.tables import AuditRow, PairingRow, PersonRow, SessionRow
from sqlalchemy import select
from sqlalchemy.orm import Session

OPEN = [s.value for s in OPEN_PAIRING_STATUSES]
REPORTING_FLAG = "guide is now in the learner's reporting chain; review this pairing"


def audit(
    s: Session, actor: str, action: str, object_type: str, object_id: object, **details: object
) -> None:
    """Record who did what to which object (the ``coachbridge audit`` log)."""
    s.add(
        AuditRow(
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            details=dict(details),
        )
    )


def cancel_future_sessions(s: Session, pairing: PairingRow, now: datetime) -> int:
    """Cancel a pairing's sessions that have not started; their invitations become cancellations."""
    count = 0
    for session in s.scalars(
        select(SessionRow).where(
            SessionRow.pairing_id == pairing.id,
            SessionRow.status == "scheduled",
            SessionRow.start > now,
        )
    ):
        session.status = "cancelled"
        session.ics_sequence += 1
        count += 1
    return count


def end_pairing(
    s: Session, pairing: PairingRow, reason: str, now: datetime, *, actor: str = "coachbridge"
) -> int:
    """End an open pairing early with ``reason``; returns how many sessions were cancelled."""
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
        role = "learner" if pairing.learner_id == person.id else "guide"
        cancelled += end_pairing(s, pairing, f"{role} left the company", now, actor="sync")
        ended += 1
    return ended, cancelled


def chain_above(managers: dict[int, int | None], person_id: int) -> set[int]:
    """Everyone above ``person_id`` in the reporting tree (cycle-safe)."""
    out: set[int] = set()
    node = managers.get(person_id)
    while node is not None and node not in out:
        out.add(node)
        node = managers.get(node)
    return out


def flag_reporting_conflicts(s: Session, changed: Iterable[int] | None = None) -> int:
    """Flag open pairings whose guide is now the learner's manager or anyone above them.

    ``changed`` is informational (whose manager changed); a move anywhere can affect everyone
    below it, so every open pairing is re-checked. Returns how many pairings were newly flagged.
    """
    del changed
    managers: dict[int, int | None] = {
        pid: mid for pid, mid in s.execute(select(PersonRow.id, PersonRow.manager_id))
    }
    flagged = 0
    for pairing in s.scalars(select(PairingRow).where(PairingRow.status.in_(OPEN))):
        in_chain = pairing.guide_id in chain_above(managers, pairing.learner_id)
        if in_chain and pairing.flag != REPORTING_FLAG:
            pairing.flag = REPORTING_FLAG
            audit(s, "sync", "flag_pairing", "pairing", pairing.id, reason=REPORTING_FLAG)
            flagged += 1
    return flagged


def complete_finished_pairings(s: Session, program_id: str, end: datetime, now: datetime) -> int:
    """Mark a fixed-term program's active and paused pairings completed once its end has passed.

    Returns how many pairings were completed (none before ``end``).
    """
    if now < end:
        return 0
    count = 0
    for pairing in s.scalars(
        select(PairingRow).where(
            PairingRow.program_id == program_id, PairingRow.status.in_(["active", "paused"])
        )
    ):
        pairing.status = "completed"
        pairing.ended_at = end
        audit(s, "coachbridge", "complete_pairing", "pairing", pairing.id, program=program_id)
        count += 1
    return count
