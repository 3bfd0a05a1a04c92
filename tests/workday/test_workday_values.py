"""Workday's value quirks and the row -> record mapping."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from coachbridge.errors import InputDataError
from coachbridge_workday.config import WorkdayConfig
from coachbridge_workday.values import (
    RowMapper,
    day,
    flag,
    get_path,
    leading_number,
    moment,
    text,
    texts,
    workday_datetime,
)
from pydantic import ValidationError


def _config(**extra: object) -> WorkdayConfig:
    return WorkdayConfig.model_validate(
        {
            "plugin": "workday",
            "host": "wd5-impl-services1.workday.com",
            "tenant": "acme",
            "username": "isu",
            "password": "pw",
            "people_report": "isu/Workers",
            **extra,
        }
    )


def test_multi_valued_field_is_string_list_or_absent() -> None:
    assert texts("Python") == ["Python"]
    assert texts(["Python", "SQL"]) == ["Python", "SQL"]
    assert texts(None) == []
    assert texts("Python; SQL") == ["Python", "SQL"]
    assert texts([{"Descriptor": "Go"}, {"Descriptor": "Rust"}]) == ["Go", "Rust"]
    # A single-valued column that arrives as a list gives its first value.
    assert text(["E1", "E2"]) == "E1"


def test_booleans_arrive_as_zero_one() -> None:
    assert flag("1") is True and flag("0") is False
    assert flag("true") is True and flag("No") is False
    assert flag(None) is None and flag("maybe") is None


def test_level_takes_the_leading_number() -> None:
    assert leading_number("5 Manager") == 5
    assert leading_number("Level 3") == 3
    assert leading_number("Executive") is None
    assert leading_number("4.5") == 4.5


def test_dates_and_datetimes_in_workday_forms() -> None:
    assert day("2024-03-15") == date(2024, 3, 15)
    assert day("2024-03-15-07:00") == date(2024, 3, 15)
    assert day("March") is None
    assert moment("2024-03-15T10:00:00.000-07:00") == datetime(2024, 3, 15, 17, tzinfo=UTC)
    assert moment("2024-03-15") == datetime(2024, 3, 15, tzinfo=UTC)


def test_prompt_datetime_has_milliseconds_and_offset() -> None:
    value = workday_datetime(datetime(2026, 11, 27, 3, 1, 29, 123456, tzinfo=UTC))
    assert value == "2026-11-27T03:01:29.123+00:00"


def test_group_columns_reach_inside() -> None:
    row = {"Worker_group": [{"Email": "a@x.io"}, {"Email": "b@x.io"}]}
    assert get_path(row, "Worker_group/Email") == "a@x.io"
    assert get_path(row, "Missing/Email") is None


def test_person_row_maps_quirks() -> None:
    mapper = RowMapper(_config(), "wd", "wd people")
    record = mapper.person(
        {
            "Employee_ID": "21001",
            "Worker_WID": "0123456789abcdef0123456789abcdef",
            "First_Name": "Logan",
            "Last_Name": "McNeil",
            "Email_-_Work": "lmcneil@acme.example",
            "Manager_ID": "21000",
            "Active": "0",
            "Management_Level": "5 Manager",
            "Skills": "Python",
            "Hire_Date": "2019-03-04-08:00",
            "Time_Zone": "GMT-08:00 Pacific Time",
        },
        1,
    )
    assert record.external_id == "21001"
    assert record.status == "inactive" and record.level == 5
    assert record.skills == ["Python"]
    assert record.hire_date == date(2019, 3, 4)
    assert record.timezone is None and mapper.bad_timezones == {"GMT-08:00 Pacific Time": 1}
    assert record.extra == {"wid": "0123456789abcdef0123456789abcdef"}


def test_status_column_when_no_active_flag() -> None:
    mapper = RowMapper(_config(), "wd", "wd people")
    assert (
        mapper.person({"Employee_ID": "1", "Worker_Status": "Terminated"}, 1).status == "inactive"
    )
    assert mapper.person({"Employee_ID": "2", "Worker_Status": "Active"}, 2).status == "active"
    assert mapper.person({"Employee_ID": "3"}, 3).status == "active"


def test_bad_row_names_entry_and_column() -> None:
    mapper = RowMapper(_config(), "wd", "wd people")
    with pytest.raises(InputDataError, match=r"entry 4: employee '7': column 'Email_-_Work'"):
        mapper.person({"Employee_ID": "7", "Email_-_Work": "not-an-email"}, 4)
    with pytest.raises(InputDataError, match=r"entry 5: no employee id in column 'Employee_ID'"):
        mapper.person({"First_Name": "X"}, 5)


def test_review_rows() -> None:
    mapper = RowMapper(_config(rating_scale_max=5), "wd", "wd reviews")
    event, why = mapper.review(
        {
            "Employee_ID": "21001",
            "Employee_Review_ID": "ER-1",
            "Review_Period": "2026 Mid-Year",
            "Overall_Rating": "2 - Partially Meets",
            "Completed_On": "2026-06-30T10:00:00.000-07:00",
        },
        1,
        "wd",
    )
    assert why is None and event is not None
    assert event.raw_rating == 2 and event.rating == 0.25
    assert event.source_event_id == "ER-1" and event.subject_external_id == "21001"
    assert event.cycle == "2026 Mid-Year"
    # Not completed yet: not an event, not a warning.
    assert mapper.review({"Employee_ID": "1", "Employee_Review_ID": "ER-2"}, 2, "wd") == (
        None,
        None,
    )
    _, why = mapper.review(
        {
            "Employee_ID": "1",
            "Employee_Review_ID": "ER-3",
            "Overall_Rating": "9",
            "Completed_On": "2026-01-01",
        },
        3,
        "wd",
    )
    assert why and "outside" in why


def test_a_review_that_does_not_fit_is_one_line_naming_the_field_never_its_value() -> None:
    """The error reaches the log: a value from the report (a confidential period name, say)
    must not, and pydantic's multi-line message would carry it."""
    mapper = RowMapper(_config(rating_scale_max=5), "wd", "wd reviews")
    row = {
        "Employee_ID": "21001",
        "Employee_Review_ID": "ER-1",
        "Review_Period": "Confidential: " + "P" * 300,
        "Overall_Rating": "2",
        "Completed_On": "2026-06-30T10:00:00.000-07:00",
    }
    with pytest.raises(ValueError) as caught:
        mapper.review(row, 4, "wd")
    message = str(caught.value)
    assert message.startswith("wd reviews entry 4: cycle: ") and "\n" not in message
    assert "Confidential" not in message
    with pytest.raises(ValueError, match="cycle: contains a control character") as caught:
        mapper.review({**row, "Review_Period": "2026\x00H1"}, 5, "wd")
    assert "\x00" not in str(caught.value)


def test_config_errors_name_the_keys() -> None:
    with pytest.raises(ValidationError, match="missing refresh_token"):
        _config(client_id="x", client_secret="y")
    with pytest.raises(ValidationError, match="set host"):
        WorkdayConfig.model_validate(
            {
                "plugin": "workday",
                "tenant": "t",
                "username": "u",
                "password": "p",
                "people_report": "a/b",
            }
        )
    with pytest.raises(ValidationError, match="https"):
        _config(base_url="http://wd5.example.com")
    with pytest.raises(ValidationError, match="needs OAuth"):
        _config(people_source="rest")
    cfg = _config(report_timeout="20m", password="hunter2")
    assert cfg.report_timeout.total_seconds() == 1200
    assert "hunter2" not in repr(cfg) and "hunter2" not in str(cfg.model_dump())


def test_polling_interval_and_lengths_accept_durations() -> None:
    cfg = _config(sync_every="15m", mentorship_length="90d")
    assert cfg.sync_every is not None and cfg.sync_every.total_seconds() == 900
    assert cfg.mentorship_length.days == 90
