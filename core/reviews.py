"""Storing review events from syncs and webhooks alike, idempotently."""

from __future__ import annotations

from datetime import datetime

from coachbridge.domain import ReviewEvent
from coachbridge.store.tables import ExternalIdRow, PersonRow, ReviewEventRow
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


def store_review_event(
    s: Session,
    event: ReviewEvent,
    *,
    via: str,
    rules_since: datetime | None = None,
    people_from: str | None = None,
) -> tuple[ReviewEventRow, bool]:
    """Insert the event unless (source, source_event_id) exists; returns (row, created).

    A webhook event always goes to the rules; a synced one only when it was completed after
    ``rules_since``, so back-filling history never enrolls anyone. An event about a person not
    yet known is kept with ``rules_status = "unknown_person"`` and retried after later syncs.
    """
    existing = s.scalars(
        select(ReviewEventRow).where(
            ReviewEventRow.source == event.source,
            ReviewEventRow.source_event_id == event.source_event_id,
        )
    ).first()
    if existing is not None:
        return existing, False
    person_id = resolve_subject(s, event, people_from)
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
    s.flush()
    return row, True
