"""The HTTP client and config, with `responses`: throttling, faults, secrets, both URL forms."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import responses
from coachbridge.errors import ConnectorError
from coachbridge_bamboohr import BambooHRConfig
from coachbridge_bamboohr.client import retry_after_seconds
from coachbridge_bamboohr.webhooks import parse_payload
from pydantic import ValidationError

from tests.bamboohr.conftest import make_connector

KEY = "c0ffee" * 6 + "beef"
HOST = "https://acme.bamboohr.com"
REPORT = f"{HOST}/api/v1/reports/custom"
CHANGED = f"{HOST}/api/v1/employees/changed"
REPORT_BODY = {
    "title": "coachbridge",
    "fields": [{"id": "firstName", "type": "text", "name": "First Name"}],
    "employees": [{"id": "123", "firstName": "John", "lastName": "Doe"}],
}


def conn(**settings: object):  # type: ignore[no-untyped-def]
    connector = make_connector(HOST, KEY, **settings)
    connector.client.backoff_base = 0.5
    return connector


def test_base_url_forms() -> None:
    def root(**kw: object) -> str:
        return BambooHRConfig(
            **{"plugin": "bamboohr", "company_domain": "acme", "api_key": "k", **kw}
        ).api_root

    assert root() == "https://acme.bamboohr.com/api/"
    assert root(base_url="https://acme.bamboohr.com/") == "https://acme.bamboohr.com/api/"
    gateway = "https://api.bamboohr.com/api/gateway.php/acme"
    assert root(base_url=gateway) == gateway + "/"
    with pytest.raises(ValidationError, match="host only"):
        root(base_url="https://acme.bamboohr.com/api/v1")
    with pytest.raises(ValidationError):
        root(company_domain="acme.bamboohr.com")


def test_secrets_never_show() -> None:
    connector = conn(webhook_secret="whsec-xyz")
    for text in (
        repr(connector),
        repr(connector.config),
        str(connector.config),
        repr(connector.client),
    ):
        assert KEY not in text and "whsec-xyz" not in text


@responses.activate
def test_auth_and_accept_headers() -> None:
    responses.post(REPORT, json=REPORT_BODY)
    batch = conn().read_people(None, full=True)
    assert [r.external_id for r in batch.records] == ["123"]
    sent = responses.calls[0].request
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["Content-Type"] == "application/json"
    import base64

    assert (
        sent.headers["Authorization"] == "Basic " + base64.b64encode(f"{KEY}:x".encode()).decode()
    )
    assert "format=JSON" in sent.url and KEY not in sent.url


@responses.activate
def test_retry_after_seconds_and_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    responses.post(REPORT, status=503, headers={"Retry-After": "7"})
    responses.post(REPORT, status=429, headers={"Retry-After": when})
    responses.post(REPORT, json=REPORT_BODY)
    connector = conn()
    slept: list[float] = []
    connector.client.sleep = slept.append
    connector.read_people(None, full=True)
    assert slept[0] == 7 and 25 <= slept[1] <= 30 and len(responses.calls) == 3


@responses.activate
def test_backoff_without_retry_after_is_exponential_with_jitter_and_bounded() -> None:
    responses.post(REPORT, status=502)
    connector = conn(max_retries=4)
    slept: list[float] = []
    connector.client.sleep = slept.append
    with pytest.raises(ConnectorError, match="still throttled or unavailable"):
        connector.read_people(None, full=True)
    assert len(responses.calls) == 5 and len(slept) == 4
    for attempt, delay in enumerate(slept):
        assert 0 <= delay <= 0.5 * 2**attempt


@responses.activate
def test_total_wait_is_bounded_and_message_names_the_header() -> None:
    responses.post(
        REPORT, status=429, headers={"Retry-After": "600", "X-BambooHR-Error-Message": "Slow down"}
    )
    connector = conn(max_retry_wait=60)
    connector.client.sleep = lambda s: pytest.fail("must not wait beyond the budget")
    with pytest.raises(ConnectorError) as info:
        connector.read_people(None, full=True)
    assert "429" in str(info.value) and "Slow down" in str(info.value)
    assert "600s exceeds the budget" in str(info.value)


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [
        (401, "X-BambooHR-Error-Message", "rejected the API key"),
        (403, "X-BambooHR-Error-Messsage", "refused access"),
        (404, "X-BambooHR-Message", "check company_domain"),
        (400, "x-bamboohr-error-message", "malformed"),
    ],
)
@responses.activate
def test_error_statuses_are_clear(status: int, header: str, expected: str) -> None:
    responses.post(REPORT, status=status, headers={header: "Detail from BambooHR"})
    with pytest.raises(ConnectorError) as info:
        conn().read_people(None, full=True)
    message = str(info.value)
    assert expected in message and "Detail from BambooHR" in message and KEY not in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("body", "ctype", "expected"),
    [
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "text/html", "answered HTML"),
        (b'<?xml version="1.0"?><report/>', "application/xml", "answered XML"),
        (b'{"employees": [{"id": "1", "first', "application/json", "invalid or cut off"),
        (b"\xff\xfe\x00garbage", "application/json", "invalid or cut off"),
        (b'{"title": "x"}', "application/json", "no employees list"),
    ],
)
@responses.activate
def test_bad_bodies_are_clear(body: bytes, ctype: str, expected: str) -> None:
    responses.post(REPORT, body=body, content_type=ctype)
    with pytest.raises(ConnectorError, match=expected):
        conn().read_people(None, full=True)


@responses.activate
def test_connection_failures_retry_only_reads() -> None:
    import requests

    responses.get(CHANGED, body=requests.ConnectionError("refused"))
    responses.get(CHANGED, json={"latest": None, "employees": []})
    connector = conn()
    batch = connector.read_people(json.dumps({"since": "2025-01-01T00:00:00+00:00"}), full=False)
    assert batch.records == [] and len(responses.calls) == 2
    goal_url = f"{HOST}/api/v1/performance/employees/4/goals"
    responses.post(goal_url, body=requests.ConnectionError("reset"))
    with pytest.raises(ConnectorError, match="cannot reach"):
        connector.client.request("POST", "v1/performance/employees/4/goals", json_body={})
    assert sum(1 for c in responses.calls if c.request.url == goal_url) == 1


@responses.activate
def test_changed_map_with_deleted_employee_warns() -> None:
    responses.get(
        CHANGED,
        json={
            "latest": "2025-02-02T00:00:00+00:00",
            "employees": {
                "3": {"id": "3", "action": "Inserted", "lastChanged": "2025-02-01T00:00:00+00:00"},
                "5": {"id": "5", "action": "Deleted", "lastChanged": "2025-02-02T00:00:00+00:00"},
            },
        },
    )
    responses.post(REPORT, json={**REPORT_BODY, "employees": [{"id": "3", "firstName": "X"}]})
    batch = conn().read_people(json.dumps({"since": "2025-01-01T00:00:00Z"}), full=False)
    assert [r.external_id for r in batch.records] == ["3"] and not batch.full
    assert any("employee 5 was deleted" in w for w in batch.warnings)
    assert json.loads(responses.calls[1].request.body)["filters"] == {"employeeIds": [3]}
    assert json.loads(batch.cursor)["since"] == "2025-02-02T00:00:00+00:00"
    assert responses.calls[0].request.params == {"since": "2025-01-01T00:00:00Z", "type": "all"}


@responses.activate
def test_check_names_fields_the_key_cannot_see() -> None:
    responses.get(
        f"{HOST}/api/v1/meta/fields",
        json=[{"id": 1, "name": "Rating", "type": "list", "alias": "customRating"}],
    )
    visible = ["firstName", "lastName", "jobTitle", "department", "division", "location", "status"]
    responses.post(
        REPORT,
        json={
            "title": "x",
            "fields": [{"id": f, "type": "text", "name": f} for f in visible],
            "employees": [],
        },
    )
    responses.get(f"{HOST}/api/v1/training/type", json={})
    results = conn(rating_field="customRating", fields=["noSuchField"]).check()
    assert results[0].ok
    messages = " | ".join(r.message for r in results if not r.ok)
    assert "noSuchField" in messages
    assert "workEmail" in messages and "hireDate" in messages and "customRating" in messages
    assert "supervisorId/supervisorEId/supervisorEmail" in messages


@responses.activate
def test_check_with_a_wrong_key_raises_a_clear_error() -> None:
    responses.get(f"{HOST}/api/v1/meta/fields", status=401)
    with pytest.raises(ConnectorError, match="rejected the API key"):
        conn().check()


def test_retry_after_parsing() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("12", now) == 12
    assert retry_after_seconds("Thu, 01 Jan 2026 00:01:00 GMT", now) == 60
    assert retry_after_seconds("Wed, 31 Dec 2025 00:00:00 GMT", now) == 0
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None) is None


def test_created_event_with_empty_list_fields_is_accepted() -> None:
    body = b'{"employees": [{"action": "Created", "changedFields": [], "fields": [], "id": "9"}]}'
    (change,) = parse_payload(body)
    assert (change.employee_id, change.action, change.fields) == ("9", "created", {})
