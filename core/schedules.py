"""Scheduled jobs as plugins declare them (``coachbridge_register_jobs``).

A ``Job`` says what to run and when; the worker's scheduler decides who runs it (one worker at
a time, through a lease in the ``jobs`` table keyed by ``Job.name``). This module only
describes jobs and when one is due, so that core and plugins can declare jobs without
depending on whichever process runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from coachbridge.context import Context

__all__ = ["MAX_NAME_LENGTH", "Job", "JobRun"]

#: ``run(ctx, now)``: ``ctx`` has ``config``, ``registry`` and ``database()``; ``now`` is the
#: scheduler's clock (timezone-aware UTC) when the run started.
JobRun = Callable[[Context, datetime], None]

#: The ``jobs.name`` column's length.
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class Job:
    """One scheduled job.

    ``name`` is the key of the job's row in the ``jobs`` table: keep it stable (a new name
    starts a new schedule). ``every`` runs the job when that long has passed since its last
    start; ``at`` runs it once a day, at the first tick after that time of day (UTC unless the
    ``time`` carries a ``tzinfo``). With neither, the job runs only when requested (a row's
    ``requested_at``; the worker requests a connector's sync when a webhook names changed
    employees). ``lease`` is how long a worker may hold the job before another may take it
    over (a worker that died mid-run); a job should finish well within it.
    """

    name: str
    run: JobRun
    every: timedelta | None = None
    at: time | None = None
    lease: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > MAX_NAME_LENGTH:
            raise ValueError(f"job name must be 1 to {MAX_NAME_LENGTH} characters: {self.name!r}")
        if self.every is not None and self.at is not None:
            raise ValueError(f"job {self.name!r}: give every or at, not both")
        if self.every is not None and self.every <= timedelta(0):
            raise ValueError(f"job {self.name!r}: every must be positive")
        if self.lease <= timedelta(0):
            raise ValueError(f"job {self.name!r}: lease must be positive")
        if not callable(self.run):
            raise ValueError(f"job {self.name!r}: run must be callable")

    def last_due(self, now: datetime) -> datetime | None:
        """The job is due when its last start is at or before this moment (or it never ran).
        ``None``: it never falls due by itself, only when requested."""
        if self.every is not None:
            return now - self.every
        if self.at is not None:
            zone = self.at.tzinfo or UTC
            local = now.astimezone(zone)
            moment = datetime.combine(local.date(), self.at.replace(tzinfo=None), tzinfo=zone)
            if moment > local:
                moment -= timedelta(days=1)
            # A start at the very moment of this day's occurrence counts as this day's run.
            return moment.astimezone(UTC) - timedelta(microseconds=1)
        return None
