"""What coachbridge tells people, rebuilt from the store whenever a message is (re)sent.

Messages are not stored: a notification row holds only its stable key, and the text is built
from the pairing and its sessions at send time, so no copy of personal data sits in a queue.
Private session notes are never part of any message.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from coachbridge.notify.base import Attachment, Message
from coachbridge.store.tables import PairingRow, PersonRow, ProgramRow, SessionRow
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


def pairing_message(
    s: Session, key: str, *, invitations: dict[object, bytes] | None = None
) -> Message | None:
    """The message for ``key``, or None when its pairing or person no longer exists.

    ``invitations``: a cache the caller keeps across messages. A pairing's two messages carry
    the same invitation (the same sessions, both people as attendees), so building it once
    halves the calendar work of a burst of new pairings."""
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
    sessions = list(
        s.scalars(
            select(SessionRow)
            .where(SessionRow.pairing_id == pairing_id, SessionRow.status == "scheduled")
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

        cache: dict[object, bytes] = {} if invitations is None else invitations
        if "uid_domain" not in cache:
            cache["uid_domain"] = calendar_domain(s).encode()
        uid_domain = cache["uid_domain"].decode()
        # Everything the invitation is made of: a change to any of it makes another entry.
        made_of = (
            pairing.id,
            pairing.program_id,
            learner.id,
            learner.name,
            learner.email,
            guide.id,
            guide.name,
            guide.email,
            program_name,
            getattr(program, "kind", None),
            getattr(program, "owner", None),
            tuple(
                (r.id, r.start, r.minutes, r.status, r.seq, r.agenda, r.ics_sequence, r.updated_at)
                for r in sessions
            ),
        )
        invitation = cache.get(made_of)
        if invitation is None:
            invitation = invitation_for_sessions(
                sessions, pairing, learner, guide, program, uid_domain=uid_domain
            )
            if len(cache) > 64:  # a pairing's two messages come one after the other
                cache.clear()
                cache["uid_domain"] = uid_domain.encode()
            cache[made_of] = invitation
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
