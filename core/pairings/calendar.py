"""Calendar files (RFC 5545) for sessions, built with the ``icalendar`` library.

Every session has a stable UID (``session-<id>@<tag>.coachbridge``, the tag naming the
database: ``calendar_domain``) and its ``ics_sequence`` as SEQUENCE, so importing a newer export, or a newer invitation, updates the event in the
person's calendar instead of adding a second one; a cancelled session is written with
STATUS:CANCELLED (and METHOD:CANCEL when a file holds nothing else). Private notes are never
written: only the time, the two people, the program and the agenda.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from coachbridge.errors import UserError
from coachbridge.store.tables import (
    InstallationRow,
    PairingRow,
    PersonRow,
    ProgramRow,
    SessionRow,
)
from icalendar import Calendar, Event, vCalAddress, vText
from sqlalchemy import select
from sqlalchemy.orm import Session

__all__ = [
    "PRODID",
    "SessionInfo",
    "calendar_domain",
    "calendar_for",
    "invitation_for_sessions",
    "session_uid",
    "summary_for",
]

PRODID = "-//coachbridge//coachbridge sessions//EN"
UID_DOMAIN = "coachbridge"

_KIND_TITLES = {
    "coaching": "Coaching",
    "mentoring": "Mentoring",
    "peer": "Peer mentoring",
    "reverse": "Reverse mentoring",
    "group": "Group mentoring",
    "manager": "Manager check-in",
}


class ProgramLike(Protocol):
    """A ``Program`` from the config or a ``ProgramRow`` from the store."""

    id: str
    name: str


@dataclass(frozen=True)
class SessionInfo:
    """One session with what its calendar entry shows."""

    session: SessionRow
    pairing: PairingRow
    learner: PersonRow
    guide: PersonRow
    program: ProgramLike | None = None
    owner_email: str | None = None  # the program owner, shown as organizer when set
    uid_domain: str = UID_DOMAIN  # ``calendar_domain`` of the session's database


def calendar_domain(s: Session) -> str:
    """The domain part of this database's session UIDs: ``<tag>.coachbridge``, or
    ``coachbridge`` for a database whose invitations went out before it had a tag."""
    row = s.get(InstallationRow, 1)
    tag = row.calendar_tag if row is not None else None
    return f"{tag}.{UID_DOMAIN}" if tag else UID_DOMAIN


def session_uid(session_id: int, domain: str) -> str:
    """The stable UID of a session's calendar event (``domain``: ``calendar_domain``)."""
    return f"session-{session_id}@{domain}"


def _kind(program: ProgramLike | None) -> str:
    kind = getattr(program, "kind", None) if program is not None else None
    value = getattr(kind, "value", kind)
    return _KIND_TITLES.get(str(value), "Session")


def summary_for(info: SessionInfo) -> str:
    """E.g. ``Mentoring: Ana Díaz & Ben Ode`` (learner first)."""
    return f"{_kind(info.program)}: {info.learner.name} & {info.guide.name}"


def _address(person: PersonRow, role: str | None = None) -> vCalAddress | None:
    if not person.email:
        return None
    address = vCalAddress(f"mailto:{person.email}")
    if person.name:
        address.params["CN"] = vText(person.name)
    if role is not None:
        address.params["ROLE"] = vText(role)
        address.params["PARTSTAT"] = vText("NEEDS-ACTION")
        address.params["RSVP"] = vText("TRUE")
    return address


def _stamp(session: SessionRow) -> datetime:
    # DTSTAMP from the row, not the clock: an unchanged session exports to identical bytes.
    moment = session.updated_at or session.created_at or datetime(1970, 1, 1, tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _event(info: SessionInfo) -> Event:
    session = info.session
    start = session.start.astimezone(UTC)
    event = Event()
    event.add("uid", session_uid(session.id, info.uid_domain))
    event.add("dtstamp", _stamp(session))
    event.add("dtstart", start)
    event.add("dtend", start + timedelta(minutes=session.minutes))
    event.add("summary", summary_for(info))
    lines = []
    if info.program is not None:
        lines.append(f"Program: {info.program.name or info.program.id}")
    if session.seq is not None:
        lines.append(f"Session {session.seq}")
    if session.agenda:
        lines.append(f"Agenda: {session.agenda}")
    if lines:
        event.add("description", "\n".join(lines))
    event.add("sequence", session.ics_sequence)
    cancelled = session.status == "cancelled"
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    # A peer pair has no leader: only the program owner (when set) organizes its sessions.
    peer = _kind(info.program) == _KIND_TITLES["peer"]
    organizer_email = info.owner_email or (None if peer else info.guide.email)
    if organizer_email:
        organizer = vCalAddress(f"mailto:{organizer_email}")
        if not info.owner_email and info.guide.name:
            organizer.params["CN"] = vText(info.guide.name)
        event.add("organizer", organizer)
    for person, role in ((info.learner, "REQ-PARTICIPANT"), (info.guide, "REQ-PARTICIPANT")):
        attendee = _address(person, role)
        if attendee is not None:
            event.add("attendee", attendee)
    return event


def _calendar(infos: Iterable[SessionInfo], name: str | None) -> bytes:
    items = sorted(infos, key=lambda i: (i.session.start, i.session.id))
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    only_cancelled = bool(items) and all(i.session.status == "cancelled" for i in items)
    cal.add("method", "CANCEL" if only_cancelled else "REQUEST")
    if name:
        cal.add("x-wr-calname", name)
    for info in items:
        cal.add_component(_event(info))
    return cal.to_ical()


def calendar_for(person: PersonRow, sessions: Sequence[SessionInfo]) -> bytes:
    """One person's calendar file: their sessions (other people's are dropped), oldest first."""
    mine = [i for i in sessions if person.id in (i.learner.id, i.guide.id)]
    return _calendar(mine, f"coachbridge: {person.name}" if person.name else "coachbridge")


def invitation_for_sessions(
    sessions: Sequence[SessionRow],
    pairing: PairingRow,
    learner: PersonRow,
    guide: PersonRow,
    program: ProgramLike | None,
    *,
    uid_domain: str,
) -> bytes:
    """An invitation (METHOD:REQUEST, or CANCEL when all are cancelled) for mail attachments.

    ``uid_domain``: ``calendar_domain`` of the sessions' database."""
    owner = getattr(program, "owner", None) if program is not None else None
    infos = [
        SessionInfo(
            session=row,
            pairing=pairing,
            learner=learner,
            guide=guide,
            program=program,
            owner_email=owner if isinstance(owner, str) and owner else None,
            uid_domain=uid_domain,
        )
        for row in sessions
    ]
    return _calendar(infos, None)


def _write_atomic(path: Path, data: bytes) -> None:
    # A reader (a calendar client polling the folder) never sees a half-written file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_calendars(
    s: Session,
    found: Sequence[tuple[SessionRow, PairingRow]],
    folder: Path,
    program_for: Callable[[str], ProgramLike | None],
) -> int:
    """Write ``person-<id>.ics`` for everyone with a session in ``found``; returns the file count.

    ``program_for(program_id)`` gives the program shown in each entry (its ``owner``, when set,
    is the organizer). Erased people get no file.
    """
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--ics {folder}: not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--ics {folder}: cannot create the folder: {exc.strerror}") from None
    people_ids = {p.learner_id for _, p in found} | {p.guide_id for _, p in found}
    people = {r.id: r for r in s.scalars(select(PersonRow).where(PersonRow.id.in_(people_ids)))}
    programs: dict[str, Any] = {}
    domain = calendar_domain(s)
    by_person: dict[int, list[SessionInfo]] = {pid: [] for pid in people_ids}
    for row, pairing in found:
        if pairing.program_id not in programs:
            # A program no longer (or never) in the config: its stored row still tells the
            # kind, so a peer pair's events name no leader.
            programs[pairing.program_id] = program_for(pairing.program_id) or s.get(
                ProgramRow, pairing.program_id
            )
        program = programs[pairing.program_id]
        owner = getattr(program, "owner", None)
        info = SessionInfo(
            session=row,
            pairing=pairing,
            learner=people[pairing.learner_id],
            guide=people[pairing.guide_id],
            program=program,
            owner_email=owner if isinstance(owner, str) and owner else None,
            uid_domain=domain,
        )
        by_person[pairing.learner_id].append(info)
        by_person[pairing.guide_id].append(info)
    written = 0
    for pid in sorted(people_ids):
        person = people[pid]
        if person.forgotten:
            continue
        try:
            _write_atomic(folder / f"person-{pid}.ics", calendar_for(person, by_person[pid]))
        except OSError as exc:
            raise UserError(f"--ics {folder}: cannot write: {exc.strerror}") from None
        written += 1
    return written
