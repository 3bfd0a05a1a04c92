"""Cell parsers: HRIS statuses, levels, lists, dates, numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from coachbridge.domain import GoalStatus, PersonStatus
from coachbridge_csv.values import (
    parse_date,
    parse_datetime,
    parse_goal_status,
    parse_level,
    parse_list,
    parse_number,
    parse_progress,
    parse_status,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Active", PersonStatus.ACTIVE),
        ("ACTIVE", PersonStatus.ACTIVE),
        ("on leave", PersonStatus.ACTIVE),
        ("On_Leave", PersonStatus.ACTIVE),
        ("Leave of absence", PersonStatus.ACTIVE),
        ("Terminated", PersonStatus.INACTIVE),
        ("Inactive", PersonStatus.INACTIVE),
        (" retired ", PersonStatus.INACTIVE),
    ],
)
def test_csv_status_vocabulary(text: str, expected: PersonStatus) -> None:
    assert parse_status(text) is expected


def test_csv_status_unknown_is_an_error_unless_configured() -> None:
    with pytest.raises(ValueError, match="unknown status 'Garden leave'"):
        parse_status("Garden leave")
    assert parse_status("Garden leave", extra_inactive=["garden leave"]) is PersonStatus.INACTIVE
    assert parse_status("Contractor", extra_active=["Contractor"]) is PersonStatus.ACTIVE


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5", 5), ("L5", 5), ("5 Manager", 5), ("Level 7", 7), ("5.0", 5), ("", None)],
)
def test_csv_level(text: str, expected: int | None) -> None:
    assert parse_level(text) == expected


def test_csv_level_without_number() -> None:
    with pytest.raises(ValueError, match="no level number in 'Senior'"):
        parse_level("Senior")


def test_csv_lists_split_on_semicolon_and_pipe() -> None:
    assert parse_list("Python; SQL|Go ;;python") == ["Python", "SQL", "Go", "python"]
    assert parse_list("a;a|b") == ["a", "b"]
    assert parse_list("") == []
    assert parse_list("a,b;c", separators=",") == ["a", "b;c"]


def test_csv_dates() -> None:
    assert parse_date("2024-02-29") == date(2024, 2, 29)
    assert parse_date("2024-02-29T08:00:00") == date(2024, 2, 29)
    assert parse_date("29/02/2024", "%d/%m/%Y") == date(2024, 2, 29)
    assert parse_date("") is None
    for bad in ("2023-02-29", "31/01/2024", "20240131", "soon"):
        with pytest.raises(ValueError, match="unparseable date"):
            parse_date(bad)


def test_csv_datetimes_are_utc() -> None:
    assert parse_datetime("2026-01-15") == datetime(2026, 1, 15, tzinfo=UTC)
    moment = parse_datetime("2026-01-15T10:00:00+01:00")
    assert moment == datetime(2026, 1, 15, 10, tzinfo=timezone(timedelta(hours=1)))
    assert parse_datetime("2026-01-15T09:00:00Z") == datetime(2026, 1, 15, 9, tzinfo=UTC)
    assert parse_datetime("15.01.2026", "%d.%m.%Y") == datetime(2026, 1, 15, tzinfo=UTC)
    with pytest.raises(ValueError, match="unparseable date"):
        parse_datetime("January")


def test_csv_numbers_and_progress() -> None:
    assert parse_number("4,5") == 4.5
    assert parse_number("4") == 4.0
    assert parse_number("") is None
    for bad in ("four", "nan", "inf"):
        with pytest.raises(ValueError):
            parse_number(bad)
    assert parse_progress("50%") == 50.0
    assert parse_progress("0.5") == 50.0
    assert parse_progress("75") == 75.0
    with pytest.raises(ValueError, match=r"outside 0\.\.100"):
        parse_progress("150")


def test_csv_goal_status() -> None:
    assert parse_goal_status("In progress") is GoalStatus.IN_PROGRESS
    assert parse_goal_status("Done") is GoalStatus.COMPLETED
    assert parse_goal_status("") is GoalStatus.OPEN
    with pytest.raises(ValueError, match="unknown goal status"):
        parse_goal_status("maybe")
