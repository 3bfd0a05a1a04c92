"""Business-process integration posts: HTTP Basic, constant-time, Report_Entry rows as reviews."""

from __future__ import annotations

import base64
import json

import pytest
from coachbridge.connectors import WebhookRejected

from tests.workday.conftest import connector_for

ROW = {
    "Employee_ID": "21001",
    "Employee_Review_ID": "ER-77",
    "Review_Period": "2026 Annual",
    "Overall_Rating": "1",
    "Completed_On": "2026-12-01T09:00:00.000-08:00",
}


def _connector():
    return connector_for(
        "https://wd5-impl-services1.workday.com",
        webhook_username="wd-hook",
        webhook_password="hook-pass",
    )


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_good_credentials_and_one_row_give_the_review_id() -> None:
    body = json.dumps({"Report_Entry": [ROW]}).encode()
    assert _connector().verify_webhook(_basic("wd-hook", "hook-pass"), body) == "ER-77"


def test_several_rows_leave_the_delivery_id_to_the_core() -> None:
    body = json.dumps({"Report_Entry": [ROW, {**ROW, "Employee_Review_ID": "ER-78"}]}).encode()
    assert _connector().verify_webhook(_basic("wd-hook", "hook-pass"), body) is None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        _basic("wd-hook", "wrong"),
        _basic("someone", "hook-pass"),
        {"Authorization": "Bearer hook-pass"},
        {"Authorization": "Basic !!!notbase64"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
    ],
)
def test_wrong_credentials_are_rejected_401(headers: dict[str, str]) -> None:
    with pytest.raises(WebhookRejected) as info:
        _connector().verify_webhook(headers, b"{}")
    assert info.value.status == 401
    assert "hook-pass" not in info.value.reason


def test_unconfigured_webhooks_reject() -> None:
    connector = connector_for("https://wd5-impl-services1.workday.com")
    with pytest.raises(WebhookRejected) as info:
        connector.verify_webhook(_basic("a", "b"), b"{}")
    assert info.value.status == 401


def test_parse_rows_as_review_events() -> None:
    delivery = _connector().parse_webhook({}, json.dumps({"Report_Entry": ROW}).encode())
    [event] = delivery.reviews
    assert event.source_event_id == "ER-77" and event.subject_external_id == "21001"
    assert event.raw_rating == 1 and event.rating == 0.0 and event.source == "wd"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"rows": []}',
        b'{"Report_Entry": "x"}',
        b'{"Report_Entry": [1]}',
        json.dumps({"Report_Entry": [{**ROW, "Overall_Rating": "great"}]}).encode(),
    ],
)
def test_malformed_bodies_are_400(body: bytes) -> None:
    with pytest.raises(WebhookRejected) as info:
        _connector().parse_webhook({}, body)
    assert info.value.status == 400
