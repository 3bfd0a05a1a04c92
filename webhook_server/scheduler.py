"""Scheduled work, one runner at a time across every worker process (a lease in ``jobs``).

Built in: ``sync:<connector>`` for each connector with ``sync_every`` (an incremental sync, then
the rules on the review events it found). Other parts add daily jobs with
``register_daily_job``::

    from coachbridge_webhooks.scheduler import register_daily_job

    def program_health(ctx):            # ctx: config, registry, database()
        ...

    register_daily_job("program-health", program_health)

Each registered job runs at most once per day (job name ``daily:<name>``) on whichever worker
takes its lease first. A job's exception is recorded in ``jobs.last_error`` and logged; it never
stops the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from coachbridge.context import Context
from coachbridge.errors import CoachbridgeError
from coachbridge.programs.automation import process_review_events
from coachbridge.store import Database
from coachbridge.store.tables import JobRow
from coachbridge_webhooks.runtime import Runtime
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

log = logging.getLogger("coachbridge.scheduler")

DailyJob = Callable[[Context], None]
DAILY_JOBS: dict[str, DailyJob] = {}
SYNC_LEASE = timedelta(minutes=30)


def register_daily_job(name: str, job: DailyJob) -> None:
    """Run ``job(ctx)`` once a day on one worker. Registering a name twice replaces it."""
    DAILY_JOBS[name] = job


def try_lease(
    db: Database,
    name: str,
    worker_id: str,
    *,
    every: timedelta,
    lease: timedelta,
    now: datetime | None = None,
) -> bool:
    """Take the job ``name`` when it is due and nobody holds it. Atomic on both databases."""
    now = now or datetime.now(UTC)
    try:
        with db.transaction() as s:
            if s.get(JobRow, name) is None:
                s.add(JobRow(name=name))
    except IntegrityError:
        pass  # created by another worker at the same moment
    with db.transaction() as s:
        result = s.execute(
            update(JobRow)
            .where(
                JobRow.name == name,
                or_(JobRow.locked_until.is_(None), JobRow.locked_until < now),
                or_(JobRow.last_started_at.is_(None), JobRow.last_started_at <= now - every),
            )
            .values(locked_by=worker_id, locked_until=now + lease, last_started_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]


def release(db: Database, name: str, worker_id: str, error: str | None) -> None:
    with db.transaction() as s:
        s.execute(
            update(JobRow)
            .where(and_(JobRow.name == name, JobRow.locked_by == worker_id))
            .values(
                locked_by=None,
                locked_until=None,
                last_finished_at=datetime.now(UTC),
                last_error=error,
            )
            .execution_options(synchronize_session=False)
        )


def request_sync_in(s: Session, connector: str, now: datetime) -> None:
    """Record, in the caller's transaction, that ``connector`` should sync at the next tick.

    Stored rather than kept in memory so that a delivery marked done cannot lose its sync
    when the worker stops; any worker's scheduler picks it up.
    """
    name = f"sync:{connector}"
    row = s.get(JobRow, name, with_for_update=True)
    if row is None:
        s.add(JobRow(name=name, requested_at=now))
    else:
        row.requested_at = now


def requested_syncs(db: Database) -> set[str]:
    """Connectors with a sync requested since their last run started."""
    with db.transaction() as s:
        names = s.scalars(
            select(JobRow.name).where(
                JobRow.name.like("sync:%"),
                JobRow.requested_at.is_not(None),
                or_(JobRow.last_started_at.is_(None), JobRow.requested_at > JobRow.last_started_at),
            )
        )
        return {name.removeprefix("sync:") for name in names}


class Scheduler:
    """Runs due jobs when ``tick`` is called (by the worker loop)."""

    def __init__(self, runtime: Runtime, worker_id: str) -> None:
        self.runtime = runtime
        self.worker_id = worker_id

    def request_sync(self, connector: str) -> None:
        """Ask for an incremental sync of ``connector`` at the next tick (webhook said so)."""
        with self.runtime.db.transaction() as s:
            request_sync_in(s, connector, datetime.now(UTC))

    def _run(self, name: str, every: timedelta, lease: timedelta, job: Callable[[], None]) -> bool:
        if not try_lease(self.runtime.db, name, self.worker_id, every=every, lease=lease):
            return False
        error = None
        try:
            job()
        except CoachbridgeError as exc:
            error = str(exc)
            log.warning("job %s failed: %s", name, exc)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.exception("job %s failed", name)
        release(self.runtime.db, name, self.worker_id, error)
        return True

    def sync_connector(self, name: str) -> None:
        from coachbridge.hris.sync import Syncer

        syncer = Syncer(self.runtime.db, self.runtime.connector(name))
        report = syncer.run(full=False)
        log.info(
            "scheduled sync %s: %d new, %d changed", name, len(report.new), len(report.changed)
        )
        if report.reviews_for_rules:
            process_review_events(self.runtime, report.reviews_for_rules)

    def tick(self) -> list[str]:
        """Run every due job; returns the names of those that ran here."""
        ran = []
        requested = requested_syncs(self.runtime.db)
        for name, cfg in sorted(self.runtime.config.connectors.items()):
            every = cfg.sync_every
            if name in requested:
                every = timedelta(0)
            if every is None:
                continue
            if self._run(f"sync:{name}", every, SYNC_LEASE, lambda n=name: self.sync_connector(n)):
                ran.append(f"sync:{name}")
        for job_name, job in sorted(DAILY_JOBS.items()):
            if self._run(
                f"daily:{job_name}",
                timedelta(days=1),
                timedelta(hours=1),
                lambda j=job: j(self.runtime),
            ):
                ran.append(f"daily:{job_name}")
        return ran
