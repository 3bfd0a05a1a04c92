"""Building small stores for matching tests with the ORM directly."""

from __future__ import annotations

from typing import Any

from coachbridge.domain.program import Program
from coachbridge.store.programs import ensure_program_row
from coachbridge.store.tables import EnrollmentRow, PersonRow
from sqlalchemy.orm import Session


def person(s: Session, pid: int, **fields: Any) -> PersonRow:
    data: dict[str, Any] = {
        "first_name": f"P{pid}",
        "last_name": "Test",
        "email": f"p{pid}@example.com",
        "email_key": f"p{pid}@example.com",
        "status": "active",
        "level": 3,
        "department": "Engineering",
        "timezone": "Europe/Berlin",
        "skills": [],
        "interests": [],
        "languages": ["en"],
    }
    data.update(fields)
    row = PersonRow(id=pid, **data)
    s.add(row)
    s.flush()
    return row


def enroll(
    s: Session,
    program: Program,
    pid: int,
    role: str,
    *,
    capacity: int | None = None,
    opted_out: bool = False,
    **prefs: Any,
) -> EnrollmentRow:
    ensure_program_row(s, program)
    row = EnrollmentRow(
        program_id=program.id,
        person_id=pid,
        role=role,
        capacity=capacity,
        opted_out=opted_out,
        preferences=prefs,
    )
    s.add(row)
    s.flush()
    return row


def program(**fields: Any) -> Program:
    data: dict[str, Any] = {
        "id": "mentoring",
        "kind": "mentoring",
        "capacity": 2,
        "weights": {"skills": 0.5, "seniority": 0.3, "language": 0.2},
    }
    data.update(fields)
    return Program.model_validate(data)
