"""Pausing and resuming a pairing: the sessions a pause cancelled are planned again on resume."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from coachbridge.errors import UserError
from coachbridge.pairings.lifecycle import OPEN, pause_pairing, resume_pairing
from coachbridge.pairings.scheduling import log_session, mark_session, schedule_pairings
from coachbridge.store import Database
from coachbridge.store.tables import AuditRow, PairingRow, PersonRow, SessionRow
from sqlalchemy import select

from .scheduling_factories import Factory, program

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)  # a Monday
# A rolling program (no start): six sessions, one a fortnight, over 12 weeks from the pairing.
ROLLING = program(id="coaching", name="Coaching", kind="coaching", start=None)


def _sessions(db: Database, pairing_id: int) -> list[SessionRow]:
    with db.transaction() as s:
        rows = list(
            s.scalars(
                select(SessionRow)
                .where(SessionRow.pairing_id == pairing_id)
                .order_by(SessionRow.id)
            )
        )
        s.expunge_all()
    return rows


@pytest.fixture
def paired(db: Database, factory: Factory) -> int:
    """A pairing made at T0 with its six sessions planned, the first two held."""
    learner = factory.person(first_name="Ana")
    guide = factory.person(first_name="Ben", level=6)
    pid = factory.pairing(ROLLING, learner, guide, made=T0)
    with db.transaction() as s:
        made = schedule_pairings(s, ROLLING, [pid], now=T0)
        assert len(made) == 6
        for row in made:
            if row.seq in (1, 2):
                row.status = "held"
    return pid


def test_pause_cancels_the_future_and_keeps_the_guides_place(db: Database, paired: int) -> None:
    paused_at = T0 + timedelta(days=20)
    with db.transaction() as s:
        pairing = s.get(PairingRow, paired)
        assert pause_pairing(s, pairing, "parental leave", paused_at, actor="cli") == 4
    rows = _sessions(db, paired)
    assert [r.status for r in rows] == ["held"] * 2 + ["cancelled"] * 4
    assert all(r.ics_sequence == 1 for r in rows if r.status == "cancelled")
    with db.transaction() as s:
        pairing = s.get(PairingRow, paired)
        assert (pairing.status, pairing.end_reason) == ("paused", "parental leave")
        assert pairing.status in OPEN  # open pairings hold their guide's place
        audit = s.scalars(select(AuditRow).where(AuditRow.action == "pause_pairing")).one()
        cancelled = [r.id for r in rows if r.status == "cancelled"]
        assert audit.details == {"reason": "parental leave", "sessions_cancelled": cancelled}
        assert audit.actor == "cli"
        with pytest.raises(UserError, match="only active pairings pause"):
            pause_pairing(s, pairing, "again", paused_at, actor="cli")


def test_resume_plans_the_cancelled_sessions_from_today(db: Database, paired: int) -> None:
    paused_at, resumed_at = T0 + timedelta(days=20), T0 + timedelta(days=45)
    with db.transaction() as s:
        pause_pairing(s, s.get(PairingRow, paired), "leave", paused_at, actor="cli")
    before = _sessions(db, paired)
    with db.transaction() as s:
        pairing = s.get(PairingRow, paired)
        created = resume_pairing(s, pairing, ROLLING, resumed_at, actor="cli")
        assert (pairing.status, pairing.end_reason) == ("active", None)
        # The sixth would fall after the pairing's 12 weeks end (2027-03-29): not planned.
        assert sorted(r.seq for r in created) == [3, 4, 5]
    rows = _sessions(db, paired)
    by_id = {r.id: r for r in rows}
    # What happened stays in the record: the held sessions as they were, the cancelled ones
    # still cancelled (their calendar events stay cancelled) but out of the plan.
    for old in before:
        now = by_id[old.id]
        assert (now.status, now.start, now.ics_sequence) == (
            old.status,
            old.start,
            old.ics_sequence,
        )
        assert now.seq == (old.seq if old.status == "held" else None)
    planned = sorted((r for r in rows if r.status == "scheduled"), key=lambda r: r.seq)
    assert [r.seq for r in planned] == [3, 4, 5]
    assert max(r.start for r in planned) < datetime(2027, 3, 29, 8, 0, tzinfo=UTC)
    # The first falls in the fortnight that starts on the day of the resume, the rest keep
    # the cadence from it: no gap for the periods the pause took.
    day0 = resumed_at.date()
    for n, row in enumerate(planned):
        assert row.start >= resumed_at
        first_day = day0 + timedelta(days=14 * n)
        assert first_day <= row.start.date() < first_day + timedelta(days=14), (n, row.start)
    with db.transaction() as s:
        assert s.scalars(select(AuditRow).where(AuditRow.action == "resume_pairing")).one()


def test_a_session_cancelled_before_the_pause_stays_cancelled(db: Database, paired: int) -> None:
    with db.transaction() as s:
        fifth = s.scalars(
            select(SessionRow).where(SessionRow.pairing_id == paired, SessionRow.seq == 5)
        ).one()
        mark_session(s, fifth.id, "cancelled", now=T0 + timedelta(days=10))
        fifth_id = fifth.id
    with db.transaction() as s:
        pause_pairing(s, s.get(PairingRow, paired), "leave", T0 + timedelta(days=20), actor="x")
    with db.transaction() as s:
        created = resume_pairing(
            s, s.get(PairingRow, paired), ROLLING, T0 + timedelta(days=30), actor="x"
        )
        assert sorted(r.seq for r in created) == [3, 4, 6]
        fifth = s.get(SessionRow, fifth_id)
        assert (fifth.seq, fifth.status) == (5, "cancelled")


def test_resume_is_refused_when_it_cannot_hold(db: Database, paired: int) -> None:
    def resume(at: datetime) -> None:
        with db.transaction() as s:
            resume_pairing(s, s.get(PairingRow, paired), ROLLING, at, actor="cli")

    with pytest.raises(UserError, match="is active, not paused"):
        resume(T0 + timedelta(days=30))
    with db.transaction() as s:
        pause_pairing(s, s.get(PairingRow, paired), "leave", T0 + timedelta(days=20), actor="x")
    with pytest.raises(UserError, match=r"its term ended on 2027-03-29"):
        resume(T0 + timedelta(weeks=12, days=1))
    with db.transaction() as s:
        learner = s.get(PairingRow, paired).learner_id
        s.get(PersonRow, learner).status = "inactive"
    with pytest.raises(UserError, match="is no longer active"):
        resume(T0 + timedelta(days=30))
    with db.transaction() as s:  # nothing of the refused attempts was stored
        pairing = s.get(PairingRow, paired)
        assert (pairing.status, pairing.end_reason) == ("paused", "leave")
        assert not list(s.scalars(select(SessionRow).where(SessionRow.status == "scheduled")))
        assert all(r.seq is not None for r in s.scalars(select(SessionRow)))
        assert not list(s.scalars(select(AuditRow).where(AuditRow.action == "resume_pairing")))


def test_a_meeting_held_at_a_cancelled_time_can_still_be_logged(db: Database, paired: int) -> None:
    with db.transaction() as s:
        pause_pairing(s, s.get(PairingRow, paired), "leave", T0 + timedelta(days=20), actor="x")
        third = s.scalars(
            select(SessionRow).where(SessionRow.pairing_id == paired, SessionRow.seq == 3)
        ).one()
        when = third.start
    with db.transaction() as s:
        resume_pairing(s, s.get(PairingRow, paired), ROLLING, T0 + timedelta(days=30), actor="x")
    with db.transaction() as s:  # they met at the old time after all
        row, created = log_session(s, paired, when, 45, now=T0 + timedelta(days=40))
        assert created and row.status == "held" and row.seq is None


# -- the command line ----------------------------------------------------------------------

# A cohort that starts in a fortnight: every session is in the future whenever this runs.
COHORT_START = date.today() + timedelta(days=14)
COHORT = program(id="cohort", name="Cohort", start=COHORT_START)
CONFIG = f"""
[[programs]]
id = "cohort"
name = "Cohort"
kind = "mentoring"
start = {COHORT_START.isoformat()}
duration_weeks = 12
cadence_days = 14
session_minutes = 45
[programs.guides]
level = [5, 9]
"""


def test_pause_and_resume_commands(
    run_cli, db: Database, db_url: str, factory: Factory, tmp_path: Path
) -> None:
    (tmp_path / "coachbridge.toml").write_text(CONFIG, encoding="utf-8")
    learner = factory.person(first_name="Ana")
    guide = factory.person(first_name="Ben", level=6)
    pid = factory.pairing(COHORT, learner, guide, made=datetime.now(UTC))

    def cli(*args: str):
        return run_cli("--config", str(tmp_path / "coachbridge.toml"), "--db", db_url, *args)

    assert cli("sessions", "schedule").exit_code == 0
    paused = cli("pairings", "pause", str(pid), "--reason", "sick leave")
    assert paused.exit_code == 0, paused.stderr
    assert f"pairing {pid} paused; 6 future session(s) cancelled" in paused.stdout
    again = cli("pairings", "pause", str(pid), "--reason", "x")
    assert again.exit_code == 2 and "only active pairings pause" in again.stderr
    no_reason = cli("pairings", "pause", str(pid))
    assert no_reason.exit_code == 2 and "--reason" in no_reason.stderr
    for command in ("pause", "end"):
        blank = cli("pairings", command, str(pid), "--reason", "  ")
        assert blank.exit_code == 2 and "--reason: say why" in blank.stderr
    listed = json.loads(cli("pairings", "--status", "paused", "--format", "json").stdout)
    assert [(p["id"], p["end_reason"]) for p in listed] == [(pid, "sick leave")]

    resumed = cli("pairings", "resume", str(pid))
    assert resumed.exit_code == 0, resumed.stderr
    assert f"pairing {pid} resumed; 6 session(s) planned, the first on" in resumed.stdout
    sessions = json.loads(cli("sessions", "--format", "json").stdout)
    assert sorted(r["status"] for r in sessions) == ["cancelled"] * 6 + ["scheduled"] * 6
    assert cli("pairings", "resume", str(pid)).exit_code == 2
    unknown = cli("pairings", "resume", "99999")
    assert unknown.exit_code == 2 and "99999" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_a_first_session_missing_in_the_past_is_planned_from_today(
    db: Database, factory: Factory
) -> None:
    """Not only on resume: a pairing whose later sessions are missing (a slot was not found
    before) gets them from today on, not after the periods that went by."""
    learner = factory.person()
    guide = factory.person(level=6)
    pid = factory.pairing(ROLLING, learner, guide, made=T0)
    with db.transaction() as s:
        made = schedule_pairings(s, ROLLING, [pid], now=T0)
        for row in made:
            if row.seq > 2:
                s.delete(row)
            else:
                row.status = "held"
    later = T0 + timedelta(days=50)
    with db.transaction() as s:
        again = schedule_pairings(s, ROLLING, [pid], now=later)
        starts = sorted(r.start.date() for r in again)
    # Sessions 3-5 from today at the cadence; the sixth would fall after the term ends.
    assert len(starts) == 3 and date(2027, 2, 23) <= starts[0] < date(2027, 3, 9)
