"""Business-process integration posts: HTTP Basic, constant-time, Report_Entry rows as reviews."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path

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


@pytest.mark.parametrize(
    "rows", [[ROW], ROW, [ROW, {**ROW, "Employee_Review_ID": "ER-78"}]], ids=["1", "obj", "2"]
)
def test_good_credentials_leave_the_delivery_id_to_the_core(rows: object) -> None:
    # Never the review id: a corrected review re-sent under it must not be a duplicate.
    body = json.dumps({"Report_Entry": rows}).encode()
    assert _connector().verify_webhook(_basic("wd-hook", "hook-pass"), body) is None


def test_a_corrected_review_resent_under_the_same_id_is_accepted(
    write_config: Callable[..., Path], sqlite_url: str
) -> None:
    from coachbridge.config import load_config
    from coachbridge.plugins import Registry
    from coachbridge.store import Database
    from coachbridge.store.tables import InboxRow
    from coachbridge_webhooks import create_app, inbox
    from sqlalchemy import select

    path = write_config(
        "https://wd5-impl-services1.workday.com",
        extra='webhook_username = "wd-hook"\nwebhook_password = "${WORKDAY_HOOK_PASSWORD}"',
    )
    registry = Registry.build()
    models = {name: cls.config_model for name, cls in registry.connectors.items()}
    config = load_config(path, models, env=dict(os.environ))
    db = Database(sqlite_url)
    db.upgrade()
    client = create_app(config, database=db, registry=registry).test_client()
    first = json.dumps({"Report_Entry": [ROW]}).encode()
    corrected = json.dumps({"Report_Entry": [{**ROW, "Overall_Rating": "3"}]}).encode()

    def post(body: bytes):  # type: ignore[no-untyped-def]
        return client.post(
            "/webhooks/wd",
            data=body,
            headers={**_basic("wd-hook", "hook-pass"), "Content-Type": "application/json"},
        )

    answers = [post(first), post(first), post(corrected)]
    assert [a.status_code for a in answers] == [202, 200, 202]
    assert [a.get_json()["status"] for a in answers] == ["accepted", "duplicate", "accepted"]
    assert answers[0].get_json()["delivery_id"] == inbox.body_digest(first)
    assert answers[2].get_json()["delivery_id"] == inbox.body_digest(corrected)
    with db.transaction() as s:
        stored = s.scalars(select(InboxRow.body).order_by(InboxRow.id)).all()
    assert [bytes(b) for b in stored] == [first, corrected]
    db.dispose()


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
