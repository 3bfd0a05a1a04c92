"""The command line: enroll, enrollments, sessions (schedule, mark, log, reschedule, --ics), goals."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from coachbridge.store import Database
from coachbridge.store.tables import EnrollmentRow, GoalRow, SessionRow
from icalendar import Calendar
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
holidays = "DE"
owner = "hr@example.com"
[programs.learners]
level = [2, 4]
departments = ["Engineering"]
[programs.guides]
level = [5, 9]

[[programs]]
id = "coaching"
kind = "coaching"
duration_weeks = 4
cadence_days = 7
[programs.learners]
level = [20, 30]
[programs.guides]
level = [5, 9]

[[programs]]
id = "open"
kind = "mentoring"
[programs.guides]
level = [1, 9]
"""


@pytest.fixture
def setup(tmp_path: Path, db_url: str, factory: Factory) -> dict:
    (tmp_path / "coachbridge.toml").write_text(CONFIG, encoding="utf-8")
    ids = {
        "ana": factory.person(
            first_name="Ana", last_name="Díaz", level=3, department="Engineering"
        ),
        "eve": factory.person(
            first_name="Eve", last_name="=cmd|' /C calc'!A0", level=2, department="Engineering"
        ),
        "ben": factory.person(
            first_name="Ben", last_name="Ode", level=6, timezone="America/New_York"
        ),
        "sales": factory.person(level=3, department="Sales"),
    }
    return {"url": db_url, "ids": ids}


def cli(run_cli, setup: dict, *args: str):
    return run_cli("--db", setup["url"], *args)


def count(url: str, table) -> int:
    db = Database(url)
    try:
        with db.transaction() as s:
            return s.scalar(select(func.count()).select_from(table)) or 0
    finally:
        db.dispose()


def test_enroll_eligible_then_list(run_cli, setup: dict) -> None:
    ids = setup["ids"]
    result = cli(run_cli, setup, "enroll", "mentoring")
    assert result.exit_code == 0, result.stderr
    assert "3 newly enrolled" in result.stdout
    assert "learners: 2 eligible, 2 newly enrolled" in result.stdout
    again = cli(run_cli, setup, "enroll", "mentoring")
    assert "0 newly enrolled" in again.stdout and "2 already enrolled" in again.stdout
    listing = cli(run_cli, setup, "enrollments", "--program", "mentoring", "--format", "json")
    rows = json.loads(listing.stdout)
    assert {(r["person_id"], r["role"]) for r in rows} == {
        (ids["ana"], "learner"),
        (ids["eve"], "learner"),
        (ids["ben"], "guide"),
    }
    assert set(rows[0]) >= {"program", "person_id", "role", "capacity", "opted_out"}


def test_enroll_matching_nobody_exits_2_and_stores_nothing(run_cli, setup: dict) -> None:
    result = cli(run_cli, setup, "enroll", "coaching")
    assert result.exit_code == 2
    assert "[programs.learners] eligibility matches nobody" in result.stderr
    assert "Traceback" not in result.stderr
    assert count(setup["url"], EnrollmentRow) == 0  # the guides were not enrolled either


def test_enroll_without_learner_rules_warns(run_cli, setup: dict) -> None:
    result = cli(run_cli, setup, "enroll", "open")
    assert result.exit_code == 0
    assert "no [programs.learners] eligibility" in result.stderr


def test_enroll_one_person_and_opt_out(run_cli, setup: dict) -> None:
    ids = setup["ids"]
    ok = cli(
        run_cli,
        setup,
        "enroll",
        "mentoring",
        "--person",
        "p3@example.com",
        "--role",
        "mentor",
        "--capacity",
        "2",
    )
    assert ok.exit_code == 0, ok.stderr
    assert "as guide (capacity 2)" in ok.stdout
    out = cli(run_cli, setup, "enroll", "mentoring", "--person", str(ids["ana"]), "--opt-out")
    assert out.exit_code == 0 and "opted out" in out.stdout
    cli(run_cli, setup, "enroll", "mentoring")
    rows = json.loads(
        cli(run_cli, setup, "enrollments", "--person", str(ids["ana"]), "--format", "json").stdout
    )
    assert rows and all(r["opted_out"] for r in rows)
    bad = cli(run_cli, setup, "enroll", "mentoring", "--person", "404", "--role", "learner")
    assert bad.exit_code == 2 and "unknown person '404'" in bad.stderr
    bad_role = cli(run_cli, setup, "enroll", "mentoring", "--person", "1", "--role", "boss")
    assert bad_role.exit_code == 2 and "unknown role 'boss'" in bad_role.stderr
    no_program = cli(run_cli, setup, "enroll", "nope")
    assert no_program.exit_code == 2 and "unknown program 'nope'" in no_program.stderr


def _schedule(run_cli, setup: dict, factory: Factory) -> int:
    ids = setup["ids"]
    prog = program(start=START, holidays="DE")
    pairing = factory.pairing(prog, ids["ana"], ids["ben"])
    result = cli(run_cli, setup, "sessions", "schedule", "mentoring")
    assert result.exit_code == 0, result.stderr
    assert "mentoring: 6 session(s) scheduled for 1 pairing(s)" in result.stdout
    return pairing


def test_schedule_list_and_rerun(run_cli, setup: dict, factory: Factory) -> None:
    pairing = _schedule(run_cli, setup, factory)
    again = cli(run_cli, setup, "sessions", "schedule")
    assert "mentoring: 0 session(s)" in again.stdout
    rows = json.loads(cli(run_cli, setup, "sessions", "--format", "json").stdout)
    assert len(rows) == 6
    first = rows[0]
    assert set(first) >= {
        "id",
        "pairing_id",
        "program",
        "learner_id",
        "guide_id",
        "start",
        "minutes",
        "status",
    }
    assert "private_notes" not in first
    assert first["pairing_id"] == pairing and first["program"] == "mentoring"
    assert first["start"].endswith("+00:00")
    assert datetime.fromisoformat(first["start"]).date() >= START
    assert first["minutes"] == 45 and first["status"] == "scheduled"
    none = cli(run_cli, setup, "sessions", "--person", str(setup["ids"]["eve"]), "--format", "json")
    assert json.loads(none.stdout) == []


def test_ics_export_and_cancel(run_cli, setup: dict, factory: Factory, tmp_path: Path) -> None:
    _schedule(run_cli, setup, factory)
    ids = setup["ids"]
    out = tmp_path / "cal"
    result = cli(run_cli, setup, "sessions", "--ics", str(out))
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        f"person-{ids['ana']}.ics",
        f"person-{ids['ben']}.ics",
    ]
    cal = Calendar.from_ical((out / f"person-{ids['ana']}.ics").read_bytes())
    uids = [str(e["UID"]) for e in cal.walk("VEVENT")]
    assert len(uids) == 6 and all(u.startswith("session-") for u in uids)
    first_id = int(uids[0].split("-")[1].split("@")[0])
    mark = cli(run_cli, setup, "sessions", "mark", str(first_id), "cancelled")
    assert mark.exit_code == 0 and "is now cancelled" in mark.stdout
    cli(run_cli, setup, "sessions", "--ics", str(out))
    cal = Calendar.from_ical((out / f"person-{ids['ben']}.ics").read_bytes())
    events = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    assert set(events) == set(uids)  # same UIDs: the export updates, never duplicates
    tagged = [uid for uid in events if uid.startswith(f"session-{first_id}@")]
    assert len(tagged) == 1 and tagged[0].endswith(".coachbridge")  # this database's tag
    cancelled = events[tagged[0]]
    assert str(cancelled["STATUS"]) == "CANCELLED" and int(cancelled["SEQUENCE"]) == 1
    assert str(cal["METHOD"]) == "REQUEST"


def test_mark_rules_and_exit_codes(run_cli, setup: dict, factory: Factory) -> None:
    _schedule(run_cli, setup, factory)
    rows = json.loads(cli(run_cli, setup, "sessions", "--format", "json").stdout)
    future = str(rows[0]["id"])
    early = cli(run_cli, setup, "sessions", "mark", future, "held")
    assert early.exit_code == 2 and "only once it has started" in early.stderr
    missing = cli(run_cli, setup, "sessions", "mark", "99999", "held")
    assert missing.exit_code == 2 and "unknown session id 99999" in missing.stderr
    bad = cli(run_cli, setup, "sessions", "mark", future, "great")
    assert bad.exit_code == 2
    # A session in the past can be held, then no longer cancelled.
    db = Database(setup["url"])
    with db.transaction() as s:
        row = s.get(SessionRow, int(future))
        row.start = datetime.now(UTC) - timedelta(days=1)
    db.dispose()
    held = cli(run_cli, setup, "sessions", "mark", future, "held")
    assert held.exit_code == 0 and "is now held" in held.stdout
    assert "was already held" in cli(run_cli, setup, "sessions", "mark", future, "held").stdout
    no = cli(run_cli, setup, "sessions", "mark", future, "cancelled")
    assert no.exit_code == 2 and "was held and cannot be cancelled" in no.stderr


def test_log_off_plan_session(run_cli, setup: dict, factory: Factory) -> None:
    pairing = _schedule(run_cli, setup, factory)
    when = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT10:00")
    result = cli(run_cli, setup, "sessions", "log", str(pairing), "--start", when)
    assert result.exit_code == 0, result.stderr
    # A naive time is the learner's (Berlin): 10:00 there is 08:00 or 09:00 UTC.
    rows = json.loads(
        cli(run_cli, setup, "sessions", "--status", "held", "--format", "json").stdout
    )
    assert len(rows) == 1 and rows[0]["seq"] is None and rows[0]["minutes"] == 45
    assert datetime.fromisoformat(rows[0]["start"]).hour in (8, 9)
    again = cli(run_cli, setup, "sessions", "log", str(pairing), "--start", when)
    assert "already logged" in again.stdout
    assert count(setup["url"], SessionRow) == 7
    future = cli(run_cli, setup, "sessions", "log", str(pairing), "--start", "2150-01-01T10:00")
    assert future.exit_code == 2 and "in the future" in future.stderr
    bad = cli(run_cli, setup, "sessions", "log", str(pairing), "--start", "next tuesday")
    assert bad.exit_code == 2 and "not an ISO 8601" in bad.stderr
    no_pair = cli(run_cli, setup, "sessions", "log", "4242", "--start", when)
    assert no_pair.exit_code == 2 and "unknown pairing id 4242" in no_pair.stderr


def test_reschedule_checks_conflicts_and_bumps_sequence(
    run_cli, setup: dict, factory: Factory
) -> None:
    _schedule(run_cli, setup, factory)
    rows = json.loads(cli(run_cli, setup, "sessions", "--format", "json").stdout)
    first, second = rows[0], rows[1]
    clash = cli(run_cli, setup, "sessions", "reschedule", str(first["id"]), second["start"])
    assert clash.exit_code == 2 and "already has a session" in clash.stderr
    target = datetime.fromisoformat(first["start"]) + timedelta(days=1)
    moved = cli(run_cli, setup, "sessions", "reschedule", str(first["id"]), target.isoformat())
    assert moved.exit_code == 0, moved.stderr
    assert "note:" not in moved.stderr  # Tuesday, same hour: inside both people's hours
    db = Database(setup["url"])
    with db.transaction() as s:
        row = s.get(SessionRow, first["id"])
        assert row.start == target and row.ics_sequence == 1
    db.dispose()
    saturday = target + timedelta(days=4)
    odd = cli(run_cli, setup, "sessions", "reschedule", str(first["id"]), saturday.isoformat())
    assert odd.exit_code == 0, odd.stderr
    assert "for the learner (Europe/Berlin) is a weekend" in odd.stderr
    past = cli(run_cli, setup, "sessions", "reschedule", str(first["id"]), "2001-01-01T10:00Z")
    assert past.exit_code == 2 and "in the past" in past.stderr
    only_date = cli(run_cli, setup, "sessions", "reschedule", str(first["id"]), "2999-01-01")
    assert only_date.exit_code == 2 and "without a time" in only_date.stderr


def test_goals_add_update_list_and_csv_escaping(run_cli, setup: dict, factory: Factory) -> None:
    pairing = _schedule(run_cli, setup, factory)
    ana = str(setup["ids"]["ana"])
    add = cli(
        run_cli,
        setup,
        "goals",
        "add",
        "--person",
        ana,
        "--pairing",
        str(pairing),
        "--title",
        "=HYPERLINK(evil)",
        "--measure",
        "talks given",
        "--target",
        "2",
        "--due",
        "2027-06-30",
    )
    assert add.exit_code == 0, add.stderr
    dup = cli(
        run_cli,
        setup,
        "goals",
        "add",
        "--person",
        ana,
        "--pairing",
        str(pairing),
        "--title",
        "=HYPERLINK(evil)",
    )
    assert "already exists" in dup.stdout
    rows = json.loads(
        cli(run_cli, setup, "goals", "--program", "mentoring", "--format", "json").stdout
    )
    assert len(rows) == 1
    goal = rows[0]
    assert set(goal) >= {
        "id",
        "owner_id",
        "pairing_id",
        "title",
        "measure",
        "target",
        "due_date",
        "progress",
        "status",
    }
    assert (goal["due_date"], goal["progress"], goal["status"]) == ("2027-06-30", 0.0, "open")
    csv_out = cli(run_cli, setup, "goals", "--format", "csv").stdout
    assert "'=HYPERLINK(evil)" in csv_out
    gid = str(goal["id"])
    up = cli(run_cli, setup, "goals", "update", gid, "--progress", "40")
    assert up.exit_code == 0 and "in_progress" in up.stdout
    done = cli(run_cli, setup, "goals", "update", gid, "--progress", "100")
    assert "completed" in done.stdout
    too_much = cli(run_cli, setup, "goals", "update", gid, "--progress", "140")
    assert too_much.exit_code == 2
    missing = cli(run_cli, setup, "goals", "update", "777", "--progress", "5")
    assert missing.exit_code == 2 and "unknown goal id 777" in missing.stderr
    outsider = cli(
        run_cli,
        setup,
        "goals",
        "add",
        "--person",
        str(setup["ids"]["eve"]),
        "--pairing",
        str(pairing),
        "--title",
        "x",
    )
    assert outsider.exit_code == 2 and "is not in pairing" in outsider.stderr
    bad_due = cli(run_cli, setup, "goals", "add", "--person", ana, "--title", "y", "--due", "soon")
    assert bad_due.exit_code == 2 and "not an ISO date" in bad_due.stderr
    assert count(setup["url"], GoalRow) == 1
