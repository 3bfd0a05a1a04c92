"""The inbox: raw deliveries stored on receipt, claimed and settled by workers.

Row life: ``pending`` -> ``processing`` (claimed: ``locked_by``/``locked_at`` set, ``attempts``
counted) -> ``done``, or ``failed`` (retried at ``next_attempt_at``) and finally ``dead`` after
``[server] max_attempts``. A ``processing`` row whose lock is older than the lease (its worker
died) is due again. On PostgreSQL claims use ``FOR UPDATE SKIP LOCKED`` and the processing
transaction keeps the row locked, so no two workers ever process one delivery; every state
change is conditional on ``locked_by`` so a worker that lost its lease cannot settle the row.
"""

from __future__ import annotations

import hashlib
import queue
import random
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from coachbridge.store import Database
from coachbridge.store.tables import InboxRow
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

#: First retry after about this long, doubling per attempt up to ``MAX_BACKOFF``.
BASE_BACKOFF = timedelta(seconds=10)
MAX_BACKOFF = timedelta(hours=1)


def body_digest(body: bytes) -> str:
    """The delivery id of a scheme without an id header."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _insert(dialect: str):  # type: ignore[no-untyped-def]
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _insert_stmt(insert, connector: str, delivery_id: str, content_type: str, body: bytes):  # type: ignore[no-untyped-def]
    return (
        insert(InboxRow)
        .values(
            connector=connector,
            delivery_id=delivery_id,
            content_type=content_type[:200],
            body=body,
            status="pending",
            attempts=0,
            received_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=["connector", "delivery_id"])
        .returning(InboxRow.id)
    )


def accept(db: Database, connector: str, delivery_id: str, content_type: str, body: bytes) -> bool:
    """Store a verified delivery; True when new, False when it was already received.

    One ``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` decides the answer: a concurrent
    duplicate meets the unique constraint (connector, delivery_id) and is answered as a
    duplicate, never an error, and the answer is given only after the commit.
    """
    insert = _insert(db.url.get_backend_name())
    try:
        with db.transaction() as s:
            new_id = s.execute(_insert_stmt(insert, connector, delivery_id, content_type, body))
            return new_id.scalar() is not None
    except IntegrityError:  # belt and braces: the conflict clause already covers it
        return False


@dataclass
class _Pending:
    connector: str
    delivery_id: str
    content_type: str
    body: bytes
    done: Future[bool] = field(default_factory=Future)


class GroupCommitter:
    """Stores concurrent deliveries in one transaction each round (group commit).

    Each request thread hands its delivery over and waits; a writer thread inserts every
    delivery waiting at that moment in one transaction and, after the commit, gives each
    request its own answer (new or duplicate, decided by that same transaction). A commit
    costs a disk flush, so sharing it between concurrent deliveries is what lets intake keep
    up under load, without answering anything before it is stored.
    """

    def __init__(self, db: Database, *, max_batch: int = 256) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._insert = _insert(db.url.get_backend_name())

    def __repr__(self) -> str:
        return f"<GroupCommitter {self.db!r}>"

    def submit(
        self,
        connector: str,
        delivery_id: str,
        content_type: str,
        body: bytes,
        timeout: float = 60.0,
    ) -> bool:
        """Store one delivery; True when new. Raises what the store raised."""
        self._start()
        item = _Pending(connector, delivery_id, content_type, body)
        self._queue.put(item)
        return item.done.result(timeout=timeout)

    def _start(self) -> None:
        # Started on first use, in the serving process (gunicorn forks before loading the app).
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._run, name="coachbridge-inbox-writer", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch: list[_Pending]) -> None:
        # The first of several identical deliveries in one round is the one that may be new.
        first: dict[tuple[str, str], _Pending] = {}
        for item in batch:
            first.setdefault((item.connector, item.delivery_id), item)
        now = datetime.now(UTC)
        rows = [
            {
                "connector": p.connector,
                "delivery_id": p.delivery_id,
                "content_type": p.content_type[:200],
                "body": p.body,
                "status": "pending",
                "attempts": 0,
                "received_at": now,
            }
            for p in first.values()
        ]
        stmt = (
            self._insert(InboxRow)
            .on_conflict_do_nothing(index_elements=["connector", "delivery_id"])
            .returning(InboxRow.connector, InboxRow.delivery_id)
        )
        try:
            with self.db.transaction() as s:
                inserted = {(c, d) for c, d in s.execute(stmt, rows)}
        except Exception as exc:
            if len(batch) > 1:  # do not let one bad row fail its neighbours: one by one
                for item in batch:
                    self._write([item])
                return
            batch[0].done.set_exception(exc)
            return
        for item in batch:
            key = (item.connector, item.delivery_id)
            item.done.set_result(first[key] is item and key in inserted)


def newest_id(db: Database) -> int | None:
    """The id of the newest delivery in the inbox (None when empty): a cheap intake probe."""
    with db.transaction() as s:
        return s.scalar(select(func.max(InboxRow.id)))


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
