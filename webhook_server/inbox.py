"""The inbox: raw deliveries stored on receipt, claimed and settled by workers.

Row life: ``pending`` -> ``processing`` (claimed: ``locked_by``/``locked_at`` set, ``attempts``
counted) -> ``done``, or ``failed`` (retried at ``next_attempt_at``) and finally ``dead`` after
``[server] max_attempts``. A ``processing`` row whose lock is older than the lease (its worker
died) is due again. On PostgreSQL claims use ``FOR UPDATE SKIP LOCKED`` and the processing
transaction keeps the row locked, so no two workers ever process one delivery; every state
change is conditional on ``locked_by`` so a worker that lost its lease cannot settle the row.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from coachbridge.errors import DatabaseUnavailable
from coachbridge.store import Database
from coachbridge.store.tables import InboxRow
from coachbridge_webhooks import lockfile
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import OperationalError

#: First retry after about this long, doubling per attempt up to ``MAX_BACKOFF``.
BASE_BACKOFF = timedelta(seconds=10)
MAX_BACKOFF = timedelta(hours=1)


def body_digest(body: bytes) -> str:
    """The delivery id of a scheme without an id header."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def accept(db: Database, connector: str, delivery_id: str, content_type: str, body: bytes) -> bool:
    """Store one verified delivery outside the server (tools, tests); True when new.

    The statement the server's group commit runs, on a connection of its own, closed after:
    ``INSERT ... ON CONFLICT DO NOTHING`` decides the answer, so a concurrent duplicate meets
    the unique constraint (connector, delivery_id) and is a duplicate, never an error.
    """
    writer = _batch_insert(db)
    try:
        item = _Pending(connector, delivery_id, content_type, body)
        return (connector, delivery_id) in writer.run([item], datetime.now(UTC))
    finally:
        writer.reset()


class _Pending:
    """One delivery waiting to be stored, and the answer its request thread waits for.

    The thread is woken exactly once per wait: by ``settle`` (the answer is known) or by
    ``hand_over`` (it is to write the next batch, its own delivery among them, which it then
    settles itself). The signal is a bare lock, held from the start and released to wake:
    one C-level wait, where ``threading.Event`` allocates a lock and a condition per wait in
    Python, and that showed in intake's CPU per delivery.
    """

    __slots__ = (
        "_signal",
        "body",
        "connector",
        "content_type",
        "delivery_id",
        "error",
        "lead",
        "new",
    )

    def __init__(self, connector: str, delivery_id: str, content_type: str, body: bytes) -> None:
        self.connector = connector
        self.delivery_id = delivery_id
        self.content_type = content_type
        self.body = body
        self.lead = False
        self.new: bool | None = None
        self.error: BaseException | None = None
        self._signal = threading.Lock()
        self._signal.acquire()

    def wait(self, timeout: float) -> bool:
        """Block until woken (True) or ``timeout`` seconds passed (False)."""
        return self._signal.acquire(timeout=timeout)

    def hand_over(self) -> None:
        """Make this delivery's thread the next writer, and wake it."""
        self.lead = True
        self._signal.release()

    def settle(self, new: bool | None = None, error: BaseException | None = None) -> None:
        self.new, self.error = new, error
        self._signal.release()


#: The columns one delivery fills, in the order the writers' statements list them.
_COLUMNS = "connector, delivery_id, content_type, body, status, attempts, received_at"
_CONFLICT = "ON CONFLICT (connector, delivery_id) DO NOTHING RETURNING connector, delivery_id"


class _BatchInsert:
    """One ``INSERT ... VALUES (...), ... ON CONFLICT DO NOTHING RETURNING`` of many deliveries.

    The hottest statement coachbridge runs (every delivery, while its sender waits), so it is
    issued on a connection of its own, below SQLAlchemy, in autocommit: one statement is
    atomic by itself, which saves the BEGIN and COMMIT round trips, and skipping the ORM's and
    the engine's per-statement work halved intake's CPU per delivery (measured in
    benchmarks/webhooks/README.md). The statement text is cached per batch size.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: Any = None  # a DBAPI connection of the engine's pool, kept between rounds
        self._sql: dict[int, Any] = {}

    def run(self, items: list[_Pending], now: datetime) -> set[tuple[str, str]]:
        """Insert ``items`` (one statement, committed); the (connector, delivery id) keys new."""
        try:
            if self._conn is None:
                self._conn = self._connect()
            sql = self._sql.get(len(items))
            if sql is None:
                sql = self._sql[len(items)] = self._statement(len(items))
            return self._execute(self._conn, sql, items, now)
        except Exception as exc:
            # Whatever failed (a lost server, a bad row), the next round starts on a fresh
            # connection rather than one in an unknown state.
            self.reset()
            if isinstance(exc, OperationalError | self._unavailable()):
                first = str(exc).strip().splitlines()
                detail = first[0] if first else type(exc).__name__
                raise DatabaseUnavailable(f"database {self.db.safe_url}: {detail}") from None
            raise

    def reset(self) -> None:
        """Drop the connection. It is closed, never returned to the pool: it is in autocommit,
        and the pool's other users expect transactions."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()

    def _unavailable(self) -> type[Exception]:
        error: type[Exception] = self.db.engine.dialect.loaded_dbapi.OperationalError
        return error

    def _connect(self) -> Any:
        raise NotImplementedError

    def _statement(self, n: int) -> Any:
        raise NotImplementedError

    def _execute(
        self, conn: Any, sql: Any, items: list[_Pending], now: datetime
    ) -> set[tuple[str, str]]:
        raise NotImplementedError


class _SQLiteBatchInsert(_BatchInsert):
    """sqlite3 in autocommit; the timestamp goes through the column's own type, so it is
    stored exactly as the ORM stores it. Writers of all serving processes queue on one lock
    file (``<db>.intake.lock``) before the insert, so the next is woken as soon as one is done
    instead of polling in SQLite's busy handler (see ``lockfile``)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        dialect = db.engine.dialect
        process = InboxRow.__table__.c.received_at.type.bind_processor(dialect)
        self._stamp = process or (lambda value: value)
        self._queue = lockfile.for_database(db, "intake")

    def reset(self) -> None:
        super().reset()
        if self._queue is not None:
            self._queue.close()

    def _connect(self) -> Any:
        conn = self.db.engine.raw_connection()  # the pool's connect event set the pragmas
        conn.driver_connection.isolation_level = None  # autocommit
        return conn

    def _statement(self, n: int) -> str:
        values = ", ".join(["(?, ?, ?, ?, 'pending', 0, ?)"] * n)
        return f"INSERT INTO inbox ({_COLUMNS}) VALUES {values} {_CONFLICT}"

    def _execute(
        self, conn: Any, sql: Any, items: list[_Pending], now: datetime
    ) -> set[tuple[str, str]]:
        stamp = self._stamp(now)
        params: list[Any] = []
        for p in items:
            params += (p.connector, p.delivery_id, p.content_type[:200], p.body, stamp)
        queue = self._queue if self._queue is not None else contextlib.nullcontext()
        with queue:
            cursor = conn.cursor()
            try:
                cursor.execute(sql, params)
                return {(c, d) for c, d in cursor.fetchall()}
            finally:
                cursor.close()


class _PostgresBatchInsert(_BatchInsert):
    """psycopg's libpq layer (``psycopg.pq``, part of its public API): one ``PQexecParams``
    call, which waits for the server without the GIL once per statement, where a cursor's
    execute takes it back and forth several times; under load on two cores that took intake
    from 630-760 to 770-845 accepted deliveries a second. Strings and the timestamp travel as
    text, bodies as binary ``bytea``."""

    def _connect(self) -> Any:
        conn = self.db.engine.raw_connection()
        driver = conn.driver_connection
        driver.autocommit = True
        # The request thread that writes a round waits for it: never for ever.
        driver.execute("SET statement_timeout = '30s'")
        return conn

    def _statement(self, n: int) -> bytes:
        stamp = 4 * n + 1
        values = ", ".join(
            f"(${4 * i + 1}, ${4 * i + 2}, ${4 * i + 3}, ${4 * i + 4}, 'pending', 0, ${stamp})"
            for i in range(n)
        )
        return f"INSERT INTO inbox ({_COLUMNS}) VALUES {values} {_CONFLICT}".encode()

    def _execute(
        self, conn: Any, sql: Any, items: list[_Pending], now: datetime
    ) -> set[tuple[str, str]]:
        from psycopg import pq

        params: list[bytes] = []
        for p in items:
            params += (
                p.connector.encode(),
                p.delivery_id.encode(),
                p.content_type[:200].encode(),
                p.body,
            )
        params.append(now.isoformat().encode())
        pgconn = conn.driver_connection.pgconn
        result = pgconn.exec_params(sql, params, param_formats=[0, 0, 0, 1] * len(items) + [0])
        if result.status != pq.ExecStatus.TUPLES_OK:
            message = (result.error_message or b"").decode(errors="replace").strip()
            first = message.splitlines()[0] if message else "no answer"
            if pgconn.status != pq.ConnStatus.OK:
                raise DatabaseUnavailable(f"database {self.db.safe_url}: {first}")
            raise RuntimeError(f"storing deliveries failed: {first}")
        return {
            (result.get_value(row, 0).decode(), result.get_value(row, 1).decode())
            for row in range(result.ntuples)
        }


def _batch_insert(db: Database) -> _BatchInsert:
    if db.url.get_backend_name() == "postgresql":
        return _PostgresBatchInsert(db)
    return _SQLiteBatchInsert(db)


class GroupCommitter:
    """Stores concurrent deliveries with one statement per round (group commit).

    A commit costs a disk flush, so concurrent deliveries share one; nothing is answered
    before it is stored, and each request gets its own answer (new or duplicate, decided by
    that same statement). The request threads take turns at writing (leader and followers):
    a delivery that arrives while no write is running is written at once by its own thread;
    deliveries that arrive meanwhile wait, and when the write ends the first of them writes
    them all. No thread exists only to write, so a delivery costs no hand-over to another
    thread and back: on a small machine those wake-ups cost more CPU than the insert.
    """

    def __init__(self, db: Database, *, max_batch: int = 256) -> None:
        self.db = db
        self.max_batch = max_batch
        self._mutex = threading.Lock()
        self._waiting: list[_Pending] = []
        self._writing = False  # a thread is writing a batch (or about to)
        self._insert = _batch_insert(db)

    def __repr__(self) -> str:
        return f"<GroupCommitter {self.db!r}>"

    def close(self) -> None:
        """Close the writing connection while no delivery is being stored (the next opens a
        new one)."""
        self._insert.reset()

    def submit(
        self,
        connector: str,
        delivery_id: str,
        content_type: str,
        body: bytes,
        timeout: float = 60.0,
    ) -> bool:
        """Store one delivery; True when new. Raises what the store raised.

        ``TimeoutError`` when no answer came within ``timeout`` seconds (the delivery may
        still be stored: a retry by the sender is then answered as a duplicate).
        """
        item = _Pending(connector, delivery_id, content_type, body)
        with self._mutex:
            self._waiting.append(item)
            lead = not self._writing
            self._writing = True
        if not lead:
            if not item.wait(timeout):
                with self._mutex:
                    if item in self._waiting and not item.lead:  # still queued: leave
                        self._waiting.remove(item)
                        raise TimeoutError("the inbox did not answer in time")
                # Taken into a batch being written (or just made leader): its answer is near.
                if not item.wait(timeout):
                    raise TimeoutError("the inbox did not answer in time")
            lead = item.lead
        if lead:
            self._lead()
        if item.error is not None:
            raise item.error
        return bool(item.new)

    def _lead(self) -> None:
        """Write the waiting deliveries (this thread's own among them), then hand over."""
        with self._mutex:
            batch = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
        try:
            self._write(batch)
        finally:
            with self._mutex:
                if self._waiting:  # arrived during the write: the first of them writes next
                    self._waiting[0].hand_over()
                else:
                    self._writing = False

    def _write(self, batch: list[_Pending]) -> None:
        # The first of several identical deliveries in one round is the one that may be new.
        first: dict[tuple[str, str], _Pending] = {}
        for item in batch:
            first.setdefault((item.connector, item.delivery_id), item)
        try:
            inserted = self._insert.run(list(first.values()), datetime.now(UTC))
        except Exception as exc:
            if len(batch) > 1:  # do not let one bad row fail its neighbours: one by one
                for item in batch:
                    self._write([item])
                return
            batch[0].settle(error=exc)
            return
        for item in batch:
            key = (item.connector, item.delivery_id)
            item.settle(new=first[key] is item and key in inserted)


def newest_id(db: Database) -> int | None:
    """The id of the newest delivery in the inbox (None when empty): a cheap intake probe."""
    with db.transaction() as s:
        return s.scalar(select(func.max(InboxRow.id)))


def oldest_waiting(db: Database) -> datetime | None:
    """When the oldest delivery not yet tried to the end arrived (pending, or claimed and in
    processing); None when none is."""
    with db.transaction() as s:
        return s.scalar(
            select(func.min(InboxRow.received_at)).where(
                InboxRow.status.in_(("pending", "processing"))
            )
        )


def waiting_count(db: Database) -> int:
    """How many deliveries wait to be processed (pending, or claimed and in processing)."""
    with db.transaction() as s:
        return int(
            s.scalar(select(func.count()).where(InboxRow.status.in_(("pending", "processing"))))
            or 0
        )


def _due(now: datetime, lease: timedelta):  # type: ignore[no-untyped-def]
    return or_(
        and_(
            InboxRow.status.in_(("pending", "failed")),
            or_(InboxRow.next_attempt_at.is_(None), InboxRow.next_attempt_at <= now),
        ),
        and_(InboxRow.status == "processing", InboxRow.locked_at < now - lease),
    )


def claim(
    db: Database, worker_id: str, *, lease: timedelta, limit: int = 10, now: datetime | None = None
) -> list[int]:
    """Claim up to ``limit`` due deliveries for ``worker_id``; returns their ids, oldest first."""
    now = now or datetime.now(UTC)
    with db.transaction() as s:
        # Two statements in one transaction: lock up to ``limit`` due rows (skipping rows other
        # workers hold on PostgreSQL), then mark exactly those ours. As one UPDATE ... WHERE id
        # IN (SELECT ... LIMIT ... SKIP LOCKED), PostgreSQL may re-run the subquery and claim
        # every due row, whatever the limit. The UPDATE repeats the due test, so on SQLite (no
        # row locks, but one writer at a time) a row claimed meanwhile is not taken twice.
        due_ids = list(
            s.scalars(
                select(InboxRow.id)
                .where(_due(now, lease))
                .order_by(InboxRow.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not due_ids:
            return []
        claimed = s.scalars(
            update(InboxRow)
            .where(InboxRow.id.in_(due_ids), _due(now, lease))
            .values(
                status="processing",
                locked_by=worker_id,
                locked_at=now,
                attempts=InboxRow.attempts + 1,
            )
            .returning(InboxRow.id)
            .execution_options(synchronize_session=False)
        ).all()
    return sorted(claimed)


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with jitter: about 10s, 20s, 40s ... capped at an hour (+-50%)."""
    rng = rng or random.Random()
    base = min(BASE_BACKOFF * (2 ** max(0, attempts - 1)), MAX_BACKOFF)
    return base * rng.uniform(0.5, 1.5)


def settle_failure(
    db: Database,
    row_id: int,
    worker_id: str,
    error: str,
    *,
    max_attempts: int,
    permanent: bool = False,
    now: datetime | None = None,
) -> str | None:
    """Record a failed attempt: ``failed`` with a retry time, or ``dead``. Returns the status."""
    now = now or datetime.now(UTC)
    with db.transaction() as s:
        row = s.scalars(
            select(InboxRow)
            .where(
                InboxRow.id == row_id,
                InboxRow.status == "processing",
                InboxRow.locked_by == worker_id,
            )
            .with_for_update()
        ).first()
        if row is None:
            return None
        dead = permanent or row.attempts >= max_attempts
        row.status = "dead" if dead else "failed"
        row.next_attempt_at = None if dead else now + backoff(row.attempts)
        row.last_error = (
            ("permanent: " if permanent else f"attempt {row.attempts}/{max_attempts}: ") + error
        )[:2000]
        row.locked_by = None
        row.locked_at = None
        return row.status


def replay(db: Database, ids: list[int] | None = None, *, failed: bool = False) -> int:
    """Put deliveries back in the queue (``ids``, or with ``failed`` every failed/dead one)."""
    with db.transaction() as s:
        stmt = update(InboxRow).values(
            status="pending", attempts=0, next_attempt_at=None, locked_by=None, locked_at=None
        )
        if ids is not None:
            stmt = stmt.where(InboxRow.id.in_(ids), InboxRow.status != "processing")
        elif failed:
            stmt = stmt.where(InboxRow.status.in_(("failed", "dead")))
        else:
            return 0
        result = s.execute(stmt.execution_options(synchronize_session=False))
        return int(result.rowcount)  # type: ignore[attr-defined]
