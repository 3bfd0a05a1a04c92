"""Manager pairings follow the HRIS: a learner moved to another manager gets a pairing with them.

A sync that changes people's managers calls ``follow_manager_changes`` inside its own
transaction (``coachbridge.hris.sync``). For each manager program and each moved person
enrolled in it as a learner:

* an open pairing whose guide is no longer the person's manager ends with the reason
  ``manager changed``, its sessions that have not started are cancelled (their invitations
  become cancellations), and its history (held sessions, goals, feedback) stays;
* when the person then has no open pairing and their new manager can guide (active, not opted
  out), a new pairing starts with the new manager (active, or proposed if the one it replaces
  was only proposed) and an active one gets its check-ins planned like any session. This also
  holds when the person's last pairing was ended by an earlier change (``manager changed``, or
  their manager left the company before the HRIS named a new one); a learner whose pairing was
  ended by hand, or who was never paired, is paired by ``coachbridge match`` instead.

A person whose pairing already has their current manager is left alone, so running the same
sync again changes nothing. With a ``registry``, plugins' observers hear of the new active
pairings and their planned check-ins once the sync's transaction commits (never on rollback).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from coachbridge.context import Hooks
from coachbridge.domain.pairing import OPEN, PairingStatus
from coachbridge.domain.program import Program
from coachbridge.matching.managers import (
    MANAGER_CHANGED,
    current_managers,
    is_manager_program,
)
from coachbridge.matching.service import announce_after_commit
from coachbridge.pairings.lifecycle import GUIDE_LEFT, end_pairing
from coachbridge.pairings.scheduling import schedule_pairings, session_model
from coachbridge.store.audit import audit
from coachbridge.store.chunks import in_chunks
from coachbridge.store.programs import ensure_program_row
from coachbridge.store.tables import EnrollmentRow, PairingRow, PersonRow
from sqlalchemy import event, select
from sqlalchemy.orm import Session

__all__ = ["ManagerMoves", "follow_manager_changes"]


@dataclass
class ManagerMoves:
    """What following the moved people did."""

    ended: int = 0  # pairings ended with "manager changed"
    started: list[int] = field(default_factory=list)  # new pairings (ids)
    sessions_cancelled: int = 0
    sessions_planned: int = 0

    def merge(self, other: ManagerMoves) -> None:
        self.ended += other.ended
        self.started += other.started
        self.sessions_cancelled += other.sessions_cancelled
        self.sessions_planned += other.sessions_planned


def _enrolled_learners(s: Session, program_id: str, people: list[int]) -> set[int]:
    out: set[int] = set()
    for part in in_chunks(people):
        out.update(
            s.scalars(
                select(EnrollmentRow.person_id)
                .join(PersonRow, PersonRow.id == EnrollmentRow.person_id)
                .where(
                    EnrollmentRow.program_id == program_id,
                    EnrollmentRow.role == "learner",
                    EnrollmentRow.opted_out.is_(False),
                    EnrollmentRow.person_id.in_(part),
                    PersonRow.status == "active",
                    PersonRow.forgotten.is_(False),
                )
            )
        )
    return out


def _ended_by_change(s: Session, program_id: str, learner: int) -> bool:
    """True when the learner's last pairing in the program ended because the HRIS changed
    (their manager moved or left), not by someone's decision."""
    last = s.scalars(
        select(PairingRow)
        .where(PairingRow.program_id == program_id, PairingRow.learner_id == learner)
        .order_by(PairingRow.id.desc())
        .limit(1)
    ).first()
    return (
        last is not None
        and last.status == PairingStatus.ENDED.value
        and last.end_reason in (MANAGER_CHANGED, GUIDE_LEFT)
    )


def _follow(
    s: Session,
    program: Program,
    moved: list[int],
    now: datetime,
    actor: str,
    registry: Hooks | None,
) -> ManagerMoves:
    moves = ManagerMoves()
    learners = _enrolled_learners(s, program.id, moved)
    if not learners:
        return moves
    current = current_managers(s, program, learners)
    open_rows: dict[int, list[PairingRow]] = {}
    for row in s.scalars(
        select(PairingRow)
        .where(
            PairingRow.program_id == program.id,
            PairingRow.status.in_(OPEN),
            PairingRow.learner_id.in_(sorted(learners)),
        )
        .order_by(PairingRow.id)
    ):
        open_rows.setdefault(row.learner_id, []).append(row)
    ensure_program_row(s, program)
    new_rows: list[PairingRow] = []
    for learner in sorted(learners):
        manager = current.get(learner)
        rows = open_rows.get(learner, [])
        kept = [r for r in rows if r.guide_id == manager]
        replaced_status = PairingStatus.ACTIVE.value
        for row in rows:
            if row.guide_id != manager:
                if row.status == PairingStatus.PROPOSED.value:
                    replaced_status = PairingStatus.PROPOSED.value
                moves.sessions_cancelled += end_pairing(s, row, MANAGER_CHANGED, now, actor=actor)
                moves.ended += 1
        if kept or not isinstance(manager, int):
            continue
        if not rows and not _ended_by_change(s, program.id, learner):
            continue
        new = PairingRow(
            program_id=program.id,
            learner_id=learner,
            guide_id=manager,
            score=0.0,
            breakdown={},
            status=replaced_status,
            activated_at=now if replaced_status == PairingStatus.ACTIVE.value else None,
        )
        s.add(new)
        new_rows.append(new)
    s.flush()
    for row in new_rows:
        audit(
            s,
            actor,
            "create_pairing",
            "pairing",
            row.id,
            program=program.id,
            status=row.status,
            learner_id=row.learner_id,
            guide_id=row.guide_id,
            reason=MANAGER_CHANGED,
        )
        moves.started.append(row.id)
    announce_after_commit(s, registry, new_rows)
    active = [r.id for r in new_rows if r.status == PairingStatus.ACTIVE.value]
    if active:
        planned = schedule_pairings(s, program, active, now=now)
        moves.sessions_planned += len(planned)
        if registry is not None and planned:
            models = [session_model(row) for row in planned]

            def _tell(_session: Session) -> None:
                for model in models:
                    registry.session_scheduled(model)

            event.listen(s, "after_commit", _tell, once=True)
    return moves


def follow_manager_changes(
    s: Session,
    programs: Iterable[Program],
    moved: Iterable[int],
    now: datetime,
    *,
    actor: str = "sync",
    registry: Hooks | None = None,
) -> ManagerMoves:
    """End and restart the manager pairings of ``moved`` people (person ids whose manager
    changed) in every manager program of ``programs``, inside the caller's transaction."""
    people = sorted(set(moved))
    moves = ManagerMoves()
    if not people:
        return moves
    for program in programs:
        if is_manager_program(program):
            moves.merge(_follow(s, program, people, now, actor, registry))
    return moves
