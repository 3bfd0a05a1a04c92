"""Scheduled work, one runner at a time across every worker process (a lease in ``jobs``).

The scheduler runs whatever jobs the plugins register through ``coachbridge_register_jobs``
(``coachbridge.schedules.Job``); the core registers ``sync:<connector>`` for each connector
(an incremental sync every ``sync_every``, then the rules on the review events it found) and
``daily:program-health`` (the daily run). A job runs on whichever worker takes its lease first
when it is due, or at once when it was requested (``request_job_in``: a webhook that names
changed employees requests its connector's sync). A job's exception is recorded in
``jobs.last_error`` and logged; it never stops the worker.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from coachbridge.errors import CoachbridgeError
from coachbridge.jobs.builtin import sync_job_name
from coachbridge.schedules import Job
from coachbridge.store import Database
from coachbridge.store.tables import JobRow
from coachbridge_webhooks.runtime import Runtime
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

log = logging.getLogger("coachbridge.scheduler")


def try_lease(
    db: Database,
    name: str,
    worker_id: str,
    *,
    every: timedelta | None = None,
    lease: timedelta,
    now: datetime | None = None,
    last_due: datetime | None = None,
) -> bool:
    """Take the job ``name`` when it is due and nobody holds it. Atomic on both databases.

    Due: it never started, or its last start is at or before ``last_due`` (by default
    ``now - every``)."""
    now = now or datetime.now(UTC)
    if last_due is None:
        if every is None:
            raise ValueError("try_lease needs every or last_due")
        last_due = now - every
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
                or_(JobRow.last_started_at.is_(None), JobRow.last_started_at <= last_due),
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


def request_job_in(s: Session, name: str, now: datetime) -> None:
    """Record, in the caller's transaction, that job ``name`` should run at the next tick.

    Stored rather than kept in memory so that a delivery marked done cannot lose its request
    when the worker stops; any worker's scheduler picks it up.
    """
    row = s.get(JobRow, name, with_for_update=True)
    if row is None:
        s.add(JobRow(name=name, requested_at=now))
    else:
        row.requested_at = now


def request_sync_in(s: Session, connector: str, now: datetime) -> None:
    """Request an incremental sync of ``connector`` at the next tick (in ``s``)."""
    request_job_in(s, sync_job_name(connector), now)


def requested_jobs(db: Database) -> set[str]:
    """Jobs requested since their last run started."""
    with db.transaction() as s:
        return set(
            s.scalars(
                select(JobRow.name).where(
                    JobRow.requested_at.is_not(None),
                    or_(
                        JobRow.last_started_at.is_(None),
                        JobRow.requested_at > JobRow.last_started_at,
                    ),
                )
            )
        )


def requested_syncs(db: Database) -> set[str]:
    """Connectors with a sync requested since their last run started."""
    prefix = sync_job_name("")
    return {n.removeprefix(prefix) for n in requested_jobs(db) if n.startswith(prefix)}


class Scheduler:
    """Runs due jobs when ``tick`` is called (by the worker loop).

    ``jobs`` defaults to what the runtime's plugins register for its configuration."""

    def __init__(self, runtime: Runtime, worker_id: str, jobs: list[Job] | None = None) -> None:
        self.runtime = runtime
        self.worker_id = worker_id
        self.jobs = runtime.registry.jobs(runtime.config) if jobs is None else list(jobs)

    def request_sync(self, connector: str) -> None:
        """Ask for an incremental sync of ``connector`` at the next tick (webhook said so)."""
        with self.runtime.db.transaction() as s:
            request_sync_in(s, connector, datetime.now(UTC))

    def _run(self, job: Job, last_due: datetime, now: datetime) -> bool:
        db = self.runtime.db
        if not try_lease(db, job.name, self.worker_id, lease=job.lease, now=now, last_due=last_due):
            return False
        error = None
        try:
            job.run(self.runtime, now)
        except CoachbridgeError as exc:
            error = str(exc)
            log.warning("job %s failed: %s", job.name, exc)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.exception("job %s failed", job.name)
        release(db, job.name, self.worker_id, error)
        return True

    def tick(self) -> list[str]:
        """Run every due job, in the order they were registered; returns the names of those
        that ran here."""
        ran = []
        requested = requested_jobs(self.runtime.db)
        for job in self.jobs:
            now = datetime.now(UTC)
            last_due = now if job.name in requested else job.last_due(now)
            if last_due is None:
                continue
            if self._run(job, last_due, now):
                ran.append(job.name)
        return ran
