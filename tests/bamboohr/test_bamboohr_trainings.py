"""BambooHR training records: read only for the people a program's guide filter admits, in
batches, and incrementally afterwards; proven with the fake server's request log."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from coachbridge.domain import Eligibility, Program
from coachbridge.hris.sync import Syncer
from coachbridge.store import Database
from coachbridge.store.tables import ExternalIdRow, TrainingRow
from coachbridge_bamboohr.trainings import add_months
from sqlalchemy import select

from tests.bamboohr.conftest import make_connector
from tests.bamboohr.fake_bamboohr import FakeBambooHR

RECORDS = "/api/v1/training/record/employee/{employeeId}"
TYPES = "/api/v1/training/type"
# Guides: the Eng department (admits 2 and 4 of the seeded four, 3 is inactive), 30 more below.
PROGRAM = Program(
    id="mentoring",
    kind="mentoring",
    guides=Eligibility(departments=["Eng"], trained_in=["Coaching fundamentals"]),
)


def _company(fake: FakeBambooHR, extra: int = 30) -> None:
    """Thirty more people: a third in Eng (guides by the filter), the rest in Sales."""
    for i in range(10, 10 + extra):
        fake.add_employee(
            str(i),
            "2025-01-01T00:00:00+00:00",
            firstName=f"P{i}",
            lastName="Person",
            workEmail=f"p{i}@acme.test",
            department="Eng" if i % 3 == 0 else "Sales",
            supervisorEId="1",
        )


T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _sync(  # type: ignore[no-untyped-def]
    db: Database,
    fake: FakeBambooHR,
    *,
    full: bool = False,
    now: datetime = T0,
    **settings: object,
):
    connector = make_connector(fake.host_url, fake.api_key, **settings)
    connector.clock = lambda: now
    return Syncer(db, connector, programs=[PROGRAM]).run(full=full)


def _asked(fake: FakeBambooHR, since: int = 0) -> list[str]:
    """The employees whose training records were requested (in order) after ``since`` calls."""
    return [c.path.rsplit("/", 1)[-1] for c in fake.log[since:] if c.template == RECORDS]


def _stored(db: Database) -> dict[str, list[tuple[str, date | None, date | None]]]:
    with db.transaction() as s:
        rows = s.execute(
            select(
                ExternalIdRow.external_id,
                TrainingRow.training,
                TrainingRow.completed_at,
                TrainingRow.expires_at,
            ).join(ExternalIdRow, ExternalIdRow.person_id == TrainingRow.person_id)
        )
        out: dict[str, list[tuple[str, date | None, date | None]]] = {}
        for emp, name, done, ends in rows:
            out.setdefault(emp, []).append((name, done, ends))
        return {k: sorted(v, key=str) for k, v in out.items()}


def test_only_the_people_the_guide_filter_admits_are_asked(
    fake: FakeBambooHR, sqlite_db: Database
) -> None:
    _company(fake)
    # A renewable type: a record expires its frequency (months) after completion.
    fake.add_training("2", "Coaching fundamentals", "2026-01-10", renewable=True, frequency=24)
    fake.add_training("2", "First aid", "2026-01-10")  # not asked for: not stored
    fake.add_training("12", "Coaching fundamentals", "2025-06-01")
    fake.add_training("13", "Coaching fundamentals", "2026-01-01")  # Sales: never asked about
    report = _sync(sqlite_db, fake)

    eng = sorted(["2", "4", *(str(i) for i in range(12, 40, 3))], key=int)
    assert sorted(_asked(fake), key=int) == eng  # 12 of 34 people, one request each
    assert len([c for c in fake.log if c.template == TYPES]) == 1
    # One training type asked for: BambooHR filters by it.
    assert {c.query.get("type") for c in fake.log if c.template == RECORDS} == {
        str(next(k for k, t in fake.training_types.items() if t["name"] == "Coaching fundamentals"))
    }
    assert report.trainings_new == 2
    assert _stored(sqlite_db) == {
        "2": [("Coaching fundamentals", date(2026, 1, 10), date(2028, 1, 10))],
        "12": [("Coaching fundamentals", date(2025, 6, 1), date(2027, 6, 1))],
    }
    assert fake.violations == []


def test_later_syncs_read_newcomers_at_once_and_refresh_in_batches(
    fake: FakeBambooHR, sqlite_db: Database
) -> None:
    _company(fake)
    fake.add_training("2", "Coaching fundamentals", "2026-01-10")
    _sync(sqlite_db, fake)  # reads the 12 admitted people
    mark = len(fake.log)
    _sync(sqlite_db, fake)
    assert _asked(fake, mark) == []  # nothing new, nothing stale: not one records request

    # A newcomer the filter admits is read at once, alone.
    fake.add_employee("99", firstName="New", lastName="Guide", department="Eng", supervisorEId="1")
    fake.add_training("99", "Coaching fundamentals", "2026-02-01")
    mark = len(fake.log)
    report = _sync(sqlite_db, fake)
    assert _asked(fake, mark) == ["99"]
    assert report.trainings_new == 1

    # Once reads are older than trainings_refresh (7 days by default), a sync re-reads at
    # most trainings_per_sync people, the oldest reads first, until all are fresh again.
    asked: list[list[str]] = []
    for day in (8, 9, 10, 11):
        mark = len(fake.log)
        _sync(sqlite_db, fake, now=T0 + timedelta(days=day), trainings_per_sync=5)
        asked.append(_asked(fake, mark))
    assert [len(a) for a in asked] == [5, 5, 3, 0]  # 13 admitted people, 5 per sync at most
    assert len({emp for a in asked for emp in a}) == 13  # each read once in the round
    assert fake.violations == []


def test_a_removed_record_goes_and_full_reads_everyone_again(
    fake: FakeBambooHR, sqlite_db: Database
) -> None:
    record = fake.add_training("4", "Coaching fundamentals", "2026-01-10")
    _sync(sqlite_db, fake)
    assert "4" in _stored(sqlite_db)
    del fake.training_records[str(record)]
    mark = len(fake.log)
    report = _sync(sqlite_db, fake, full=True)
    assert sorted(_asked(fake, mark)) == ["2", "4"]
    assert report.trainings_removed == 1 and _stored(sqlite_db) == {}


def test_an_employee_deleted_in_bamboohr_has_no_records_and_fails_nothing(
    fake: FakeBambooHR, sqlite_db: Database
) -> None:
    fake.add_training("4", "Coaching fundamentals", "2026-01-10")
    _sync(sqlite_db, fake)
    del fake.employees["4"]
    fake.changes["4"] = ("Deleted", "2026-03-03T00:00:00+00:00")
    mark = len(fake.log)
    report = _sync(sqlite_db, fake, now=T0 + timedelta(days=8))  # 4 is due for a refresh
    assert "4" in _asked(fake, mark)
    assert any("employee 4 was deleted in BambooHR" in w for w in report.warnings)
    assert report.trainings_removed == 1 and "4" not in _stored(sqlite_db)
    assert fake.violations == []


def test_no_program_asks_for_trainings_no_request(fake: FakeBambooHR, sqlite_db: Database) -> None:
    fake.add_training("2", "Coaching fundamentals", "2026-01-10")
    connector = make_connector(fake.host_url, fake.api_key)
    Syncer(sqlite_db, connector).run()
    Syncer(sqlite_db, connector, programs=[Program(id="p", kind="coaching")]).run()
    assert not [c for c in fake.log if c.template in (RECORDS, TYPES)]


def test_add_months_clamps_to_the_month_end() -> None:
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2025, 11, 15), 14) == date(2027, 1, 15)
