"""Scheduled work: periodic syncs and daily jobs, one runner at a time across workers."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from coachbridge import hookimpl
from coachbridge.errors import ConfigError
from coachbridge.plugins import Registry, make_plugin_manager
from coachbridge.schedules import Job
from coachbridge.store.tables import JobRow, PersonRow
from coachbridge_webhooks.runtime import Runtime
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
    # The core's jobs, registered through the jobs hook: the sync first, then the daily run.
    assert first.tick() == ["sync:hr", "daily:program-health"]
    assert second.tick() == []  # not due again yet, whoever asks
    with periodic.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(PersonRow)) == 4
        job = s.get(JobRow, "sync:hr")
        assert job.locked_by is None and job.last_error is None and job.last_finished_at


def test_a_failing_sync_is_recorded_and_does_not_stop_the_worker(periodic: Env):
    (periodic.path.parent / "people.csv").write_text("id,first_name\n1,\n")
    assert Scheduler(periodic.runtime(), "w1").tick() == ["sync:hr", "daily:program-health"]
    with periodic.db.transaction() as s:
        job = s.get(JobRow, "sync:hr")
    assert job.last_error and "people.csv" in job.last_error


class JobsPlugin:
    """A third-party plugin with a daily job and an hourly one, registered through the hook."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object, datetime]] = []

    @hookimpl
    def coachbridge_register_jobs(self, register, config) -> None:
        register(
            Job("tp:daily", lambda ctx, now: self.calls.append(("daily", ctx, now)), at=time(3))
        )
        register(
            Job("tp:hourly", lambda ctx, now: self.calls.append(("hourly", ctx, now)), every=HOUR)
        )


HOUR = timedelta(hours=1)


def plugin_runtime(env: Env, plugin: object) -> Runtime:
    pm = make_plugin_manager()
    pm.register(plugin, name="third-party")
    return Runtime(config=env.config, registry=Registry.build(pm), db=env.db)


def test_a_plugins_jobs_run_with_the_cores_once_per_period(periodic: Env):
    plugin = JobsPlugin()
    runtime = plugin_runtime(periodic, plugin)
    first = Scheduler(runtime, "w1")
    # The core's jobs first (registered first), then the plugin's in its own order.
    assert first.tick() == ["sync:hr", "daily:program-health", "tp:daily", "tp:hourly"]
    assert Scheduler(runtime, "w2").tick() == []  # not due again, whoever asks
    assert [name for name, _, _ in plugin.calls] == ["daily", "hourly"]
    assert all(ctx is runtime and now.tzinfo is not None for _, ctx, now in plugin.calls)
    with periodic.db.transaction() as s:
        row = s.get(JobRow, "tp:hourly")
        assert row.locked_by is None and row.last_error is None and row.last_finished_at


def test_a_failing_plugin_job_is_recorded_and_the_others_still_run(periodic: Env, caplog):
    class Failing:
        @hookimpl
        def coachbridge_register_jobs(self, register) -> None:
            register(Job("tp:broken", lambda ctx, now: 1 / 0, every=HOUR))

    runtime = plugin_runtime(periodic, Failing())
    sched = Scheduler(runtime, "w1", jobs=[*runtime.registry.jobs(runtime.config)])
    assert sched.tick() == ["sync:hr", "daily:program-health", "tp:broken"]
    with periodic.db.transaction() as s:
        assert s.get(JobRow, "tp:broken").last_error == "ZeroDivisionError: division by zero"
    assert "job tp:broken failed" in caplog.text
    assert sched.tick() == []  # tried again when next due, not at once


def test_a_job_at_a_time_of_day_runs_once_a_day_after_that_time(periodic: Env):
    job = Job("tp:at", lambda ctx, now: None, at=time(6, 30))
    day = datetime(2026, 12, 7, tzinfo=UTC)

    def take(worker: str, now: datetime) -> bool:
        return try_lease(
            periodic.db, job.name, worker, lease=HOUR, now=now, last_due=job.last_due(now)
        )

    assert take("w1", day + timedelta(hours=7))  # never ran: due
    release(periodic.db, job.name, "w1", None)
    assert not take("w2", day + timedelta(hours=23))  # ran since today's 06:30
    assert not take("w2", day + timedelta(days=1, hours=6))  # tomorrow, before 06:30
    assert take("w2", day + timedelta(days=1, hours=6, minutes=30))  # tomorrow's 06:30


def test_the_scheduler_runs_a_time_of_day_job_once(periodic: Env):
    ran: list[datetime] = []
    job = Job("tp:at", lambda ctx, now: ran.append(now), at=time(0, 0))
    sched = Scheduler(periodic.runtime(), "w1", jobs=[job])
    assert sched.tick() == ["tp:at"]
    assert sched.tick() == []
    assert len(ran) == 1


def test_two_plugins_registering_one_job_name_is_a_start_up_error(periodic: Env):
    class One:
        @hookimpl
        def coachbridge_register_jobs(self, register) -> None:
            register(Job("daily:program-health", lambda ctx, now: None, every=HOUR))

    runtime = plugin_runtime(periodic, One())
    with pytest.raises(ConfigError) as caught:
        Scheduler(runtime, "w1")
    message = str(caught.value)
    assert "'coachbridge.jobs.builtin'" in message and "'third-party'" in message
    assert "daily:program-health" in message


def test_webhook_with_people_requests_a_sync(periodic: Env):
    sched = Scheduler(periodic.runtime(), "w1")
    sched.tick()
    assert sched.tick() == []
    sched.request_sync("hr")
    assert sched.tick() == ["sync:hr"]
