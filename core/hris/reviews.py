"""Storing review events from syncs and webhooks alike, idempotently; listing them
(``list_reviews``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from coachbridge.context import Context
from coachbridge.domain import ReviewEvent
from coachbridge.store.audit import audit
from coachbridge.store.chunks import in_chunks
from coachbridge.store.people import resolve_person
from coachbridge.store.tables import EnrollmentRow, ExternalIdRow, PersonRow, ReviewEventRow
from sqlalchemy import select
from sqlalchemy.orm import Session


def resolve_subject(s: Session, event: ReviewEvent, people_from: str | None = None) -> int | None:
    """The person an event is about: by id in ``people_from`` (or the event's source), else by email."""
    if event.person_id is not None:
        return event.person_id
    if event.subject_external_id:
        for connector in (people_from, event.source):
            if connector:
                link = s.get(ExternalIdRow, (connector, event.subject_external_id))
                if link is not None:
                    return link.person_id
    if event.subject_email:
        return s.scalars(
            select(PersonRow.id)
            .where(PersonRow.email_key == event.subject_email.lower())
            .order_by(PersonRow.id)
        ).first()
    return None


#: What makes a known event arriving again a correction: its rating, scale or cycle changed
#: (the cycle only for sources whose review id does not contain it, such as Workday's).
CORRECTING = ("cycle", "raw_rating", "rating", "scale_min", "scale_max")
#: Taken over with a correction. A changed date alone is none: the generic connector dates a
#: review without one by its message, so a resent review would otherwise look corrected.
CORRECTABLE = (*CORRECTING, "completed_at")


class Stored(NamedTuple):
    """What ``store_review_event`` did with one event."""

    row: ReviewEventRow
    created: bool  # a new event
    corrected: bool  # a known event whose rating, scale or cycle the source changed


def stored_event(s: Session, event: ReviewEvent) -> ReviewEventRow | None:
    """The stored event with ``event``'s source and id, if any."""
    return s.scalars(
        select(ReviewEventRow).where(
            ReviewEventRow.source == event.source,
            ReviewEventRow.source_event_id == event.source_event_id,
        )
    ).first()


def store_review_event(
    s: Session,
    event: ReviewEvent,
    *,
    via: str,
    rules_since: datetime | None = None,
    people_from: str | None = None,
) -> Stored:
    """Insert the event unless (source, source_event_id) exists.

    A webhook event always goes to the rules; a synced one only when it was completed after
    ``rules_since``, so back-filling history never enrolls anyone. An event about a person not
    yet known is kept with ``rules_status = "unknown_person"`` and retried after later syncs.

    A known event that arrives again with a different rating, scale or cycle (a corrected
    review re-posted, a re-exported CSV) is updated in place, its date too, and audited
    (``review_corrected``), so reports use the corrected rating. When the rules had already
    run on it they run again (``rules_status`` back to ``pending``): a correction can start
    coaching that the first rating did not, and ``apply_rules`` keeps what a rule already did
    for this event rather than undoing it. History from before ``rules_since`` stays skipped.
    """
    return store_review_events(s, [(event, people_from)], via=via, rules_since=rules_since)[0]


def store_review_events(
    s: Session,
    events: Sequence[tuple[ReviewEvent, str | None]],
    *,
    via: str,
    rules_since: datetime | None = None,
) -> list[Stored]:
    """``store_review_event`` for several ``(event, people_from)`` at once, in order.

    The known events and the subjects' people are read with one query each for the whole
    batch, and the new rows written with one flush: a burst of webhook deliveries costs a
    handful of round trips to the database, not several per event. The same event twice in
    the batch is stored once (the second is the first's correction, if it changed).
    """
    known = _known_events(s, [event for event, _ in events])
    links, emails = _subject_lookups(s, events)
    out: list[Stored] = []
    for event, people_from in events:
        key = (event.source, event.source_event_id)
        existing = known.get(key)
        if existing is not None:
            out.append(Stored(existing, False, _correct(s, existing, event)))
            continue
        person_id = _subject(event, people_from, links, emails)
        if (
            via == "sync"
            and rules_since is not None
            and (event.completed_at is None or event.completed_at <= rules_since)
        ):
            status = "skipped"
        elif person_id is None:
            status = "unknown_person"
        else:
            status = "pending"
        row = ReviewEventRow(
            type=event.type,
            person_id=person_id,
            subject_external_id=event.subject_external_id,
            subject_email=event.subject_email,
            cycle=event.cycle,
            rating=event.rating,
            raw_rating=event.raw_rating,
            scale_min=event.scale_min,
            scale_max=event.scale_max,
            completed_at=event.completed_at,
            source=event.source,
            source_event_id=event.source_event_id,
            via=via,
            rules_status=status,
        )
        s.add(row)
        known[key] = row
        out.append(Stored(row, True, False))
    s.flush()
    return out


def _known_events(
    s: Session, events: Sequence[ReviewEvent]
) -> dict[tuple[str, str], ReviewEventRow]:
    wanted = {(e.source, e.source_event_id) for e in events}
    known: dict[tuple[str, str], ReviewEventRow] = {}
    for chunk in in_chunks(e.source_event_id for e in events):
        for row in s.scalars(
            select(ReviewEventRow)
            .where(ReviewEventRow.source_event_id.in_(chunk))
            .order_by(ReviewEventRow.id)
        ):
            key = (row.source, row.source_event_id)
            if key in wanted:
                known.setdefault(key, row)
    return known


def _subject_lookups(
    s: Session, events: Sequence[tuple[ReviewEvent, str | None]]
) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    """(connector, external id) -> person id and lower-cased email -> lowest person id, for
    the subjects of ``events`` that name no person id."""
    unresolved = [(e, f) for e, f in events if e.person_id is None]
    links: dict[tuple[str, str], int] = {}
    for chunk in in_chunks(e.subject_external_id for e, _ in unresolved if e.subject_external_id):
        for link in s.scalars(select(ExternalIdRow).where(ExternalIdRow.external_id.in_(chunk))):
            links[(link.connector, link.external_id)] = link.person_id
    emails: dict[str, int] = {}
    for chunk in in_chunks(e.subject_email.lower() for e, _ in unresolved if e.subject_email):
        for person_id, email_key in s.execute(
            select(PersonRow.id, PersonRow.email_key)
            .where(PersonRow.email_key.in_(chunk))
            .order_by(PersonRow.id)
        ):
            emails.setdefault(email_key, person_id)
    return links, emails


def _subject(
    event: ReviewEvent,
    people_from: str | None,
    links: dict[tuple[str, str], int],
    emails: dict[str, int],
) -> int | None:
    """``resolve_subject`` on the batch's lookups (same order: id, external id, email)."""
    if event.person_id is not None:
        return event.person_id
    if event.subject_external_id:
        for connector in (people_from, event.source):
            if connector and (connector, event.subject_external_id) in links:
                return links[(connector, event.subject_external_id)]
    if event.subject_email:
        return emails.get(event.subject_email.lower())
    return None


def corrections(row: ReviewEventRow, event: ReviewEvent) -> dict[str, tuple[object, object]]:
    """What ``event`` changes in the stored ``row`` of the same id: field -> (before, after)."""
    if event.type != row.type:
        return {}  # a different kind of event under the same id: not a correction
    changed = {
        field: (getattr(row, field), getattr(event, field))
        for field in CORRECTABLE
        if getattr(event, field) is not None and getattr(event, field) != getattr(row, field)
    }
    return changed if any(field in changed for field in CORRECTING) else {}


def _correct(s: Session, row: ReviewEventRow, event: ReviewEvent) -> bool:
    changed = corrections(row, event)
    if not changed:
        return False
    for field, (_, new) in changed.items():
        setattr(row, field, new)
    if row.rules_status in ("processed", "failed"):
        row.rules_status = "pending"
    audit(
        s,
        "coachbridge",
        "review_corrected",
        "review_event",
        row.id,
        **{
            field: {"before": _plain(old), "after": _plain(new)}
            for field, (old, new) in changed.items()
        },
    )
    s.flush()
    return True


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


#: The listing keys of one review event.
REVIEW_COLUMNS = (
    "id",
    "person_id",
    "cycle",
    "rating",
    "raw_rating",
    "scale_min",
    "scale_max",
    "completed_at",
    "source",
)


def list_reviews(
    ctx: Context,
    *,
    program_id: str | None = None,
    person_ref: str | None = None,
    cycle: str | None = None,
) -> list[dict[str, Any]]:
    """Review events by completion (of people enrolled in a program, one person, one cycle):
    the rating normalized to 0..1 beside the raw rating and its scale."""
    if program_id:
        ctx.config.program(program_id)  # an unknown program is an error naming it
    with ctx.database().transaction() as s:
        stmt = (
            select(ReviewEventRow)
            .outerjoin(PersonRow, PersonRow.id == ReviewEventRow.person_id)
            # a forgotten person's ratings are no longer theirs to list
            .where((PersonRow.id.is_(None)) | (PersonRow.forgotten.is_(False)))
            .order_by(ReviewEventRow.completed_at, ReviewEventRow.id)
        )
        if person_ref:
            stmt = stmt.where(ReviewEventRow.person_id == resolve_person(s, person_ref).id)
        if program_id:
            enrolled = select(EnrollmentRow.person_id).where(EnrollmentRow.program_id == program_id)
            stmt = stmt.where(ReviewEventRow.person_id.in_(enrolled))
        if cycle:
            stmt = stmt.where(ReviewEventRow.cycle == cycle)
        return [{c: getattr(r, c) for c in REVIEW_COLUMNS} for r in s.scalars(stmt)]
