"""The planner prefers the half-day slots both people of a pairing answered (intake)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from coachbridge.pairings.scheduling import schedule_pairings
from coachbridge.store import Database
from coachbridge.store.programs import ensure_program_row
from coachbridge.store.tables import ProfileRow

from .scheduling_factories import Factory, program

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")


def answer(db: Database, prog, pid: int, slots: list[str]) -> None:
    with db.transaction() as s:
        ensure_program_row(s, prog)
        s.add(ProfileRow(program_id=prog.id, person_id=pid, availability=slots, answered_at=NOW))


def plan(db: Database, prog) -> list[datetime]:
    with db.transaction() as s:
        return [r.start for r in schedule_pairings(s, prog, now=NOW)]


def test_both_answered_sessions_fall_in_the_shared_slots(db: Database, factory: Factory) -> None:
    prog = program()  # 6 sessions, one per fortnight from Monday 2027-01-11
    learner = factory.person(timezone="Europe/Berlin")
    guide = factory.person(timezone="America/New_York")
    factory.pairing(prog, learner, guide)
    # Berlin Thursday afternoon (13-17) and New York Thursday morning (8-12) share
    # 14:00-17:00 Berlin = 8:00-11:00 New York; with working hours 9-17 in both zones the
    # first time that fits is Thursday 15:00 Berlin, 9:00 New York.
    answer(db, prog, learner, ["thu-pm", "fri-am"])
    answer(db, prog, guide, ["thu-am", "mon-pm"])
    starts = plan(db, prog)
    assert len(starts) == 6
    for start in starts:  # (late March: New York is on summer time, Berlin not yet)
        local, there = start.astimezone(BERLIN), start.astimezone(NEW_YORK)
        assert local.strftime("%a") == "Thu" and 13 <= local.hour < 17, local
        assert there.strftime("%a") == "Thu" and 9 <= there.hour < 12, there
    assert starts[0] == datetime(2027, 1, 14, 14, 0, tzinfo=UTC)


def test_no_shared_slot_or_one_answer_keeps_the_usual_plan(db: Database, factory: Factory) -> None:
    prog = program()
    a, b = factory.person(), factory.person()  # both in Berlin
    c, d = factory.person(), factory.person()
    factory.pairing(prog, a, b)
    factory.pairing(prog, c, d)
    answer(db, prog, a, ["wed-am"])
    answer(db, prog, b, ["thu-pm"])  # nothing in common: the usual earliest slot
    answer(db, prog, c, ["fri-pm"])  # only one of the two answered: the usual plan too
    starts = plan(db, prog)
    # Both pairings' first session: Monday 2027-01-11 at 9:00 Berlin (the second one after
    # the first, since the planner books each pairing's earliest free slot).
    firsts = sorted(starts)[:2]
    assert [f.astimezone(BERLIN).strftime("%a %H:%M") for f in firsts] == ["Mon 09:00"] * 2
