"""Builders for the health tests: a small company with programs, pairings and sessions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from coachbridge.config import Config, ReportsSettings, ServerSettings
from coachbridge.domain.program import Program
from coachbridge.store import Database
from coachbridge.store.programs import ensure_program_row
from coachbridge.store.tables import (
    EnrollmentRow,
    FeedbackRow,
    PairingRow,
    PersonHistoryRow,
    PersonRow,
    ReviewEventRow,
    SessionRow,
)
from pydantic import SecretStr
from sqlalchemy.orm import Session

SECRET = "test-secret-key-not-for-production"
NOW = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)


def program(**overrides: object) -> Program:
    data: dict[str, object] = {
        "id": "mentoring",
        "name": "Mentoring",
        "kind": "mentoring",
        "owner": "owner@example.com",
        "cadence_days": 14,
        "duration_weeks": 26,
    }
    data.update(overrides)
    return Program.model_validate(data)


def config(*programs: Program, min_group_size: int = 5) -> Config:
    return Config(
        path=None,
        programs={p.id: p for p in programs},
        reports=ReportsSettings(min_group_size=min_group_size),
        server=ServerSettings(secret_key=SecretStr(SECRET), public_url="http://127.0.0.1:9"),
    )


def write_config(
    path: Path, *, min_group_size: int = 5, start: str | None = None, end: str = "2025-06-30"
) -> Path:
    start_line = f"start = {start}\nend = {end}\n" if start else ""
    path.write_text(
        f"""
[reports]
min_group_size = {min_group_size}

[server]
secret_key = "{SECRET}"
public_url = "http://127.0.0.1:9"

[[programs]]
id = "mentoring"
name = "Mentoring"
kind = "mentoring"
owner = "owner@example.com"
cadence_days = 14
duration_weeks = 26
{start_line}""",
        encoding="utf-8",
    )
    return path


@dataclass
class App:
    """Stands in for the CLI ``App`` (config, registry, database)."""

    config: Config
    db: Database
    _registry: object = None

    @property
    def registry(self) -> object:
        if self._registry is None:
            from coachbridge.plugins import Registry

            self._registry = Registry.build()
        return self._registry

    def database(self) -> Database:
        return self.db


@dataclass
class World:
    s: Session
    program: Program
    now: datetime = NOW
    people: list[int] = field(default_factory=list)

    def person(
        self,
        first: str = "Ada",
        last: str = "Lovelace",
        *,
        department: str = "Engineering",
        level: int = 3,
        hire: date = date(2020, 1, 1),
        termination: date | None = None,
        location: str = "Berlin",
    ) -> PersonRow:
        n = len(self.people) + 1
        row = PersonRow(
            first_name=first,
            last_name=f"{last}{n}",
            email=f"{first.lower()}.{n}@example.com",
            email_key=f"{first.lower()}.{n}@example.com",
            department=department,
            level=level,
            hire_date=hire,
            status="inactive" if termination else "active",
            termination_date=termination,
            location=location,
        )
        self.s.add(row)
        self.s.flush()
        self.people.append(row.id)
        return row

    def pair(
        self,
        learner: PersonRow,
        guide: PersonRow,
        *,
        status: str = "active",
        made: datetime | None = None,
        enroll: bool = True,
    ) -> PairingRow:
        made = made or self.now - timedelta(days=60)
        ensure_program_row(self.s, self.program)
        if enroll:
            for pid, role in ((learner.id, "learner"), (guide.id, "guide")):
                if (
                    not self.s.query(EnrollmentRow)
                    .filter_by(program_id=self.program.id, person_id=pid, role=role)
                    .first()
                ):
                    self.s.add(EnrollmentRow(program_id=self.program.id, person_id=pid, role=role))
        row = PairingRow(
            program_id=self.program.id,
            learner_id=learner.id,
            guide_id=guide.id,
            status=status,
            created_at=made,
            activated_at=made,
        )
        self.s.add(row)
        self.s.flush()
        return row

    def session(
        self, pairing: PairingRow, days_ago: float, status: str = "held", seq: int | None = None
    ) -> SessionRow:
        row = SessionRow(
            pairing_id=pairing.id,
            seq=seq,
            start=self.now - timedelta(days=days_ago),
            minutes=45,
            status=status,
            private_notes="PRIVATE-SESSION-NOTE",
        )
        self.s.add(row)
        self.s.flush()
        return row

    def feedback(self, session: SessionRow, person: PersonRow, rating: int) -> FeedbackRow:
        pairing = self.s.get(PairingRow, session.pairing_id)
        assert pairing is not None
        row = FeedbackRow(
            session_id=session.id,
            pairing_id=pairing.id,
            from_person_id=person.id,
            rating=rating,
            comment="COMMENT-FOR-OWNER",
            private_note="PRIVATE-FEEDBACK-NOTE",
        )
        self.s.add(row)
        self.s.flush()
        return row

    def review(self, person: PersonRow, when: datetime, rating: float, cycle: str) -> None:
        self.s.add(
            ReviewEventRow(
                person_id=person.id,
                cycle=cycle,
                rating=rating,
                raw_rating=1 + rating * 4,
                scale_max=5,
                completed_at=when,
                source="test",
                source_event_id=f"{person.id}:{cycle}",
            )
        )

    def history(self, person: PersonRow, name: str, value: str, since: date) -> None:
        self.s.add(
            PersonHistoryRow(
                person_id=person.id, field=name, value=value, valid_from=since, source="test"
            )
        )
