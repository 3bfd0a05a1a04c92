"""The core's own scheduled jobs, registered through ``coachbridge_register_jobs`` as a plugin's.

- ``sync:<connector>`` for each ``[connectors.<name>]``: an incremental sync every
  ``sync_every`` (without it, only when requested: a webhook named changed employees), then the
  rules on the review events the sync found.
- ``daily:program-health``: the daily run (``jobs.daily.run_daily``: finished pairings
  completed, waiting learners tried again, health checks and nudges, the inbox purge), which
  ``coachbridge nudge`` runs by hand.

The names are the keys of these jobs' rows in the ``jobs`` table; they are kept as they were
when the worker hard-coded these jobs, so an existing database keeps its schedule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from coachbridge.config import Config
from coachbridge.hris.sync import Syncer
from coachbridge.jobs.daily import run_daily
from coachbridge.jobs.health import counts_by_condition
from coachbridge.markers import hookimpl
from coachbridge.programs.automation import announce_pairings, process_review_events
from coachbridge.schedules import Job, JobRun

log = logging.getLogger("coachbridge.scheduler")

SYNC_LEASE = timedelta(minutes=30)
DAILY_LEASE = timedelta(hours=1)
PROGRAM_HEALTH = "daily:program-health"


def sync_job_name(connector: str) -> str:
    """The ``jobs`` row of ``connector``'s scheduled sync (also where a sync is requested)."""
    return f"sync:{connector}"


def sync_connector(ctx: Any, name: str) -> None:
    """An incremental sync of ``name``, then the rules on the review events it found.

    ``ctx`` is the CLI's ``App`` or the worker's runtime: ``database()``, ``connector(name)``
    and what the rules need."""
    report = Syncer(
        ctx.database(), ctx.connector(name), programs=ctx.config.programs, registry=ctx.registry
    ).run(full=False)
    log.info("scheduled sync %s: %d new, %d changed", name, len(report.new), len(report.changed))
    announce_pairings(ctx, report.manager_pairing_ids)
    if report.reviews_for_rules:
        process_review_events(ctx, report.reviews_for_rules)


def _sync(name: str) -> JobRun:
    def run(ctx: Any, now: datetime) -> None:
        sync_connector(ctx, name)

    return run


def program_health(ctx: Any, now: datetime) -> None:
    """The daily run, logged in one line."""
    daily = run_daily(ctx, now=now)
    log.info(
        "program health: %d pairings completed; %d waiting learners paired; %s; "
        "%d inbox bodies purged; %d intake reminders",
        daily.completed,
        daily.paired,
        counts_by_condition(daily.nudges),
        daily.purged,
        len(daily.intake_reminders),
    )


@hookimpl
def coachbridge_register_jobs(register: Callable[[Job], None], config: Config) -> None:
    # Syncs first, so the daily run of the same tick sees the newest people.
    for name, cfg in sorted(config.connectors.items()):
        register(Job(sync_job_name(name), _sync(name), every=cfg.sync_every, lease=SYNC_LEASE))
    register(Job(PROGRAM_HEALTH, program_health, every=timedelta(days=1), lease=DAILY_LEASE))
