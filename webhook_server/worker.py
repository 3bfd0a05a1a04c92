"""The worker: drains the inbox, applies the rules, runs scheduled work.

One batch of claimed deliveries is one unit of work: the rows are re-read under a row lock
and, in the same transaction, parsed, their review events stored, the rules applied to all of
them at once (``programs.rules.apply_rules_batch``: the learners they enroll are matched as one
cohort per program, by one exact solve) and the rows marked ``done``. A crash anywhere before
the commit rolls all of it back; the claims' lease then expires and the deliveries are
processed again from scratch, so their store effects happen exactly once. Notifications are
sent after the commit (at least once, by stable key). A delivery that cannot be parsed is
settled alone; a batch that fails is retried one delivery at a time, so one bad delivery
cannot hold the others back.

In the live loop, the worker lets a burst gather first: while the oldest waiting delivery is
younger than the programs' ``burst_window_seconds`` and fewer than ``burst_max`` are waiting,
it waits (review cycles close with hundreds of reviews within seconds, and matching them
together is what makes the result optimal rather than first come, first served).

SQLite has one writer at a time, and a rule-matching delivery holds the write lock for the
whole unit of work. Run back to back, those units leave the intake writer (another thread or
serving process) almost no moment to take the lock, and the senders, who wait for their
answer and time out, pay for work that has no deadline. So on SQLite, while new deliveries are
arriving, intake goes first (``share_writes``): after each delivery the worker waits for a
quiet moment (``INTAKE_QUIET`` without a new delivery), at most ``MAX_YIELD`` per delivery,
and processes the burst right after it. A stream that does not stop must not grow the backlog
for ever: once the oldest waiting delivery is older than ``CATCH_UP_AFTER``, the worker only
pauses for ``INTAKE_SHARE`` times as long as its last unit of work took, so it keeps a quarter
of the writer's time. PostgreSQL takes row locks and needs no such pause.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from coachbridge import metrics
from coachbridge.connectors import WebhookRejected
from coachbridge.domain import ReviewEvent
from coachbridge.errors import CoachbridgeError, UserError
from coachbridge.hris.reviews import store_review_events
from coachbridge.notify.dispatch import Dispatcher
from coachbridge.programs.automation import (
    after_commit,
    dispatcher_for,
    people_watermark,
    retry_unknown_person_events,
)
from coachbridge.programs.rules import Effects, RuleFailure, apply_rules_batch
from coachbridge.store.tables import InboxRow
from coachbridge_webhooks import inbox, logs
from coachbridge_webhooks.lockfile import LockFile
from coachbridge_webhooks.runtime import Runtime
from coachbridge_webhooks.scheduler import Scheduler, request_sync_in
from sqlalchemy import select

log = logging.getLogger("coachbridge.worker")

DEFAULT_LEASE = timedelta(minutes=5)
#: Deliveries per batch when no rule enrolls anyone (nothing to match as a cohort).
DEFAULT_BATCH = 20
#: How often a gathering worker looks whether the burst is complete.
BURST_POLL = 0.1
#: On SQLite, while deliveries arrive: a pause this long without a new delivery is the quiet
#: moment the worker waits for before its next delivery ...
INTAKE_QUIET = 0.1
#: ... for at most this long per delivery (a steady trickle must not stop processing) ...
MAX_YIELD = 5.0
#: ... until the oldest waiting delivery is older than this; from then on the worker pauses
#: only ``INTAKE_SHARE`` times as long as its last unit of work took (at most
#: ``MAX_SHARE_PAUSE``), so intake keeps three quarters of the writer and the backlog shrinks.
CATCH_UP_AFTER = timedelta(seconds=30)
INTAKE_SHARE = 3.0
MAX_SHARE_PAUSE = 0.5


def make_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Processes deliveries for one process (or thread). Safe to run many on PostgreSQL."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        worker_id: str | None = None,
        lease: timedelta = DEFAULT_LEASE,
        batch: int | None = None,
        burst_window: float | None = None,
        poll_seconds: float = 1.0,
        housekeeping_seconds: float = 30.0,
        scheduler: bool = True,
        share_writes: bool | None = None,
    ) -> None:
        self.runtime = runtime
        self.db = runtime.db
        self.worker_id = worker_id or make_worker_id()
        self.lease = lease
        window, most = burst_settings(runtime)
        self.batch = batch if batch is not None else most
        self.burst_window = burst_window if burst_window is not None else window
        self.poll_seconds = poll_seconds
        self.housekeeping_seconds = housekeeping_seconds
        self.max_attempts = runtime.config.server.max_attempts
        self.dispatcher: Dispatcher = dispatcher_for(runtime)
        self.scheduler = Scheduler(runtime, self.worker_id) if scheduler else None
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self._last_housekeeping = 0.0
        # Pause between deliveries while intake is busy (see the module docstring): SQLite only.
        self.share_writes = self.db.is_sqlite if share_writes is None else share_writes
        self._inbox_mark: int | None = None
        # The people table as it was at the last retry of events waiting for their person.
        self._people_mark: tuple[object, ...] | None = None

    def __repr__(self) -> str:
        return f"<Worker {self.worker_id}>"

    # -- the loop --------------------------------------------------------------------------
    def run_once(self) -> int:
        """Claim and process one batch of due deliveries; returns how many were claimed."""
        ids = inbox.claim(self.db, self.worker_id, lease=self.lease, limit=self.batch)
        if ids and self.share_writes:
            self._inbox_mark = inbox.newest_id(self.db)
        if ids and not self.stopping.is_set():
            started = time.monotonic()
            self.process_batch(ids)
            if self.share_writes:
                try:
                    self._share_writer(time.monotonic() - started)
                except CoachbridgeError as exc:  # a probe failed: go on with the claimed rows
                    log.warning("worker: intake probe failed: %s", exc)
        return len(ids)

    def _gather_burst(self) -> None:
        """Wait until the oldest waiting delivery is ``burst_window`` old or ``batch`` are
        waiting, so a burst is matched as one cohort (read-only probes)."""
        if self.burst_window <= 0:
            return
        while not self.stopping.is_set():
            oldest = inbox.oldest_waiting(self.db)
            if oldest is None:
                return
            left = self.burst_window - (datetime.now(UTC) - oldest).total_seconds()
            if left <= 0 or inbox.waiting_count(self.db) >= self.batch:
                return
            self.stopping.wait(min(left, BURST_POLL))

    def _share_writer(self, took: float) -> None:
        """Leave the writer to intake if deliveries arrived during the last unit of work (see
        the module docstring). Reads only: the probes take no write lock."""
        newest = inbox.newest_id(self.db)
        if newest is None or self._inbox_mark is None or newest <= self._inbox_mark:
            self._inbox_mark = newest
            return
        self._inbox_mark = newest
        oldest = inbox.oldest_waiting(self.db)
        if oldest is not None and datetime.now(UTC) - oldest > CATCH_UP_AFTER:
            self.stopping.wait(min(took * INTAKE_SHARE, MAX_SHARE_PAUSE))
            return
        self._wait_for_quiet()

    def _wait_for_quiet(self) -> None:
        """Wait until ``INTAKE_QUIET`` seconds pass with no new delivery after
        ``_inbox_mark``, or ``MAX_YIELD`` seconds in all."""
        deadline = time.monotonic() + MAX_YIELD
        while time.monotonic() < deadline:
            if self.stopping.wait(INTAKE_QUIET):
                return
            newest = inbox.newest_id(self.db)
            if newest is None or (self._inbox_mark is not None and newest <= self._inbox_mark):
                return  # a quiet moment
            self._inbox_mark = newest

    def drain(self, max_rounds: int = 10_000) -> int:
        """Process until nothing is due (tests, ``events replay``); returns the count."""
        total = 0
        for _ in range(max_rounds):
            got = self.run_once()
            total += got
            if got == 0:
                break
        return total

    def housekeeping(self) -> None:
        """Scheduled syncs and daily jobs, unsent or failed notifications, events waiting for a
        person (only when people were added or changed since the last try)."""
        if self.scheduler is not None:
            self.scheduler.tick()
        self.dispatcher.send_pending(self.db)
        self.dispatcher.retry_failed(self.db)
        mark = people_watermark(self.db)
        if mark != self._people_mark:
            retry_unknown_person_events(self.runtime, dispatcher=self.dispatcher)
            self._people_mark = mark

    def run_forever(self) -> None:
        """Loop until ``stop()``; errors of one round are logged and the loop goes on."""
        log.info("worker %s started", self.worker_id)
        woken = False
        while not self.stopping.is_set():
            got = 0
            try:
                if woken and self.share_writes:
                    # A delivery woke the idle worker: if it is the first of a burst, the
                    # burst is let in before the first unit of work takes the writer.
                    self._inbox_mark = inbox.newest_id(self.db)
                    self._wait_for_quiet()
                if time.monotonic() - self._last_housekeeping >= self.housekeeping_seconds:
                    self._last_housekeeping = time.monotonic()
                    self.housekeeping()
                self._gather_burst()
                got = self.run_once()
            except CoachbridgeError as exc:  # e.g. the database is briefly unreachable
                log.warning("worker round failed: %s", exc)
            except Exception:
                log.exception("worker round failed")
            woken = False
            if got == 0:
                woken = self.wake.wait(self.poll_seconds)
                self.wake.clear()
        log.info("worker %s stopped", self.worker_id)

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    # -- a batch of deliveries --------------------------------------------------------------
    def process(self, row_id: int) -> str | None:
        """Process one claimed delivery; returns its new status (None: the lease was lost)."""
        return self.process_batch([row_id]).get(row_id)

    def process_batch(self, row_ids: list[int]) -> dict[int, str | None]:
        """Process claimed deliveries as one unit of work; returns each one's new status (None:
        the lease was lost). If the batch fails, each delivery is processed alone."""
        started = time.monotonic()
        try:
            batch = self._process(row_ids)
        except Exception as exc:
            if len(row_ids) > 1:
                log.warning(
                    "batch of %d deliveries failed (%s): processing them one at a time",
                    len(row_ids),
                    type(exc).__name__,
                )
                return {row_id: self.process(row_id) for row_id in row_ids}
            with logs.bound():
                status = self._settle(row_ids[0], exc)
                fields = logs.fields()
            if status is not None and "connector" in fields:
                took = time.monotonic() - started
                metrics.delivery_processed(fields["connector"], status, took)
            return {row_ids[0]: status}
        statuses: dict[int, str | None] = dict.fromkeys(row_ids)
        for row_id, (connector, delivery_id) in batch.rows.items():
            with logs.bound(connector=connector, delivery_id=delivery_id):
                failure = batch.rejected.get(row_id)
                if failure is None:
                    log.info("delivery %s done by %s", row_id, self.worker_id)
                    statuses[row_id] = "done"
                else:
                    statuses[row_id] = self._settle(row_id, failure)
                status = statuses[row_id]
                if status is not None:
                    took = time.monotonic() - started
                    metrics.delivery_processed(connector, status, took)
        try:
            after_commit(self.runtime, batch.effects, self.dispatcher)
        except Exception:  # the store is committed; housekeeping sends what is still pending
            log.exception("deliveries %s: after-commit work failed", row_ids)
        return statuses

    def _settle(self, row_id: int, exc: BaseException) -> str | None:
        """Record a failed delivery: dead-lettered when it can never succeed, else retried."""
        if isinstance(exc, (WebhookRejected, RuleFailure, UserError)):
            reason = exc.reason if isinstance(exc, WebhookRejected) else str(exc)
            log.warning("delivery %s: %s (dead-lettered)", row_id, reason)
            return inbox.settle_failure(
                self.db,
                row_id,
                self.worker_id,
                reason,
                max_attempts=self.max_attempts,
                permanent=True,
            )
        reason = f"{type(exc).__name__}: {str(exc)[:500]}"
        log.warning("delivery %s failed: %s", row_id, reason, exc_info=exc)
        return inbox.settle_failure(
            self.db, row_id, self.worker_id, reason, max_attempts=self.max_attempts
        )

    def _process(self, row_ids: list[int]) -> _Batch:
        now = datetime.now(UTC)
        batch = _Batch()
        with self.db.transaction() as s:
            rows = s.scalars(
                select(InboxRow)
                .where(
                    InboxRow.id.in_(row_ids),
                    InboxRow.status == "processing",
                    InboxRow.locked_by == self.worker_id,
                )
                .order_by(InboxRow.id)
                .with_for_update()
            ).all()  # a row missing: another worker reclaimed it after our lease expired
            to_store: list[tuple[ReviewEvent, str | None]] = []
            sync = set()
            for row in rows:
                batch.rows[row.id] = (row.connector, row.delivery_id)
                if len(row_ids) == 1:
                    logs.annotate(connector=row.connector, delivery_id=row.delivery_id)
                try:
                    connector = self.runtime.connector(row.connector)
                    parsed = connector.parse_webhook(
                        {"content-type": row.content_type or ""}, row.body or b""
                    )
                except Exception as exc:  # settled alone after the others commit
                    batch.rejected[row.id] = exc
                    continue
                events = list(parsed.reviews)
                for cycle_event in parsed.cycle_events:
                    events.append(
                        ReviewEvent(
                            type=cycle_event["type"],
                            cycle=cycle_event.get("cycle"),
                            source=connector.name,
                            source_event_id=f"{cycle_event['type']}:{cycle_event.get('cycle')}",
                        )
                    )
                people_from = connector.config.people_from
                to_store += [(event, people_from) for event in events]
                if parsed.people or parsed.changed_ids:
                    # Employee changes: the connector's incremental sync brings them in (and,
                    # for a payload that named a changed rating without its value, the rating
                    # too). The fetch runs there, outside this transaction and the HTTP
                    # request; the request is stored with the deliveries' outcome, so it
                    # cannot be lost.
                    sync.add(connector.name)
                row.status = "done"
                row.processed_at = now
                row.last_error = None
                row.locked_by = None
                row.locked_at = None
            stored = [done.row for done in store_review_events(s, to_store, via="webhook")]
            batch.effects = apply_rules_batch(
                s, self.runtime, stored, now=now, dispatcher=self.dispatcher
            )
            for name in sorted(sync):
                request_sync_in(s, name, now)
            if len(row_ids) == 1 and len(batch.rejected) == 1:
                # One delivery that cannot be parsed: nothing to commit, settled by the caller.
                raise batch.rejected.popitem()[1]
        return batch


@dataclass
class _Batch:
    """What one unit of work did: each row's (connector, delivery id), the rows whose
    payload was refused (settled after the commit), and the effects for after the commit."""

    rows: dict[int, tuple[str, str]] = field(default_factory=dict)
    rejected: dict[int, BaseException] = field(default_factory=dict)
    effects: Effects = field(default_factory=Effects)


def burst_settings(runtime: Runtime) -> tuple[float, int]:
    """(window seconds, most deliveries per batch) for the programs the rules enroll into:
    the longest ``burst_window_seconds`` and the largest ``burst_max`` (each program's own
    ``burst_max`` bounds its solves)."""
    config = runtime.config
    names = {rule.then.enroll for rule in config.rules}
    programs = [p for name, p in config.programs.items() if name in names]
    if not programs:
        return 0.0, DEFAULT_BATCH
    return (
        max(p.burst_window_seconds for p in programs),
        max(p.burst_max for p in programs),
    )


#: How often a serving process that does not hold the worker lock file tries again.
LOCK_RETRY_SECONDS = 5.0


def run_in_thread(
    worker: Worker,
    *,
    lock: LockFile | None = None,
    retry_seconds: float = LOCK_RETRY_SECONDS,
    announce_wait: bool = False,
) -> threading.Thread:
    """Start ``worker.run_forever`` in a daemon thread (``serve``'s in-process worker, and
    ``coachbridge worker``, whose main thread waits for it and handles the signals).

    With ``lock``, the worker runs only while this process holds that lock file: of several
    serving processes on one SQLite file exactly one drains the inbox and runs the scheduled
    work, and when it dies (the kernel drops its lock) another takes over within
    ``retry_seconds``. ``announce_wait`` logs (once) that this worker stands by.
    """

    def run() -> None:
        if lock is not None:
            announce = announce_wait
            try:
                while not lock.acquire(blocking=False):
                    if announce:
                        log.warning(
                            "another worker holds %s: this one stands by to take over", lock.path
                        )
                        announce = False
                    if worker.stopping.wait(retry_seconds):
                        return
            except OSError as exc:  # e.g. the database's folder is not writable
                log.error("worker not started: lock file %s: %s", lock.path, exc)
                return
            log.info("worker %s holds %s", worker.worker_id, lock.path)
        try:
            worker.run_forever()
        finally:
            if lock is not None:
                lock.close()

    thread = threading.Thread(target=run, name="coachbridge-worker", daemon=True)
    thread.start()
    return thread
