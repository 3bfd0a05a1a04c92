"""The intake questionnaire: signed links, invitations, reminders, and the answers the page saves.

An intake link is ``<[server] public_url>/intake/<token>``. The token is signed with ``[server]
secret_key`` (itsdangerous, like feedback links, under its own salt) and names one person and one
program; it works for the program's ``[programs.intake] link_days``. Unlike a feedback link it
may be used again: the answer stays editable until the person is paired in that program, then the
page shows it read-only.

``send_invitations`` and ``intake_links`` are the use cases of ``coachbridge intake send`` and
``coachbridge intake links``; ``send_reminders`` is the daily run's part (at most two reminders,
``remind_after_days`` apart, to people who have not answered). ``open_intake`` and
``save_intake`` are what the page calls. Answers are personal data: no message, log line or audit
row carries their text; the audit row names the fields that changed and who changed them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from coachbridge.context import Context
from coachbridge.domain.pairing import OPEN
from coachbridge.domain.profile import ProfileAnswer, language_codes
from coachbridge.domain.program import Program
from coachbridge.errors import ConfigError, UserError
from coachbridge.links import LinkExpired, LinkForged, LinkSigner, LinkUsed
from coachbridge.notify.base import Message, Notifier
from coachbridge.notify.dispatch import build_notifiers
from coachbridge.store.audit import audit
from coachbridge.store.chunks import in_chunks
from coachbridge.store.db import Database
from coachbridge.store.profiles import profile_answer
from coachbridge.store.programs import ensure_program_row
from coachbridge.store.tables import (
    EnrollmentRow,
    NotificationRow,
    PairingRow,
    PersonRow,
    ProfileRow,
)
from pydantic import ValidationError
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

__all__ = [
    "MAX_REMINDERS",
    "RACE_ATTEMPTS",
    "AnswerError",
    "AnswerRace",
    "IntakeLink",
    "IntakeView",
    "SentInvitation",
    "answer_intake",
    "build_answer",
    "check_form_nonce",
    "form_nonce",
    "intake_links",
    "intake_program",
    "link_url",
    "make_token",
    "open_intake",
    "read_token",
    "roles_in",
    "save_answer",
    "save_intake",
    "send_invitations",
    "send_reminders",
]

log = logging.getLogger("coachbridge.programs.intake")

#: Reminders after the invitation, at most; each ``remind_after_days`` after the one before.
MAX_REMINDERS = 2
#: The salts of intake links: never change them (links already mailed carry them). The
#: token's age is checked against the program's ``link_days`` from its signed ``t``.
LINKS = LinkSigner(
    salt="coachbridge.programs.intake-link",
    form_salt=b"coachbridge.programs.intake-form",
    what="intake links",
    invalid="this intake link is not valid",
    max_length=1000,
)


class AnswerError(UserError):
    """An answer that does not fit the questionnaire; ``field`` names the question."""

    status = 400

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class AnswerRace(UserError):
    """The same person's first answer was stored by another transaction at the same moment
    (two clicks, two tabs). This transaction is lost; a new one finds that answer and replaces
    it, as any later edit does (``answer_intake``)."""


@dataclass(frozen=True)
class IntakeLink:
    """What a valid token names."""

    person_id: int
    program_id: str

    def __repr__(self) -> str:
        return f"<IntakeLink program={self.program_id} person={self.person_id}>"


def make_token(
    secret_key: Any, person_id: int, program_id: str, *, now: datetime | None = None
) -> str:
    """A signed token naming one person and one program, and when it was made (signed in, so
    that its age can be checked; the caller's clock, so that a run on a fixed clock agrees)."""
    made = int((now or datetime.now(UTC)).timestamp())
    return LINKS.sign(secret_key, {"p": int(person_id), "g": str(program_id), "t": made})


def link_url(public_url: str, token: str) -> str:
    """The address of the intake page for ``token``."""
    return f"{public_url.rstrip('/')}/intake/{token}"


def read_token(
    secret_key: Any, token: str, programs: Mapping[str, Program], *, now: datetime | None = None
) -> IntakeLink:
    """Check the signature, then the age against the named program's ``link_days``.

    ``LinkForged`` for a bad signature or a program without an intake; ``LinkExpired`` when older.
    """
    try:
        data = LINKS.read(secret_key, token)
        link = IntakeLink(int(data["p"]), str(data["g"]))
        signed_at = datetime.fromtimestamp(int(data["t"]), UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        raise LinkForged("this intake link is not valid") from None
    program = programs.get(link.program_id)
    if program is None or program.intake is None:
        raise LinkForged("this intake link is not valid")
    now = now or datetime.now(UTC)
    days = program.intake.link_days
    if now - signed_at > timedelta(days=days):
        raise LinkExpired(
            f"this intake link has expired (links work for {days} days); ask the program "
            "owner for a new one"
        )
    return link


def form_nonce(secret_key: Any, token: str) -> str:
    """The hidden form field a post must carry: ties the post to a page served for the link."""
    return LINKS.form_nonce(secret_key, token)


def check_form_nonce(secret_key: Any, token: str, value: str | None) -> bool:
    """True when ``value`` is the form nonce of ``token`` (constant-time comparison)."""
    return LINKS.check_form_nonce(secret_key, token, value)


def intake_program(ctx: Context, program_id: str) -> Program:
    """The configured program, which must have ``[programs.intake]``."""
    program = ctx.config.program(program_id)
    if program.intake is None:
        raise ConfigError(
            f"programs.{program_id}.intake is not configured: add a [programs.intake] table "
            "(docs/participants.md)"
        )
    return program


# -- who is asked ---------------------------------------------------------------------------
def roles_in(
    s: Session, program_id: str, person_ids: Iterable[int] | None = None
) -> dict[int, str]:
    """Person id -> role for the people enrolled (not opted out) in ``program_id``.

    Someone enrolled on both sides answers as a learner (the stricter questionnaire).
    """
    query = select(EnrollmentRow.person_id, EnrollmentRow.role).where(
        EnrollmentRow.program_id == program_id, EnrollmentRow.opted_out.is_(False)
    )
    if person_ids is not None:
        query = query.where(EnrollmentRow.person_id.in_(list(person_ids) or [-1]))
    roles: dict[int, str] = {}
    for person_id, role in s.execute(query.order_by(EnrollmentRow.person_id)):
        if roles.get(person_id) != "learner":
            roles[person_id] = role
    return roles


def is_paired(s: Session, program_id: str, person_id: int) -> bool:
    """True when the person has an open pairing in the program (their answer is then fixed)."""
    return (
        s.scalars(
            select(PairingRow.id).where(
                PairingRow.program_id == program_id,
                PairingRow.status.in_(OPEN),
                or_(PairingRow.learner_id == person_id, PairingRow.guide_id == person_id),
            )
        ).first()
        is not None
    )


def _paired_people(s: Session, program_id: str) -> set[int]:
    """Everyone with an open pairing in the program, on either side."""
    rows = s.execute(
        select(PairingRow.learner_id, PairingRow.guide_id).where(
            PairingRow.program_id == program_id, PairingRow.status.in_(OPEN)
        )
    )
    return {pid for pair in rows for pid in pair}


def _participants(s: Session, program_id: str) -> list[tuple[PersonRow, str, ProfileRow | None]]:
    """Enrolled, active, not erased people of the program with their role and profile row."""
    roles = roles_in(s, program_id)
    if not roles:
        return []
    people: dict[int, PersonRow] = {}
    profiles: dict[int, ProfileRow] = {}
    for chunk in in_chunks(roles):
        for person in s.scalars(select(PersonRow).where(PersonRow.id.in_(chunk))):
            people[person.id] = person
        for row in s.scalars(
            select(ProfileRow).where(
                ProfileRow.program_id == program_id, ProfileRow.person_id.in_(chunk)
            )
        ):
            profiles[row.person_id] = row
    out = []
    for pid in roles:
        person = people.get(pid)
        if person is None or person.forgotten or person.status != "active":
            continue
        out.append((person, roles[pid], profiles.get(pid)))
    return out


def intake_links(
    ctx: Context, program_id: str, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Every enrolled person's link, for HR to send through their own channel.

    Rows: ``person_id, email, role, url, status`` (``pending`` or ``answered``). Each url is
    freshly signed: it works ``link_days`` from now.
    """
    program = intake_program(ctx, program_id)
    server = ctx.config.server
    LINKS.secret(server.secret_key)
    with ctx.database().transaction() as s:
        rows = []
        for person, role, profile in _participants(s, program.id):
            answered = profile is not None and profile.answered_at is not None
            rows.append(
                {
                    "person_id": person.id,
                    "email": person.email,
                    "role": role,
                    "url": link_url(
                        server.public_url,
                        make_token(server.secret_key, person.id, program.id, now=now),
                    ),
                    "status": "answered" if answered else "pending",
                }
            )
    return rows


# -- sending --------------------------------------------------------------------------------
@dataclass
class SentInvitation:
    """One invitation or reminder sent (or that would be, on a dry run). No link: it is secret."""

    program: str
    person_id: int
    email: str | None
    role: str
    kind: str  # "invitation" | "reminder"
    status: str = "pending"  # pending | sent | failed | dry-run | no email
    key: str = ""
    _message: Message | None = field(default=None, repr=False)

    def as_row(self) -> dict[str, Any]:
        return {
            "program": self.program,
            "person_id": self.person_id,
            "email": self.email,
            "role": self.role,
            "kind": self.kind,
            "status": self.status,
        }


def _message_text(program: Program, person: PersonRow, url: str, *, reminder: bool) -> str:
    assert program.intake is not None
    first = person.preferred_name or person.first_name or person.name or "there"
    opening = (
        f"a reminder: {program.name} would like to hear from you before it pairs people."
        if reminder
        else f"{program.name} will pair you soon. A few questions first, so that the pairing "
        "suits you (what you want to work on or can offer"
        + (", your languages" if program.intake.languages else "")
        + (", when you are free" if program.intake.availability else "")
        + ")."
    )
    return (
        f"Hello {first},\n\n{opening}\n\nIt takes two minutes and needs no login:\n\n{url}\n\n"
        f"The link works for {program.intake.link_days} days. You can change your answers until "
        "you are paired."
    )


def _deliver(
    ctx: Context, items: Sequence[SentInvitation], notifiers: Sequence[Notifier], now: datetime
) -> None:
    """Send each recorded message through every channel and store how it went.

    The notification rows were committed first (status ``pending``), so a crash here never
    sends a message twice on the next run; the key lets a channel recognise a repeat.
    """
    outcomes: dict[tuple[str, str], list[str]] = {}
    for item in items:
        assert item._message is not None
        results = []
        for notifier in notifiers:
            try:
                results.append(notifier.send(item._message))
            except Exception as exc:  # one failing channel must not stop the others
                log.warning("notifier %s failed for %s: %s", type(notifier).__name__, item.key, exc)
                results.append(f"failed: {type(exc).__name__}")
        item.status = (
            "failed" if results and all(r.startswith("failed") for r in results) else "sent"
        )
        item._message = None  # the body holds a secret link: do not keep it around
        outcomes.setdefault((item.status, "; ".join(results)[:1000]), []).append(item.key)
    with ctx.database().transaction() as s:
        for (status, detail), keys in outcomes.items():
            for i in range(0, len(keys), 500):
                s.execute(
                    update(NotificationRow)
                    .where(NotificationRow.key.in_(keys[i : i + 500]))
                    .values(status=status, detail=detail, sent_at=now if status == "sent" else None)
                )
    for notifier in notifiers:
        notifier.close()


_ASK = "a few questions before you are paired"


def _invitation(
    ctx: Context,
    program: Program,
    person: PersonRow,
    role: str,
    key: str,
    now: datetime,
    *,
    reminder: bool,
    dry_run: bool,
) -> SentInvitation:
    """An invitation or reminder with a freshly signed link; on a dry run, without its mail."""
    kind = "reminder" if reminder else "invitation"
    item = SentInvitation(program.id, person.id, person.email, role, kind, key=key)
    server = ctx.config.server
    url = link_url(server.public_url, make_token(server.secret_key, person.id, program.id, now=now))
    item._message = Message(
        key=key,
        to_name=person.name,
        to_email=person.email,
        subject=f"{program.name}: {'a reminder, ' if reminder else ''}{_ASK}",
        body=_message_text(program, person, url, reminder=reminder),
        recipient_id=person.id,
    )
    if dry_run:
        item.status = "dry-run"
        item._message = None
    return item


def _notifiers(ctx: Context) -> list[Notifier]:
    return list(
        build_notifiers(ctx.config.notify, ctx.registry.notifiers, ctx.config.label).values()
    )


def _record(
    s: Session,
    items: list[SentInvitation],
    notifiers: Sequence[Notifier],
    now: datetime,
    again: Mapping[str, NotificationRow] | None = None,
) -> None:
    """A ``pending`` notification row per item; an item whose key failed before (``again``)
    takes that row over (the key is the message's identity: one row per key)."""
    channel = ",".join(type(x).__name__ for x in notifiers)[:50]
    for item in items:
        assert item._message is not None
        row = (again or {}).get(item.key)
        if row is None:
            row = NotificationRow(key=item.key, recipient_id=item.person_id)
            s.add(row)
        row.channel = channel
        row.subject = item._message.subject[:500]
        row.status = "pending"
        row.detail = None
        row.created_at = now


def _existing_keys(s: Session, prefix: str) -> set[str]:
    return set(s.scalars(select(NotificationRow.key).where(NotificationRow.key.like(prefix + "%"))))


def _failed(s: Session, prefix: str) -> dict[str, NotificationRow]:
    """Notifications under ``prefix`` that every channel failed to send, by key."""
    rows = s.scalars(
        select(NotificationRow).where(
            NotificationRow.key.like(prefix + "%"), NotificationRow.status == "failed"
        )
    )
    return {row.key: row for row in rows}


def send_invitations(
    ctx: Context, program_id: str, *, dry_run: bool = False, now: datetime | None = None
) -> list[SentInvitation]:
    """Mail each enrolled person who has not answered a signed link to the intake page.

    The same person is invited at most once a day (the notification key names the day), so
    running the command twice by mistake mails nobody twice. Someone without a work email is
    listed with the status ``no email`` and not invited. A dry run writes and sends nothing.
    """
    now = now or datetime.now(UTC)
    program = intake_program(ctx, program_id)
    server = ctx.config.server
    LINKS.secret(server.secret_key)
    notifiers = [] if dry_run else _notifiers(ctx)
    items: list[SentInvitation] = []
    unmailable: list[SentInvitation] = []
    # Each invited person's reminder clock before this run (put back if the mail fails).
    before: dict[int, tuple[datetime | None, int, datetime | None]] = {}
    with ctx.database().transaction() as s:
        prefix = f"intake:invite:{program.id}:"
        # An invitation no channel could send was never received: a new run sends it again.
        failed = _failed(s, prefix)
        existing = _existing_keys(s, prefix) - set(failed)
        if not dry_run:
            ensure_program_row(s, program)
        for person, role, profile in _participants(s, program.id):
            if profile is not None and profile.answered_at is not None:
                continue
            key = f"{prefix}{person.id}:{now:%Y-%m-%d}"
            if key in existing:
                continue
            if not person.email:
                # Listed, not mailed: HR reaches them another way (`intake links`).
                unmailable.append(
                    SentInvitation(program.id, person.id, None, role, "invitation", "no email")
                )
                continue
            items.append(
                _invitation(ctx, program, person, role, key, now, reminder=False, dry_run=dry_run)
            )
            if dry_run:
                continue
            if profile is None:
                profile = ProfileRow(program_id=program.id, person_id=person.id)
                s.add(profile)
            before[person.id] = (
                profile.invited_at,
                profile.reminders_sent or 0,
                profile.last_reminded_at,
            )
            # A new invitation starts the reminders afresh.
            profile.invited_at = now
            profile.reminders_sent = 0
            profile.last_reminded_at = None
        if not dry_run and items:
            _record(s, items, notifiers, now, failed)
            audit(s, "cli", "intake_invite", "program", program.id, at=now, people=len(items))
    if not dry_run and items:
        _deliver(ctx, items, notifiers, now)
        failed_now = [item for item in items if item.status == "failed"]
        _not_invited(ctx, program, {i.person_id: before[i.person_id] for i in failed_now})
    return sorted(items + unmailable, key=lambda item: item.person_id)


def _not_invited(
    ctx: Context,
    program: Program,
    failed: Mapping[int, tuple[datetime | None, int, datetime | None]],
) -> None:
    """People whose invitation no channel sent were not invited: their reminder clock is put
    back as it was (no reminder of a mail they never got), and ``intake send`` mails them
    again."""
    if not failed:
        return
    with ctx.database().transaction() as s:
        for ids in in_chunks(failed):
            rows = s.scalars(
                select(ProfileRow).where(
                    ProfileRow.program_id == program.id, ProfileRow.person_id.in_(ids)
                )
            )
            for row in rows:
                row.invited_at, row.reminders_sent, row.last_reminded_at = failed[row.person_id]


def due_reminders(
    s: Session, programs: Iterable[Program], now: datetime
) -> list[tuple[Program, PersonRow, str, ProfileRow]]:
    """People invited who have not answered, not paired, and whose next reminder is due."""
    due = []
    for program in programs:
        if program.intake is None:
            continue
        wait = timedelta(days=program.intake.remind_after_days)
        rows = {
            row.person_id: row
            for row in s.scalars(
                select(ProfileRow).where(
                    ProfileRow.program_id == program.id,
                    ProfileRow.answered_at.is_(None),
                    ProfileRow.invited_at.is_not(None),
                    ProfileRow.reminders_sent < MAX_REMINDERS,
                )
            )
        }
        if not rows:
            continue
        paired = _paired_people(s, program.id)
        for person, role, profile in _participants(s, program.id):
            row = rows.get(person.id)
            if row is None or profile is None or not person.email:
                continue
            last = row.last_reminded_at or row.invited_at
            if last is None or now - last < wait:
                continue
            if person.id in paired:
                continue
            due.append((program, person, role, row))
    return due


def send_reminders(ctx: Context, *, now: datetime, dry_run: bool = False) -> list[SentInvitation]:
    """The daily run's part: remind people who were invited and have not answered.

    At most ``MAX_REMINDERS`` per person and invitation, each ``remind_after_days`` after the
    invitation or the reminder before; each carries a freshly signed link. Nobody who answered,
    was paired, opted out, left or was erased is reminded.
    """
    server = ctx.config.server
    programs = [p for p in ctx.config.programs.values() if p.intake is not None]
    if not programs:
        return []
    if server.secret_key is None:
        log.warning("intake reminders skipped: [server] secret_key is not set")
        return []
    notifiers = [] if dry_run else _notifiers(ctx)
    items: list[SentInvitation] = []
    with ctx.database().transaction() as s:
        existing = _existing_keys(s, "intake:remind:")
        for program, person, role, row in due_reminders(s, programs, now):
            number = row.reminders_sent + 1
            invited = row.invited_at or now
            key = f"intake:remind:{program.id}:{person.id}:{invited:%Y%m%dT%H%M%S}:{number}"
            if key in existing:
                continue
            items.append(
                _invitation(ctx, program, person, role, key, now, reminder=True, dry_run=dry_run)
            )
            if dry_run:
                continue
            row.reminders_sent = number
            row.last_reminded_at = now
        if not dry_run and items:
            _record(s, items, notifiers, now)
    if not dry_run and items:
        _deliver(ctx, items, notifiers, now)
    return items


# -- the page -------------------------------------------------------------------------------
@dataclass
class IntakeView:
    """What the page shows: who, which program, what is asked, what is known."""

    program: Program
    person_id: int
    name: str
    job_title: str | None
    role: str
    hris_languages: list[str]
    answer: ProfileAnswer | None
    paired: bool

    def __repr__(self) -> str:  # names and answers are personal data
        return f"<IntakeView program={self.program.id} person={self.person_id}>"


def _load(
    s: Session, programs: Mapping[str, Program], link: IntakeLink
) -> tuple[Program, PersonRow, str]:
    program = programs[link.program_id]
    person = s.get(PersonRow, link.person_id)
    if person is None or person.forgotten:
        raise LinkForged("this intake link is not valid")
    role = roles_in(s, program.id, [person.id]).get(person.id)
    if role is None:
        raise LinkForged(
            "this intake link is no longer valid: you are not enrolled in this program"
        )
    return program, person, role


def open_intake(s: Session, programs: Mapping[str, Program], link: IntakeLink) -> IntakeView:
    """What the page for a valid link shows (``LinkForged`` when the person is not enrolled)."""
    program, person, role = _load(s, programs, link)
    row = s.scalars(
        select(ProfileRow).where(
            ProfileRow.program_id == program.id, ProfileRow.person_id == person.id
        )
    ).first()
    answer = profile_answer(row) if row is not None and row.answered_at is not None else None
    return IntakeView(
        program=program,
        person_id=person.id,
        name=person.name,
        job_title=person.job_title,
        role=role,
        # The HRIS may keep names ("German"); the question asks for ISO 639-1 codes.
        hris_languages=language_codes(person.languages),
        answer=answer,
        paired=is_paired(s, program.id, person.id),
    )


def _field_of(exc: ValidationError) -> tuple[str, str]:
    """The question a pydantic error is about, and its message."""
    err = exc.errors()[0]
    loc = err.get("loc") or ()
    name = str(loc[0]) if loc else "topics"  # the only model-level check is on topics
    message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return name, f"{name}: {message}"


def build_answer(
    program: Program,
    role: str,
    *,
    topics: Sequence[str] = (),
    goal: str | None = None,
    languages: Sequence[str] | None = None,
    availability: Sequence[str] = (),
) -> ProfileAnswer:
    """A validated answer for ``program``; ``AnswerError`` naming the field otherwise.

    Questions the program does not ask are left empty whatever was given.
    """
    intake = program.intake
    assert intake is not None
    try:
        answer = ProfileAnswer(
            topics=list(topics),
            goal=goal if intake.goal else None,
            languages=list(languages) if (intake.languages and languages is not None) else None,
            availability=list(availability) if intake.availability else [],
        )
    except ValidationError as exc:
        raise AnswerError(*_field_of(exc)) from None
    try:
        answer.check_against(intake, role=role)
    except ValueError as exc:
        raise AnswerError("topics", str(exc)) from None
    return answer


def save_answer(
    s: Session,
    program: Program,
    person_id: int,
    answer: ProfileAnswer,
    *,
    actor: str,
    answered_by: str,
    now: datetime,
) -> bool:
    """Store ``answer`` as the person's answer in ``program``; True when it replaced one.

    The audit row names who answered and which fields changed, never what was answered.
    """
    ensure_program_row(s, program)
    row = s.scalars(
        select(ProfileRow).where(
            ProfileRow.program_id == program.id, ProfileRow.person_id == person_id
        )
    ).first()
    replaced = row is not None and row.answered_at is not None
    before = profile_answer(row) if replaced and row is not None else None
    if row is None:
        row = ProfileRow(program_id=program.id, person_id=person_id)
        s.add(row)
    row.topics = list(answer.topics)
    row.goal = answer.goal
    row.languages = None if answer.languages is None else list(answer.languages)
    row.availability = list(answer.availability)
    row.answered_at = now
    row.answered_by = answered_by[:100]
    try:
        s.flush()
    except IntegrityError:  # the same person's first answer stored at the same moment elsewhere
        raise AnswerRace(
            f"another answer of person {person_id} in {program.id} was being saved at the same "
            "moment; try again"
        ) from None
    fields = [
        name
        for name in ("topics", "goal", "languages", "availability")
        if before is None or getattr(before, name) != getattr(answer, name)
    ]
    audit(
        s,
        actor,
        "profile_replaced" if replaced else "profile_answered",
        "person",
        person_id,
        at=now,
        program=program.id,
        by=answered_by,
        fields=fields,
    )
    return replaced


def save_intake(
    s: Session,
    programs: Mapping[str, Program],
    link: IntakeLink,
    *,
    topics: Sequence[str],
    goal: str | None,
    languages: Sequence[str] | None,
    availability: Sequence[str],
    now: datetime,
) -> bool:
    """Record the answer posted on the page; ``LinkUsed`` (409) once the person is paired."""
    program, person, role = _load(s, programs, link)
    if is_paired(s, program.id, person.id):
        raise LinkUsed(
            "you have been matched in this program, so your answers can no longer change; "
            "write to the program owner if something important changed"
        )
    answer = build_answer(
        program, role, topics=topics, goal=goal, languages=languages, availability=availability
    )
    return save_answer(
        s, program, person.id, answer, actor=f"intake:{person.id}", answered_by="self", now=now
    )


#: Transactions ``answer_intake`` tries when first answers of one person race (each lost race
#: means another answer was stored, so the next try replaces it: two suffice for a double click).
RACE_ATTEMPTS = 3


def answer_intake(
    db: Database,
    programs: Mapping[str, Program],
    link: IntakeLink,
    *,
    topics: Sequence[str],
    goal: str | None,
    languages: Sequence[str] | None,
    availability: Sequence[str],
    now: datetime,
) -> bool:
    """``save_intake`` in a transaction of its own, tried again when another first answer of
    the same person won the race: the later answer replaces it, as an edit would."""
    attempt = 1
    while True:
        try:
            with db.transaction() as s:
                return save_intake(
                    s,
                    programs,
                    link,
                    topics=topics,
                    goal=goal,
                    languages=languages,
                    availability=availability,
                    now=now,
                )
        except AnswerRace:
            if attempt == RACE_ATTEMPTS:
                raise
            attempt += 1
