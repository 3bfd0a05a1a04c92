"""Privacy: erasing a person (``people forget``) and purging processed raw webhook deliveries.

Forgetting keeps the rows that anonymous counts need (the person's id, department, level,
status and dates; pairings, sessions and ratings) and erases what identifies or was written by
or about them: names, work email, contact and profile fields, external ids, free-text
feedback comments and private notes, session agendas, notes and action items of their
pairings, the free-text reasons their pairings paused or ended, their goals' texts, the
subjects of messages sent to them, the email kept on their review events, their intake answers
(``profiles``), and every raw inbox delivery that mentions them. Their open pairings end.

``forget`` is the use case of ``coachbridge people forget``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from coachbridge.context import Context
from coachbridge.errors import UserError
from coachbridge.store.audit import audit
from coachbridge.store.people import resolve_person
from coachbridge.store.tables import (
    AuditRow,
    ExternalIdRow,
    FeedbackRow,
    GoalRow,
    InboxRow,
    NotificationRow,
    OfferRow,
    PairingRow,
    PersonHistoryRow,
    PersonRow,
    ProfileRow,
    ReviewEventRow,
    SessionRow,
)
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

ERASED = "(erased)"
# Audit details of pairings that hold free text someone typed about the people in them.
_FREE_TEXT_DETAILS = ("reason", "paused_for")
# History fields that can identify someone by themselves; the rest are kept for counts.
_IDENTIFYING_HISTORY = ("job_title",)


@dataclass
class ForgetResult:
    """What ``forget_person`` erased, as counts only."""

    person_id: int
    already: bool = False
    external_ids: int = 0
    feedback: int = 0
    sessions: int = 0
    goals: int = 0
    notifications: int = 0
    review_events: int = 0
    pairing_reasons: int = 0  # free-text reasons (end, pause, re-match) of their pairings
    pairings_ended: int = 0  # their open pairings, ended by the erasure
    inbox_deliveries: int = 0
    profiles: int = 0  # their intake answers (and pending invitations), deleted

    def as_dict(self) -> dict[str, int | bool]:
        return dict(self.__dict__)


def _needles(person: PersonRow, external_ids: list[str]) -> list[bytes]:
    """Byte strings whose presence in a raw delivery means it carries this person."""
    values = {person.email or "", person.email_key or ""}
    values.update(e for e in external_ids if len(e) >= 3)  # short ids would match anything
    full = " ".join(p for p in (person.first_name, person.last_name) if p)
    if len(full) >= 5:
        values.add(full)
    out = set()
    for value in values:
        if value:
            out.add(value.encode("utf-8"))
            out.add(value.lower().encode("utf-8"))
    return sorted(out)


def forget_person(s: Session, person: PersonRow, *, actor: str, now: datetime) -> ForgetResult:
    """Erase ``person``'s personal data in the open transaction ``s`` and audit it."""
    result = ForgetResult(person_id=person.id)
    if person.forgotten:
        result.already = True
        return result
    ext_rows = list(s.scalars(select(ExternalIdRow).where(ExternalIdRow.person_id == person.id)))
    needles = _needles(person, [r.external_id for r in ext_rows])

    # Raw deliveries first, while the needles still exist. Bodies are scanned in Python:
    # a LIKE on a binary column is not portable between SQLite and PostgreSQL.
    for row in s.scalars(select(InboxRow).where(InboxRow.body.is_not(None))):
        body = row.body or b""
        low = body.lower()
        if any(n in body or n in low for n in needles):
            row.body = None
            row.status = "purged" if row.status in ("done", "dead", "purged") else row.status
            row.last_error = None
            result.inbox_deliveries += 1

    # The HRIS may keep listing the person: a tombstone (the id's HMAC with this database's
    # key) lets the next sync recognise and skip them without keeping the id itself.
    from coachbridge.hris.sync import FORGOTTEN_PREFIX, forgotten_key, tombstone_secret

    live = [r for r in ext_rows if not r.external_id.startswith(FORGOTTEN_PREFIX)]
    secret = tombstone_secret(s) if live else b""
    tombstones = [(r.connector, forgotten_key(secret, r.connector, r.external_id)) for r in live]
    for r in ext_rows:
        s.delete(r)
    s.flush()
    for connector, key in tombstones:
        s.add(ExternalIdRow(connector=connector, external_id=key, person_id=person.id))
    result.external_ids = len(tombstones)

    pairing_ids = list(
        s.scalars(
            select(PairingRow.id).where(
                or_(PairingRow.learner_id == person.id, PairingRow.guide_id == person.id)
            )
        )
    )
    result.feedback = (
        s.execute(
            update(FeedbackRow)
            .where(
                or_(
                    FeedbackRow.from_person_id == person.id,
                    FeedbackRow.pairing_id.in_(pairing_ids or [-1]),
                ),
                or_(FeedbackRow.comment.is_not(None), FeedbackRow.private_note.is_not(None)),
            )
            .values(comment=None, private_note=None)
        ).rowcount
        or 0
    )
    # Why a pairing ended or paused is free text ("parental leave", "no chemistry"): about
    # the people in it. Erased on the pairings and in their audit rows; the status stays.
    for pairing in s.scalars(select(PairingRow).where(PairingRow.id.in_(pairing_ids or [-1]))):
        if pairing.end_reason and pairing.end_reason != ERASED:
            pairing.end_reason = ERASED
            result.pairing_reasons += 1
    for row in s.scalars(
        select(AuditRow).where(
            AuditRow.object_type == "pairing",
            AuditRow.object_id.in_([str(i) for i in pairing_ids] or ["-1"]),
        )
    ):
        details = dict(row.details or {})
        reasons = {k: ERASED for k in _FREE_TEXT_DETAILS if details.get(k)}
        if reasons:
            row.details = {**details, **reasons}
    # A decline's reason is free text about the two people; an open offer or request of
    # someone erased can no longer be answered (its pairing ends below).
    s.execute(
        update(OfferRow)
        .where(or_(OfferRow.learner_id == person.id, OfferRow.guide_id == person.id))
        .values(reason=None)
    )
    s.execute(
        update(OfferRow)
        .where(
            or_(OfferRow.learner_id == person.id, OfferRow.guide_id == person.id),
            OfferRow.status == "open",
        )
        .values(status="withdrawn", answered_at=now, answered_by="forget")
    )
    # Someone erased takes part in nothing more: their open pairings end (the other person's
    # guide or learner place is freed) and future sessions are cancelled.
    from coachbridge.pairings.lifecycle import OPEN, end_pairing

    for pairing in s.scalars(
        select(PairingRow).where(
            PairingRow.id.in_(pairing_ids or [-1]), PairingRow.status.in_(OPEN)
        )
    ):
        end_pairing(s, pairing, ERASED, now, actor=actor)
        result.pairings_ended += 1
    result.sessions = (
        s.execute(
            update(SessionRow)
            .where(SessionRow.pairing_id.in_(pairing_ids or [-1]))
            .values(private_notes=None, agenda=None, action_items=[])
        ).rowcount
        or 0
    )
    result.goals = (
        s.execute(
            update(GoalRow)
            .where(GoalRow.owner_id == person.id)
            .values(title=ERASED, measure=None, target=None)
        ).rowcount
        or 0
    )
    result.notifications = (
        s.execute(
            update(NotificationRow)
            .where(NotificationRow.recipient_id == person.id)
            .values(subject=ERASED, detail=None)
        ).rowcount
        or 0
    )
    result.review_events = (
        s.execute(
            update(ReviewEventRow)
            .where(ReviewEventRow.person_id == person.id)
            .values(subject_email=None, subject_external_id=None)
        ).rowcount
        or 0
    )
    # Intake answers are what the person told the program about themselves: deleted, with
    # their invitations (a reminder must not reach someone erased).
    result.profiles = (
        s.execute(delete(ProfileRow).where(ProfileRow.person_id == person.id)).rowcount or 0
    )
    s.execute(
        update(PersonHistoryRow)
        .where(
            PersonHistoryRow.person_id == person.id,
            PersonHistoryRow.field.in_(_IDENTIFYING_HISTORY),
        )
        .values(value=None)
    )
    person.first_name = ""
    person.last_name = ""
    person.preferred_name = None
    person.email = None
    person.email_key = None
    person.job_title = None
    person.timezone = None
    person.skills = []
    person.interests = []
    person.languages = []
    person.extra = {}
    person.forgotten = True
    s.flush()
    # The audit row names the id and the counts, nothing that was erased.
    audit(s, actor, "forget_person", "person", person.id, **result.as_dict())
    return result


def purge_inbox(s: Session, *, now: datetime, retention_days: int) -> int:
    """Drop the raw bodies of deliveries processed more than ``retention_days`` ago."""
    cutoff = now - timedelta(days=retention_days)
    count = (
        s.execute(
            update(InboxRow)
            .where(
                InboxRow.status.in_(["done", "dead"]),
                InboxRow.processed_at.is_not(None),
                InboxRow.processed_at < cutoff,
                InboxRow.body.is_not(None),
            )
            .values(body=None, status="purged")
        ).rowcount
        or 0
    )
    if count:
        audit(s, "coachbridge", "purge_inbox", "inbox", "*", deliveries=count, days=retention_days)
    return count


ACTOR_LIMIT = 200  # the audit log's actor column


def forget(
    ctx: Context,
    person_ref: str,
    *,
    actor: str | None = None,
    confirm: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> ForgetResult:
    """Erase a person's personal data for good; anonymous counts stay.

    ``actor`` is who approved the erasure (default: ``$USER``). ``confirm(person_id)``, when
    given, runs once the person is found and before anything changes, outside any
    transaction; it stops the erasure by raising.
    """
    if actor is not None and not actor.strip():
        raise UserError("--actor: name who approved the erasure")
    who = (actor or os.environ.get("USER") or "cli").strip()[:ACTOR_LIMIT]
    db = ctx.database()
    with db.transaction() as s:
        pid = resolve_person(s, person_ref).id
    if confirm is not None:
        confirm(pid)
    with db.transaction() as s:
        person = resolve_person(s, str(pid))
        return forget_person(s, person, actor=who, now=now or datetime.now(UTC))
