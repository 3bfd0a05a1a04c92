"""What coachbridge tells people, rebuilt from the store whenever a message is (re)sent.

Messages are not stored: a notification row holds only its stable key, and the text is built
from the pairing and its sessions at send time, so no copy of personal data sits in a queue.
Private session notes are never part of any message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from coachbridge.notify.base import Attachment, Message
from coachbridge.store.tables import (
    PairingRow,
    PersonRow,
    ProgramRow,
    SessionAttendanceRow,
    SessionRow,
)
from sqlalchemy import select
from sqlalchemy.orm import Session


def pairing_key(pairing_id: int, role: str, channel: str) -> str:
    """The stable key of the "you have been paired" message to one side of a pairing."""
    return f"pairing:{pairing_id}:{role}:{channel}"


def parse_pairing_key(key: str) -> tuple[int, str] | None:
    parts = key.split(":")
    if len(parts) != 4 or parts[0] != "pairing" or not parts[1].isdigit():
        return None
    return int(parts[1]), parts[2]


def _zone(person: PersonRow) -> ZoneInfo:
    try:
        return ZoneInfo(person.timezone) if person.timezone else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("UTC")


@dataclass
class InvitationCache:
    """Invitations built during one sending round, by everything they are made of. A
    pairing's two messages (and a circle's learners' messages) carry the same invitation, so
    building it once saves most of the calendar work of a burst of new pairings."""

    uid_domain: str | None = None  # ``calendar_domain`` of the database, read once
    built: dict[tuple[Any, ...], bytes] = field(default_factory=dict)


def _invitation_key(
    pairing: PairingRow,
    learner: PersonRow,
    guide: PersonRow,
    program: ProgramRow | None,
    sessions: list[SessionRow],
    attendees: dict[int, list[PersonRow]] | None,
) -> tuple[Any, ...]:
    """What an invitation is made of: a change to any of it builds another one."""
    meetings = tuple(
        (r.id, r.start, r.minutes, r.status, r.seq, r.agenda, r.ics_sequence, r.updated_at)
        for r in sessions
    )
    shown = (
        pairing.program_id,
        getattr(program, "name", None),
        getattr(program, "kind", None),
        getattr(program, "owner", None),
        guide.id,
        guide.name,
        guide.email,
        meetings,
    )
    if attendees is None:
        return ("pair", pairing.id, learner.id, learner.name, learner.email, *shown)
    who = tuple(
        (sid, tuple((p.id, p.name, p.email) for p in people))
        for sid, people in sorted(attendees.items())
    )
    return ("circle", pairing.circle_id, *shown, who)


def pairing_message(
    s: Session, key: str, *, invitations: InvitationCache | None = None
) -> Message | None:
    """The message for ``key``, or None when its pairing or person no longer exists.

    ``invitations``: the cache a caller sending several messages keeps across them."""
    parsed = parse_pairing_key(key)
    if parsed is None:
        return None
    pairing_id, role = parsed
    pairing = s.get(PairingRow, pairing_id)
    if pairing is None:
        return None
    learner = s.get(PersonRow, pairing.learner_id)
    guide = s.get(PersonRow, pairing.guide_id)
    if learner is None or guide is None:
        return None
    program = s.get(ProgramRow, pairing.program_id)
    program_name = program.name if program else pairing.program_id
    kind = program.kind if program else "coaching"
    guide_word = {"mentoring": "mentor", "reverse": "mentor", "manager": "manager"}.get(
        kind, "coach"
    )
    me, other = (learner, guide) if role == "learner" else (guide, learner)
    peer = kind == "peer"  # neither is the guide: both get the same words
    # A circle learner's sessions are their circle's meetings (one event each, every attendee).
    mine = (
        SessionRow.pairing_id == pairing_id
        if pairing.circle_id is None
        else SessionRow.circle_id == pairing.circle_id
    )
    sessions = list(
        s.scalars(
            select(SessionRow)
            .where(mine, SessionRow.status == "scheduled")
            .order_by(SessionRow.start)
        )
    )
    zone = _zone(me)
    lines = [f"Hello {me.preferred_name or me.first_name or me.name},", ""]
    if peer:
        lines.append(
            f"you are now part of {program_name}. Your peer partner is {other.name}"
            + (f" ({other.job_title})" if other.job_title else "")
            + ": you learn from each other."
        )
    elif role == "learner":
        lines.append(
            f"you are now part of {program_name}. Your {guide_word} is {guide.name}"
            + (f" ({guide.job_title})" if guide.job_title else "")
            + "."
        )
    else:
        lines.append(
            f"thank you for being a {guide_word} in {program_name}. You will be working with "
            f"{learner.name}" + (f" ({learner.job_title})" if learner.job_title else "") + "."
        )
    if sessions:
        lines += ["", "Your sessions (also attached as a calendar invitation):"]
        for row in sessions:
            local = row.start.astimezone(zone)
            lines.append(f"  - {local:%A %d %B %Y, %H:%M} {zone.key} ({row.minutes} minutes)")
    lines += [
        "",
        f"You can reach {other.name} at {other.email}." if other.email else "",
        "",
        "Good luck, and enjoy the conversations.",
    ]
    attachments = []
    if sessions:
        from coachbridge.pairings.calendar import calendar_domain, invitation_for_sessions

        cache = invitations if invitations is not None else InvitationCache()
        if cache.uid_domain is None:
            cache.uid_domain = calendar_domain(s)
        # A circle's meetings list every attendee: one invitation for the whole circle.
        attendees = _attendees(s, sessions) if pairing.circle_id is not None else None
        made_of = _invitation_key(pairing, learner, guide, program, sessions, attendees)
        invitation = cache.built.get(made_of)
        if invitation is None:
            invitation = invitation_for_sessions(
                sessions,
                pairing,
                learner,
                guide,
                program,
                uid_domain=cache.uid_domain,
                attendees=attendees,
            )
            if len(cache.built) >= 64:  # a pairing's two messages come one after the other
                cache.built.clear()
            cache.built[made_of] = invitation
        attachments.append(
            Attachment(filename="sessions.ics", content_type="text/calendar", data=invitation)
        )
    return Message(
        key=key,
        to_name=me.name,
        to_email=me.email,
        subject=f"{program_name}: your peer partner"
        if peer
        else f"{program_name}: your {guide_word} pairing"
        if role == "learner"
        else f"{program_name}: you have a new {'mentee' if kind in ('mentoring', 'reverse') else 'coachee'}",
        body="\n".join(lines).replace("\n\n\n", "\n\n") + "\n",
        attachments=attachments,
        recipient_id=me.id,
    )


def _attendees(s: Session, sessions: list[SessionRow]) -> dict[int, list[PersonRow]]:
    """Circle meetings' attending learners, by session id."""
    out: dict[int, list[PersonRow]] = {row.id: [] for row in sessions}
    for session_id, person in s.execute(
        select(SessionAttendanceRow.session_id, PersonRow)
        .join(PersonRow, PersonRow.id == SessionAttendanceRow.person_id)
        .where(SessionAttendanceRow.session_id.in_(list(out)))
        .order_by(SessionAttendanceRow.person_id)
    ):
        out[session_id].append(person)
    return out
