"""On SQLite the worker leaves the single write lock to intake between deliveries during a burst."""

from __future__ import annotations

import json

from coachbridge.store.tables import InboxRow, ReviewEventRow
from coachbridge_webhooks import inbox
from coachbridge_webhooks.worker import INTAKE_SHARE, MAX_SHARE_PAUSE, Worker
from sqlalchemy import func, select

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
    original = worker.process
    arrivals = iter([("d3", "E3")])

    def process_with_intake(row_id: int) -> str | None:
        status = original(row_id)
        for delivery_id, employee in arrivals:  # one delivery arrives during the first one
            accept(wenv, delivery_id, employee)
        return status

    worker.process = process_with_intake  # type: ignore[method-assign]
    assert worker.run_once() == 2
    # Paused once: after the delivery during which intake wrote, not after the quiet one.
    assert len(waits) == 1 and 0 < waits[0] <= MAX_SHARE_PAUSE
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


def test_a_pause_is_three_times_the_unit_of_work_and_bounded(wenv: Env):
    worker = Worker(wenv.runtime(), worker_id="w", scheduler=False, share_writes=True)
    waits = recording_waits(worker)
    worker._inbox_mark = 0
    accept(wenv, "d1", "E1")  # intake wrote during the unit of work
    worker._share_writer(0.05)
    accept(wenv, "d2", "E2")
    worker._share_writer(10.0)
    worker._share_writer(0.05)  # nothing arrived since: no pause
    assert waits == [0.05 * INTAKE_SHARE, MAX_SHARE_PAUSE]
