"""Regression tests for the review findings on the webhook server, worker and notifications."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest
from coachbridge.connectors import Connector, ParsedDelivery
from coachbridge.domain import PersonRecord
from coachbridge.notify.base import Message, Notifier, NotifierConfig
from coachbridge.notify.dispatch import MAX_ATTEMPTS, Dispatcher, retry_delay
from coachbridge.store.tables import GoalRow, InboxRow, NotificationRow, PairingRow
from coachbridge_webhooks import inbox
from coachbridge_webhooks import worker as worker_module
from coachbridge_webhooks.scheduler import requested_syncs
from coachbridge_webhooks.worker import Worker
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.webhooks.conftest import Env, people_csv, post, review, signed, sync_people


def count(env: Env, table, *where) -> int:
    with env.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(table).where(*where)))


# -- finding 4: no shared connector, no network while the sender waits -----------------------


def test_runtime_builds_a_fresh_connector_for_every_use(wenv: Env) -> None:
    rt = wenv.runtime()
    first, second = rt.connector("reviews"), rt.connector("reviews")
    assert first is not second  # per-run state on one can never leak into another's run
    assert type(first) is type(second)


class _IdsOnly(Connector):
    """A connector whose deliveries only name changed people; fetching them is an error."""

    supports_webhooks = True
    fetched: ClassVar[list[Sequence[str]]] = []

    def read_people(self, cursor, *, full):  # pragma: no cover - not used here
        raise NotImplementedError

    def check(self):  # pragma: no cover - not used here
        return []

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> str | None:
        return None

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ParsedDelivery:
        return ParsedDelivery(changed_ids=json.loads(body)["ids"])

    def fetch_people(self, external_ids: Sequence[str]) -> list[PersonRecord]:
        _IdsOnly.fetched.append(external_ids)
        raise AssertionError("no fetch while a delivery is parsed")


def test_changed_ids_become_a_sync_request_not_a_fetch(
    wenv: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = wenv.runtime()
    context = rt.connector("reviews").context
    monkeypatch.setattr(
        rt, "connector", lambda name: _IdsOnly(wenv.config.connector("reviews"), context)
    )
    # No scheduler in this worker (like `events replay`): the request must still be kept.
    w = Worker(rt, worker_id="w", scheduler=False)
    assert inbox.accept(wenv.db, "reviews", "d1", "application/json", b'{"ids": ["7", "9"]}')
    assert w.drain() == 1
    assert requested_syncs(wenv.db) == {"reviews"}  # stored: survives this worker stopping
    assert _IdsOnly.fetched == []
    with wenv.db.transaction() as s:
        assert s.scalars(select(InboxRow.status)).one() == "done"


# -- finding 5: one goal per pairing and rule -------------------------------------------------


def test_the_same_rating_seen_twice_never_gives_the_pairing_a_second_goal(
    wenv: Env, client: FlaskClient
) -> None:
    # No cooldown: the second event (e.g. the same BambooHR rating found again by a sync, with
    # another event id) runs the rule again, reuses the open pairing and must not add a goal.
    rule = wenv.config.rules[0]
    wenv.config.rules[0] = rule.model_copy(update={"cooldown_days": None})
    w = Worker(wenv.runtime(), worker_id="w", scheduler=False)
    assert post(client, review("E1", cycle="webhook")) == 202
    assert post(client, review("E1", cycle="sync")) == 202
    assert w.drain() == 2
    assert count(wenv, PairingRow) == 1
    with wenv.db.transaction() as s:
        goals = list(s.scalars(select(GoalRow)))
        pairing = s.scalars(select(PairingRow)).one()
    assert len(goals) == 1
    assert goals[0].pairing_id == pairing.id
    assert goals[0].source_key == f"rule:rules[0]:pairing:{pairing.id}:goal"


# -- finding 6: failed notifications are retried with backoff, then given up ----------------


class _Flaky(Notifier):
    """Fails while ``failing`` is set; records every Message-ID-bearing key it sent."""

    failing = True
    sent: ClassVar[list[str]] = []

    def send(self, message: Message) -> str:
        if _Flaky.failing:
            raise ConnectionError("mail server down")
        _Flaky.sent.append(message.key)
        return "sent"


@pytest.fixture
def flaky() -> type[_Flaky]:
    _Flaky.failing, _Flaky.sent = True, []
    return _Flaky


def test_failed_notifications_are_retried_with_backoff_and_the_same_key(
    wenv: Env, client: FlaskClient, flaky: type[_Flaky]
) -> None:
    w = Worker(wenv.runtime(), worker_id="w", scheduler=False)
    w.dispatcher = Dispatcher({"log": flaky(NotifierConfig())})
    assert post(client, review("E1")) == 202
    w.drain()
    with wenv.db.transaction() as s:
        rows = list(s.scalars(select(NotificationRow).order_by(NotificationRow.key)))
        keys = [r.key for r in rows]
        assert {(r.status, r.attempts) for r in rows} == {("failed", 1)}
        first_due = {r.next_attempt_at for r in rows}
    assert len(keys) == 2 and all(d is not None for d in first_due)
    now = datetime.now(UTC)
    assert w.dispatcher.retry_failed(wenv.db, now=now) == 0  # backoff not over yet
    later = now + retry_delay(1) + timedelta(seconds=5)
    flaky.failing = False
    assert w.dispatcher.retry_failed(wenv.db, now=later) == 2
    assert sorted(flaky.sent) == keys  # the same stable keys (and so the same Message-IDs)
    with wenv.db.transaction() as s:
        rows = list(s.scalars(select(NotificationRow)))
        assert {(r.status, r.attempts, r.next_attempt_at) for r in rows} == {("sent", 2, None)}
    assert w.dispatcher.retry_failed(wenv.db, now=later + timedelta(days=1)) == 0


def test_a_notification_is_given_up_after_the_last_attempt(
    wenv: Env, client: FlaskClient, flaky: type[_Flaky]
) -> None:
    w = Worker(wenv.runtime(), worker_id="w", scheduler=False)
    w.dispatcher = Dispatcher({"log": flaky(NotifierConfig())})
    assert post(client, review("E1")) == 202
    w.drain()
    when = datetime.now(UTC)
    for attempt in range(1, MAX_ATTEMPTS):
        when += retry_delay(attempt) + timedelta(seconds=1)
        assert w.dispatcher.retry_failed(wenv.db, now=when) == 2
    with wenv.db.transaction() as s:
        rows = list(s.scalars(select(NotificationRow)))
        assert {(r.status, r.attempts, r.next_attempt_at) for r in rows} == {
            ("failed", MAX_ATTEMPTS, None)
        }
    assert w.dispatcher.retry_failed(wenv.db, now=when + timedelta(days=30)) == 0
    assert retry_delay(1) < retry_delay(2) < retry_delay(3)


def test_a_retry_round_stops_when_its_time_budget_is_spent(
    wenv: Env, client: FlaskClient, flaky: type[_Flaky]
) -> None:
    w = Worker(wenv.runtime(), worker_id="w", scheduler=False)
    w.dispatcher = Dispatcher({"log": flaky(NotifierConfig())})
    assert post(client, review("E1")) == 202
    w.drain()
    later = datetime.now(UTC) + retry_delay(1) + timedelta(seconds=1)
    # A budget already spent: one row is tried, the other waits for the next round.
    assert w.dispatcher.retry_failed(wenv.db, now=later, budget_seconds=-1) == 1
    assert w.dispatcher.retry_failed(wenv.db, now=later, budget_seconds=-1) == 1


def test_housekeeping_retries_failed_notifications(
    wenv: Env, client: FlaskClient, flaky: type[_Flaky], monkeypatch: pytest.MonkeyPatch
) -> None:
    w = Worker(wenv.runtime(), worker_id="w", scheduler=False)
    w.dispatcher = Dispatcher({"log": flaky(NotifierConfig())})
    assert post(client, review("E1")) == 202
    w.drain()
    with wenv.db.transaction() as s:  # the backoff is over
        for row in s.scalars(select(NotificationRow)):
            row.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
    flaky.failing = False
    w.housekeeping()
    assert count(wenv, NotificationRow, NotificationRow.status == "sent") == 2


# -- finding 15: events about unknown people are retried only when people changed ------------


def test_unknown_person_events_are_retried_only_after_people_change(
    wenv: Env, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = worker_module.retry_unknown_person_events

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(worker_module, "retry_unknown_person_events", counting)
    w = Worker(wenv.runtime(), worker_id="w", scheduler=False)
    assert post(client, review("E9")) == 202
    w.drain()
    w.housekeeping()
    w.housekeeping()
    w.housekeeping()
    assert len(calls) == 1  # nobody new: no retry every round
    (wenv.path.parent / "people.csv").write_text(people_csv(9, 2))
    sync_people(wenv)
    w.housekeeping()
    assert len(calls) == 2
    assert count(wenv, PairingRow) == 1  # the event ran once its person arrived
    w.housekeeping()
    assert len(calls) == 2


# -- finding 16: hostile input is a plain rejection, logged without a traceback ---------------


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
    rejected = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert rejected and all(r.levelno == logging.WARNING for r in rejected)


def test_a_huge_timestamp_is_401_without_a_traceback(
    wenv: Env, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body, headers = signed(review("E1"))
    headers["webhook-timestamp"] = "9" * 400
    assert client.post("/webhooks/reviews", data=body, headers=headers).status_code == 401
    _no_tracebacks(caplog)


def test_deeply_nested_json_is_400_without_a_traceback(
    wenv: Env, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body, headers = signed(b"[" * 100_000)
    assert client.post("/webhooks/reviews", data=body, headers=headers).status_code == 400
    _no_tracebacks(caplog)
    assert count(wenv, InboxRow) == 0


# -- the inbox claim respects its batch size (PostgreSQL took every due row) -----------------


def test_claim_takes_at_most_the_batch(wenv: Env) -> None:
    for n in range(30):
        assert inbox.accept(wenv.db, "reviews", f"d{n}", "application/json", b"{}")
    first = inbox.claim(wenv.db, "a", lease=timedelta(minutes=5), limit=10)
    second = inbox.claim(wenv.db, "b", lease=timedelta(minutes=5), limit=10)
    assert len(first) == 10 and len(second) == 10 and not set(first) & set(second)
    assert count(wenv, InboxRow, InboxRow.status == "processing") == 20
