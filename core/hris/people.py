"""Finding people: by coachbridge id, by ``CONNECTOR:ID``, or by work email; and the people
use cases ``list_people`` and ``show_person`` (people as the HRIS reported them)."""

from __future__ import annotations

from typing import Any

from coachbridge.context import Context
from coachbridge.store.people import external_ids_by_person, resolve_person, to_person
from coachbridge.store.tables import PersonRow
from sqlalchemy import select


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


def show_person(ctx: Context, ref: str) -> dict[str, Any]:
    """One person (id, ``CONNECTOR:ID`` or work email) as ``Person`` fields."""
    with ctx.database().transaction() as s:
        row = resolve_person(s, ref)
        ext = external_ids_by_person(s, [row.id]).get(row.id)
        return to_person(row, ext).model_dump(mode="json")
