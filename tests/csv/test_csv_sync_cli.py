"""Safe syncs of CSV exports, end to end through the ``coachbridge`` command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from coachbridge.pairings.lifecycle import REPORTING_FLAG
from coachbridge.store import Database
from coachbridge.store.tables import (
    AuditRow,
    ExternalIdRow,
    PairingRow,
    PersonHistoryRow,
    PersonRow,
    ProgramRow,
    ReviewEventRow,
    SessionRow,
)
from sqlalchemy import func, select

from .csv_helpers import company, person, write_config, write_csv


class Store:
    """The test's view of the database the CLI writes."""

    def __init__(self, url: str) -> None:
        self.db = Database(url)

    def snapshot(self) -> dict[str, Any]:
        """Everything a sync may touch, to prove a failed one changed nothing."""
        with self.db.transaction() as s:
            people = [
                (p.id, p.first_name, p.email, p.status, p.manager_id, p.termination_date, p.level)
                for p in s.scalars(select(PersonRow).order_by(PersonRow.id))
            ]
            links = sorted(
                (r.connector, r.external_id, r.person_id) for r in s.scalars(select(ExternalIdRow))
            )
            history = s.scalar(select(func.count()).select_from(PersonHistoryRow))
            reviews = s.scalar(select(func.count()).select_from(ReviewEventRow))
            pairings = [(p.id, p.status, p.flag) for p in s.scalars(select(PairingRow))]
        return {
            "people": people,
            "links": links,
            "history": history,
            "reviews": reviews,
            "pairings": pairings,
        }

    def person(self, connector: str, external_id: str) -> PersonRow:
        with self.db.transaction() as s:
            link = s.get(ExternalIdRow, (connector, external_id))
            assert link is not None, external_id
            row = s.get(PersonRow, link.person_id)
            assert row is not None
            s.expunge(row)
            return row


@pytest.fixture
def setup(tmp_path: Path, db_url: str, run_cli: Any):  # type: ignore[no-untyped-def]
    """A folder with a config and people.csv; ``cb(...)`` runs the CLI against ``db_url``."""
    config = write_config(tmp_path, reviews="reviews.csv")
    write_csv(
        tmp_path / "reviews.csv",
        [{"employee_id": "4", "cycle": "2025-H2", "rating": "2", "completed_at": "2026-01-10"}],
        ("employee_id", "cycle", "rating", "completed_at"),
    )

    def cb(*args: str) -> Any:
        return run_cli("--config", str(config), "--db", db_url, *args)

    store = Store(db_url)
    yield tmp_path, cb, store
    store.db.dispose()


def test_csv_sync_dry_run_then_sync_then_idempotent(setup: Any) -> None:
    folder, cb, store = setup
    rows = company(12)
    rows[0]["first_name"] = "Zoë"
    write_csv(folder / "people.csv", rows, delimiter=";", encoding="utf-8-sig")

    preview = cb("sync", "--dry-run")
    assert preview.exit_code == 0, preview.stderr
    assert "hr: would change: 12 new, 0 changed, 0 leaving" in preview.stdout
    assert "new         1            Zoë Last1" in preview.stdout
    assert store.snapshot()["people"] == []

    first = cb("sync")
    assert first.exit_code == 0, first.stderr
    assert "synced: 12 new" in first.stdout and "1 new review events" in first.stdout
    before = store.snapshot()
    assert len(before["people"]) == 12 and before["reviews"] == 1

    again = cb("sync", "--format", "json")
    assert again.exit_code == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["new"], report["changed"], report["leaving"], report["unchanged"]) == (
        0,
        0,
        0,
        12,
    )
    assert report["reviews_new"] == 0
    assert store.snapshot() == before


def test_csv_dry_run_shows_changes_and_leavers_without_writing(setup: Any) -> None:
    folder, cb, store = setup
    rows = company(12)
    write_csv(folder / "people.csv", rows)
    assert cb("sync").exit_code == 0
    before = store.snapshot()

    rows[4]["job_title"] = "Staff Engineer"
    rows[5]["status"] = "Terminated"
    rows.append(person("13", "2"))
    write_csv(folder / "people.csv", rows)
    preview = cb("sync", "--dry-run")
    assert preview.exit_code == 0, preview.stderr
    assert "1 new, 1 changed, 1 leaving" in preview.stdout
    assert "changed     5            First5 Last5 (job_title)" in preview.stdout
    assert "leaving     6" in preview.stdout and "new         13" in preview.stdout
    assert store.snapshot() == before


def test_csv_leavers_become_inactive_and_nothing_is_deleted(setup: Any) -> None:
    folder, cb, store = setup
    rows = company(12)
    write_csv(folder / "people.csv", rows)
    assert cb("sync").exit_code == 0
    rows[6]["status"] = "Terminated"
    rows[6]["termination_date"] = "2026-02-28"
    del rows[7]  # employee 8 is missing from the export
    header = (*rows[0].keys(), "termination_date")
    write_csv(folder / "people.csv", rows, header)
    result = cb("sync", "--force")  # 2 of 12 is above the default 10% (1)
    assert result.exit_code == 0, result.stderr
    assert "2 leaving" in result.stdout

    terminated, missing = store.person("hr", "7"), store.person("hr", "8")
    assert terminated.status == missing.status == "inactive"
    assert terminated.hris_status == "Terminated"
    assert str(terminated.termination_date) == "2026-02-28"
    assert missing.termination_date is not None  # dated by the sync that saw them go
    assert missing.first_name == "First8" and missing.manager_id is not None  # kept as they were
    assert len(store.snapshot()["people"]) == 12

    listing = json.loads(cb("people", "--status", "inactive", "--format", "json").stdout)
    assert sorted(p["external_ids"]["hr"] for p in listing) == ["7", "8"]

    # coming back in a later export reactivates, again without duplicates
    write_csv(folder / "people.csv", company(12))
    back = cb("sync")
    assert back.exit_code == 0, back.stderr
    assert "2 returning" in back.stdout
    assert store.person("hr", "8").status == "active"
    returned = store.person("hr", "7")  # this export has no termination_date column
    assert returned.status == "active" and returned.termination_date is None
    assert len(store.snapshot()["people"]) == 12


def test_csv_max_deactivate_guard(setup: Any) -> None:
    folder, cb, store = setup
    rows = company(20)
    for row in rows[15:]:
        row["status"] = "Terminated"  # a first sync deactivates nobody: these are simply new
    write_csv(folder / "people.csv", rows)
    first = cb("sync")
    assert first.exit_code == 0, first.stderr
    assert "0 leaving" in first.stdout
    before = store.snapshot()
    assert sum(p[3] == "inactive" for p in before["people"]) == 5

    write_csv(folder / "people.csv", rows[:12])  # a truncated export: 3 of 15 active vanish
    stopped = cb("sync")
    assert stopped.exit_code == 2
    assert "would deactivate 3 of 15 active people" in stopped.stderr
    assert "max_deactivate allows (1)" in stopped.stderr and "--force" in stopped.stderr
    assert "Traceback" not in stopped.stderr + stopped.stdout
    assert store.snapshot() == before

    forced = cb("sync", "--force")
    assert forced.exit_code == 0, forced.stderr
    assert "3 leaving" in forced.stdout


def test_csv_max_deactivate_from_config(tmp_path: Path, sqlite_url: str, run_cli: Any) -> None:
    config = write_config(tmp_path, max_deactivate="25%")
    write_csv(tmp_path / "people.csv", company(12))
    cb = lambda *a: run_cli("--config", str(config), "--db", sqlite_url, *a)  # noqa: E731
    assert cb("sync").exit_code == 0
    write_csv(tmp_path / "people.csv", company(9))  # 3 of 12 = 25%: allowed
    result = cb("sync")
    assert result.exit_code == 0, result.stderr
    assert "3 leaving" in result.stdout


def _pairing_fixture(store: Store, learner: str, guide: str) -> tuple[int, list[int]]:
    """An active pairing with one past (held) and two future sessions; returns their ids."""
    now = datetime.now(UTC)
    with store.db.transaction() as s:
        s.add(ProgramRow(id="mentoring", name="Mentoring", kind="mentoring", settings={}))
        s.flush()
        pairing = PairingRow(
            program_id="mentoring",
            learner_id=store.person("hr", learner).id,
            guide_id=store.person("hr", guide).id,
            status="active",
            score=0.5,
        )
        s.add(pairing)
        s.flush()
        sessions = [
            SessionRow(
                pairing_id=pairing.id,
                seq=1,
                start=now - timedelta(days=7),
                minutes=45,
                status="held",
            ),
            SessionRow(pairing_id=pairing.id, seq=2, start=now + timedelta(days=7), minutes=45),
            SessionRow(pairing_id=pairing.id, seq=3, start=now + timedelta(days=21), minutes=45),
        ]
        s.add_all(sessions)
        s.flush()
        return pairing.id, [x.id for x in sessions]


def test_csv_leaver_ends_pairings_and_cancels_future_sessions(setup: Any) -> None:
    folder, cb, store = setup
    rows = company(12)
    write_csv(folder / "people.csv", rows)
    assert cb("sync").exit_code == 0
    pairing_id, session_ids = _pairing_fixture(store, learner="4", guide="3")

    rows[2]["status"] = "Terminated"  # the guide leaves
    write_csv(folder / "people.csv", rows)
    result = cb("sync")
    assert result.exit_code == 0, result.stderr
    assert "1 pairings ended, 2 sessions cancelled" in result.stdout
    with store.db.transaction() as s:
        pairing = s.get(PairingRow, pairing_id)
        assert pairing is not None
        assert pairing.status == "ended" and pairing.end_reason == "guide left the company"
        statuses = [s.get(SessionRow, i).status for i in session_ids]  # type: ignore[union-attr]
        assert statuses == ["held", "cancelled", "cancelled"]
        open_for_guide = s.scalar(
            select(func.count())
            .select_from(PairingRow)
            .where(
                PairingRow.guide_id == pairing.guide_id,
                PairingRow.status.in_(["proposed", "active", "paused"]),
            )
        )
        assert open_for_guide == 0  # the guide's capacity is free again
        assert s.scalars(select(AuditRow).where(AuditRow.action == "end_pairing")).first()

    # idempotent: the next sync ends nothing more
    again = cb("sync")
    assert "pairings ended" not in again.stdout


def test_csv_guide_becoming_manager_flags_the_pairing(setup: Any) -> None:
    folder, cb, store = setup
    rows = company(12)
    write_csv(folder / "people.csv", rows)
    assert cb("sync").exit_code == 0
    # 5 reports to 3; 2 guides 5. Then 5 moves under 2 (the guide becomes the manager).
    pairing_id, _ = _pairing_fixture(store, learner="5", guide="2")
    rows[4]["manager_id"] = "2"
    write_csv(folder / "people.csv", rows)
    result = cb("sync")
    assert result.exit_code == 0, result.stderr
    assert "1 pairings flagged for HR" in result.stdout
    with store.db.transaction() as s:
        pairing = s.get(PairingRow, pairing_id)
        assert pairing is not None and pairing.flag == REPORTING_FLAG and pairing.status == "active"


def test_csv_guide_above_in_the_chain_is_flagged(
    tmp_path: Path, sqlite_url: str, run_cli: Any
) -> None:
    config = write_config(tmp_path)
    rows = company(12)  # 5 reports to 3, 3 to 1; 2 reports to 1
    write_csv(tmp_path / "people.csv", rows)
    cb = lambda *a: run_cli("--config", str(config), "--db", sqlite_url, *a)  # noqa: E731
    assert cb("sync").exit_code == 0
    store = Store(sqlite_url)
    pairing_id, _ = _pairing_fixture(store, learner="5", guide="2")
    rows[6]["manager_id"] = "2"  # a move elsewhere in the tree changes nothing for 5
    write_csv(tmp_path / "people.csv", rows)
    assert cb("sync").exit_code == 0
    with store.db.transaction() as s:
        assert s.get(PairingRow, pairing_id).flag is None  # type: ignore[union-attr]
    rows[2]["manager_id"] = "2"  # 5's manager moves under the guide: 5 -> 3 -> 2 -> 1
    write_csv(tmp_path / "people.csv", rows)
    result = cb("sync")
    assert result.exit_code == 0, result.stderr
    assert "1 pairings flagged" in result.stdout
    with store.db.transaction() as s:
        assert s.get(PairingRow, pairing_id).flag == REPORTING_FLAG  # type: ignore[union-attr]
    store.db.dispose()


def test_csv_person_matched_across_connectors(tmp_path: Path, db_url: str, run_cli: Any) -> None:
    config = write_config(
        tmp_path,
        body='[connectors.payroll]\nplugin = "csv"\npeople = "payroll.csv"\n',
    )
    write_csv(tmp_path / "people.csv", company(3))
    payroll = [
        person("P-9", first_name="First2", email="P2@EXAMPLE.com"),  # same person, other id
        person("P-7", first_name="Nobody", email="new@example.com"),
    ]
    write_csv(tmp_path / "payroll.csv", payroll, ("id", "first_name", "last_name", "email"))
    cb = lambda *a: run_cli("--config", str(config), "--db", db_url, *a)  # noqa: E731
    result = cb("sync")
    assert result.exit_code == 0, result.stderr
    listing = json.loads(cb("people", "--format", "json").stdout)
    assert len(listing) == 4
    by_email = {p["email"].lower(): p for p in listing}
    assert by_email["p2@example.com"]["external_ids"] == {"hr": "2", "payroll": "P-9"}
    assert by_email["new@example.com"]["external_ids"] == {"payroll": "P-7"}
    # columns payroll.csv does not have leave what hr.csv said alone
    shared = by_email["p2@example.com"]
    assert shared["job_title"] == "Engineer" and shared["level"] == 7
    assert shared["manager_id"] == by_email["p1@example.com"]["id"]
    assert shared["skills"] == ["python", "sql"] and shared["status"] == "active"
    # the person reached as CONNECTOR:ID from either side is the same
    one = json.loads(cb("people", "show", "payroll:P-9", "--format", "json").stdout)
    other = json.loads(cb("people", "show", "hr:2", "--format", "json").stdout)
    assert one == other
    # re-sync: matched by external id now, nothing changes
    again = json.loads(cb("sync", "payroll", "--format", "json").stdout)
    assert (again["new"], again["leaving"]) == (0, 0)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda rows: rows.append(person("5", "1")),
            "people.csv:14: duplicate employee id '5' (first seen at",
        ),
        (
            lambda rows: rows[3].update(manager_id="99"),
            "people.csv:5: manager id '99' of employee '4' does not exist",
        ),
        (lambda rows: rows[0].update(manager_id="3"), "reporting cycle"),
        (
            lambda rows: rows[8].update(hire_date="2020-13-01"),
            "people.csv:10: column hire_date: unparseable date '2020-13-01'",
        ),
    ],
    ids=["duplicate", "unknown-manager", "cycle", "bad-date"],
)
def test_csv_bad_export_changes_nothing(setup: Any, edit: Any, expected: str) -> None:
    folder, cb, store = setup
    rows = company(12)
    write_csv(folder / "people.csv", rows)
    assert cb("sync").exit_code == 0
    before = store.snapshot()
    edit(rows)
    rows[5]["job_title"] = "Changed"  # a valid change in the same file must not land either
    write_csv(folder / "people.csv", rows)
    result = cb("sync")
    assert result.exit_code == 2, result.stdout
    assert expected in result.stderr
    assert str(folder / "people.csv") in result.stderr
    assert "Traceback" not in result.stderr
    assert store.snapshot() == before


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "people.csv: the file is empty"),
        (b"\x00\x01\x02\x03binary\x00", "people.csv: not a text file"),
        (b"id,name\n1,A B\n", "people.csv:1: missing required columns first_name, last_name"),
        (b"id,first_name,last_name\n1,A,B,C\n", "people.csv:2: 4 fields, but the header has 3"),
    ],
    ids=["empty", "binary", "missing-column", "fields"],
)
def test_csv_unreadable_export_exits_2(
    tmp_path: Path, sqlite_url: str, run_cli: Any, content: bytes, expected: str
) -> None:
    config = write_config(tmp_path)
    (tmp_path / "people.csv").write_bytes(content)
    result = run_cli("--config", str(config), "--db", sqlite_url, "sync")
    assert result.exit_code == 2
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_csv_cycle_is_reported_with_its_line(tmp_path: Path, sqlite_url: str, run_cli: Any) -> None:
    config = write_config(tmp_path)
    rows = company(6)
    rows[1]["manager_id"] = "4"  # 2 -> 4 -> 2
    write_csv(tmp_path / "people.csv", rows)
    result = run_cli("--config", str(config), "--db", sqlite_url, "sync")
    assert result.exit_code == 2
    assert "people.csv:3: reporting cycle: 2 -> 4 -> 2" in result.stderr


def test_csv_people_listing_keys(setup: Any) -> None:
    folder, cb, _ = setup
    rows = company(4)
    rows[3].update(first_name="Łucja", status="Terminated", level="L3", skills="go|rust")
    write_csv(folder / "people.csv", rows)
    assert cb("sync").exit_code == 0
    everyone = json.loads(cb("people", "--format", "json").stdout)
    assert isinstance(everyone, list) and len(everyone) == 4
    keys = {
        "id",
        "name",
        "email",
        "job_title",
        "department",
        "location",
        "timezone",
        "manager_id",
        "status",
        "level",
        "skills",
        "external_ids",
    }
    for entry in everyone:
        assert keys <= entry.keys()
    ids = {p["external_ids"]["hr"]: p for p in everyone}
    assert ids["2"]["manager_id"] == ids["1"]["id"] and ids["1"]["manager_id"] is None
    leaver = ids["4"]
    assert leaver["name"] == "Łucja Last4" and leaver["status"] == "inactive"
    assert leaver["level"] == 3 and leaver["skills"] == ["go", "rust"]
    assert leaver["timezone"] == "Europe/Berlin" and leaver["location"] == "Berlin"
    active = json.loads(cb("people", "--status", "active", "--format", "json").stdout)
    assert sorted(p["external_ids"]["hr"] for p in active) == ["1", "2", "3"]

    as_csv = cb("people", "--format", "csv").stdout.splitlines()
    assert as_csv[0].startswith("id,name,email,job_title,department")
    assert len(as_csv) == 5
    table = cb("people", "--status", "inactive").stdout
    assert "Łucja Last4" in table and "First1" not in table


def test_csv_reviews_listing(setup: Any) -> None:
    folder, cb, store = setup
    write_csv(folder / "people.csv", company(6))
    write_csv(
        folder / "reviews.csv",
        [
            {"employee_id": "4", "cycle": "2025-H2", "rating": "2", "completed_at": "2026-01-10"},
            {"employee_id": "4", "cycle": "2026-H1", "rating": "4", "completed_at": "2026-07-10"},
            {
                "employee_id": "5",
                "cycle": "2026-H1",
                "rating": "8",
                "rating_scale_max": "10",
                "completed_at": "2026-07-11T12:00:00+02:00",
            },
        ],
        ("employee_id", "cycle", "rating", "rating_scale_max", "completed_at"),
    )
    assert cb("sync").exit_code == 0
    listing = json.loads(cb("reviews", "--format", "json").stdout)
    assert [r["cycle"] for r in listing] == ["2025-H2", "2026-H1", "2026-H1"]
    first = listing[0]
    assert set(first) == {
        "id",
        "person_id",
        "cycle",
        "rating",
        "raw_rating",
        "scale_min",
        "scale_max",
        "completed_at",
        "source",
    }
    assert first["rating"] == 0.25 and first["raw_rating"] == 2 and first["scale_max"] == 5
    assert first["source"] == "hr" and first["completed_at"] == "2026-01-10T00:00:00+00:00"
    assert listing[2]["rating"] == pytest.approx(7 / 9)
    assert listing[2]["completed_at"] == "2026-07-11T10:00:00+00:00"
    mine = json.loads(cb("reviews", "--person", "hr:4", "--format", "json").stdout)
    assert [r["cycle"] for r in mine] == ["2025-H2", "2026-H1"]
    assert all(r["person_id"] == store.person("hr", "4").id for r in mine)
    h1 = json.loads(cb("reviews", "--cycle", "2026-H1", "--format", "json").stdout)
    assert len(h1) == 2
    unknown = cb("reviews", "--person", "nobody@example.com")
    assert unknown.exit_code == 2 and "unknown person" in unknown.stderr
    assert cb("reviews", "--format", "csv").stdout.startswith("id,person_id,cycle,rating,")


def _history(store: Store, external_id: str) -> list[tuple[str, str | None, str, str | None]]:
    person_id = store.person("hr", external_id).id
    with store.db.transaction() as s:
        return [
            (h.field, h.value, h.valid_from.isoformat(), h.valid_to and h.valid_to.isoformat())
            for h in s.scalars(
                select(PersonHistoryRow)
                .where(PersonHistoryRow.person_id == person_id)
                .order_by(PersonHistoryRow.field, PersonHistoryRow.valid_from, PersonHistoryRow.id)
            )
        ]


def test_csv_history_uses_hire_and_termination_dates(setup: Any) -> None:
    folder, cb, store = setup
    rows = company(12)
    header = (*rows[0].keys(), "termination_date")
    write_csv(folder / "people.csv", rows, header)
    assert cb("sync").exit_code == 0
    first = _history(store, "6")
    assert ("status", "active", "2020-01-15", None) in first  # dated from the hire date
    assert ("level", "4", "2020-01-15", None) in first

    rows[5].update(level="5", job_title="Engineering Manager")  # a promotion, dated by the sync
    rows[6].update(status="Terminated", termination_date="2026-03-31")
    write_csv(folder / "people.csv", rows, header)
    assert cb("sync").exit_code == 0
    today = datetime.now(UTC).date().isoformat()
    promoted = _history(store, "6")
    assert ("level", "4", "2020-01-15", today) in promoted
    assert ("level", "5", today, None) in promoted
    assert ("job_title", "Engineering Manager", today, None) in promoted
    left = _history(store, "7")
    assert ("status", "active", "2020-01-15", "2026-03-31") in left
    assert ("status", "inactive", "2026-03-31", None) in left
    assert any(h[0] == "termination_date" and h[1] == "2026-03-31" for h in left)
    # an unchanged re-sync adds no history
    count = store.snapshot()["history"]
    assert cb("sync").exit_code == 0
    assert store.snapshot()["history"] == count


def test_csv_check_command(tmp_path: Path, sqlite_url: str, run_cli: Any) -> None:
    config = write_config(tmp_path, reviews="reviews.csv")
    write_csv(tmp_path / "people.csv", company(4), delimiter=";")
    result = run_cli("--config", str(config), "--db", sqlite_url, "check")
    assert "connector hr: FAILED" in result.stdout
    assert "reviews.csv: file not found" in result.stdout
    assert result.exit_code == 1  # the check command's status for a failed connector
    write_csv(tmp_path / "reviews.csv", [], ("employee_id", "cycle", "rating"))
    result = run_cli("--config", str(config), "--db", sqlite_url, "check")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "people: " in result.stdout and "4 rows (utf-8, delimiter ';')" in result.stdout


def test_csv_reviews_by_program(tmp_path: Path, sqlite_url: str, run_cli: Any) -> None:
    from coachbridge.store.tables import EnrollmentRow

    body = '[[programs]]\nid = "growth"\nname = "Growth coaching"\nkind = "coaching"\n'
    config = write_config(tmp_path, body=body, reviews="reviews.csv")
    write_csv(tmp_path / "people.csv", company(6))
    write_csv(
        tmp_path / "reviews.csv",
        [{"employee_id": str(i), "cycle": "2026-H1", "rating": "3"} for i in range(1, 7)],
        ("employee_id", "cycle", "rating"),
    )
    cb = lambda *a: run_cli("--config", str(config), "--db", sqlite_url, *a)  # noqa: E731
    assert cb("sync").exit_code == 0
    store = Store(sqlite_url)
    with store.db.transaction() as s:
        s.add(ProgramRow(id="growth", name="Growth coaching", kind="coaching", settings={}))
        s.flush()
        for external_id, role in (("4", "learner"), ("2", "guide")):
            s.add(
                EnrollmentRow(
                    program_id="growth", person_id=store.person("hr", external_id).id, role=role
                )
            )
    listing = json.loads(cb("reviews", "--program", "growth", "--format", "json").stdout)
    ids = {store.person("hr", "4").id, store.person("hr", "2").id}
    assert {r["person_id"] for r in listing} == ids and len(listing) == 2
    unknown = cb("reviews", "--program", "nope")
    assert unknown.exit_code == 2 and "unknown program 'nope'" in unknown.stderr
    store.db.dispose()


@pytest.mark.parametrize("when", ["9999-12-31", "0001-01-01T00:00:00+14:00"])
def test_csv_review_date_out_of_range_changes_nothing(setup: Any, when: str) -> None:
    folder, cb, store = setup
    write_csv(folder / "people.csv", company(12))
    assert cb("sync").exit_code == 0
    before = store.snapshot()
    write_csv(
        folder / "reviews.csv",
        [{"employee_id": "4", "cycle": "2026-H2", "rating": "1", "completed_at": when}],
        ("employee_id", "cycle", "rating", "completed_at"),
    )
    for args in (("sync", "--dry-run"), ("sync",)):
        result = cb(*args)
        assert result.exit_code == 2, result.stderr
        assert "reviews.csv:2" in result.stderr and "outside 1900-2199" in result.stderr
        assert "Traceback" not in result.stderr
    assert store.snapshot() == before


def test_csv_text_longer_than_the_store_holds_is_an_input_error(setup: Any) -> None:
    folder, cb, store = setup
    rows = company(12)
    write_csv(folder / "people.csv", rows)
    assert cb("sync").exit_code == 0
    before = store.snapshot()
    rows[2]["first_name"] = "A" * 10_000
    write_csv(folder / "people.csv", rows)
    result = cb("sync")
    assert result.exit_code == 2 and "people.csv:4" in result.stderr, result.stderr
    assert "first_name" in result.stderr and "Traceback" not in result.stderr
    assert store.snapshot() == before
