"""Finding people in the store: by coachbridge id, by ``CONNECTOR:ID`` or by work email; their
external ids; the state of the people table; and who is above whom in the reporting chain."""

from __future__ import annotations

from datetime import datetime

from coachbridge.domain import Person, PersonStatus
from coachbridge.errors import NotFoundError
from coachbridge.store.tables import ExternalIdRow, PersonRow
from sqlalchemy import func, select
from sqlalchemy.orm import Session


def find_person(session: Session, ref: str | int) -> PersonRow | None:
    """The person ``ref`` names, or None. ``ref`` is an id, ``CONNECTOR:ID`` or an email."""
    text = str(ref).strip()
    if text.isascii() and text.isdigit():
        number = int(text)
        # Beyond a 64-bit id nothing can match (and the database would refuse the value).
        return session.get(PersonRow, number) if number < 2**63 else None
    if "@" in text and ":" not in text.split("@", 1)[0]:
        return session.scalars(
            select(PersonRow).where(PersonRow.email_key == text.lower()).order_by(PersonRow.id)
        ).first()
    if ":" in text:
        connector, external_id = text.split(":", 1)
        row = session.get(ExternalIdRow, (connector, external_id))
        return None if row is None else session.get(PersonRow, row.person_id)
    return None


def resolve_person(session: Session, ref: str | int) -> PersonRow:
    """Like ``find_person`` but raises ``NotFoundError`` naming the reference."""
    person = find_person(session, ref)
    if person is None:
        raise NotFoundError(
            f"unknown person {str(ref)!r} (give a coachbridge id, CONNECTOR:ID or a work email)"
        )
    return person


def external_ids_by_person(
    session: Session, person_ids: list[int] | None = None
) -> dict[int, dict[str, str]]:
    stmt = select(ExternalIdRow)
    if person_ids is not None:
        stmt = stmt.where(ExternalIdRow.person_id.in_(person_ids))
    out: dict[int, dict[str, str]] = {}
    for row in session.scalars(stmt):
        if row.external_id.startswith("forgotten:"):  # an erased person's tombstone, not an id
            continue
        out.setdefault(row.person_id, {})[row.connector] = row.external_id
    return out


def to_person(row: PersonRow, external_ids: dict[str, str] | None = None) -> Person:
    return Person(
        id=row.id,
        name=row.name,
        email=row.email,
        job_title=row.job_title,
        department=row.department,
        division=row.division,
        location=row.location,
        timezone=row.timezone,
        manager_id=row.manager_id,
        hire_date=row.hire_date,
        status=PersonStatus(row.status),
        hris_status=row.hris_status,
        termination_date=row.termination_date,
        level=row.level,
        skills=list(row.skills or []),
        interests=list(row.interests or []),
        languages=list(row.languages or []),
        external_ids=external_ids or {},
    )


def people_state(s: Session) -> tuple[int, int | None, datetime | None, int]:
    """(count, max id, last update, number of external ids): it moves whenever a person is
    added, updated or linked to another connector's id."""
    count, top, updated = s.execute(
        select(func.count(PersonRow.id), func.max(PersonRow.id), func.max(PersonRow.updated_at))
    ).one()
    links = s.scalar(select(func.count()).select_from(ExternalIdRow))
    return int(count), top, updated, int(links or 0)


def chain_above(managers: dict[int, int | None], person_id: int) -> set[int]:
    """Everyone above ``person_id`` in the reporting tree (cycle-safe)."""
    out: set[int] = set()
    node = managers.get(person_id)
    while node is not None and node not in out:
        out.add(node)
        node = managers.get(node)
    return out
