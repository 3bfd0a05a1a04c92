"""The sessions use cases: listing them, writing calendar files, planning the sessions of
active pairings, and recording what happened (marked, logged, rescheduled).

Each runs in one transaction of its own and returns plain data ready for output; the rules
themselves (where a session may fall, what may be marked when) are
``coachbridge.pairings.scheduling``. Observers of ``coachbridge_on_session_scheduled`` are
told after the commit, so they never see a session that was rolled back. A time given without
an offset is read in the learner's time zone, as the pairing would say it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coachbridge.context import Context, check_program
from coachbridge.domain.program import Program
from coachbridge.domain.session import Session as SessionModel
from coachbridge.errors import NotFoundError, RuntimeFailure, UserError
from coachbridge.pairings import scheduling
from coachbridge.pairings.calendar import write_calendars
from coachbridge.store.people import resolve_person
from coachbridge.store.programs import ensure_program_row
from coachbridge.store.tables import (
    PairingRow,
    PersonRow,
    ProgramRow,
    SessionAttendanceRow,
    SessionRow,
)
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class CalendarExport:
    files: int
    sessions: int


@dataclass(frozen=True)
class ProgramSchedule:
    program: str
    sessions: int  # planned now
    pairings: int  # that got them


@dataclass(frozen=True)
class MarkedSession:
    id: int
    status: str
    changed: bool  # False: it already had that status


@dataclass(frozen=True)
class LoggedSession:
    id: int
    pairing_id: int
    start: datetime
    created: bool  # False: the same session was logged before


@dataclass(frozen=True)
class MovedSession:
    id: int
    start: datetime
    notes: list[str] = field(default_factory=list)  # why the time is unusual, if it is


def _now() -> datetime:
    return datetime.now(UTC)


def session_dict(row: SessionRow, pairing: PairingRow) -> dict[str, Any]:
    """The listing keys of one session (start in UTC)."""
    # private_notes are deliberately absent: they never leave the store.
    return {
        "id": row.id,
        "pairing_id": row.pairing_id,
        "program": pairing.program_id,
        "learner_id": pairing.learner_id,
        "guide_id": pairing.guide_id,
        "seq": row.seq,
        "start": row.start.astimezone(UTC).isoformat(),
        "minutes": row.minutes,
        "status": row.status,
        "agenda": row.agenda,
    }


def circle_keys(s: Session, rows: Sequence[SessionRow]) -> dict[int, dict[str, Any]]:
    """The extra listing keys of circle meetings: ``circle_id``, ``attendees`` (each learner's
    ``person_id``, ``pairing_id`` and attendance ``status``) and ``outside_hours``."""
    ids = [r.id for r in rows if r.circle_id is not None]
    if not ids:
        return {}
    attendees: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for a in s.scalars(
        select(SessionAttendanceRow)
        .where(SessionAttendanceRow.session_id.in_(ids))
        .order_by(SessionAttendanceRow.session_id, SessionAttendanceRow.person_id)
    ):
        attendees[a.session_id].append(
            {"person_id": a.person_id, "pairing_id": a.pairing_id, "status": a.status}
        )
    return {
        r.id: {
            "circle_id": r.circle_id,
            "attendees": attendees[r.id],
            "outside_hours": list(r.outside_hours or []),
        }
        for r in rows
        if r.circle_id is not None
    }


def _find(
    ctx: Context,
    s: Session,
    program_id: str | None,
    person_ref: str | None,
    status: str | None,
) -> list[tuple[SessionRow, PairingRow]]:
    stmt = (
        select(SessionRow, PairingRow)
        .join(PairingRow, PairingRow.id == SessionRow.pairing_id)
        .order_by(SessionRow.start, SessionRow.id)
    )
    if program_id is not None:
        check_program(ctx, s, program_id)
        stmt = stmt.where(PairingRow.program_id == program_id)
    if person_ref is not None:
        pid = resolve_person(s, person_ref).id
        attends = select(SessionAttendanceRow.session_id).where(
            SessionAttendanceRow.person_id == pid
        )
        stmt = stmt.where(
            or_(
                # A circle meeting is the guide's and its attendees', not its first pairing's.
                (PairingRow.learner_id == pid) & SessionRow.circle_id.is_(None),
                PairingRow.guide_id == pid,
                SessionRow.id.in_(attends),
            )
        )
    if status is not None:
        stmt = stmt.where(SessionRow.status == status)
    return [(row, pairing) for row, pairing in s.execute(stmt)]


def list_sessions(
    ctx: Context,
    *,
    program_id: str | None = None,
    person_ref: str | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """Sessions by start (of one program, one person on either side, one status)."""
    with ctx.database().transaction() as s:
        found = _find(ctx, s, program_id, person_ref, status)
        extra = circle_keys(s, [row for row, _ in found])
        return [session_dict(row, p) | extra.get(row.id, {}) for row, p in found]


def export_calendars(
    ctx: Context,
    folder: Path,
    *,
    program_id: str | None = None,
    person_ref: str | None = None,
    status: str | None = None,
) -> CalendarExport:
    """Write ``folder/person-<id>.ics`` for everyone with a session among those selected."""
    with ctx.database().transaction() as s:
        found = _find(ctx, s, program_id, person_ref, status)

        def program_for(pid: str) -> Any:
            return ctx.config.programs.get(pid) or s.get(ProgramRow, pid)

        count = write_calendars(s, found, folder, program_for)
    return CalendarExport(files=count, sessions=len(found))


def _tell_observers(ctx: Context, models: Sequence[SessionModel]) -> None:
    for model in models:
        ctx.registry.session_scheduled(model)


def schedule_sessions(
    ctx: Context, program_id: str | None = None, *, now: datetime | None = None
) -> list[ProgramSchedule]:
    """Plan the missing sessions of every active pairing (of one program, else of all)."""
    config = ctx.config
    programs = [config.program(program_id)] if program_id else list(config.programs.values())
    if not programs:
        raise UserError("no programs configured: add [[programs]] tables to the config")
    now = now or _now()
    out: list[ProgramSchedule] = []
    try:
        with ctx.database().transaction() as s:
            models = []
            for program in programs:
                ensure_program_row(s, program)
                rows = scheduling.schedule_pairings(s, program, now=now)
                pairings = len({r.pairing_id for r in rows})
                out.append(ProgramSchedule(program.id, len(rows), pairings))
                models += [scheduling.session_model(row) for row in rows]
    except IntegrityError:
        # Another process planned the same sessions at the same moment; nothing was stored.
        raise RuntimeFailure(
            "another process scheduled these sessions at the same time; nothing was changed, "
            "run the command again"
        ) from None
    _tell_observers(ctx, models)  # after the commit, so observers see stored sessions
    return out


def mark_session(
    ctx: Context,
    session_id: int,
    status: str,
    *,
    person_ref: str | None = None,
    now: datetime | None = None,
    actor: str = "cli",
) -> MarkedSession:
    """Record that a session was held, missed (once it has started) or cancelled; with
    ``person_ref``, that one learner came to (held) or missed a circle meeting."""
    with ctx.database().transaction() as s:
        person_id = resolve_person(s, person_ref).id if person_ref is not None else None
        row, changed = scheduling.mark_session(
            s, session_id, status, now=now or _now(), actor=actor, person_id=person_id
        )
        return MarkedSession(row.id, row.status, changed)


def _pairing(s: Session, pairing_id: int) -> PairingRow:
    pairing = s.get(PairingRow, pairing_id)
    if pairing is None:
        raise NotFoundError(f"unknown pairing id {pairing_id}")
    return pairing


def _learner_zone(s: Session, pairing: PairingRow) -> Any:
    return scheduling.person_zone(s.get(PersonRow, pairing.learner_id))


def log_session(
    ctx: Context,
    pairing_id: int,
    when: str,
    minutes: int | None = None,
    *,
    now: datetime | None = None,
    actor: str = "cli",
) -> LoggedSession:
    """Record a session of a pairing that already happened outside the plan (held).

    ``minutes`` defaults to the program's session length.
    """
    with ctx.database().transaction() as s:
        pairing = _pairing(s, pairing_id)
        start = scheduling.parse_when(when, _learner_zone(s, pairing))
        if minutes is None:
            program = ctx.config.programs.get(pairing.program_id)
            minutes = (
                program.session_minutes
                if program
                else Program.model_fields["session_minutes"].default
            )
        row, created = scheduling.log_session(
            s, pairing_id, start, minutes, now=now or _now(), actor=actor
        )
        return LoggedSession(row.id, pairing_id, row.start, created)


def reschedule_session(
    ctx: Context,
    session_id: int,
    when: str,
    *,
    now: datetime | None = None,
    actor: str = "cli",
) -> MovedSession:
    """Move a scheduled session (checked against both people's other sessions); the notes
    say what the planner would have avoided about the new time (weekend, holiday, hours)."""
    with ctx.database().transaction() as s:
        row = s.get(SessionRow, session_id)
        if row is None:
            raise NotFoundError(f"unknown session id {session_id}")
        pairing = _pairing(s, row.pairing_id)
        zone = _learner_zone(s, pairing)
        row = scheduling.reschedule_session(
            s, session_id, scheduling.parse_when(when, zone), now=now or _now(), actor=actor
        )
        program = ctx.config.programs.get(pairing.program_id)
        notes = []
        if program is not None:
            guide_zone = scheduling.person_zone(s.get(PersonRow, pairing.guide_id))
            notes = scheduling.slot_notes(
                program, row.start, row.minutes, [("learner", zone), ("guide", guide_zone)]
            )
        return MovedSession(row.id, row.start, notes)
