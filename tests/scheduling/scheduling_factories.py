"""Factories for people and pairings, written straight into the store with the ORM."""

from __future__ import annotations

from datetime import UTC, date, datetime
from itertools import count
from typing import Any

from coachbridge.domain import Program
from coachbridge.store import Database
from coachbridge.store.programs import ensure_program_row
from coachbridge.store.tables import PairingRow, PersonRow


class Factory:
    """Adds people and pairings in their own committed transactions and returns their ids."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._n = count(1)

    def person(self, **fields: Any) -> int:
        n = next(self._n)
        values: dict[str, Any] = {
            "first_name": f"Person{n}",
            "last_name": "Test",
            "email": f"p{n}@example.com",
            "email_key": f"p{n}@example.com",
            "timezone": "Europe/Berlin",
            "status": "active",
            "level": 3,
            "hire_date": date(2020, 1, 1),
        }
        values.update(fields)
        with self.db.transaction() as s:
            row = PersonRow(**values)
            s.add(row)
            s.flush()
            return row.id

    def pairing(
        self,
        program: Program,
        learner_id: int,
        guide_id: int,
        *,
        status: str = "active",
        made: datetime | None = None,
    ) -> int:
        made = made or datetime(2026, 12, 1, tzinfo=UTC)
        with self.db.transaction() as s:
            ensure_program_row(s, program)
            row = PairingRow(
                program_id=program.id,
                learner_id=learner_id,
                guide_id=guide_id,
                status=status,
                score=0.5,
                created_at=made,
                activated_at=made if status == "active" else None,
            )
            s.add(row)
            s.flush()
            return row.id


def program(**fields: Any) -> Program:
    """A mentoring program with test-friendly defaults."""
    values: dict[str, Any] = {
        "id": "mentoring",
        "name": "Mentoring 2027",
        "kind": "mentoring",
        "start": date(2027, 1, 11),
        "duration_weeks": 12,
        "cadence_days": 14,
        "session_minutes": 45,
    }
    values.update(fields)
    return Program.model_validate(values)
