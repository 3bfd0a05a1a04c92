"""Webhook verification (signature, timestamp) and both payload shapes."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from coachbridge.connectors import WebhookRejected
from coachbridge_bamboohr.webhooks import parse_payload, parse_webhook_time

from tests.bamboohr.conftest import make_connector
from tests.bamboohr.fake_bamboohr import FakeBambooHR

SECRET = "whsec-private-key"


def signed(body: bytes, timestamp: str, secret: str = SECRET) -> dict[str, str]:
    # Written out independently of the code under test: HMAC-SHA256(key, body + timestamp), hex.
    digest = hmac.new(secret.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()
    return {"X-BambooHR-Signature": digest, "X-BambooHR-Timestamp": timestamp}


def connector(fake: FakeBambooHR | None = None, **settings: object):  # type: ignore[no-untyped-def]
    base = fake.host_url if fake else "http://127.0.0.1:9"
    return make_connector(
        base,
        fake.api_key if fake else "k",
        webhook_secret=SECRET,
        rating_field="performanceRating",
        **settings,
    )


EVENT = json.dumps(
    {
        "type": "employee.updated",
        "timestamp": "2026-01-31T18:42:00+0000",
        "data": {
            "companyId": "12345",
            "employeeId": "4",
            "changedFields": ["performanceRating", "jobTitle"],
        },
    }
).encode()


STAMP_FORMS = {
    "unix": lambda now: str(int(now.timestamp())),
    "iso-basic-offset": lambda now: now.strftime("%Y-%m-%dT%H:%M:%S+0000"),
    "iso-extended": lambda now: now.isoformat(),
    "iso-z": lambda now: now.strftime("%Y-%m-%dT%H:%M:%SZ"),
}


@pytest.mark.parametrize("form", sorted(STAMP_FORMS))
def test_valid_signature_in_both_timestamp_forms(form: str) -> None:
    stamp = STAMP_FORMS[form](datetime.now(UTC))
    assert connector().verify_webhook(signed(EVENT, stamp), EVENT) is None


def test_headers_are_case_insensitive() -> None:
    headers = {k.lower(): v for k, v in signed(EVENT, str(int(time.time()))).items()}
    assert connector().verify_webhook(headers, EVENT) is None


@pytest.mark.parametrize(
    "mutate",
    [
        lambda h, b: ({**h, "X-BambooHR-Signature": "0" * 64}, b),
        lambda h, b: ({k: v for k, v in h.items() if k != "X-BambooHR-Signature"}, b),
        lambda h, b: ({k: v for k, v in h.items() if k != "X-BambooHR-Timestamp"}, b),
        lambda h, b: (h, b + b" "),  # one byte more in the body
        lambda h, b: ({**h, "X-BambooHR-Timestamp": h["X-BambooHR-Timestamp"] + "0"}, b),
        lambda h, b: (signed(b, h["X-BambooHR-Timestamp"], "wrong-secret"), b),
    ],
)
def test_bad_or_missing_signature_is_401(mutate) -> None:  # type: ignore[no-untyped-def]
    headers, body = mutate(signed(EVENT, str(int(time.time()))), EVENT)
    with pytest.raises(WebhookRejected) as info:
        connector().verify_webhook(headers, body)
    assert info.value.status == 401 and SECRET not in info.value.reason


@pytest.mark.parametrize(
    "offset", [timedelta(minutes=-181), timedelta(minutes=6), timedelta(hours=2)]
)
def test_stale_or_future_timestamps_are_rejected(offset: timedelta) -> None:
    """Older than the retry window (3 h by default), or ahead of now beyond the tolerance."""
    when = datetime.now(UTC) + offset
    for stamp in (str(int(when.timestamp())), when.isoformat()):
        with pytest.raises(WebhookRejected) as info:
            connector().verify_webhook(signed(EVENT, stamp), EVENT)
        assert info.value.status == 401 and "stale" in info.value.reason


@pytest.mark.parametrize("minutes", [5 + 1, 5 + 10 + 20 + 40, 5 + 10 + 20 + 40 + 80])
def test_bamboohr_retries_signed_at_the_first_attempt_are_accepted(minutes: int) -> None:
    """BambooHR retries a 5xx five times at 5, 10, 20, 40 and 80 minute intervals: every retry,
    the last 155 minutes after the first attempt, is inside the default retry window."""
    stamp = str(int((datetime.now(UTC) - timedelta(minutes=minutes)).timestamp()))
    assert connector().verify_webhook(signed(EVENT, stamp), EVENT) is None


def test_tolerance_and_retry_window_are_configurable() -> None:
    stamp = str(int((datetime.now(UTC) - timedelta(minutes=20)).timestamp()))
    assert connector(webhook_tolerance="30m").verify_webhook(signed(EVENT, stamp), EVENT) is None
    assert connector(webhook_tolerance="10m").verify_webhook(signed(EVENT, stamp), EVENT) is None
    with pytest.raises(WebhookRejected):
        connector(webhook_tolerance="10m", retry_window="15m").verify_webhook(
            signed(EVENT, stamp), EVENT
        )
    with pytest.raises(ValueError, match="retry_window"):
        connector(webhook_tolerance="10m", retry_window="5m")


def test_no_secret_configured_rejects() -> None:
    conn = make_connector("http://127.0.0.1:9", "k")
    with pytest.raises(WebhookRejected) as info:
        conn.verify_webhook(signed(EVENT, str(int(time.time()))), EVENT)
    assert info.value.status == 401


def test_timestamp_parsing() -> None:
    assert parse_webhook_time("1769884920") == datetime(2026, 1, 31, 18, 42, tzinfo=UTC)
    assert parse_webhook_time("2026-01-31T18:42:00+0000") == datetime(
        2026, 1, 31, 18, 42, tzinfo=UTC
    )
    assert parse_webhook_time("1769884920000") == datetime(2026, 1, 31, 18, 42, tzinfo=UTC)
    assert parse_webhook_time("yesterday") is None


def test_event_based_payload_names_the_employee_without_any_request(fake: FakeBambooHR) -> None:
    # Parsing runs while BambooHR waits for the answer: it reads the payload only. The event
    # shape names the rating field without its value, so the worker's sync brings it in.
    fake.employees["4"]["performanceRating"] = "4"
    delivery = connector(fake).parse_webhook({}, EVENT)
    assert delivery.changed_ids == ["4"]
    assert delivery.people == [] and delivery.reviews == []
    assert fake.log == []


def test_field_based_payload_both_value_shapes(fake: FakeBambooHR) -> None:
    body = json.dumps(
        {
            "employees": [
                {
                    "action": "Updated",
                    "changedFields": ["Performance Rating"],
                    "id": "2",
                    "fields": {"Performance Rating": "2"},
                    "timestamp": "2026-01-31T18:42:00+0000",
                },
                {
                    "changedFields": ["Performance Rating"],
                    "id": "4",
                    "fields": {"Performance Rating": {"value": "5"}},
                },
                {"action": "Deleted", "changedFields": [], "fields": {}, "id": "3"},
            ]
        }
    ).encode()
    delivery = connector(fake, rating_field_label="Performance Rating").parse_webhook({}, body)
    assert delivery.changed_ids == ["2", "4"] and delivery.people == []
    assert fake.log == []
    ratings = {e.subject_external_id: e.raw_rating for e in delivery.reviews}
    assert ratings == {"2": 2.0, "4": 5.0}


def test_a_change_without_the_rating_field_gives_no_review(fake: FakeBambooHR) -> None:
    body = json.dumps(
        {"type": "employee.updated", "data": {"employeeId": "2", "changedFields": ["jobTitle"]}}
    ).encode()
    delivery = connector(fake).parse_webhook({}, body)
    assert delivery.reviews == [] and delivery.changed_ids == ["2"]


def test_deleted_and_company_events_need_no_request(fake: FakeBambooHR) -> None:
    for payload in (
        {"type": "employee.deleted", "data": {"companyId": "1", "employeeId": "3"}},
        {"type": "company.updated", "data": {"companyId": "1"}},
    ):
        delivery = connector(fake).parse_webhook({}, json.dumps(payload).encode())
        assert delivery.people == [] and delivery.reviews == [] and delivery.changed_ids == []
    assert fake.log == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"something": 1}',
        b'{"type": "employee.updated", "data": {}}',
        b'{"type": "employee.updated", "data": "x"}',
        b'{"employees": "x"}',
        b'{"employees": [{"action": "Updated"}]}',
        b'{"employees": [{"id": "1", "action": "Exploded"}]}',
        b'{"employees": [{"id": "1", "fields": "x"}]}',
        b'{"type": "employee.updated", "data": {"employeeId": "abc"}}',
        b"\xff\xfe",
    ],
)
def test_malformed_payloads_are_400(body: bytes) -> None:
    with pytest.raises(WebhookRejected) as info:
        connector().parse_webhook({}, body)
    assert info.value.status == 400


def test_payload_shapes_parse_to_changes() -> None:
    (change,) = parse_payload(EVENT)
    assert (change.employee_id, change.action) == ("4", "updated")
    assert change.changed_fields == ["performanceRating", "jobTitle"]


def test_parsing_never_calls_bamboohr_even_when_it_is_down(fake: FakeBambooHR) -> None:
    body = json.dumps(
        {
            "employees": [
                {
                    "action": "Updated",
                    "id": "4",
                    "changedFields": ["performanceRating"],
                    "fields": {"performanceRating": {"value": "3"}},
                },
            ]
        }
    ).encode()
    fake.h_report = lambda request, body: fake._fault("500")  # type: ignore[method-assign]
    delivery = connector(fake).parse_webhook({}, body)
    assert delivery.changed_ids == ["4"] and delivery.people == []
    assert [(e.subject_external_id, e.raw_rating) for e in delivery.reviews] == [("4", 3.0)]
    assert fake.log == []
