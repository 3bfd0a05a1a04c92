"""schedule_pairings: counts, periods, working hours across zones, weekends, holidays, stability."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from coachbridge.errors import ConfigError
from coachbridge.pairings.scheduling import holiday_checker, schedule_pairings
from coachbridge.store import Database
from coachbridge.store.tables import PairingRow, SessionRow
from pydantic import ValidationError
from sqlalchemy import delete, select

from .scheduling_factories import Factory, program

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # before every fixed program start below
BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
TOKYO, LOS_ANGELES = ZoneInfo("Asia/Tokyo"), ZoneInfo("America/Los_Angeles")


def run(db: Database, prog, pairing_ids=None, now: datetime = NOW) -> list[tuple]:
    """Schedule and return (pairing_id, seq, start, minutes) of the new sessions."""
    with db.transaction() as s:
        rows = schedule_pairings(s, prog, pairing_ids, now=now)
        return [(r.pairing_id, r.seq, r.start, r.minutes) for r in rows]


def stored(db: Database, pairing_id: int | None = None) -> list[SessionRow]:
    with db.transaction() as s:
        stmt = select(SessionRow).order_by(SessionRow.pairing_id, SessionRow.seq)
        if pairing_id is not None:
            stmt = stmt.where(SessionRow.pairing_id == pairing_id)
        return list(s.scalars(stmt))


def in_hours(moment: datetime, minutes: int, zone: ZoneInfo, hours=(9, 17)) -> bool:
    local = moment.astimezone(zone)
    begin = local.hour * 60 + local.minute
    return hours[0] * 60 <= begin and begin + minutes <= hours[1] * 60


@pytest.mark.parametrize(
    ("weeks", "cadence", "expected"), [(12, 14, 6), (26, 14, 13), (10, 7, 10), (4, 30, 0)]
)
def test_sessions_planned_formula(weeks: int, cadence: int, expected: int) -> None:
    assert program(duration_weeks=weeks, cadence_days=cadence).sessions_planned == expected


def test_pairing_gets_planned_count_one_per_period(db: Database, factory: Factory) -> None:
    prog = program(duration_weeks=12, cadence_days=14)  # 6 sessions, start Monday 2027-01-11
    pid = factory.pairing(prog, factory.person(), factory.person())
    created = run(db, prog)
    assert [seq for _, seq, _, _ in created] == [1, 2, 3, 4, 5, 6]
    assert all(minutes == 45 for *_, minutes in created)
    for _, seq, start, _ in created:
        first_day = date(2027, 1, 11) + timedelta(days=14 * (seq - 1))
        local_day = start.astimezone(BERLIN).date()
        assert first_day <= local_day < first_day + timedelta(days=14), (seq, start)
    # Earliest free slot of the first period: Monday 9:00 in Berlin, stored in UTC.
    first = stored(db, pid)[0]
    assert first.start == datetime(2027, 1, 11, 8, 0, tzinfo=UTC)
    assert first.start.tzinfo is not None and first.start.utcoffset() == timedelta(0)


def test_working_hours_overlap_berlin_new_york(db: Database, factory: Factory) -> None:
    prog = program()
    learner = factory.person(timezone="Europe/Berlin")
    guide = factory.person(timezone="America/New_York")
    factory.pairing(prog, learner, guide)
    created = run(db, prog)
    assert len(created) == 6
    for _, _, start, minutes in created:
        assert in_hours(start, minutes, BERLIN) and in_hours(start, minutes, NEW_YORK), start
    # The overlap is Berlin 15:00-17:00 = New York 9:00-11:00 (winter time).
    assert created[0][2].astimezone(NEW_YORK).hour == 9
    assert created[0][2].astimezone(BERLIN).hour == 15


def test_no_overlap_uses_learners_hours_tokyo_los_angeles(db: Database, factory: Factory) -> None:
    # In June (PDT) Tokyo 9-17 is Los Angeles 17:00-01:00: no common working hour at all.
    prog = program(start=date(2027, 6, 7), duration_weeks=6, cadence_days=7)
    learner = factory.person(timezone="Asia/Tokyo")
    guide = factory.person(timezone="America/Los_Angeles")
    factory.pairing(prog, learner, guide)
    created = run(db, prog)
    assert len(created) == 6
    for _, _, start, minutes in created:
        assert in_hours(start, minutes, TOKYO), start
        assert not in_hours(start, minutes, LOS_ANGELES)
        # Still a weekday for the guide too.
        assert start.astimezone(LOS_ANGELES).weekday() < 5
        assert start.astimezone(TOKYO).weekday() < 5


def test_winter_overlap_tokyo_los_angeles_is_used(db: Database, factory: Factory) -> None:
    # In January (PST) Tokyo 9:00-10:00 is Los Angeles 16:00-17:00 the day before.
    prog = program(duration_weeks=4, cadence_days=14)
    factory.pairing(
        prog,
        factory.person(timezone="Asia/Tokyo"),
        factory.person(timezone="America/Los_Angeles"),
    )
    for _, _, start, minutes in run(db, prog):
        assert in_hours(start, minutes, TOKYO) and in_hours(start, minutes, LOS_ANGELES)


def test_never_on_weekends_in_either_zone(db: Database, factory: Factory) -> None:
    # Starts on a Saturday; Auckland is a day ahead of Los Angeles, so both zones matter.
    prog = program(start=date(2027, 1, 9), duration_weeks=8, cadence_days=7)
    far = factory.pairing(
        prog,
        factory.person(timezone="Pacific/Auckland"),
        factory.person(timezone="America/Los_Angeles"),
    )
    near = factory.pairing(prog, factory.person(), factory.person())
    created = run(db, prog)
    assert len(created) == 16
    zones = {far: [ZoneInfo("Pacific/Auckland"), LOS_ANGELES], near: [BERLIN]}
    for pairing_id, _, start, _ in created:
        for zone in zones[pairing_id]:
            assert start.astimezone(zone).weekday() < 5, (start, zone)
    # The first Berlin session is on the Monday after the Saturday start.
    assert min(t for p, _, t, _ in created if p == near).astimezone(BERLIN).date() == date(
        2027, 1, 11
    )


def test_never_double_booked_across_programs(db: Database, factory: Factory) -> None:
    a = program(id="a")
    b = program(id="b", kind="coaching", session_minutes=60)
    guide = factory.person()
    learners = [factory.person() for _ in range(3)]
    for learner in learners:
        factory.pairing(a, learner, guide)
    # The same guide and a learner of program a are both in program b as well.
    factory.pairing(b, learners[0], guide)
    factory.pairing(b, learners[1], factory.person())
    run(db, a)
    run(db, b)
    rows = stored(db)
    assert len(rows) == 5 * 6
    with db.transaction() as s:
        pairings = {p.id: p for p in s.scalars(select(PairingRow))}
    by_person: dict[int, list[tuple[datetime, datetime]]] = {}
    for row in rows:
        p = pairings[row.pairing_id]
        for person in (p.learner_id, p.guide_id):
            by_person.setdefault(person, []).append(
                (row.start, row.start + timedelta(minutes=row.minutes))
            )
    for person, spans in by_person.items():
        spans.sort()
        for (_, e1), (s2, _) in pairwise(spans):
            assert e1 <= s2, f"person {person} double-booked at {s2}"


def test_public_holidays_are_skipped(db: Database, factory: Factory) -> None:
    # Tuesday 2028-10-03 is German Unity Day; it would be the first slot otherwise.
    plain = program(id="plain", start=date(2028, 10, 3), duration_weeks=1, cadence_days=7)
    german = program(
        id="de", start=date(2028, 10, 3), duration_weeks=1, cadence_days=7, holidays="DE"
    )
    factory.pairing(plain, factory.person(), factory.person())
    factory.pairing(german, factory.person(), factory.person())
    [(_, _, plain_start, _)] = run(db, plain)
    [(_, _, german_start, _)] = run(db, german)
    assert plain_start.astimezone(BERLIN).date() == date(2028, 10, 3)
    assert german_start.astimezone(BERLIN).date() == date(2028, 10, 4)


def test_subdivision_holidays(db: Database, factory: Factory) -> None:
    # Wednesday 2027-03-31 is Cesar Chavez Day in California, not a US federal holiday.
    kwargs = {"start": date(2027, 3, 31), "duration_weeks": 1, "cadence_days": 7}
    ca = program(id="ca", holidays="US-CA", **kwargs)
    us = program(id="us", holidays="US", **kwargs)
    la = "America/Los_Angeles"
    factory.pairing(ca, factory.person(timezone=la), factory.person(timezone=la))
    factory.pairing(us, factory.person(timezone=la), factory.person(timezone=la))
    [(_, _, ca_start, _)] = run(db, ca)
    [(_, _, us_start, _)] = run(db, us)
    assert us_start.astimezone(LOS_ANGELES).date() == date(2027, 3, 31)
    assert ca_start.astimezone(LOS_ANGELES).date() == date(2027, 4, 1)


def test_unknown_holiday_calendar_is_a_config_error(db: Database) -> None:
    # Refused with the program, when the config loads: before any pairing is stored.
    with pytest.raises(ValidationError, match=r"holidays\n.*unknown holiday calendar 'XX'"):
        program(holidays="XX")
    # The planner's own check says the same for a program made without validation.
    with pytest.raises(ConfigError, match=r"programs\.mentoring\.holidays.*'XX'"):
        holiday_checker("mentoring", "XX")
    assert stored(db) == []


def test_rerun_is_stable_and_deterministic(db: Database, factory: Factory) -> None:
    prog = program()
    guide = factory.person(timezone="America/New_York")
    ids = [factory.pairing(prog, factory.person(), guide) for _ in range(3)]
    first = run(db, prog)
    assert len(first) == 18
    assert run(db, prog) == []  # nothing new on a re-run
    assert run(db, prog, ids, now=NOW + timedelta(days=3)) == []
    before = [(r.pairing_id, r.seq, r.start) for r in stored(db)]
    # Same input, same plan: wipe and plan again.
    with db.transaction() as s:
        s.execute(delete(SessionRow))
    again = run(db, prog)
    assert [(p, q, t) for p, q, t, _ in again] == before


def test_missing_sequence_is_refilled_others_kept(db: Database, factory: Factory) -> None:
    prog = program()
    pid = factory.pairing(prog, factory.person(), factory.person())
    run(db, prog)
    with db.transaction() as s:
        s.execute(delete(SessionRow).where(SessionRow.seq == 3))
    refill = run(db, prog)
    assert [(p, q) for p, q, _, _ in refill] == [(pid, 3)]
    assert [r.seq for r in stored(db, pid)] == [1, 2, 3, 4, 5, 6]


def test_rolling_program_starts_from_pairing_day(db: Database, factory: Factory) -> None:
    prog = program(start=None, duration_weeks=4, cadence_days=14)
    made = datetime(2027, 3, 3, 15, 0, tzinfo=UTC)  # a Wednesday
    factory.pairing(prog, factory.person(), factory.person(), made=made)
    created = run(db, prog, now=made)
    assert len(created) == 2
    first = created[0][2]
    assert made <= first < made + timedelta(days=14)
    assert date(2027, 3, 17) <= created[1][2].astimezone(BERLIN).date() < date(2027, 3, 31)


def test_nothing_is_planned_in_the_past(db: Database, factory: Factory) -> None:
    prog = program(start=date(2027, 1, 11))
    factory.pairing(prog, factory.person(), factory.person())
    now = datetime(2027, 2, 10, 10, 7, tzinfo=UTC)  # the program started a month ago
    created = run(db, prog, now=now)
    assert all(start >= now for _, _, start, _ in created)
    assert created[0][2] < now + timedelta(days=14)
    # Fortnights from today, until the program's 12 weeks end on 2027-04-05: four of the six
    # fit; the pairing completes then, so none is planned after it.
    assert len(created) == 4
    assert created[-1][2] < datetime(2027, 4, 5, tzinfo=UTC)


def test_only_active_pairings_of_the_program(db: Database, factory: Factory) -> None:
    prog, other = program(), program(id="other")
    active = factory.pairing(prog, factory.person(), factory.person())
    factory.pairing(prog, factory.person(), factory.person(), status="proposed")
    factory.pairing(prog, factory.person(), factory.person(), status="ended")
    elsewhere = factory.pairing(other, factory.person(), factory.person())
    created = run(db, prog, [active, elsewhere])
    assert {p for p, *_ in created} == {active}


def test_unknown_or_missing_time_zone_falls_back(db: Database, factory: Factory) -> None:
    prog = program(duration_weeks=2)
    factory.pairing(prog, factory.person(timezone="Mars/Olympus"), factory.person(timezone=None))
    [(_, _, start, minutes)] = run(db, prog)
    assert in_hours(start, minutes, ZoneInfo("UTC"))
