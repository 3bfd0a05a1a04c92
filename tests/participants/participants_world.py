"""Builders for the participants tests: a program with an intake questionnaire and its people."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

from coachbridge.config import Config, ReportsSettings, ServerSettings
from coachbridge.domain.program import Program
from coachbridge.notify.base import Message, Notifier
from coachbridge.store import Database
from coachbridge.store.programs import ensure_program_row
from coachbridge.store.tables import EnrollmentRow, PairingRow, PersonRow
from sqlalchemy.orm import Session

SECRET = "participants-test-secret"
PUBLIC = "https://coach.example.com"
NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
TOPICS = [
    "negotiation",
    "public speaking",
    "managing a first team",
    "career change",
    "data literacy",
]


def program(**intake: Any) -> Program:
    settings: dict[str, Any] = {"topics": TOPICS, "max_topics": 3, "link_days": 21}
    settings.update(intake)
    return Program.model_validate(
        {
            "id": "mentoring",
            "name": "Mentoring",
            "kind": "mentoring",
            "owner": "owner@example.com",
            "intake": settings,
        }
    )


class Capture(Notifier):
    """A channel that keeps what it was asked to send."""

    sent: ClassVar[list[Message]] = []

    def send(self, message: Message) -> str:
        Capture.sent.append(message)
        return "captured"


@dataclass
class Hooks:
    notifiers: dict[str, type[Notifier]] = field(default_factory=lambda: {"log": Capture})
    criteria: dict[str, Any] = field(default_factory=dict)


@dataclass
class App:
    config: Config
    db: Database
    registry: Hooks = field(default_factory=Hooks)

    def database(self) -> Database:
        return self.db


def config(*programs: Program, min_group_size: int = 5) -> Config:
    return Config(
        path=None,
        programs={p.id: p for p in programs},
        notify={"log": {}},
        reports=ReportsSettings(min_group_size=min_group_size),
        server=ServerSettings(secret_key=SECRET, public_url=PUBLIC),  # type: ignore[arg-type]
    )


def app_for(db: Database, prog: Program | None = None) -> App:
    Capture.sent.clear()
    return App(config(prog or program()), db)


def person(s: Session, first: str, n: int, *, languages: list[str] | None = None) -> PersonRow:
    row = PersonRow(
        first_name=first,
        last_name=f"Tester{n}",
        email=f"{first.lower()}@example.com",
        email_key=f"{first.lower()}@example.com",
        job_title=f"Engineer {n}",
        department="Engineering",
        level=3,
        hire_date=date(2020, 1, 1),
        status="active",
        languages=languages or ["English", "German"],  # as an HRIS keeps them
    )
    s.add(row)
    s.flush()
    return row


def company(db: Database, prog: Program | None = None) -> dict[str, int]:
    """Two learners and two guides enrolled in the program; one outsider."""
    prog = prog or program()
    ids: dict[str, int] = {}
    with db.transaction() as s:
        ensure_program_row(s, prog)
        for n, (name, role) in enumerate(
            [("Lea", "learner"), ("Lou", "learner"), ("Gus", "guide"), ("Gia", "guide")], 1
        ):
            row = person(s, name, n)
            s.add(EnrollmentRow(program_id=prog.id, person_id=row.id, role=role))
            ids[name.lower()] = row.id
        ids["out"] = person(s, "Out", 9).id
    return ids


def pair(db: Database, learner: int, guide: int, prog: Program | None = None) -> int:
    prog = prog or program()
    with db.transaction() as s:
        row = PairingRow(program_id=prog.id, learner_id=learner, guide_id=guide, status="active")
        s.add(row)
        s.flush()
        return row.id


def write_config(path: Path, db_url: str, **intake: Any) -> Path:
    extra = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in intake.items())
    topics = ", ".join(f'"{t}"' for t in TOPICS)
    path.write_text(
        f"""
[database]
url = "{db_url}"

[server]
secret_key = "{SECRET}"
public_url = "{PUBLIC}"

[[programs]]
id = "mentoring"
name = "Mentoring"
kind = "mentoring"

[programs.intake]
topics = [{topics}]
max_topics = 3
{extra}
[[programs]]
id = "plain"
name = "Plain"
kind = "coaching"
""",
        encoding="utf-8",
    )
    return path
