"""Several real worker processes on the real PostgreSQL, and a worker killed with SIGKILL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from coachbridge.store.tables import (
    GoalRow,
    InboxRow,
    NotificationRow,
    PairingRow,
    ReviewEventRow,
    SessionRow,
)
from coachbridge_webhooks import inbox
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from tests.webhooks.conftest import ENV, Env, make_env, people_csv, review, sync_people

COACHBRIDGE = str(Path(sys.executable).with_name("coachbridge"))
pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def fast_pg(pg_url: str) -> Iterator[str]:
    """The test database without waiting for each commit to reach the disk.

    This changes durability after a crash of the PostgreSQL server only; row locks, SKIP LOCKED
    and transaction visibility (what these tests are about) are unchanged. It keeps 1,000
    events within the suite's time budget on a small shared machine.
    """
    engine = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    name = make_url(pg_url).database
    with engine.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    try:
        yield pg_url
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" RESET synchronous_commit'))
        engine.dispose()


def _env(tmp_path: Path, pg_url: str, monkeypatch, learners: int, guides: int, capacity: int):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    env = make_env(tmp_path, pg_url, capacity=capacity, people=people_csv(learners, guides))
    sync_people(env)
    return env


def _deliver(env: Env, ratings: dict[int, float]) -> None:
    """Store verified deliveries straight into the inbox (HTTP is covered elsewhere)."""
    committer = inbox.GroupCommitter(env.db)
    try:
        for n, rating in ratings.items():
            body = json.dumps(review(f"E{n}", rating=rating)).encode()
            assert committer.submit("reviews", f"msg-{n}", "application/json", body)
    finally:
        committer.close()


def _worker(env: Env, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [COACHBRIDGE, "-v", "--config", str(env.path), "worker", *args],
        env={**os.environ, **ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _count(env: Env, table, *where) -> int:
    with env.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(table).where(*where)))


def test_three_workers_process_1000_events_each_exactly_once(tmp_path, fast_pg, monkeypatch):
    # 1,000 people with a review each; every tenth rating is low and gets coaching.
    env = _env(tmp_path, fast_pg, monkeypatch, learners=1000, guides=20, capacity=5)
    ratings = {n: (2 if n % 10 == 0 else 4) for n in range(1, 1001)}
    _deliver(env, ratings)
    procs = [_worker(env, "--once", "--batch", "10") for _ in range(3)]
    logs = []
    for proc in procs:
        _out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()[-2000:]
        logs.append(err.decode())
    done_by = [re.findall(r"delivery (\d+) done by", log) for log in logs]
    all_ids = [i for ids in done_by for i in ids]
    with env.db.transaction() as s:
        problems = {
            (r.status, r.last_error) for r in s.scalars(select(InboxRow)) if r.status != "done"
        }
    assert not problems
    assert len(all_ids) == 1000 and len(set(all_ids)) == 1000  # nobody processed one twice
    assert sum(1 for ids in done_by if ids) >= 2  # the work really was shared
    with env.db.transaction() as s:
        rows = list(s.scalars(select(InboxRow)))
    assert {(r.status, r.attempts) for r in rows} == {("done", 1)}
    assert _count(env, ReviewEventRow) == 1000
    assert _count(env, ReviewEventRow, ReviewEventRow.rules_status == "processed") == 1000
    assert _count(env, PairingRow) == 100
    assert _count(env, GoalRow) == 100
    assert _count(env, SessionRow) == 300
    assert _count(env, NotificationRow) == 200
    assert _count(env, NotificationRow, NotificationRow.status == "sent") == 200


def _wait(predicate, what: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            err = proc.communicate()[1].decode()[-2000:]
            raise AssertionError(f"{what} not reached: {err}")
        time.sleep(0.05)


def test_worker_killed_mid_work_loses_nothing_and_doubles_nothing(tmp_path, fast_pg, monkeypatch):
    env = _env(tmp_path, fast_pg, monkeypatch, learners=100, guides=20, capacity=5)
    _deliver(env, {n: 2 for n in range(1, 101)})
    # Hold the program's row lock (every rule run takes it first): the worker claims a batch,
    # starts its first event and blocks inside that event's transaction. The kill then lands
    # mid-event whatever the machine's speed, not after some racy number of deliveries.
    blocker = create_engine(fast_pg)
    conn = blocker.connect()
    tx = conn.begin()
    held = conn.execute(
        text("SELECT id FROM programs WHERE id = 'performance-coaching' FOR UPDATE")
    ).all()
    assert len(held) == 1
    lease = 3
    victim = _worker(env, "--batch", "25", "--lease", str(lease), "--poll", "0.1")
    try:

        def blocked_mid_event() -> bool:
            # A fresh connection each time: pg_stat_activity is a snapshot per transaction.
            with blocker.connect() as probe:
                waiting = probe.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database()"
                    )
                ).scalar()
            claimed = _count(env, InboxRow, InboxRow.status == "processing")
            return bool(waiting) and claimed > 0

        _wait(blocked_mid_event, "the worker blocked inside an event", victim)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        # Released only after the kill: the dead worker's transaction then rolls back.
        tx.rollback()
        conn.close()
        blocker.dispose()
    assert victim.returncode == -signal.SIGKILL
    # The kill left claimed deliveries behind, locked by a worker that no longer exists.
    stranded = _count(env, InboxRow, InboxRow.status == "processing")
    assert stranded == 25 and _count(env, InboxRow, InboxRow.status == "done") == 0
    time.sleep(lease + 1)  # the lease expires (claims are timed by the database rows)
    deadline = time.monotonic() + 300
    while _count(env, InboxRow, InboxRow.status != "done"):  # margin for a loaded machine
        assert time.monotonic() < deadline, "the restarted worker did not finish"
        restarted = _worker(env, "--once", "--lease", str(lease))
        _out, err = restarted.communicate(timeout=600)
        assert restarted.returncode == 0, err.decode()[-2000:]
    with env.db.transaction() as s:
        rows = list(s.scalars(select(InboxRow)))
    assert {r.status for r in rows} == {"done"}
    assert sum(1 for r in rows if r.attempts == 2) == stranded  # reclaimed, once each
    assert _count(env, ReviewEventRow, ReviewEventRow.rules_status == "processed") == 100
    assert _count(env, PairingRow) == 100
    assert _count(env, GoalRow) == 100
    assert _count(env, SessionRow) == 300
    assert _count(env, NotificationRow) == 200
    assert _count(env, NotificationRow, NotificationRow.status != "sent") == 0
