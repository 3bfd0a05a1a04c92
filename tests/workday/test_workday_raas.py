"""People and reviews from RaaS against the local fake: quirks, schema, prompts, bad bodies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import responses
from coachbridge.errors import ConnectorError, InputDataError
from coachbridge_workday.raas import parse_xsd_columns, report_url

from tests.workday.conftest import connector_for
from tests.workday.fake_workday import (
    PEOPLE_COLUMNS,
    FakeReview,
    FakeWorkday,
    xsd_for,
)


def test_report_url_forms() -> None:
    assert (
        report_url("https://h", "acme", "isu_coaching/Coaching_Workers")
        == "https://h/ccx/service/customreport2/acme/isu_coaching/Coaching_Workers"
    )
    full = "https://h/ccx/service/customreport2/acme/o/R?format=csv&Org!WID=abc"
    assert (
        report_url("https://x", "acme", full)
        == "https://h/ccx/service/customreport2/acme/o/R?Org%21WID=abc"
    )
    with pytest.raises(ConnectorError):
        report_url("https://h", "acme", "no-owner")


def test_xsd_columns() -> None:
    assert parse_xsd_columns(xsd_for(PEOPLE_COLUMNS)) == set(PEOPLE_COLUMNS)


def test_full_read_maps_every_worker(fake: FakeWorkday) -> None:
    fake.workers["E000003"].skills = ["SQL"]
    fake.workers["E000004"].skills = ["SQL", "Python"]
    fake.workers["E000005"].skills = []
    fake.workers["E000006"].active = False
    batch = connector_for(fake.url).read_people(None, full=True)
    assert batch.full and len(batch.records) == 30
    by_id = {r.external_id: r for r in batch.records}
    assert by_id["E000003"].skills == ["SQL"]
    assert by_id["E000004"].skills == ["SQL", "Python"]
    assert by_id["E000005"].skills == []
    assert by_id["E000006"].status == "inactive"
    assert by_id["E000001"].manager_external_id == "E000000"
    assert all(r.level is not None for r in batch.records)
    # The cursor is this sync's start time as a Workday date-time with offset.
    assert batch.cursor and batch.cursor.endswith("+00:00") and "." in batch.cursor
    assert fake.count("GET", "customreport2") == 2  # ?xsds and the report: a constant


def test_incremental_passes_the_cursor_as_the_prompt(fake: FakeWorkday) -> None:
    connector = connector_for(fake.url)
    first = connector.read_people(None, full=True)
    for worker in list(fake.workers.values())[:4]:
        worker.updated = datetime.now(UTC)
        worker.title = "Principal"
    second = connector.read_people(first.cursor, full=False)
    assert not second.full
    assert {r.job_title for r in second.records} == {"Principal"} and len(second.records) == 4
    prompt = fake.log[-1][2]
    assert prompt["Updated_From"] == first.cursor and prompt["format"] == "json"


def test_without_prompt_every_sync_is_full(fake: FakeWorkday) -> None:
    connector = connector_for(fake.url, updated_since_prompt=None)
    batch = connector.read_people("2026-01-01T00:00:00.000+00:00", full=False)
    assert batch.full and len(batch.records) == 30 and batch.cursor is None
    assert "Updated_From" not in fake.log[-1][2]


def test_missing_required_column_in_schema_is_an_error(fake: FakeWorkday) -> None:
    connector = connector_for(fake.url, columns={"id": "Employee_Number"})
    with pytest.raises(
        InputDataError, match=r"no column 'Employee_Number' \(columns.id\).*security"
    ):
        connector.read_people(None, full=True)


def test_explicit_optional_column_missing_is_an_error_default_one_is_skipped(
    fake: FakeWorkday,
) -> None:
    connector = connector_for(fake.url, columns={"division": "Cost_Center"})
    with pytest.raises(InputDataError, match=r"'Cost_Center' \(columns.division\)"):
        connector.read_people(None, full=True)
    # Division's default column is not in the report: not read, no error.
    assert connector_for(fake.url).read_people(None, full=True).records[0].division is None


def test_hidden_field_is_judged_over_the_whole_report_not_one_row(fake: FakeWorkday) -> None:
    # Workday leaves out a field the integration user may not see: present in the schema,
    # absent from every row. One row without a field proves nothing (empty fields are left out).
    fake.workers["E000002"].title = None
    batch = connector_for(fake.url).read_people(None, full=True)
    assert not batch.warnings
    fake.hidden_columns = {"Business_Title"}
    batch = connector_for(fake.url).read_people(None, full=True)
    assert any("Business_Title" in w and "security" in w for w in batch.warnings)


def test_without_schema_a_full_report_decides(fake: FakeWorkday) -> None:
    fake.xsd_enabled = False
    batch = connector_for(fake.url).read_people(None, full=True)
    assert len(batch.records) == 30
    assert fake.count("GET", "customreport2") == 3  # ?xsds, ?xsd, then the report
    fake.hidden_columns = {"Email_-_Work"}
    with pytest.raises(InputDataError, match="Email_-_Work"):
        connector_for(fake.url, columns={"email": "Email_-_Work"}).read_people(None, full=True)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("html", "returned an HTML page, not JSON"),
        ("xml", "returned XML, not JSON"),
        ("truncated", "ended early"),
    ],
)
def test_bad_bodies_are_clear_errors(fake: FakeWorkday, mode: str, expected: str) -> None:
    fake.report_mode = mode
    with pytest.raises(ConnectorError, match=expected) as info:
        connector_for(fake.url).read_people(None, full=True)
    assert "connector wd" in str(info.value) and "s3cret" not in str(info.value)


def test_unknown_report_404(fake: FakeWorkday) -> None:
    with pytest.raises(ConnectorError, match=r"not found \(HTTP 404.*connectors.wd.people_report"):
        connector_for(fake.url, people_report="isu_coaching/Nope").read_people(None, full=True)


def test_raas_500_throttling_is_retried(fake: FakeWorkday) -> None:
    fake.failures = [("customreport2", 500), ("customreport2", 500)]
    assert len(connector_for(fake.url).read_people(None, full=True).records) == 30


def test_basic_auth_reads_raas(fake: FakeWorkday) -> None:
    connector = connector_for(
        fake.url,
        client_id=None,
        client_secret=None,
        refresh_token=None,
        username="isu_coaching",
        password="isu-pass",
    )
    assert len(connector.read_people(None, full=True).records) == 30
    assert fake.count("POST", "token") == 0


def test_reviews_report_events(fake: FakeWorkday) -> None:
    fake.reviews = [
        FakeReview(
            "E000001", "ER-1", "2026 Mid-Year", "4 - Exceeds", "2026-06-30T10:00:00.000-07:00"
        ),
        FakeReview("E000002", "ER-2", "2026 Mid-Year", "2", "2026-07-01"),
        FakeReview("E000003", "ER-3", "2026 Mid-Year", "3", None),  # not completed
    ]
    connector = connector_for(fake.url, reviews_report="isu_coaching/Coaching_Reviews")
    batch = connector.read_reviews(None, full=True)
    assert [(e.source_event_id, e.raw_rating, e.rating) for e in batch.events] == [
        ("ER-1", 4.0, 0.75),
        ("ER-2", 2.0, 0.25),
    ]
    assert batch.events[0].source == "wd" and batch.events[0].cycle == "2026 Mid-Year"


@responses.activate
def test_single_row_report_entry_object_is_accepted() -> None:
    base = "https://wd5-impl-services1.workday.com"
    url = f"{base}/ccx/service/customreport2/acme/isu_coaching/Coaching_Workers"
    responses.get(url + "?xsds", status=404)
    responses.get(url + "?xsd", status=404)
    responses.get(url, json={"Report_Entry": {"Employee_ID": "1", "First_Name": "Solo"}})
    responses.post(f"{base}/ccx/oauth2/acme/token", json={"access_token": "t"})
    connector = connector_for(base)
    connector.config  # noqa: B018
    batch = connector.read_people(None, full=True)
    assert [r.first_name for r in batch.records] == ["Solo"]


def test_check_without_schema_reads_one_row(fake: FakeWorkday) -> None:
    fake.xsd_enabled = False
    results = connector_for(fake.url).check()
    report = next(r for r in results if "people_report" in r.message)
    assert report.ok and "(first row)" in report.message


def test_check_fails_for_a_missing_mapped_column(fake: FakeWorkday) -> None:
    results = connector_for(fake.url, columns={"email": "Work_Email"}).check()
    report = next(r for r in results if "people_report" in r.message)
    assert not report.ok and "'Work_Email' (columns.email)" in report.message


def test_a_date_prompt_gets_a_date_with_a_days_overlap(fake: FakeWorkday) -> None:
    """Read from ?xsds: an xsd:date prompt is sent YYYY-MM-DD (the day before the cursor's),
    an xsd:dateTime one the date-time with offset; the fake refuses the other form (400)."""
    fake.prompt_type = "date"
    cursor = "2026-03-10T08:30:00.000+00:00"
    fake.workers["E000003"].updated = datetime(2026, 3, 9, 23, 0, tzinfo=UTC)
    batch = connector_for(fake.url).read_people(cursor, full=False)
    assert not batch.full
    assert [r.external_id for r in batch.records] == ["E000003"]
    assert any(q.get("Updated_From") == "2026-03-09" for m, p, q in fake.log if "Coaching" in p)

    fake.prompt_type = "dateTime"
    batch = connector_for(fake.url).read_people(cursor, full=False)
    assert batch.records == []
    assert any(q.get("Updated_From") == cursor for m, p, q in fake.log if "Coaching" in p)


def test_check_says_the_prompt_type(fake: FakeWorkday) -> None:
    fake.prompt_type = "date"
    lines = [r.message for r in connector_for(fake.url).check()]
    assert any("prompt Updated_From is a Date (sent as YYYY-MM-DD" in line for line in lines)
