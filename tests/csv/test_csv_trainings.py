"""Trained guides end to end through the CLI, from a CSV trainings file, on SQLite and
PostgreSQL: stored idempotently, line-numbered errors that store nothing, the guide filter
(expiry, valid days) in enrollment and matching, people show, check's warning and errors."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from coachbridge.store import Database
from coachbridge.store.tables import EnrollmentRow, ExternalIdRow, TrainingRow
from sqlalchemy import select

from .csv_helpers import company, write_config, write_csv

TRAINING_HEADER = ("employee_id", "training", "completed_at", "expires_at")
TODAY = datetime.now(UTC).date()


def _day(days_ago: int) -> str:
    return (TODAY - timedelta(days=days_ago)).isoformat()


def _program(trained_in: str = "Coaching fundamentals", valid_days: int | None = 730) -> str:
    valid = f"training_valid_days = {valid_days}\n" if valid_days else ""
    return (
        '\n[[programs]]\nid = "mentoring"\nkind = "mentoring"\n'
        "[programs.learners]\nlevel = [1, 4]\n"
        "[programs.guides]\nlevel = [5, 9]\n"
        f'trained_in = ["{trained_in}"]\n{valid}'
    )


@pytest.fixture
def folder(tmp_path: Path, db_url: str, run_cli: Any):  # type: ignore[no-untyped-def]
    """A company of 12 (1 at the top with level 9, 2 and 3 at level 7, the rest level 4)."""
    write_csv(tmp_path / "people.csv", company(12))

    def setup(rows: list[dict[str, str]], program: str = _program()) -> Any:
        write_csv(tmp_path / "trainings.csv", rows, TRAINING_HEADER)
        write_config(tmp_path, program, trainings="trainings.csv")

        def cb(*args: str) -> Any:
            return run_cli("--config", str(tmp_path / "coachbridge.toml"), "--db", db_url, *args)

        return cb

    db = Database(db_url)
    yield setup, db
    db.dispose()


def _stored(db: Database) -> list[tuple[str, str, date | None, date | None]]:
    with db.transaction() as s:
        rows = s.execute(
            select(
                ExternalIdRow.external_id,
                TrainingRow.training,
                TrainingRow.completed_at,
                TrainingRow.expires_at,
            ).join(ExternalIdRow, ExternalIdRow.person_id == TrainingRow.person_id)
        )
        return sorted((tuple(r) for r in rows), key=str)  # type: ignore[misc]


def _guides(db: Database) -> list[str]:
    with db.transaction() as s:
        rows = s.execute(
            select(ExternalIdRow.external_id)
            .join(EnrollmentRow, EnrollmentRow.person_id == ExternalIdRow.person_id)
            .where(EnrollmentRow.role == "guide")
        )
        return sorted(rows.scalars())


def test_trainings_are_stored_once_and_follow_the_file(folder) -> None:  # type: ignore[no-untyped-def]
    setup, db = folder
    rows = [
        {"employee_id": "2", "training": "Coaching fundamentals", "completed_at": "2020-01-01",
         "expires_at": "2022-01-01"},
        {"employee_id": "2", "training": "Coaching fundamentals", "completed_at": _day(10)},
        {"employee_id": "3", "training": "First aid", "completed_at": _day(100),
         "expires_at": _day(-200)},
    ]  # fmt: skip
    cb = setup(rows)
    result = cb("sync")
    assert result.exit_code == 0, result.output
    assert "3 new trainings" in result.output
    assert _stored(db) == sorted(
        [
            ("2", "Coaching fundamentals", date(2020, 1, 1), date(2022, 1, 1)),
            ("2", "Coaching fundamentals", date.fromisoformat(_day(10)), None),
            ("3", "First aid", date.fromisoformat(_day(100)), date.fromisoformat(_day(-200))),
        ],
        key=str,
    )
    again = cb("sync", "--format", "json")
    data = json.loads(again.output)
    assert (data["trainings_new"], data["trainings_updated"], data["trainings_removed"]) == (
        0,
        0,
        0,
    )
    # A record gone from the file goes from the store; a changed expiry is an update.
    rows[2]["expires_at"] = ""
    cb = setup(rows[1:])
    data = json.loads(cb("sync", "--format", "json").output)
    assert (data["trainings_new"], data["trainings_updated"], data["trainings_removed"]) == (
        0,
        1,
        1,
    )
    assert [r[3] for r in _stored(db)] == [None, None]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {"employee_id": "99", "training": "Coaching fundamentals", "completed_at": "2025-01-01"},
            "trainings.csv:3: employee id '99' is not a known person",
        ),
        (
            {"employee_id": "2", "training": "Coaching fundamentals", "completed_at": "01/02/2025"},
            "trainings.csv:3: column completed_at: unparseable date '01/02/2025'",
        ),
        (
            {"employee_id": "2", "training": "Coaching fundamentals", "completed_at": "2025-01-01",
             "expires_at": "soon"},
            "trainings.csv:3: column expires_at: unparseable date 'soon'",
        ),
        (
            {"employee_id": "2", "training": "", "completed_at": "2025-01-01"},
            "trainings.csv:3: column training: empty",
        ),
    ],
)  # fmt: skip
def test_a_bad_training_line_is_one_error_naming_it_and_stores_nothing(
    folder, row: dict[str, str], message: str
) -> None:  # type: ignore[no-untyped-def]
    setup, db = folder
    good = {"employee_id": "3", "training": "Coaching fundamentals", "completed_at": "2025-01-01"}
    cb = setup([good, row])
    result = cb("sync")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert _stored(db) == []
    # Nothing at all: not even the people of the same sync.
    assert cb("people", "--format", "json").output.strip() in ("[]", "")


def _ids(db: Database, *external: str) -> set[int]:
    with db.transaction() as s:
        return {
            s.get(ExternalIdRow, ("hr", e)).person_id  # type: ignore[union-attr]
            for e in external
        }


def test_the_guide_filter_counts_the_latest_unexpired_record_within_valid_days(
    folder, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    setup, db = folder
    people = company(12)
    people[5]["level"] = "7"  # 6 (under 2) is senior enough to guide
    write_csv(tmp_path / "people.csv", people)
    rows = [
        # 1: held twice; the latest (recent, never expires) counts.
        {"employee_id": "1", "training": "Coaching fundamentals", "completed_at": _day(3000),
         "expires_at": _day(2000)},
        {"employee_id": "1", "training": "coaching  FUNDAMENTALS", "completed_at": _day(20)},
        # 2: recent, never expires.
        {"employee_id": "2", "training": "Coaching fundamentals", "completed_at": _day(30)},
        # 3: completed long ago, never expires: too old for training_valid_days = 730.
        {"employee_id": "3", "training": "Coaching fundamentals", "completed_at": _day(800)},
        # 6: recent but expired yesterday.
        {"employee_id": "6", "training": "Coaching fundamentals", "completed_at": _day(300),
         "expires_at": _day(1)},
        # 4: trained, but level 4: not admitted by the level filter.
        {"employee_id": "4", "training": "Coaching fundamentals", "completed_at": _day(5)},
    ]  # fmt: skip
    cb = setup(rows)
    assert cb("sync").exit_code == 0
    assert cb("enroll", "mentoring").exit_code == 0
    assert _guides(db) == ["1", "2"]
    # Without training_valid_days, 3 (never expires) qualifies too; 6 stays expired.
    cb = setup(rows, _program(valid_days=None))
    assert cb("enroll", "mentoring").exit_code == 0
    assert _guides(db) == ["1", "2", "3"]

    def matched_guides() -> set[int]:
        result = cb("match", "mentoring", "--format", "json")
        assert result.exit_code == 0, result.output
        return {p["guide_id"] for p in json.loads(result.output)["pairs"]}

    # (1 is above every learner in the reporting chain: never their guide.)
    assert matched_guides() == _ids(db, "2", "3")
    # Matching re-checks the filter: with valid days back, 3 (still enrolled) guides nobody.
    cb = setup(rows)
    assert matched_guides() == _ids(db, "2")


def test_people_show_lists_the_trainings(folder) -> None:  # type: ignore[no-untyped-def]
    setup, _ = folder
    cb = setup(
        [
            {"employee_id": "2", "training": "Coaching fundamentals", "completed_at": "2020-01-01",
             "expires_at": "2022-01-01"},
            {"employee_id": "2", "training": "Coaching fundamentals", "completed_at": _day(10)},
        ]
    )  # fmt: skip
    assert cb("sync").exit_code == 0
    data = json.loads(cb("people", "show", "hr:2", "--format", "json").output)[0]
    assert data["trainings"] == [
        {"training": "Coaching fundamentals", "completed_at": _day(10), "expires_at": None,
         "source": "hr", "current": True, "valid": True},
        {"training": "Coaching fundamentals", "completed_at": "2020-01-01",
         "expires_at": "2022-01-01", "source": "hr", "current": False, "valid": False},
    ]  # fmt: skip
    table = cb("people", "show", "hr:2").output
    assert f"Coaching fundamentals: completed {_day(10)}, never expires (valid; hr)" in table
    assert "completed 2020-01-01, expires 2022-01-01 (superseded; hr)" in table
    csv_out = cb("people", "show", "hr:2", "--format", "csv").output
    assert f"Coaching fundamentals {_day(10)}" in csv_out
    empty = cb("people", "show", "hr:5").output
    assert "trainings: none" in empty


def test_check_warns_when_training_empties_the_guide_pool_and_refuses_an_unknown_name(
    folder,
) -> None:  # type: ignore[no-untyped-def]
    setup, _ = folder
    old = {"employee_id": "2", "training": "Coaching fundamentals", "completed_at": _day(900)}
    cb = setup([old])
    assert cb("sync").exit_code == 0
    result = cb("check")
    assert result.exit_code == 0, result.output
    assert (
        "warn program 'mentoring': none of the 3 people [programs.guides] admits holds a valid "
        "'Coaching fundamentals' training completed within 730 days" in result.output
    )
    # A recent record: no warning.
    cb = setup([{**old, "completed_at": _day(9)}])
    assert cb("sync").exit_code == 0
    assert "  warn " not in cb("check").output
    # A name no record holds: one line naming the key, exit 2, at check and at match time.
    cb = setup([old], _program(trained_in="Coaching fundamental"))
    for args in (("check",), ("match", "mentoring")):
        result = cb(*args)
        assert result.exit_code == 2
        assert result.stderr.strip() == (
            "error: programs[id='mentoring'].guides.trained_in: no training record holds "
            "'Coaching fundamental' (check the name against the HRIS's training names)"
        )


def test_forgetting_a_person_erases_their_trainings_and_a_resync_keeps_them_out(folder) -> None:  # type: ignore[no-untyped-def]
    setup, db = folder
    cb = setup(
        [
            {"employee_id": "5", "training": "Coaching fundamentals", "completed_at": _day(10)},
            {"employee_id": "3", "training": "Coaching fundamentals", "completed_at": _day(10)},
        ]
    )
    assert cb("sync").exit_code == 0
    result = cb("people", "forget", "hr:5", "--yes")
    assert result.exit_code == 0, result.output
    assert [r[0] for r in _stored(db)] == ["3"]
    # The HR export still lists them: the sync skips the erased person and their trainings,
    # so nothing comes back.
    again = cb("sync")
    assert again.exit_code == 0, again.stderr
    assert "a training of an erased person is still in hr's data; skipped" in again.stderr
    assert [r[0] for r in _stored(db)] == ["3"]
