"""Scheduled work: periodic syncs and daily jobs, one runner at a time across workers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from coachbridge.store.tables import JobRow, PersonRow
from coachbridge_webhooks import scheduler
from coachbridge_webhooks.scheduler import Scheduler, release, try_lease
from sqlalchemy import func, select

from tests.webhooks.conftest import ENV, Env, make_env, people_csv


def test_lease_is_exclusive_until_released_or_expired(wenv: Env):
    now = datetime.now(UTC)
    every, lease = timedelta(minutes=15), timedelta(minutes=30)
    assert try_lease(wenv.db, "sync:hr", "a", every=every, lease=lease, now=now)
    assert not try_lease(wenv.db, "sync:hr", "b", every=every, lease=lease, now=now)
    release(wenv.db, "sync:hr", "a", None)
    # released, but not due again before `every` has passed
    assert not try_lease(wenv.db, "sync:hr", "b", every=every, lease=lease, now=now)
    later = now + timedelta(minutes=16)
    assert try_lease(wenv.db, "sync:hr", "b", every=every, lease=lease, now=later)
    # b dies without releasing: after the lease a third worker may run it
    assert not try_lease(wenv.db, "sync:hr", "c", every=every, lease=lease, now=later)
    assert try_lease(
        wenv.db, "sync:hr", "c", every=every, lease=lease, now=later + timedelta(minutes=31)
    )
    # a worker whose lease was taken over cannot release the new holder's lease
    release(wenv.db, "sync:hr", "b", "late")
    with wenv.db.transaction() as s:
        job = s.get(JobRow, "sync:hr")
        assert job.locked_by == "c" and job.last_error is None


@pytest.fixture
def periodic(tmp_path, sqlite_url, monkeypatch) -> Env:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    env = make_env(tmp_path, sqlite_url, people=people_csv(3, 1))
    text = env.path.read_text().replace(
        'people = "people.csv"\n', 'people = "people.csv"\nsync_every = "15m"\n'
    )
    env.path.write_text(text)
    from tests.webhooks.conftest import load

    env.config = load(env.path, env.registry)
    return env


def test_tick_runs_the_periodic_sync_once_per_interval(periodic: Env):
    first, second = Scheduler(periodic.runtime(), "w1"), Scheduler(periodic.runtime(), "w2")
    assert first.tick() == ["sync:hr"]
    assert second.tick() == []  # not due again yet, whoever asks
    with periodic.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(PersonRow)) == 4
        job = s.get(JobRow, "sync:hr")
        assert job.locked_by is None and job.last_error is None and job.last_finished_at


def test_a_failing_sync_is_recorded_and_does_not_stop_the_worker(periodic: Env):
    (periodic.path.parent / "people.csv").write_text("id,first_name\n1,\n")
    assert Scheduler(periodic.runtime(), "w1").tick() == ["sync:hr"]
    with periodic.db.transaction() as s:
        job = s.get(JobRow, "sync:hr")
    assert job.last_error and "people.csv" in job.last_error


def test_daily_jobs_registry(periodic: Env, monkeypatch):
    calls = []
    monkeypatch.setattr(scheduler, "DAILY_JOBS", {})
    scheduler.register_daily_job("program-health", lambda ctx: calls.append(ctx.config))
    first = Scheduler(periodic.runtime(), "w1")
    assert first.tick() == ["sync:hr", "daily:program-health"]
    assert Scheduler(periodic.runtime(), "w2").tick() == []
    assert len(calls) == 1 and calls[0] is periodic.config


def test_webhook_with_people_requests_a_sync(periodic: Env):
    sched = Scheduler(periodic.runtime(), "w1")
    sched.tick()
    assert sched.tick() == []
    sched.request_sync("hr")
    assert sched.tick() == ["sync:hr"]
