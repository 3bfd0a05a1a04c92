"""On SQLite the worker leaves the single write lock to intake while a burst of deliveries
arrives, and only a share of it once the backlog is old."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from coachbridge.store.tables import InboxRow, ReviewEventRow
from coachbridge_webhooks import inbox
from coachbridge_webhooks import worker as worker_module
from coachbridge_webhooks.worker import (
    CATCH_UP_AFTER,
    INTAKE_QUIET,
    INTAKE_SHARE,
    MAX_SHARE_PAUSE,
    Worker,
)
from sqlalchemy import func, select, update

from tests.webhooks.conftest import Env, review


def accept(env: Env, delivery_id: str, employee: str) -> None:
    body = json.dumps(review(employee, rating=2)).encode()
    assert inbox.accept(env.db, "reviews", delivery_id, "application/json", body)


def recording_waits(worker: Worker) -> list[float]:
    waits: list[float] = []
    worker.stopping.wait = lambda timeout=None: waits.append(timeout) or False  # type: ignore[method-assign]
    return waits


def processed(env: Env) -> tuple[int, int]:
    with env.db.transaction() as s:
        done = s.scalar(select(func.count()).where(InboxRow.status == "done"))
        events = s.scalar(select(func.count()).select_from(ReviewEventRow))
    return int(done or 0), int(events or 0)


def test_pauses_only_while_deliveries_arrive_and_loses_nothing(wenv: Env):
    accept(wenv, "d1", "E1")
    accept(wenv, "d2", "E2")
    worker = Worker(wenv.runtime(), worker_id="w", scheduler=False, share_writes=True)
    waits = recording_waits(worker)
    original = worker.process_batch
    arrivals = iter([("d3", "E3")])

    def process_with_intake(row_ids: list[int]) -> dict[int, str | None]:
        statuses = original(row_ids)
        for delivery_id, employee in arrivals:  # one delivery arrives during the first batch
            accept(wenv, delivery_id, employee)
        return statuses

    worker.process_batch = process_with_intake  # type: ignore[method-assign]
    assert worker.run_once() == 2
    # Waited once for a quiet moment: after the batch during which intake wrote (the next
    # probe found nothing new), not after the quiet one.
    assert waits == [INTAKE_QUIET]
    assert worker.run_once() == 1
    assert len(waits) == 1
    assert processed(wenv) == (3, 3)


def test_default_is_on_for_sqlite_only_and_quiet_inbox_never_pauses(wenv: Env):
    worker = Worker(wenv.runtime(), worker_id="w", scheduler=False)
    assert worker.share_writes is wenv.db.is_sqlite
    waits = recording_waits(worker)
    accept(wenv, "d1", "E1")
    accept(wenv, "d2", "E2")
    assert worker.drain() == 2
    assert waits == []
    assert processed(wenv) == (2, 2)


def test_newest_id_probe(wenv: Env):
    assert inbox.newest_id(wenv.db) is None
    accept(wenv, "d1", "E1")
    with wenv.db.transaction() as s:
        top = s.scalar(select(func.max(InboxRow.id)))
    assert inbox.newest_id(wenv.db) == top


def test_waits_for_a_quiet_moment_while_a_burst_goes_on(wenv: Env):
    worker = Worker(wenv.runtime(), worker_id="w", scheduler=False, share_writes=True)
    burst = iter([("d2", "E2"), ("d3", "E3")])  # two more arrive during the first two waits
    waits: list[float] = []

    def wait(timeout: float | None = None) -> bool:
        waits.append(timeout or 0.0)
        for delivery_id, employee in burst:
            accept(wenv, delivery_id, employee)
            break
        return False

    worker.stopping.wait = wait  # type: ignore[method-assign]
    worker._inbox_mark = 0
    accept(wenv, "d1", "E1")  # arrived during the unit of work
    worker._share_writer(0.05)
    # Waited until one quiet step passed: two steps with arrivals, then the quiet one.
    assert waits == [INTAKE_QUIET] * 3
    assert worker._inbox_mark == inbox.newest_id(wenv.db)


def test_a_steady_stream_cannot_hold_the_worker_longer_than_max_yield(
    wenv: Env, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(worker_module, "MAX_YIELD", 0.3)
    worker = Worker(wenv.runtime(), worker_id="w", scheduler=False, share_writes=True)
    arrivals = iter(range(1000))

    def wait(timeout: float | None = None) -> bool:
        time.sleep(0.02)  # a delivery arrives in every step
        accept(wenv, f"s{next(arrivals)}", "E1")
        return False

    worker.stopping.wait = wait  # type: ignore[method-assign]
    worker._inbox_mark = 0
    accept(wenv, "first", "E1")
    began = time.monotonic()
    worker._share_writer(0.05)
    assert 0.3 <= time.monotonic() - began < 2.0


def test_an_old_backlog_gets_a_share_three_times_the_unit_of_work_and_bounded(wenv: Env):
    worker = Worker(wenv.runtime(), worker_id="w", scheduler=False, share_writes=True)
    waits = recording_waits(worker)
    worker._inbox_mark = 0
    accept(wenv, "d1", "E1")  # intake wrote during the unit of work ...
    old = datetime.now(UTC) - CATCH_UP_AFTER - timedelta(seconds=5)
    with wenv.db.transaction() as s:  # ... and d1 has waited for longer than CATCH_UP_AFTER
        s.execute(update(InboxRow).values(received_at=old))
    worker._share_writer(0.05)
    accept(wenv, "d2", "E2")
    worker._share_writer(10.0)
    worker._share_writer(0.05)  # nothing arrived since: no pause
    assert waits == [0.05 * INTAKE_SHARE, MAX_SHARE_PAUSE]


def test_oldest_waiting_is_the_first_pending_delivery(wenv: Env):
    assert inbox.oldest_waiting(wenv.db) is None
    before = datetime.now(UTC)
    accept(wenv, "d1", "E1")
    accept(wenv, "d2", "E2")
    oldest = inbox.oldest_waiting(wenv.db)
    assert oldest is not None and before - timedelta(seconds=1) <= oldest <= datetime.now(UTC)
    Worker(wenv.runtime(), worker_id="w", scheduler=False).drain()
    assert inbox.oldest_waiting(wenv.db) is None  # processed deliveries wait no more


def test_a_woken_idle_worker_lets_a_starting_burst_in_first(wenv: Env):
    """In the live loop, a worker woken by a delivery waits for a quiet moment before its
    first unit of work, then processes everything."""
    # A long poll: the delivery can only be picked up by being woken (a timed-out poll that
    # happened to find it first would skip the quiet wait, correctly, and prove nothing).
    worker = Worker(
        wenv.runtime(), worker_id="w", scheduler=False, share_writes=True, poll_seconds=60
    )
    quiet_waits: list[float] = []
    real_wait_for_quiet = worker._wait_for_quiet

    def spy() -> None:
        quiet_waits.append(time.monotonic())
        real_wait_for_quiet()

    worker._wait_for_quiet = spy  # type: ignore[method-assign]
    thread = threading.Thread(target=worker.run_forever)
    thread.start()
    try:
        time.sleep(0.2)  # idle
        accept(wenv, "d1", "E1")
        worker.wake.set()
        deadline = time.monotonic() + 20
        while processed(wenv) != (1, 1) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processed(wenv) == (1, 1)
        assert quiet_waits  # it waited for quiet before the first unit of work
    finally:
        worker.stop()
        thread.join(10)


def test_a_failed_intake_probe_does_not_strand_the_claimed_deliveries(wenv: Env):
    from coachbridge.errors import DatabaseUnavailable

    for n in range(3):
        accept(wenv, f"d{n}", f"E{n + 1}")
    worker = Worker(wenv.runtime(), worker_id="w", scheduler=False, share_writes=True)

    def broken(took: float) -> None:
        raise DatabaseUnavailable("database busy")

    worker._share_writer = broken  # type: ignore[method-assign]
    assert worker.run_once() == 3
    assert processed(wenv) == (3, 3)
