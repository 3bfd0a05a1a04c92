"""Sync safety the review asked for: loops across batches, erased people, reorgs, small companies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from coachbridge.connectors import (
    CheckResult,
    Connector,
    ConnectorConfig,
    ConnectorContext,
    PeopleBatch,
    SyncContext,
)
from coachbridge.domain import PersonRecord
from coachbridge.errors import InputDataError
from coachbridge.hris.sync import Syncer
from coachbridge.store import Database
from coachbridge.store.tables import PersonRow


class Scripted(Connector):
    """Returns whatever batch the test puts in ``next_batch``."""

    next_batch: PeopleBatch

    def check(self) -> list[CheckResult]:
        return []

    def read_people(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> PeopleBatch:
        return self.next_batch


def _connector() -> Scripted:
    return Scripted(ConnectorConfig(plugin="scripted"), ConnectorContext(name="hr"))


def test_incremental_batch_cannot_close_a_reporting_loop(db: Database) -> None:
    conn = _connector()
    conn.next_batch = PeopleBatch(
        records=[
            PersonRecord(external_id="A", first_name="Ann"),
            PersonRecord(external_id="B", first_name="Bob", manager_external_id="A"),
            PersonRecord(external_id="C", first_name="Cy", manager_external_id="B"),
        ],
        full=True,
        cursor="1",
    )
    Syncer(db, conn).run()
    # A now reports to C: with the stored lines (C -> B -> A) that is a loop.
    conn.next_batch = PeopleBatch(
        records=[PersonRecord(external_id="A", first_name="Ann", manager_external_id="C")],
        full=False,
        cursor="2",
    )
    with pytest.raises(InputDataError, match="reporting cycle"):
        Syncer(db, conn).run()
    with db.transaction() as s:
        ann = s.query(PersonRow).filter(PersonRow.first_name == "Ann").one()
        assert ann.manager_id is None  # the store is as it was


def test_manager_only_change_is_reported(db: Database) -> None:
    conn = _connector()
    people = [
        PersonRecord(external_id="A", first_name="Ann"),
        PersonRecord(external_id="B", first_name="Bob"),
        PersonRecord(external_id="C", first_name="Cy", manager_external_id="A"),
    ]
    conn.next_batch = PeopleBatch(records=people, full=True)
    Syncer(db, conn).run()
    moved = [*people[:2], PersonRecord(external_id="C", first_name="Cy", manager_external_id="B")]
    conn.next_batch = PeopleBatch(records=moved, full=True)
    report = Syncer(db, conn).run(dry_run=True)
    assert [c.external_id for c in report.changed] == ["C"]
    assert report.changed[0].fields["manager"] == ("A", "B")


def test_small_company_may_lose_one_person(db: Database) -> None:
    conn = _connector()
    people = [PersonRecord(external_id=str(i), first_name=f"P{i}") for i in range(5)]
    conn.next_batch = PeopleBatch(records=people, full=True)
    Syncer(db, conn).run()
    conn.next_batch = PeopleBatch(records=people[:4], full=True)
    assert len(Syncer(db, conn).run().leaving) == 1  # 10% of 5 rounds up to one person


CSV = "id,first_name,last_name,email,manager_id\n{rows}"


def _write(path: Path, rows: list[str]) -> None:
    path.write_text(CSV.format(rows="\n".join(rows) + "\n"), encoding="utf-8")


def test_dry_run_lists_leavers_before_refusing(run_cli, tmp_path: Path) -> None:
    (tmp_path / "coachbridge.toml").write_text(
        '[connectors.hr]\nplugin = "csv"\npeople = "p.csv"\n'
    )
    rows = [f"{i},P{i},L{i},p{i}@example.com," for i in range(1, 21)]
    _write(tmp_path / "p.csv", rows)
    assert run_cli("sync").exit_code == 0
    _write(tmp_path / "p.csv", rows[:15])
    result = run_cli("sync", "--dry-run")
    assert result.exit_code == 2
    assert result.stdout.count("leaving") >= 5  # each leaver is named before the refusal
    assert "--force" in result.stderr


def test_forgotten_person_is_not_reimported(run_cli, tmp_path: Path) -> None:
    (tmp_path / "coachbridge.toml").write_text(
        '[connectors.hr]\nplugin = "csv"\npeople = "p.csv"\n'
    )
    _write(tmp_path / "p.csv", ["1,Ada,Lovelace,ada@example.com,", "2,Cid,Low,cid@example.com,1"])
    assert run_cli("sync").exit_code == 0
    assert run_cli("people", "forget", "hr:2", "--yes").exit_code == 0
    again = run_cli("sync")
    assert again.exit_code == 0, again.stderr
    assert "0 new" in again.stdout and "erased person" in again.stderr
    people = json.loads(run_cli("people", "--format", "json").stdout)
    assert [p["name"] for p in people] == ["Ada Lovelace"]
    assert "Cid" not in run_cli("people", "--format", "csv").stdout


@pytest.mark.parametrize("ref", ["99999999999999999999999", "²"])
def test_absurd_person_reference_is_a_clear_error(run_cli, ref: str) -> None:
    result = run_cli("people", "show", ref)
    assert result.exit_code == 2
    assert "unknown person" in result.stderr and "Traceback" not in result.stderr


def test_absurd_row_id_is_a_usage_error(run_cli) -> None:
    result = run_cli("sessions", "mark", "99999999999999999999999", "held")
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr


def test_two_connectors_keep_their_own_extra_fields(db: Database) -> None:
    """BambooHR keeps a cost centre, Workday its wid: neither sync undoes the other's."""
    bamboo = _connector()
    workday = Scripted(ConnectorConfig(plugin="scripted"), ConnectorContext(name="wd"))

    def ann(**extra: str | None) -> PeopleBatch:
        record = PersonRecord(external_id="A", first_name="Ann", email="ann@x.test", extra=extra)
        return PeopleBatch(records=[record], full=True)

    bamboo.next_batch = ann(costCenter="CC-7", employeeNumber="17")
    workday.next_batch = ann(wid="w-1")
    Syncer(db, bamboo).run()
    Syncer(db, workday).run()
    for _ in range(2):  # round after round, nothing changes
        assert not Syncer(db, bamboo).run().changed
        assert not Syncer(db, workday).run().changed
    with db.transaction() as s:
        stored = s.query(PersonRow).one().extra
    assert stored == {"costCenter": "CC-7", "employeeNumber": "17", "wid": "w-1"}

    bamboo.next_batch = ann(costCenter=None)  # emptied in BambooHR; employeeNumber not read
    report = Syncer(db, bamboo).run()
    assert [c.external_id for c in report.changed] == ["A"]
    with db.transaction() as s:
        assert s.query(PersonRow).one().extra == {"employeeNumber": "17", "wid": "w-1"}
