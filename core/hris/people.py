"""Finding people: by coachbridge id, by ``CONNECTOR:ID``, or by work email; and the people
use cases ``list_people`` and ``show_person`` (people as the HRIS reported them)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from coachbridge.context import Context
from coachbridge.domain.training import latest, training_counts, training_key
from coachbridge.store.people import external_ids_by_person, resolve_person, to_person
from coachbridge.store.tables import PersonRow, TrainingRow
from sqlalchemy import select
from sqlalchemy.orm import Session


def list_people(
    ctx: Context, *, status: str | None = None, department: str | None = None
) -> list[dict[str, Any]]:
    """Everyone not erased, by id (of one status, one department), as ``Person`` fields."""
    with ctx.database().transaction() as s:
        stmt = select(PersonRow).where(PersonRow.forgotten.is_(False)).order_by(PersonRow.id)
        if status:
            stmt = stmt.where(PersonRow.status == status)
        if department:
            stmt = stmt.where(PersonRow.department == department)
        rows = list(s.scalars(stmt))
        ext = external_ids_by_person(s)
        return [to_person(r, ext.get(r.id)).model_dump(mode="json") for r in rows]


def show_person(ctx: Context, ref: str, *, today: date | None = None) -> dict[str, Any]:
    """One person (id, ``CONNECTOR:ID`` or work email) as ``Person`` fields, with their
    trainings (``trainings``: every record, newest first within a training)."""
    with ctx.database().transaction() as s:
        row = resolve_person(s, ref)
        ext = external_ids_by_person(s, [row.id]).get(row.id)
        data = to_person(row, ext).model_dump(mode="json")
        data["trainings"] = person_trainings(s, row.id, today or datetime.now(UTC).date())
        return data


def person_trainings(s: Session, person_id: int, today: date) -> list[dict[str, Any]]:
    """A person's training records. ``current`` marks the one that counts for each training
    (the latest); ``valid`` says whether it is unexpired today (programs may ask more: a
    completion within ``training_valid_days``)."""
    rows = list(
        s.scalars(
            select(TrainingRow)
            .where(TrainingRow.person_id == person_id)
            .order_by(TrainingRow.training, TrainingRow.completed_at.desc(), TrainingRow.id)
        )
    )
    counting: dict[str, tuple[date | None, date | None]] = {}
    for key in {training_key(r.training) for r in rows}:
        counting[key] = latest(
            (r.completed_at, r.expires_at) for r in rows if training_key(r.training) == key
        )
    out = []
    for r in rows:
        current = counting[training_key(r.training)] == (r.completed_at, r.expires_at)
        out.append(
            {
                "training": r.training,
                "completed_at": r.completed_at.isoformat() if r.completed_at else None,
                "expires_at": r.expires_at.isoformat() if r.expires_at else None,
                "source": r.source,
                "current": current,
                "valid": current and training_counts(r.completed_at, r.expires_at, today=today),
            }
        )
    return out
