"""/metrics and the log lines, in-process: what is counted, the token, request ids, no secrets.

Counters live for the whole test process, so every check compares a value before and after.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from coachbridge.store.tables import InboxRow
from coachbridge_webhooks import create_app, logs
from coachbridge_webhooks.worker import Worker
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from tests.webhooks.conftest import SECRET, Env, review, signed


def scrape(
    client: FlaskClient, **headers: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def app(wenv: Env) -> Flask:
    return create_app(wenv.config, database=wenv.db, registry=wenv.registry)


def test_deliveries_inbox_processing_rules_and_notifications_are_counted(app: Flask, wenv: Env):
    client = app.test_client()
    before = scrape(client)
    body, headers = signed(review("E1", rating=1), msg_id="m-1")
    assert client.post("/webhooks/reviews", data=body, headers=headers).status_code == 202
    assert client.post("/webhooks/reviews", data=body, headers=headers).status_code == 200
    bad = {**headers, "webhook-signature": "v1,AAAA"}
    assert client.post("/webhooks/reviews", data=body, headers=bad).status_code == 401
    assert client.post("/webhooks/no-such-thing", data=body, headers=headers).status_code == 404
    # The sender's made-up name is not a label: every unknown connector counts as one.
    assert client.post("/webhooks/other-made-up", data=body, headers=headers).status_code == 404
    # Make the waiting delivery an hour old: the age gauge is computed from the table.
    with wenv.db.transaction() as s:
        s.execute(update(InboxRow).values(received_at=datetime.now(UTC) - timedelta(hours=1)))
    during = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(during, name, **labels) - value(before, name, **labels)

    total = "coachbridge_webhook_deliveries_total"
    assert delta(total, connector="reviews", status="202") == 1
    assert delta(total, connector="reviews", status="200") == 1
    assert delta(total, connector="reviews", status="401") == 1
    assert delta(total, connector="(unknown)", status="404") == 2
    assert not any("made-up" in str(key) or "no-such" in str(key) for key in during)
    assert value(during, "coachbridge_inbox_up") == 1
    assert value(during, "coachbridge_inbox_deliveries", status="pending") == 1
    age = value(during, "coachbridge_inbox_oldest_waiting_age_seconds")
    assert 3590 < age < 3700

    worker = Worker(wenv.runtime(), scheduler=False)
    assert worker.drain() == 1
    worker.dispatcher.send_pending(wenv.db)
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(during, name, **labels)

    count = "coachbridge_delivery_processing_seconds_count"
    assert grew(count, connector="reviews", outcome="done") == 1
    assert (
        value(
            after,
            "coachbridge_delivery_processing_seconds_sum",
            connector="reviews",
            outcome="done",
        )
        > 0
    )
    assert grew("coachbridge_rule_outcomes_total", outcome="paired") == 1
    sent = sum(
        v - value(during, name, **dict(labels))
        for (name, labels), v in after.items()
        if name == "coachbridge_notifications_total" and dict(labels)["outcome"] == "sent"
    )
    assert sent == 2  # the learner and the guide are told
    assert value(after, "coachbridge_inbox_deliveries", status="pending") == 0
    assert value(after, "coachbridge_inbox_oldest_waiting_age_seconds") == 0


def test_metrics_token_is_required_when_configured(app: Flask):
    from pydantic import SecretStr

    settings = app.extensions["coachbridge"].config.server
    settings.metrics_token = SecretStr("scrape-me-9f8e7d")
    client = app.test_client()
    for header in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic scrape-me-9f8e7d"},
    ):
        response = client.get("/metrics", headers=header)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert b"coachbridge_" not in response.data
    samples = scrape(client, Authorization="Bearer scrape-me-9f8e7d")
    assert value(samples, "coachbridge_inbox_up") == 1


def test_a_scrape_answers_while_the_database_is_away(app: Flask, wenv: Env):
    wenv.db.dispose()
    runtime = app.extensions["coachbridge"]
    from coachbridge.store import Database

    runtime.db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    samples = scrape(app.test_client())
    assert value(samples, "coachbridge_inbox_up") == 0


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The root logger's lines, in the JSON format serve uses, at DEBUG (the most there is)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logs._json_handler(handler)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_carry_connector_delivery_and_request_ids(app: Flask, wenv: Env, json_lines):
    client = app.test_client()
    body, headers = signed(review("E1", rating=1), msg_id="msg-json-1")
    # A malformed body behind a good signature: rejected after the delivery id is known.
    bad_body = json.dumps({"type": "review.completed", "data": {}}).encode()
    _, bad_headers = signed(bad_body, msg_id="msg-json-2")
    answer = client.post(
        "/webhooks/reviews", data=bad_body, headers={**bad_headers, "X-Request-ID": "req-42"}
    )
    assert answer.status_code == 400
    assert answer.headers["X-Request-ID"] == "req-42"
    # A request id that is not plain is replaced, not echoed.
    odd = client.get("/healthz", headers={"X-Request-ID": "a b{forged}"})
    assert odd.headers["X-Request-ID"] != "a b{forged}"
    assert len(odd.headers["X-Request-ID"]) == 32
    assert client.post("/webhooks/reviews", data=body, headers=headers).status_code == 202
    Worker(wenv.runtime(), scheduler=False).drain()
    lines = _lines(json_lines)
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line)
        datetime.fromisoformat(line["time"])
    rejected = [line for line in lines if "rejected (400)" in line["message"]]
    assert len(rejected) == 1
    assert rejected[0]["connector"] == "reviews"
    assert rejected[0]["request_id"] == "req-42"
    assert rejected[0]["level"] == "WARNING"
    assert rejected[0]["logger"] == "coachbridge.server"
    done = [line for line in lines if "done by" in line["message"]]
    assert len(done) == 1
    assert done[0]["connector"] == "reviews"
    assert done[0]["delivery_id"] == "msg-json-1"


def test_no_secret_reaches_the_log(app: Flask, wenv: Env, json_lines):
    from pydantic import SecretStr

    app.extensions["coachbridge"].config.server.metrics_token = SecretStr("tok-never-logged")
    client = app.test_client()
    body, headers = signed(review("E2", rating=1), msg_id="msg-secret-1")
    wrong = {**headers, "webhook-signature": headers["webhook-signature"][:-4] + "AAA="}
    assert client.post("/webhooks/reviews", data=body, headers=wrong).status_code == 401
    assert client.post("/webhooks/reviews", data=body, headers=headers).status_code == 202
    assert client.get("/metrics", headers={"Authorization": "Bearer tok-never"}).status_code == 401
    Worker(wenv.runtime(), scheduler=False).drain()
    text = json_lines.getvalue()
    assert "rejected (401)" in text and "done by" in text  # there were lines to leak into
    for secret in (
        SECRET,
        SECRET.removeprefix("whsec_"),
        headers["webhook-signature"],
        headers["webhook-signature"].removeprefix("v1,"),
        "tok-never",
    ):
        assert secret not in text


def test_failed_notifications_are_counted(app: Flask, wenv: Env) -> None:
    from coachbridge.notify.base import Message, Notifier, NotifierConfig
    from coachbridge.notify.dispatch import Dispatcher

    class Down(Notifier):
        def send(self, message: Message) -> str:
            raise ConnectionError("mail server down")

    client = app.test_client()
    before = scrape(client)
    body, headers = signed(review("E3", rating=1))
    assert client.post("/webhooks/reviews", data=body, headers=headers).status_code == 202
    worker = Worker(wenv.runtime(), scheduler=False)
    worker.dispatcher = Dispatcher({"log": Down(NotifierConfig())})
    worker.drain()
    after = scrape(client)
    for outcome, grown in (("failed", 2), ("sent", 0)):
        labels = {"channel": "log", "outcome": outcome}
        name = "coachbridge_notifications_total"
        assert value(after, name, **labels) - value(before, name, **labels) == grown
