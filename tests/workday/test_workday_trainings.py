"""Workday trainings: the multi-valued ``columns.trainings`` column of the people report."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from coachbridge.domain import Eligibility, Program
from coachbridge.errors import InputDataError
from coachbridge.hris.sync import Syncer
from coachbridge.store import Database
from coachbridge.store.tables import ExternalIdRow, TrainingRow
from coachbridge_workday.config import WorkdayConfig
from coachbridge_workday.values import RowMapper
from sqlalchemy import select

from tests.workday.conftest import connector_for
from tests.workday.fake_workday import FakeWorkday, make_workers

PROGRAM = Program(id="m", kind="mentoring", guides=Eligibility(trained_in=["Coaching basics"]))


def _mapper(column: str | None = "Trainings") -> RowMapper:
    config = WorkdayConfig.model_validate(
        {
            "plugin": "workday",
            "host": "wd5-impl-services1.workday.com",
            "tenant": "acme",
            "username": "isu",
            "password": "pw",
            "people_report": "isu/Workers",
            "columns": {"trainings": column} if column else {},
        }
    )
    return RowMapper(config, "wd", "wd people")


def _names(mapper: RowMapper, value: object) -> list[tuple[str, date | None, date | None]]:
    row = {"Employee_ID": "7"} if value is None else {"Employee_ID": "7", "Trainings": value}
    return [(r.training, r.completed_at, r.expires_at) for r in mapper.trainings(row, 3, "7")]


def test_the_column_is_parsed_in_every_multi_valued_shape() -> None:
    mapper = _mapper()
    # One value: a string; several: a list; none: no key; ";"-joined values are split.
    assert _names(mapper, "First aid") == [("First aid", None, None)]
    assert _names(mapper, ["First aid", "Coaching basics"]) == [
        ("First aid", None, None),
        ("Coaching basics", None, None),
    ]
    assert _names(mapper, "First aid; Coaching basics") == [
        ("First aid", None, None),
        ("Coaching basics", None, None),
    ]
    assert _names(mapper, None) == []
    # Group instances carry their dates (Workday dates may carry an offset).
    group = [
        {"Training": "Coaching basics", "Completed_On": "2025-03-01-08:00"},
        {
            "Training": {"Descriptor": "First aid"},
            "Completed_On": "2024-01-10",
            "Expiration_Date": "2026-01-10",
        },
    ]
    assert _names(mapper, group) == [
        ("Coaching basics", date(2025, 3, 1), None),
        ("First aid", date(2024, 1, 10), date(2026, 1, 10)),
    ]
    # A single group instance arrives as an object, not a list.
    assert _names(mapper, group[0]) == [("Coaching basics", date(2025, 3, 1), None)]
    # Without columns.trainings nothing is read.
    assert _names(_mapper(None), "First aid") == []


def test_an_unreadable_date_names_the_entry_and_column() -> None:
    with pytest.raises(InputDataError, match=r"entry 3: employee '7': column 'Trainings': 'X'"):
        _names(_mapper(), {"Training": "X", "Completed_On": "March"})
    with pytest.raises(InputDataError, match=r"expires_at .* is before completed_at"):
        _names(
            _mapper(),
            {"Training": "X", "Completed_On": "2025-03-01", "Expiration_Date": "2024-01-01"},
        )


def _stored(db: Database) -> list[tuple[str, str, date | None]]:
    with db.transaction() as s:
        rows = s.execute(
            select(ExternalIdRow.external_id, TrainingRow.training, TrainingRow.completed_at).join(
                ExternalIdRow, ExternalIdRow.person_id == TrainingRow.person_id
            )
        )
        return sorted((e, t, c) for e, t, c in rows)


def test_a_sync_stores_the_column_once_and_follows_changes(
    fake: FakeWorkday, sqlite_url: str
) -> None:
    workers = make_workers(6)
    workers[1].trainings = [{"Training": "Coaching basics", "Completed_On": "2025-03-01"}]
    workers[2].trainings = ["Coaching basics", "First aid"]
    fake.workers = {w.employee_id: w for w in workers}
    db = Database(sqlite_url)
    db.upgrade()
    connector = connector_for(fake.url, columns={"trainings": "Trainings"})
    assert "trainings" in [s.name for s in connector.streams]
    report = Syncer(db, connector, programs=[PROGRAM]).run(full=True)
    assert report.trainings_new == 3
    # The report is read once per sync: the trainings come from the people stream's rows.
    assert fake.count("GET", "Coaching_Workers") == 2  # the schema (?xsds) and the rows
    assert _stored(db) == [
        ("E000001", "Coaching basics", date(2025, 3, 1)),
        ("E000002", "Coaching basics", None),
        ("E000002", "First aid", None),
    ]
    again = Syncer(db, connector_for(fake.url, columns={"trainings": "Trainings"})).run()
    assert (again.trainings_new, again.trainings_removed) == (0, 0)
    # An incremental read holds the changed rows only: the others' trainings stay.
    workers[2].trainings = ["First aid"]
    workers[2].updated = datetime.now(UTC)
    later = Syncer(db, connector_for(fake.url, columns={"trainings": "Trainings"})).run()
    assert later.trainings_removed == 1
    assert _stored(db) == [
        ("E000001", "Coaching basics", date(2025, 3, 1)),
        ("E000002", "First aid", None),
    ]
    db.dispose()
