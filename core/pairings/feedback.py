"""Session feedback: signed single-use links, the answers they carry, and the same from the CLI.

A feedback link is ``<public_url>/feedback/<token>``: the token is signed with ``[server]
secret_key`` (itsdangerous), names one session and one person, expires after 14 days and
works once (its random nonce is stored in ``feedback_links`` when it is answered). Feedback
comes only from the session's learner or guide and only on a held session; a second answer
from the same person on the same session replaces the first. The private note is read back
only by its author (through their own link); it never reaches a report, export, log or
notification. The comment goes to the program owner only.

``add_feedback`` and ``list_feedback`` are the use cases of ``coachbridge feedback``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from coachbridge.context import Context
from coachbridge.domain import plain_text
from coachbridge.errors import NotFoundError, UserError
from coachbridge.links import LinkForged, LinkSigner, LinkUsed
from coachbridge.store.audit import audit
from coachbridge.store.people import resolve_person
from coachbridge.store.tables import (
    FeedbackLinkRow,
    FeedbackRow,
    PairingRow,
    PersonRow,
    SessionAttendanceRow,
    SessionRow,
)
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

LINK_MAX_AGE_SECONDS = 14 * 24 * 3600
MAX_TEXT = 5000
#: The salts of feedback links: never change them (links already mailed carry them).
LINKS = LinkSigner(
    salt="coachbridge.pairings.feedback-link",
    form_salt=b"coachbridge.pairings.feedback-form",
    what="feedback links",
    invalid="this feedback link is not valid",
    timed=True,
)


class Outcome(StrEnum):
    """What the person says happened to the session."""

    HELD = "held"
    MISSED = "missed"
    RESCHEDULED = "rescheduled"


@dataclass(frozen=True)
class FeedbackLink:
    """What a valid token names. ``nonce`` makes each link single-use."""

    session_id: int
    person_id: int
    nonce: str

    def __repr__(self) -> str:  # the nonce is part of a secret link
        return f"<FeedbackLink session={self.session_id} person={self.person_id}>"


def make_token(secret_key: Any, session_id: int, person_id: int) -> str:
    """A signed token naming ``session_id`` and ``person_id`` with a fresh random nonce."""
    payload = {"s": int(session_id), "p": int(person_id), "n": secrets.token_urlsafe(16)}
    return LINKS.sign(secret_key, payload)


def link_url(public_url: str, token: str) -> str:
    """The address of the feedback form for ``token``."""
    return f"{public_url.rstrip('/')}/feedback/{token}"


def read_token(secret_key: Any, token: str, *, max_age: int = LINK_MAX_AGE_SECONDS) -> FeedbackLink:
    """Check the signature and age of ``token``; raise ``LinkForged`` or ``LinkExpired``."""
    data = LINKS.read(
        secret_key,
        token,
        max_age=max_age,
        expired="this feedback link has expired (links work for 14 days)",
    )
    try:
        return FeedbackLink(int(data["s"]), int(data["p"]), str(data["n"]))
    except (KeyError, TypeError, ValueError):
        raise LinkForged("this feedback link is not valid") from None


def form_nonce(secret_key: Any, token: str) -> str:
    """The hidden form field that must come back with a POST (ties the post to the page)."""
    return LINKS.form_nonce(secret_key, token)


def check_form_nonce(secret_key: Any, token: str, value: str | None) -> bool:
    """True when ``value`` is the form nonce for ``token`` (constant-time comparison)."""
    return LINKS.check_form_nonce(secret_key, token, value)


def _clean_text(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        value = plain_text(value)
    except ValueError as exc:
        raise UserError(f"the {what} {exc}") from None
    if len(value) > MAX_TEXT:
        raise UserError(f"the {what} is longer than {MAX_TEXT} characters")
    return value


def check_rating(value: object) -> int:
    """A rating as an int 1..5, or ``UserError``."""
    try:
        rating = int(str(value).strip())
    except (TypeError, ValueError):
        raise UserError(f"rating must be a whole number from 1 to 5, not {value!r}") from None
    if not 1 <= rating <= 5:
        raise UserError(f"rating must be from 1 to 5, not {rating}")
    return rating


def session_context(
    s: Session, session_id: int, person_id: int | None = None
) -> tuple[SessionRow, PairingRow]:
    """The session and its pairing, or ``NotFoundError``. For a circle meeting attended by
    ``person_id``, the pairing is that learner's own (feedback is per attendee)."""
    row = s.get(SessionRow, session_id)
    if row is None:
        raise NotFoundError(f"unknown session id {session_id}")
    pairing_id = row.pairing_id
    if row.circle_id is not None and person_id is not None:
        attendance = s.get(SessionAttendanceRow, (session_id, person_id))
        if attendance is not None:
            pairing_id = attendance.pairing_id
    pairing = s.get(PairingRow, pairing_id)
    if pairing is None:  # pragma: no cover - foreign key
        raise NotFoundError(f"session {session_id} has no pairing")
    return row, pairing


def check_participant(pairing: PairingRow, person: PersonRow, session_id: int) -> str:
    """The person's side (``learner``/``guide``) or ``UserError`` when they are not in it."""
    if person.id == pairing.learner_id:
        return "learner"
    if person.id == pairing.guide_id:
        return "guide"
    raise UserError(
        f"person {person.id} is neither the learner nor the guide of session {session_id}"
    )


def record_feedback(
    s: Session,
    session_id: int,
    person: PersonRow,
    rating: object,
    *,
    comment: str | None = None,
    private_note: str | None = None,
    outcome: str = Outcome.HELD.value,
    actor: str = "cli",
) -> tuple[FeedbackRow, bool]:
    """Store one person's feedback on a held session; returns (row, replaced an earlier answer)."""
    session, pairing = session_context(s, session_id, person.id)
    side = check_participant(pairing, person, session_id)
    if person.forgotten:
        raise UserError(f"person {person.id} has been erased and cannot give feedback")
    if session.status != "held":
        raise UserError(
            f"session {session_id} is {session.status}: feedback is taken on held sessions only "
            f"(mark it first: coachbridge sessions mark {session_id} held)"
        )
    value = check_rating(rating)
    comment = _clean_text(comment, "comment")
    private_note = _clean_text(private_note, "private note")
    row = s.scalars(
        select(FeedbackRow).where(
            FeedbackRow.session_id == session_id, FeedbackRow.from_person_id == person.id
        )
    ).first()
    replaced = row is not None
    if row is None:
        row = FeedbackRow(
            session_id=session_id, pairing_id=pairing.id, from_person_id=person.id, rating=value
        )
        s.add(row)
    row.rating = value
    row.outcome = outcome
    row.comment = comment
    row.private_note = private_note
    try:
        s.flush()
    except IntegrityError:  # the same person answered at the same moment elsewhere
        raise UserError(
            f"another answer from person {person.id} on session {session_id} was being "
            "recorded at the same moment; try again"
        ) from None
    # Only the fact and the side go to the audit log: never the comment or the note.
    audit(
        s,
        actor,
        "feedback_replaced" if replaced else "feedback_added",
        "session",
        session_id,
        side=side,
        rating=value,
    )
    return row, replaced


@dataclass
class LinkAnswer:
    """What answering a link did."""

    outcome: str
    feedback_id: int | None
    session_status: str


def _person_for_link(s: Session, link: FeedbackLink) -> PersonRow:
    person = s.get(PersonRow, link.person_id)
    if person is None or person.forgotten:
        raise LinkForged("this feedback link is not valid")
    return person


def link_state(s: Session, link: FeedbackLink) -> FeedbackLinkRow | None:
    """The stored answer of ``link``, or None while it is unused."""
    return s.get(FeedbackLinkRow, link.nonce)


def open_link(s: Session, link: FeedbackLink) -> tuple[SessionRow, PairingRow, PersonRow]:
    """Check that a valid token still names a session its person belongs to."""
    try:
        session, pairing = session_context(s, link.session_id, link.person_id)
    except NotFoundError:
        raise LinkForged("this feedback link is not valid") from None
    person = _person_for_link(s, link)
    try:
        check_participant(pairing, person, link.session_id)
    except UserError:
        raise LinkForged("this feedback link is not valid") from None
    return session, pairing, person


def answer_link(
    s: Session,
    link: FeedbackLink,
    *,
    outcome: str,
    rating: object = None,
    comment: str | None = None,
    private_note: str | None = None,
    now: datetime,
) -> LinkAnswer:
    """Record the answer to a feedback link, once. Raises ``LinkUsed`` on a second answer.

    ``held`` marks the session held (if it was still scheduled) and stores the rating;
    ``missed`` marks a scheduled session missed; ``rescheduled`` changes nothing but is recorded.
    """
    from coachbridge.pairings.scheduling import mark_session

    try:
        kind = Outcome(outcome)
    except ValueError:
        raise UserError("say whether the session was held, missed or rescheduled") from None
    session, _pairing, person = open_link(s, link)
    if link_state(s, link) is not None:
        raise LinkUsed("this feedback link has already been used")
    value = check_rating(rating) if kind is Outcome.HELD else None  # before any write
    # Claim the link first: a concurrent second post of the same link waits on this primary
    # key and then fails here, before it can touch the session or the feedback.
    s.add(
        FeedbackLinkRow(
            nonce=link.nonce,
            session_id=session.id,
            person_id=person.id,
            outcome=kind.value,
            used_at=now,
        )
    )
    try:
        s.flush()
    except IntegrityError:
        raise LinkUsed("this feedback link has already been used") from None
    feedback_id = None
    if value is not None:
        if session.status == "scheduled":
            mark_session(s, session.id, "held", now=now, actor=f"feedback:{person.id}")
        row, _ = record_feedback(
            s,
            session.id,
            person,
            value,
            comment=comment,
            private_note=private_note,
            actor=f"feedback:{person.id}",
        )
        feedback_id = row.id
    elif kind is Outcome.MISSED and session.status == "scheduled":
        mark_session(s, session.id, "missed", now=now, actor=f"feedback:{person.id}")
    return LinkAnswer(kind.value, feedback_id, session.status)


def own_private_note(s: Session, link: FeedbackLink) -> str | None:
    """The private note the link's own person wrote on that session (read back by its author)."""
    return s.scalars(
        select(FeedbackRow.private_note).where(
            FeedbackRow.session_id == link.session_id,
            FeedbackRow.from_person_id == link.person_id,
        )
    ).first()


def owner_feedback(s: Session, program_id: str | None = None) -> list[dict[str, Any]]:
    """Feedback as the program owner sees it: ratings and comments, never private notes."""
    stmt = (
        select(FeedbackRow, PairingRow)
        .join(PairingRow, PairingRow.id == FeedbackRow.pairing_id)
        .order_by(FeedbackRow.id)
    )
    if program_id is not None:
        stmt = stmt.where(PairingRow.program_id == program_id)
    out = []
    for fb, pairing in s.execute(stmt):
        out.append(
            {
                "id": fb.id,
                "program": pairing.program_id,
                "pairing_id": pairing.id,
                "session_id": fb.session_id,
                "from_person_id": fb.from_person_id,
                "side": "learner" if fb.from_person_id == pairing.learner_id else "guide",
                "rating": fb.rating,
                "outcome": fb.outcome,
                "comment": fb.comment,
                "created_at": fb.created_at,
                "updated_at": fb.updated_at,
            }
        )
    return out


@dataclass(frozen=True)
class FeedbackRecorded:
    id: int
    session_id: int
    rating: int
    replaced: bool  # the same person's earlier answer on the session was replaced


def add_feedback(
    ctx: Context,
    session_id: int,
    person_ref: str,
    rating: object,
    *,
    comment: str | None = None,
    private_note: str | None = None,
    actor: str = "cli",
) -> FeedbackRecorded:
    """Record a learner's or guide's feedback on a held session (a second answer from the
    same person replaces the first)."""
    value = check_rating(rating)
    with ctx.database().transaction() as s:
        person = resolve_person(s, person_ref)
        row, replaced = record_feedback(
            s, session_id, person, value, comment=comment, private_note=private_note, actor=actor
        )
        return FeedbackRecorded(row.id, session_id, value, replaced)


def list_feedback(ctx: Context, program_id: str | None = None) -> list[dict[str, Any]]:
    """Ratings and comments as the program owner sees them (never private notes)."""
    if program_id is not None:
        ctx.config.program(program_id)
    with ctx.database().transaction() as s:
        return owner_feedback(s, program_id)


def feedback_link(ctx: Context, session_id: int, person_ref: str) -> str:
    """A fresh feedback link for the session's learner or guide, for HR to send again.

    The link is newly signed (it works 14 days from now, once); earlier links keep working
    until they are used or expire, and only one answer per person and session is kept.
    """
    server = ctx.config.server
    LINKS.secret(server.secret_key)
    with ctx.database().transaction() as s:
        _session, pairing = session_context(s, session_id)
        person = resolve_person(s, person_ref)
        check_participant(pairing, person, session_id)
        if person.forgotten:
            raise UserError(f"person {person.id} has been erased")
        audit(s, "cli", "feedback_link", "session", session_id, person=person.id)
    return link_url(server.public_url, make_token(server.secret_key, session_id, person.id))
