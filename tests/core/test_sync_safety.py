"""Sync safety the review asked for: loops across batches, erased people, reorgs, small companies."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
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
from coachbridge.hris.sync import Syncer, SyncReport, legacy_forgotten_key
from coachbridge.store import Database
from coachbridge.store.tables import ExternalIdRow, InstallationRow, PersonRow
from sqlalchemy import select


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


def _erase_and_resync(db: Database, external_id: str = "2") -> tuple[str, SyncReport]:
    """Sync two people, erase one, then sync them again as the HRIS still lists them.

    Returns the erased person's tombstone and the second sync's report."""
    from coachbridge.hris.privacy import forget_person

    conn = _connector()
    records = [
        PersonRecord(external_id="1", first_name="Ada"),
        PersonRecord(external_id=external_id, first_name="Cid"),
    ]
    conn.next_batch = PeopleBatch(records=records, full=True)
    Syncer(db, conn).run()
    with db.transaction() as s:
        cid = s.query(PersonRow).filter(PersonRow.first_name == "Cid").one()
        forget_person(s, cid, actor="dpo", now=datetime.now(UTC))
    with db.transaction() as s:
        (tombstone,) = s.scalars(
            select(ExternalIdRow.external_id).where(ExternalIdRow.external_id.like("forgotten:%"))
        )
    return tombstone, Syncer(db, conn).run()


def test_tombstone_is_keyed_per_database(db: Database, tmp_path: Path) -> None:
    """A short HRIS id cannot be read back from its tombstone by hashing candidates."""
    tombstone, report = _erase_and_resync(db)
    assert [c.external_id for c in report.new] == [] and report.unchanged == 1
    assert any("erased person" in w for w in report.warnings)
    with db.transaction() as s:
        assert [p.first_name for p in s.query(PersonRow).order_by(PersonRow.id)] == ["Ada", ""]
    # Neither the old unkeyed form nor any plain SHA-256 of the id is stored.
    assert tombstone != legacy_forgotten_key("hr", "2")
    for candidate in ("hr\x1f2", "2", "hr:2"):
        assert hashlib.sha256(candidate.encode()).hexdigest()[:40] not in tombstone
    assert re.fullmatch(r"forgotten:[0-9a-f]{64}", tombstone)
    other = Database(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        other.upgrade()
        elsewhere, _ = _erase_and_resync(other)
        with db.transaction() as s, other.transaction() as t:
            assert s.get(InstallationRow, 1).tombstone_secret != (
                t.get(InstallationRow, 1).tombstone_secret
            )
    finally:
        other.dispose()
    assert elsewhere != tombstone  # the same person erased in two databases


def test_tombstones_from_before_the_key_still_skip_the_person(db_url: str) -> None:
    """A database erased people in before migration 0003 (unkeyed tombstones) keeps them out."""
    from alembic import command

    db = Database(db_url)
    try:
        cfg = db._alembic_config()
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0002")
        with db.engine.begin() as conn:
            # As forget_person left them at 0002 (core inserts: the ORM expects the new column).
            people = PersonRow.__table__
            ada, erased = (
                conn.execute(people.insert().values(**values)).inserted_primary_key[0]
                for values in (
                    {"first_name": "Ada", "last_name": ""},
                    {"first_name": "", "last_name": "", "forgotten": True},
                )
            )
            conn.execute(
                ExternalIdRow.__table__.insert(),
                [
                    {"connector": "hr", "external_id": "1", "person_id": ada},
                    {
                        "connector": "hr",
                        "external_id": legacy_forgotten_key("hr", "2"),
                        "person_id": erased,
                    },
                ],
            )
        db.upgrade()
        with db.transaction() as s:
            assert re.fullmatch(r"[0-9a-f]{64}", s.get(InstallationRow, 1).tombstone_secret)
        conn = _connector()
        conn.next_batch = PeopleBatch(
            records=[
                PersonRecord(external_id="1", first_name="Ada"),
                PersonRecord(external_id="2", first_name="Cid"),
                PersonRecord(external_id="3", first_name="Eve"),
            ],
            full=True,
        )
        report = Syncer(db, conn).run()
        assert [c.external_id for c in report.new] == ["3"]
        assert any("erased person" in w for w in report.warnings)
        with db.transaction() as s:
            names = {p.first_name for p in s.query(PersonRow)}
            assert "Cid" not in names and names == {"Ada", "", "Eve"}
            # Read-only: the old tombstone is left as it was, nothing new is written for it.
            ids = set(s.scalars(select(ExternalIdRow.external_id)))
            assert ids == {"1", "3", legacy_forgotten_key("hr", "2")}
    finally:
        db.dispose()
