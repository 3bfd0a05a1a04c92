"""A group program end to end on SQLite and PostgreSQL: circles from `match`, meetings inside
every member's hours, one calendar event per meeting, attendance per learner, JSON keys."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from coachbridge.app import App
from coachbridge.pairings import sessions as session_service
from coachbridge.reports.data import load_program
from coachbridge.store import Database
from coachbridge.store.tables import CircleRow, PersonRow, SessionAttendanceRow
from icalendar import Calendar
from sqlalchemy import select

# A fixed-term program that started weeks ago, so its meetings can be marked held today.
START = date.today() - timedelta(days=date.today().weekday() + 70)  # a Monday, 10 weeks ago

CONFIG = f"""
[[programs]]
id = "circles"
kind = "group"
circle_size = [3, 4]
start = {START.isoformat()}
duration_weeks = 4
cadence_days = 14
session_minutes = 60
[programs.learners]
level = [2, 4]
[programs.guides]
level = [6, 9]

[[programs]]
id = "mentoring"
kind = "mentoring"
"""

ZONES = {
    "berlin": "Europe/Berlin",
    "london": "Europe/London",
    "ny": "America/New_York",
    "tokyo": "Asia/Tokyo",
}


def _people(url: str, learners: list[str], guides: list[str]) -> dict[str, int]:
    db = Database(url)
    db.upgrade()
    ids = {}
    with db.transaction() as s:
        for n, (name, zone, level) in enumerate(
            [(f"l{i}", z, 3) for i, z in enumerate(learners)]
            + [(f"g{i}", z, 7) for i, z in enumerate(guides)]
        ):
            row = PersonRow(
                first_name=name,
                last_name="Test",
                email=f"{name}@example.com",
                email_key=f"{name}@example.com",
                timezone=ZONES[zone],
                status="active",
                level=level,
                department=f"D{n % 3}",
                skills=[],
                interests=[],
                languages=["en"],
            )
            s.add(row)
            s.flush()
            ids[name] = row.id
    db.dispose()
    return ids


@pytest.fixture
def world(tmp_path: Path, db_url: str, run_cli):
    (tmp_path / "coachbridge.toml").write_text(CONFIG, encoding="utf-8")
    learners = ["berlin"] * 5 + ["london", "ny"]
    ids = _people(db_url, learners, ["berlin", "berlin"])

    def cli(*args: str):
        return run_cli("--db", db_url, *args)

    assert cli("enroll", "circles").exit_code == 0
    result = cli("match", "circles", "--apply")
    assert result.exit_code == 0, result.output
    return {"url": db_url, "ids": ids, "cli": cli, "tmp": tmp_path}


def _inside(start: datetime, minutes: int, zone: str) -> bool:
    local = start.astimezone(ZoneInfo(ZONES[zone]))
    end = local + timedelta(minutes=minutes)
    return local.weekday() < 5 and time(9) <= local.time() and end.time() <= time(17)


def test_circles_meet_inside_everyones_hours(world) -> None:
    cli, ids = world["cli"], world["ids"]
    pairings = json.loads(cli("pairings", "--program", "circles", "--format", "json").output)
    assert len(pairings) == 7 and all(p["circle_id"] is not None for p in pairings)
    sizes: dict[int, set[int]] = {}
    for p in pairings:
        sizes.setdefault(p["circle_id"], set()).add(p["guide_id"])
    assert len(sizes) == 2 and all(len(g) == 1 for g in sizes.values())
    counts = sorted(sum(1 for p in pairings if p["circle_id"] == c) for c in sizes)
    assert counts == [3, 4]

    app = App(config_option=str(world["tmp"] / "coachbridge.toml"), db_option=world["url"])
    planned = session_service.schedule_sessions(
        app, "circles", now=datetime.combine(START, time(0), tzinfo=UTC)
    )
    assert planned[0].sessions == 4  # 2 circles x 2 meetings (4 weeks, every 14 days)
    again = session_service.schedule_sessions(
        app, "circles", now=datetime.combine(START, time(0), tzinfo=UTC)
    )
    assert again[0].sessions == 0
    rows = json.loads(cli("sessions", "--program", "circles", "--format", "json").output)
    assert len(rows) == 4
    zone_of = {ids[f"l{i}"]: z for i, z in enumerate(["berlin"] * 5 + ["london", "ny"])}
    zone_of |= {ids["g0"]: "berlin", ids["g1"]: "berlin"}
    for row in rows:
        members = {p["learner_id"] for p in pairings if p["circle_id"] == row["circle_id"]}
        assert {a["person_id"] for a in row["attendees"]} == members
        assert all(a["status"] == "scheduled" for a in row["attendees"])
        assert row["outside_hours"] == []
        start = datetime.fromisoformat(row["start"])
        for pid in members | {row["guide_id"]}:
            assert _inside(start, 60, zone_of[pid]), (pid, row["start"])
    # A learner's own listing shows their circle's meetings, whoever the first pairing is.
    ny = ids["l6"]
    mine = json.loads(cli("sessions", "--person", str(ny), "--format", "json").output)
    assert len(mine) == 2 and all(ny in {a["person_id"] for a in r["attendees"]} for r in mine)
    # One-to-one listings keep their keys.
    assert "circle_id" not in json.loads(
        cli("pairings", "--program", "mentoring", "--format", "json").output or "[]"
    )


def test_one_event_per_meeting_with_every_learner(world) -> None:
    cli = world["cli"]
    app = App(config_option=str(world["tmp"] / "coachbridge.toml"), db_option=world["url"])
    session_service.schedule_sessions(
        app, "circles", now=datetime.combine(START, time(0), tzinfo=UTC)
    )
    rows = json.loads(cli("sessions", "--program", "circles", "--format", "json").output)
    out = world["tmp"] / "ics"
    assert cli("sessions", "--program", "circles", "--ics", str(out)).exit_code == 0
    db = Database(world["url"])
    with db.transaction() as s:
        emails = {p.id: p.email for p in s.scalars(select(PersonRow))}
    db.dispose()
    for row in rows:
        learners = {emails[a["person_id"]] for a in row["attendees"]}
        guide = emails[row["guide_id"]]
        for pid in [row["guide_id"]] + [a["person_id"] for a in row["attendees"]]:
            cal = Calendar.from_ical((out / f"person-{pid}.ics").read_bytes())
            events = [
                e for e in cal.walk("VEVENT") if str(e["uid"]).startswith(f"session-{row['id']}@")
            ]
            assert len(events) == 1, "one event (one UID) per meeting"
            event = events[0]
            assert str(event["organizer"]) == f"mailto:{guide}"
            attendees = event["attendee"]
            attendees = attendees if isinstance(attendees, list) else [attendees]
            assert {str(a).removeprefix("mailto:") for a in attendees} == learners


def test_attendance_is_marked_per_person(world) -> None:
    cli, ids = world["cli"], world["ids"]
    app = App(config_option=str(world["tmp"] / "coachbridge.toml"), db_option=world["url"])
    session_service.schedule_sessions(
        app, "circles", now=datetime.combine(START, time(0), tzinfo=UTC)
    )
    row = json.loads(cli("sessions", "--program", "circles", "--format", "json").output)[0]
    first, second = (a["person_id"] for a in row["attendees"][:2])
    result = cli("sessions", "mark", str(row["id"]), "held", "--person", str(first))
    assert result.exit_code == 0, result.output
    assert (
        cli(
            "sessions", "mark", str(row["id"]), "missed", "--person", "nobody@example.com"
        ).exit_code
        == 2
    )
    assert cli("sessions", "mark", str(row["id"]), "missed", "--person", str(second)).exit_code == 0
    outsider = ids["g1"] if row["guide_id"] != ids["g1"] else ids["g0"]
    bad = cli("sessions", "mark", str(row["id"]), "held", "--person", str(outsider))
    assert bad.exit_code == 2 and "not an attendee" in bad.output + (bad.stderr or "")
    after = next(
        r
        for r in json.loads(cli("sessions", "--program", "circles", "--format", "json").output)
        if r["id"] == row["id"]
    )
    assert after["status"] == "held"  # someone came
    status = {a["person_id"]: a["status"] for a in after["attendees"]}
    assert status[first] == "held" and status[second] == "missed"
    assert sum(1 for v in status.values() if v == "scheduled") == len(status) - 2
    # Feedback is per attendee: each learner's answer lands on their own pairing.
    for pid in (first, second):
        assert (
            cli("feedback", "add", str(row["id"]), "--from", str(pid), "--rating", "4").exit_code
            == 0
        )
    db = Database(world["url"])
    with db.transaction() as s:
        from coachbridge.store.tables import FeedbackRow

        pairing_of = dict(
            s.execute(
                select(SessionAttendanceRow.person_id, SessionAttendanceRow.pairing_id).where(
                    SessionAttendanceRow.session_id == row["id"]
                )
            ).all()
        )
        for fb in s.scalars(select(FeedbackRow).where(FeedbackRow.session_id == row["id"])):
            assert fb.pairing_id == pairing_of[fb.from_person_id]
        # Reports count each learner's attendance on their own pairing.
        facts = load_program(s, "circles").pairings
        assert facts[pairing_of[first]].held == 1 and facts[pairing_of[first]].missed == 0
        assert facts[pairing_of[second]].missed == 1 and facts[pairing_of[second]].held == 0
        assert all(facts[p].planned == 2 for p in pairing_of.values())
        assert (
            s.scalar(select(CircleRow.guide_id).where(CircleRow.id == row["circle_id"]))
            == row["guide_id"]
        )
    db.dispose()


def test_no_common_hours_suits_the_most(tmp_path: Path, db_url: str, run_cli) -> None:
    (tmp_path / "coachbridge.toml").write_text(CONFIG.replace("[3, 4]", "[3, 3]"), encoding="utf-8")
    ids = _people(db_url, ["berlin", "tokyo", "ny"], ["berlin"])
    assert run_cli("--db", db_url, "enroll", "circles").exit_code == 0
    assert run_cli("--db", db_url, "match", "circles", "--apply").exit_code == 0
    app = App(config_option=str(tmp_path / "coachbridge.toml"), db_option=db_url)
    session_service.schedule_sessions(
        app, "circles", now=datetime.combine(START, time(0), tzinfo=UTC)
    )
    rows = json.loads(run_cli("--db", db_url, "sessions", "--format", "json").output)
    assert len(rows) == 2
    zones = {ids["g0"]: "berlin", ids["l0"]: "berlin", ids["l1"]: "tokyo", ids["l2"]: "ny"}
    for row in rows:
        # Tokyo and New York never share working hours: one of them is outside, the rest in.
        assert len(row["outside_hours"]) == 1
        assert row["outside_hours"][0] in (ids["l1"], ids["l2"])
        start = datetime.fromisoformat(row["start"])
        for pid, zone in zones.items():
            assert _inside(start, 60, zone) == (pid not in row["outside_hours"]), pid
