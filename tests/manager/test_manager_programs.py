"""Manager coaching (``kind = "manager"``): every learner's guide is their current manager,
and a sync that moves a person to another manager ends and restarts their pairing once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from coachbridge.store import Database
from coachbridge.store.tables import (
    AuditRow,
    ExternalIdRow,
    NotificationRow,
    PairingRow,
    SessionRow,
)
from sqlalchemy import func, select

from tests.csv.csv_helpers import person, write_config, write_csv

PROGRAM = """
[[programs]]
id = "team-coaching"
kind = "manager"
owner = "p1@example.com"
duration_weeks = 26
cadence_days = 14
session_minutes = 30
max_reports = 3
[programs.learners]
departments = ["Engineering"]
"""


def people(moved: bool = False) -> list[dict[str, str]]:
    """1 leads; 2 and 3 report to 1; 4-8 report to 2 (Engineering); 9-10 to 3 (Engineering);
    11 is in Sales under 3. ``moved``: 5 moves from 2 to 3."""
    rows = [
        person("1", level="9", department="Executive"),
        person("2", "1", level="7", department="Management"),
        person("3", "1", level="7", department="Management"),
    ]
    rows += [person(str(i), "2") for i in range(4, 9)]
    rows += [person(str(i), "3") for i in (9, 10)]
    rows.append(person("11", "3", department="Sales"))
    if moved:
        rows[4]["manager_id"] = "3"  # employee 5
    return rows


class World:
    def __init__(self, folder: Path, db_url: str, run_cli) -> None:
        self.folder, self.url, self.cli = folder, db_url, run_cli
        self.config = write_config(folder, PROGRAM)
        self.db = Database(db_url)

    def run(self, *args: str, code: int = 0):
        result = self.cli("--config", str(self.config), "--db", self.url, *args)
        assert result.exit_code == code, (result.stdout, result.stderr)
        return result

    def write(self, moved: bool = False) -> None:
        write_csv(self.folder / "people.csv", people(moved))

    def pid(self, external: str) -> int:
        with self.db.transaction() as s:
            link = s.get(ExternalIdRow, ("hr", external))
            assert link is not None
            return link.person_id

    def pairings(self) -> list[tuple[int, int, str, str | None]]:
        with self.db.transaction() as s:
            return [
                (p.learner_id, p.guide_id, p.status, p.end_reason)
                for p in s.scalars(select(PairingRow).order_by(PairingRow.id))
            ]


def start(tmp_path: Path, db_url: str, run_cli) -> World:
    world = World(tmp_path, db_url, run_cli)
    world.write()
    world.run("db", "upgrade")
    world.run("sync", "hr")
    world.run("enroll", "team-coaching")
    return world


def test_each_learner_is_paired_with_their_manager_and_warned_over_max(
    tmp_path: Path, db_url: str, run_cli
) -> None:
    world = start(tmp_path, db_url, run_cli)
    out = world.run("match", "team-coaching", "--apply", "--format", "json")
    data = json.loads(out.stdout)
    pid = world.pid
    expected = {(pid(str(i)), pid("2")) for i in range(4, 9)} | {
        (pid(str(i)), pid("3")) for i in (9, 10)
    }
    assert {(p["learner_id"], p["guide_id"]) for p in data["pairs"]} == expected
    assert data["unmatched"] == []
    assert data["guarantee"].startswith("each learner paired with their current manager")
    # Manager 2 has five reports, above max_reports 3: warned about, paired anyway.
    assert "has 5 reports in the program, above max_reports 3" in out.stderr
    assert "person " + str(pid("3")) not in out.stderr
    assert len(data["created"]) == 7
    assert {row[2] for row in world.pairings()} == {"active"}
    # Nobody is flagged for being paired with their own manager.
    with world.db.transaction() as s:
        assert not list(s.scalars(select(PairingRow.flag).where(PairingRow.flag.is_not(None))))


def test_a_sync_that_moves_a_person_ends_and_restarts_their_pairing_once(
    tmp_path: Path, db_url: str, run_cli
) -> None:
    world = start(tmp_path, db_url, run_cli)
    world.run("match", "team-coaching", "--apply")
    world.run("sessions", "schedule", "team-coaching")
    five, two, three = world.pid("5"), world.pid("2"), world.pid("3")
    with world.db.transaction() as s:
        old = s.scalars(select(PairingRow).where(PairingRow.learner_id == five)).one()
        old_id = old.id
        sessions = list(s.scalars(select(SessionRow).where(SessionRow.pairing_id == old_id)))
        assert sessions and all(x.status == "scheduled" for x in sessions)
        # One check-in already happened: it stays in the history.
        sessions[0].status = "held"
        sessions[0].start = datetime.now(UTC) - timedelta(days=1)
        held_id = sessions[0].id

    world.write(moved=True)
    out = world.run("sync", "hr", "--format", "json")
    report = json.loads(out.stdout)
    assert report["manager_pairings_ended"] == 1
    assert report["manager_pairings_started"] == 1
    assert report["manager_sessions_cancelled"] == len(sessions) - 1
    assert report["pairings_flagged"] == 0

    with world.db.transaction() as s:
        rows = list(
            s.scalars(
                select(PairingRow).where(PairingRow.learner_id == five).order_by(PairingRow.id)
            )
        )
        assert [(r.guide_id, r.status, r.end_reason) for r in rows] == [
            (two, "ended", "manager changed"),
            (three, "active", None),
        ]
        old_sessions = {
            x.id: x.status
            for x in s.scalars(select(SessionRow).where(SessionRow.pairing_id == old_id))
        }
        assert old_sessions.pop(held_id) == "held"
        assert set(old_sessions.values()) == {"cancelled"}
        new_sessions = list(
            s.scalars(select(SessionRow).where(SessionRow.pairing_id == rows[1].id))
        )
        assert new_sessions and all(x.status == "scheduled" for x in new_sessions)
        audits = s.scalar(
            select(func.count()).select_from(AuditRow).where(AuditRow.action == "create_pairing")
        )
        total_sessions = s.scalar(select(func.count()).select_from(SessionRow))
    # Both people of the new pairing are told, with its check-ins' invitation, once.
    with world.db.transaction() as s:
        sent = {
            n.key: n.status
            for n in s.scalars(
                select(NotificationRow).where(NotificationRow.key.like(f"pairing:{rows[1].id}:%"))
            )
        }
        messages = s.scalar(select(func.count()).select_from(NotificationRow))
    assert sent == {
        f"pairing:{rows[1].id}:learner:log": "sent",
        f"pairing:{rows[1].id}:guide:log": "sent",
    }
    # The other pairings are untouched.
    others = [p for p in world.pairings() if p[0] != five]
    assert all(status == "active" for _, _, status, _ in others)

    # Running the same sync again changes nothing.
    again = json.loads(world.run("sync", "hr", "--format", "json").stdout)
    assert again["manager_pairings_ended"] == again["manager_pairings_started"] == 0
    with world.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(SessionRow)) == total_sessions
        assert (
            s.scalar(
                select(func.count())
                .select_from(AuditRow)
                .where(AuditRow.action == "create_pairing")
            )
            == audits
        )
    assert len(world.pairings()) == 8
    with world.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(NotificationRow)) == messages


def test_a_leaving_manager_and_a_later_new_manager(tmp_path: Path, db_url: str, run_cli) -> None:
    """The manager leaves first (pairing ends: guide left); when the HRIS names the new
    manager in a later sync, the learner is paired with them."""
    world = start(tmp_path, db_url, run_cli)
    world.run("match", "team-coaching", "--apply")
    rows = people()
    rows[2]["status"] = "Inactive"  # manager 3 leaves; 9 and 10 still point at them
    write_csv(world.folder / "people.csv", rows)
    world.run("sync", "hr", "--force")
    nine, three, two = world.pid("9"), world.pid("3"), world.pid("2")
    assert (nine, three, "ended", "guide left the company") in world.pairings()
    rows[8]["manager_id"] = "2"  # employee 9
    rows[9]["manager_id"] = "2"
    rows[10]["manager_id"] = "2"
    write_csv(world.folder / "people.csv", rows)
    report = json.loads(world.run("sync", "hr", "--format", "json").stdout)
    assert report["manager_pairings_started"] == 2  # 9 and 10; 11 is not a learner
    assert (nine, two, "active", None) in world.pairings()


def test_review_rule_goals_attach_to_the_manager_pairing(
    tmp_path: Path, db_url: str, run_cli
) -> None:
    rule = """
[[rules]]
name = "low-rating"
on = "review.completed"
when = [{ field = "rating", op = "<=", value = 0.25 }]
then = { enroll = "team-coaching", role = "learner", goal = "Plan after the {cycle} review" }
"""
    world = World(tmp_path, db_url, run_cli)
    world.config = write_config(
        tmp_path, PROGRAM + rule, reviews="reviews.csv", rules_since="2020-01-01T00:00:00Z"
    )
    world.write()
    header = ("employee_id", "cycle", "rating", "completed_at")
    write_csv(tmp_path / "reviews.csv", [], header)
    world.run("db", "upgrade")
    world.run("sync", "hr")
    world.run("enroll", "team-coaching")
    # A manager program needs no guide pool: check does not warn that rules find no guide.
    assert "no enrolled guide" not in world.run("check").stdout
    world.run("match", "team-coaching", "--apply")
    write_csv(
        tmp_path / "reviews.csv",
        [
            {"employee_id": "6", "cycle": "2026-H1", "rating": "1", "completed_at": "2026-07-01"},
            # 11 is in Sales: not a learner until the rule enrolls them.
            {"employee_id": "11", "cycle": "2026-H1", "rating": "1", "completed_at": "2026-07-01"},
        ],
        header,
    )
    world.run("sync", "hr")
    from coachbridge.store.tables import GoalRow

    six, eleven = world.pid("6"), world.pid("11")
    with world.db.transaction() as s:
        goals = {
            g.owner_id: g.pairing_id
            for g in s.scalars(select(GoalRow).where(GoalRow.program_id == "team-coaching"))
        }
        pairing = {
            p.learner_id: p
            for p in s.scalars(select(PairingRow).where(PairingRow.status == "active"))
        }
        assert goals == {six: pairing[six].id, eleven: pairing[eleven].id}
        assert pairing[six].guide_id == world.pid("2")
        assert pairing[eleven].guide_id == world.pid("3")


def test_check_and_the_daily_health_check_warn_about_managers_over_max_reports(
    tmp_path: Path, db_url: str, run_cli
) -> None:
    world = start(tmp_path, db_url, run_cli)
    # Before matching, check counts the pairs matching would make.
    checked = world.run("check")
    assert "above max_reports 3" in checked.stdout
    assert f"person {world.pid('2')}" in checked.stdout
    world.run("match", "team-coaching", "--apply")
    first = json.loads(world.run("nudge", "--format", "json").stdout)
    over = [n for n in first if n["condition"] == "manager_over_max_reports"]
    assert len(over) == 1 and over[0]["program"] == "team-coaching"
    again = json.loads(world.run("nudge", "--format", "json").stdout)
    assert not [n for n in again if n["condition"] == "manager_over_max_reports"]


def test_keys_that_do_not_apply_to_the_kind_are_refused(tmp_path: Path, run_cli) -> None:
    write_csv(tmp_path / "people.csv", people())
    for body, key in (
        (
            '[[programs]]\nid = "m"\nkind = "mentoring"\nmax_reports = 4\n',
            "programs[0].max_reports",
        ),
        ('[[programs]]\nid = "m"\nkind = "manager"\ncapacity = 4\n', "programs[0].capacity"),
        (
            '[[programs]]\nid = "m"\nkind = "manager"\n[programs.guides]\nlevel = [5, 9]\n',
            "programs[0].guides",
        ),
        ('[[programs]]\nid = "m"\nkind = "manager"\nmax_reports = 0\n', "programs[0].max_reports"),
    ):
        config = write_config(tmp_path, body)
        db = tmp_path / "store.db"
        result = run_cli("--config", str(config), "--db", f"sqlite:///{db}", "check")
        assert result.exit_code == 2, (result.stdout, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and f"{config}: {key}: " in lines[0], lines
        assert "Traceback" not in result.stderr
        assert not db.exists()  # refused before anything was stored


class Recorder:
    """Stands in for the plugins' registry: what the observers were told."""

    def __init__(self) -> None:
        self.pairings: list[tuple[int, int]] = []
        self.sessions: list[int] = []

    def pairing_created(self, pairing) -> None:
        self.pairings.append((pairing.learner_id, pairing.guide_id))

    def session_scheduled(self, session) -> None:
        self.sessions.append(session.pairing_id)


def test_observers_hear_of_the_pairing_a_sync_starts(tmp_path: Path, db_url: str, run_cli) -> None:
    from coachbridge.app import App
    from coachbridge.hris.sync import Syncer

    world = start(tmp_path, db_url, run_cli)
    world.run("match", "team-coaching", "--apply")
    world.write(moved=True)
    app = App(config_option=str(world.config), db_option=world.url)
    recorder = Recorder()
    Syncer(
        app.database(), app.connector("hr"), programs=app.config.programs, registry=recorder
    ).run()
    assert recorder.pairings == [(world.pid("5"), world.pid("3"))]
    with world.db.transaction() as s:
        new = s.scalars(
            select(PairingRow.id).where(
                PairingRow.learner_id == world.pid("5"), PairingRow.status == "active"
            )
        ).one()
    assert recorder.sessions and set(recorder.sessions) == {new}
    app.close()


def test_candidates_of_a_manager_program_are_each_learner_with_their_manager(
    tmp_path: Path, db_url: str, run_cli
) -> None:
    """Nothing is scored in a manager program: `--candidates` (and `--all-pairs`) write the
    pairs the HRIS decides, score 0, so an audit sees what the program would do."""
    world = start(tmp_path, db_url, run_cli)
    pid = world.pid
    expected = {(pid(str(i)), pid("2")) for i in range(4, 9)} | {
        (pid(str(i)), pid("3")) for i in (9, 10)
    }
    for extra in ((), ("--all-pairs",)):
        path = tmp_path / f"candidates{len(extra)}.csv"
        out = world.run("match", "team-coaching", "--candidates", str(path), *extra)
        assert "7 " in out.stderr
        lines = path.read_text().splitlines()
        assert lines[0] == "learner_id,guide_id,score"
        rows = [line.split(",") for line in lines[1:]]
        assert {(int(a), int(b)) for a, b, _ in rows} == expected
        assert {float(score) for _, _, score in rows} == {0.0}
