"""``serve``, ``worker`` and ``events list|replay``: the webhook server and its inbox.

Added to the ``coachbridge`` command line by ``coachbridge_webhooks.plugin`` through the
``coachbridge_register_commands`` hook, as a third-party plugin would add its commands. The
CLI loads this module on every invocation (for ``--help``), so the server's own modules (Flask,
gunicorn) are imported by the commands that use them.
"""

from __future__ import annotations

import signal
from datetime import timedelta
from types import FrameType
from typing import Any

import click
from coachbridge.app import App
from coachbridge.cli.app import pass_app
from coachbridge.cli.output import ROW_ID, emit, format_option
from coachbridge.errors import NotFoundError, RuntimeFailure, UserError
from coachbridge.programs.automation import dispatcher_for
from coachbridge.store.tables import InboxRow
from coachbridge_webhooks.runtime import Runtime
from sqlalchemy import select

STATUSES = ("pending", "processing", "done", "failed", "dead", "purged")


@click.command()
@click.option("--host", default=None, help="Address to listen on (default: [server] host).")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Port (default: [server] port)."
)
@click.option("--dev", is_flag=True, help="Flask's development server instead of gunicorn.")
@click.option(
    "--worker/--no-worker",
    "with_worker",
    default=None,
    help="Run the inbox worker in this process (default: yes with SQLite, no with PostgreSQL).",
)
@click.option("--processes", type=int, default=None, help="gunicorn processes (PostgreSQL).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log lines as text or one JSON object per line (default: [server] log_format).",
)
@pass_app
def serve(
    app: App,
    host: str | None,
    port: int | None,
    dev: bool,
    with_worker: bool | None,
    processes: int | None,
    log_format: str | None,
) -> None:
    """Receive webhooks (POST /webhooks/<connector>) and answer /healthz and /readyz."""
    from coachbridge_webhooks.logs import configure_logging
    from coachbridge_webhooks.serve import serve as run_server

    # First, so that the start-up lines (the schema check among them) are in the chosen format.
    configure_logging(log_format or app.config.server.log_format)
    app.database()  # checks the schema (and creates a new SQLite file) before forking
    dispatcher_for(app)  # a bad [notify.*] section is a clear error here, not in a child
    app.registry.jobs(app.config)  # so is a job name two plugins register
    settings = app.config.server
    run_server(
        app.config,
        app.database_url,
        host=host or settings.host,
        port=port or settings.port,
        dev=dev,
        with_worker=with_worker,
        processes=processes,
        log_format=log_format,
    )


@click.command()
@click.option("--once", is_flag=True, help="Process what is due now, then exit.")
@click.option("--poll", type=float, default=1.0, show_default=True, help="Seconds between polls.")
@click.option(
    "--lease",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds after which a delivery claimed by a worker that died is taken over.",
)
@click.option(
    "--batch",
    type=int,
    default=None,
    help="Deliveries per claim, matched as one cohort (default: the programs' burst_max).",
)
@pass_app
def worker(app: App, once: bool, poll: float, lease: float, batch: int | None) -> None:
    """Drain the inbox, apply the rules and run scheduled jobs until stopped (SIGTERM/Ctrl-C)."""
    from coachbridge_webhooks import lockfile
    from coachbridge_webhooks.logs import configure_logging

    configure_logging(app.config.server.log_format)
    from coachbridge_webhooks.worker import Worker, run_in_thread

    rt = Runtime(config=app.config, registry=app.registry, db=app.database())
    if lease <= 0 or (batch is not None and batch <= 0) or poll <= 0:
        raise UserError("--lease, --batch and --poll must be positive")
    w = Worker(rt, poll_seconds=poll, lease=timedelta(seconds=lease), batch=batch)
    if once:
        w.housekeeping()
        count = w.drain()
        click.echo(f"processed {count} deliveries")
        return

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        w.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # On SQLite one worker per database file, as `serve` keeps it: this one runs while it
    # holds the lock file (a second stands by and takes over when the first ends).
    thread = run_in_thread(w, lock=lockfile.for_database(rt.db, "worker"), announce_wait=True)
    while thread.is_alive():  # joined in steps, so SIGTERM and Ctrl-C reach the handlers
        thread.join(0.5)
    if not w.stopping.is_set():  # ended without being asked to: its reason is in the log
        raise RuntimeFailure(f"the worker could not run on {rt.db.safe_url} (see above)")


@click.group()
def events() -> None:
    """Webhook deliveries in the inbox: list them, re-run failed ones."""


def _row(row: InboxRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "connector": row.connector,
        "delivery_id": row.delivery_id,
        "status": row.status,
        "attempts": row.attempts,
        "received_at": row.received_at,
        "processed_at": row.processed_at,
        "next_attempt_at": row.next_attempt_at,
        "last_error": row.last_error,
    }


@events.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only this status.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@format_option()
@pass_app
def list_events(app: App, status: str | None, limit: int, fmt: str) -> None:
    """Show deliveries, newest first (never their bodies)."""
    with app.database().transaction() as s:
        stmt = select(InboxRow).order_by(InboxRow.id.desc()).limit(limit)
        if status:
            stmt = stmt.where(InboxRow.status == status)
        rows = [_row(r) for r in s.scalars(stmt)]
    emit(
        rows,
        fmt,
        [
            "id",
            "connector",
            "delivery_id",
            "status",
            "attempts",
            "received_at",
            "processed_at",
            "next_attempt_at",
            "last_error",
        ],
    )


@events.command("replay")
@click.argument("ids", nargs=-1, type=ROW_ID)
@click.option("--failed", is_flag=True, help="Every failed and dead-lettered delivery.")
@click.option("--now", "run_now", is_flag=True, help="Process them here at once.")
@pass_app
def replay_events(app: App, ids: tuple[int, ...], failed: bool, run_now: bool) -> None:
    """Queue deliveries again (by id, or --failed); a worker processes them (or --now)."""
    from coachbridge_webhooks import inbox
    from coachbridge_webhooks.worker import Worker

    if bool(ids) == failed:
        raise UserError("give delivery ids or --failed (not both)")
    db = app.database()
    if ids:
        with db.transaction() as s:
            found = set(s.scalars(select(InboxRow.id).where(InboxRow.id.in_(ids))))
        missing = sorted(set(ids) - found)
        if missing:
            raise NotFoundError(f"unknown delivery id(s): {', '.join(map(str, missing))}")
    count = inbox.replay(db, list(ids) if ids else None, failed=failed)
    click.echo(f"queued {count} deliveries again")
    if run_now:
        w = Worker(Runtime(config=app.config, registry=app.registry, db=db), scheduler=False)
        click.echo(f"processed {w.drain()} deliveries")
