"""The service layer under the CLI, called directly: goals, sessions, pause and resume,
enrollment and people."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from coachbridge import hookimpl
from coachbridge.app import App
from coachbridge.errors import NotFoundError, UserError
from coachbridge.hris.people import list_people, show_person
from coachbridge.pairings import goals, service, sessions
from coachbridge.programs import service as programs
from coachbridge.store import Database
from coachbridge.store.tables import AuditRow, GoalRow, PairingRow, SessionRow
from sqlalchemy import func, select

from .scheduling_factories import Factory, program

# Far enough ahead that "future" checks hold whenever the suite runs.
START = date.today() + timedelta(days=400 - date.today().weekday())  # a Monday

CONFIG = f"""
[[programs]]
id = "mentoring"
name = "Leadership mentoring"
kind = "mentoring"
start = {START.isoformat()}
duration_weeks = 12
cadence_days = 14
session_minutes = 45

[[programs]]
id = "coaching"
kind = "coaching"
"""


class SessionWatcher:
    """A plugin observing planned sessions; it also records whether each was already stored
    (committed) when it was told, reading through a transaction of its own."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.seen: list[tuple[int, bool]] = []

    @hookimpl
    def coachbridge_on_session_scheduled(self, session: Any) -> None:
        with self.db.transaction() as s:
            self.seen.append((session.id, s.get(SessionRow, session.id) is not None))


@pytest.fixture
def world(tmp_path: Path, db_url: str, factory: Factory) -> Iterator[dict[str, Any]]:
    config = tmp_path / "coachbridge.toml"
    config.write_text(CONFIG, encoding="utf-8")
    app = App(config_option=str(config), db_option=db_url)
    watcher = SessionWatcher(Database(db_url))
    app.registry.pm.register(watcher, name="watcher")
    ana = factory.person(first_name="Ana", level=3)
    ben = factory.person(first_name="Ben", level=6, timezone="America/New_York")
    eve = factory.person(first_name="Eve", level=2)
    pairing = factory.pairing(program(id="mentoring", start=START), ana, ben)
    yield {"app": app, "watcher": watcher, "ana": ana, "ben": ben, "eve": eve, "pairing": pairing}
    watcher.db.dispose()
    app.close()


def _count(app: App, stmt: Any) -> int:
    with app.database().transaction() as s:
        return s.scalar(stmt) or 0


# -- goals -------------------------------------------------------------------------------------
def test_add_goal_validates_and_adds_an_unfinished_title_once(world: dict[str, Any]) -> None:
    app, ana, eve, pairing = world["app"], world["ana"], world["eve"], world["pairing"]
    add = goals.add_goal
    with pytest.raises(UserError, match="--title must not be empty"):
        add(app, person_ref=str(ana), title="   ")
    with pytest.raises(UserError, match="--title: at most 500 characters"):
        add(app, person_ref=str(ana), title="x" * 501)
    with pytest.raises(UserError, match="--due '30/06/2027': not an ISO date"):
        add(app, person_ref=str(ana), title="Speak", due="30/06/2027")
    with pytest.raises(NotFoundError, match="unknown pairing id 999"):
        add(app, person_ref=str(ana), title="Speak", pairing_id=999)
    with pytest.raises(UserError, match=f"person {eve} is not in pairing {pairing}"):
        add(app, person_ref=str(eve), title="Speak", pairing_id=pairing)
    with pytest.raises(UserError, match="belongs to program 'mentoring', not 'coaching'"):
        add(app, person_ref=str(ana), title="Speak", pairing_id=pairing, program_id="coaching")
    with pytest.raises(NotFoundError, match="unknown person"):
        add(app, person_ref="nobody@example.com", title="Speak")
    assert _count(app, select(func.count()).select_from(GoalRow)) == 0  # nothing half-stored

    first = goals.add_goal(
        app,
        person_ref=str(ana),
        pairing_id=pairing,
        title="  Give two talks ",
        measure="talks given",
        target="2",
        due="2027-06-30",
    )
    assert first.created and first.title == "Give two talks"
    again = goals.add_goal(app, person_ref=str(ana), pairing_id=pairing, title="Give two talks")
    assert (again.id, again.created) == (first.id, False)
    # The same title outside the pairing is another goal.
    loose = goals.add_goal(app, person_ref=str(ana), title="Give two talks")
    assert loose.created and loose.id != first.id

    listed = goals.list_goals(app, program_id="mentoring")
    assert [g["id"] for g in listed] == [first.id]  # its program comes from its pairing
    assert listed[0] | {"id": None} == {
        "id": None,
        "owner_id": ana,
        "pairing_id": pairing,
        "program": "mentoring",
        "title": "Give two talks",
        "measure": "talks given",
        "target": "2",
        "due_date": "2027-06-30",
        "progress": 0.0,
        "status": "open",
    }
    assert {g["id"] for g in goals.list_goals(app, person_ref=str(ana))} == {first.id, loose.id}
    with pytest.raises(NotFoundError, match="unknown program 'nope'"):
        goals.list_goals(app, program_id="nope")
    added = select(func.count()).where(AuditRow.action == "goal_added")
    assert _count(app, added) == 2


def test_update_goal_progress_moves_an_unfinished_goal_along(world: dict[str, Any]) -> None:
    app, ana = world["app"], world["ana"]
    goal = goals.add_goal(app, person_ref=str(ana), title="Lead a retro").id
    update = goals.update_goal
    with pytest.raises(UserError, match="nothing to update"):
        update(app, goal)
    for bad in (-1.0, 100.5, math.nan):
        with pytest.raises(UserError, match="--progress"):
            update(app, goal, progress=bad)
    with pytest.raises(UserError, match="--status 'done': one of open, in_progress"):
        update(app, goal, status="done")
    with pytest.raises(NotFoundError, match="unknown goal id 999"):
        update(app, 999, progress=10)
    with pytest.raises(UserError, match="--title must not be empty"):
        update(app, goal, title=" ")

    assert update(app, goal, progress=0) == goals.GoalUpdated(goal, 0.0, "open")
    assert update(app, goal, progress=40) == goals.GoalUpdated(goal, 40.0, "in_progress")
    assert update(app, goal, progress=100) == goals.GoalUpdated(goal, 100.0, "completed")
    # A closed goal keeps its status when its progress is corrected ...
    assert update(app, goal, progress=90) == goals.GoalUpdated(goal, 90.0, "completed")
    # ... and a status given with the progress wins.
    assert update(app, goal, progress=100, status="cancelled").status == "cancelled"
    update(app, goal, due=date(2027, 9, 1), measure=" ", title="Lead two retros")
    row = goals.list_goals(app, person_ref=str(ana))[0]
    assert (row["title"], row["measure"], row["due_date"]) == (
        "Lead two retros",
        None,
        "2027-09-01",
    )
    with app.database().transaction() as s:
        last = s.scalars(
            select(AuditRow).where(AuditRow.action == "goal_updated").order_by(AuditRow.id.desc())
        ).first()
        assert last is not None and last.details == {"progress": 100.0, "status": "cancelled"}


def test_create_goal_is_idempotent_by_source_key(world: dict[str, Any]) -> None:
    app, ana = world["app"], world["ana"]
    with app.database().transaction() as s:
        row, created = goals.create_goal(s, owner_id=ana, title="Imported", source_key="import:x:1")
        assert created and row.id is not None
        again, created_again = goals.create_goal(
            s, owner_id=ana, title="Changed", source_key="import:x:1"
        )
        assert (again.id, created_again, again.title) == (row.id, False, "Imported")
        other, created_other = goals.create_goal(s, owner_id=ana, title="Imported")
        assert created_other and other.id != row.id
    assert _count(app, select(func.count()).select_from(GoalRow)) == 2


# -- sessions ----------------------------------------------------------------------------------
def test_schedule_then_list_sessions(world: dict[str, Any]) -> None:
    app, watcher, pairing = world["app"], world["watcher"], world["pairing"]
    with pytest.raises(NotFoundError, match="unknown program 'nope'"):
        sessions.schedule_sessions(app, "nope")
    planned = sessions.schedule_sessions(app, "mentoring")
    assert planned == [sessions.ProgramSchedule("mentoring", 6, 1)]
    # Observers were told of each new session once it was stored.
    assert len(watcher.seen) == 6 and all(stored for _, stored in watcher.seen)
    assert sessions.schedule_sessions(app, "mentoring")[0].sessions == 0
    assert len(watcher.seen) == 6  # nothing new planned, nobody told again

    by_guide = sessions.list_sessions(app, person_ref=str(world["ben"]))
    assert [r["id"] for r in by_guide] == sorted(sid for sid, _ in watcher.seen)
    assert [r["start"] for r in by_guide] == sorted(r["start"] for r in by_guide)
    assert all(r["pairing_id"] == pairing and r["program"] == "mentoring" for r in by_guide)
    assert all(r["start"].endswith("+00:00") for r in by_guide)  # listed in UTC
    assert all("private_notes" not in r for r in by_guide)
    assert sessions.list_sessions(app, person_ref=str(world["eve"])) == []
    assert sessions.list_sessions(app, status="held") == []
    with pytest.raises(NotFoundError, match="unknown program 'nope'"):
        sessions.list_sessions(app, program_id="nope")

    first = by_guide[0]["id"]
    with pytest.raises(UserError, match="only once it has started"):
        sessions.mark_session(app, first, "held")
    assert sessions.mark_session(app, first, "cancelled") == sessions.MarkedSession(
        first, "cancelled", True
    )
    assert not sessions.mark_session(app, first, "cancelled").changed
    assert [r["id"] for r in sessions.list_sessions(app, status="cancelled")] == [first]


def test_pause_resume_and_end_a_pairing(world: dict[str, Any]) -> None:
    app, watcher, pairing = world["app"], world["watcher"], world["pairing"]
    sessions.schedule_sessions(app, "mentoring")
    told = len(watcher.seen)
    with pytest.raises(UserError, match="--reason: say why"):
        service.pause_pairing(app, pairing, "  \n ")
    with pytest.raises(NotFoundError, match="unknown pairing '404'"):
        service.pause_pairing(app, "404", "leave")

    paused = service.pause_pairing(app, str(pairing), "  parental\n leave ")
    assert paused == service.StoppedPairing(pairing, 6)  # every session was still ahead
    with app.database().transaction() as s:
        row = s.get(PairingRow, pairing)
        assert row is not None and (row.status, row.end_reason) == ("paused", "parental leave")
    assert len(watcher.seen) == told  # pausing plans nothing
    with pytest.raises(UserError, match="only active pairings pause"):
        service.pause_pairing(app, pairing, "again")

    resumed = service.resume_pairing(app, pairing)
    assert (resumed.id, resumed.learner_id, resumed.sessions) == (pairing, world["ana"], 6)
    new = [sid for sid, _ in watcher.seen[told:]]
    assert len(new) == 6 and all(stored for _, stored in watcher.seen[told:])
    scheduled = sessions.list_sessions(app, status="scheduled")
    assert sorted(r["id"] for r in scheduled) == sorted(new)
    assert resumed.first is not None and resumed.first.isoformat() == scheduled[0]["start"]
    with pytest.raises(UserError, match="not paused"):
        service.resume_pairing(app, pairing)

    ended = service.end_pairing(app, pairing, "moved teams")
    assert ended == service.StoppedPairing(pairing, 6)
    with pytest.raises(UserError, match="is ended, not open"):
        service.end_pairing(app, pairing, "again")
    listed = service.list_pairings(app, person_ref=str(world["ben"]), with_names=True)
    assert [(p["id"], p["status"], p["end_reason"]) for p in listed] == [
        (pairing, "ended", "moved teams")
    ]
    assert (listed[0]["learner"], listed[0]["guide"]) == ("Ana Test", "Ben Test")
    assert "learner" not in service.list_pairings(app)[0]


# -- programs and people -----------------------------------------------------------------------
def test_enroll_opt_out_and_list_people(world: dict[str, Any]) -> None:
    app, ana, ben = world["app"], world["ana"], world["ben"]
    done = programs.enroll_person(app, "mentoring", str(ben), "mentor", capacity=2)
    assert done == programs.Enrolled(ben, "Ben Test", "mentoring", "guide", 2)
    with pytest.raises(UserError, match="capacity applies to guides only"):
        programs.enroll_person(app, "mentoring", str(ana), "learner", capacity=1)
    with pytest.raises(NotFoundError, match="unknown program 'nope'"):
        programs.enroll_person(app, "nope", str(ana), "learner")
    out = programs.opt_out(app, "mentoring", "p1@example.com")
    assert out == programs.OptedOut(ana, "Ana Test", "mentoring", ["guide", "learner"])
    rows = programs.list_enrollments(app, program_id="mentoring", role="coachee")
    assert [(r["person_id"], r["role"], r["opted_out"]) for r in rows] == [(ana, "learner", True)]
    with pytest.raises(UserError, match="unknown role 'boss'"):
        programs.list_enrollments(app, role="boss")
    assert [p["id"] for p in programs.list_programs(app)] == ["mentoring", "coaching"]

    people = list_people(app)
    assert [p["id"] for p in people] == [ana, ben, world["eve"]]
    assert [p["id"] for p in list_people(app, status="inactive")] == []
    assert show_person(app, "p2@example.com")["name"] == "Ben Test"
    with pytest.raises(NotFoundError, match="unknown person 'x@example"):
        show_person(app, "x@example.com")
