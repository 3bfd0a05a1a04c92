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
import random
from datetime import UTC, datetime, timedelta

from coachbridge.store import Database
from coachbridge.store.tables import InboxRow
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

#: First retry after about this long, doubling per attempt up to ``MAX_BACKOFF``.
BASE_BACKOFF = timedelta(seconds=10)
MAX_BACKOFF = timedelta(hours=1)


def body_digest(body: bytes) -> str:
    """The delivery id of a scheme without an id header."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def accept(db: Database, connector: str, delivery_id: str, content_type: str, body: bytes) -> bool:
    """Store a verified delivery; True when new, False when it was already received.

    The insert and its commit decide the answer: a concurrent duplicate hits the unique
    constraint (connector, delivery_id) and is answered as a duplicate, never an error.
    """
    with db.transaction() as s:
        exists = s.scalars(
            select(InboxRow.id).where(
                InboxRow.connector == connector, InboxRow.delivery_id == delivery_id
            )
        ).first()
        if exists is not None:
            return False
    try:
        with db.transaction() as s:
            s.add(
                InboxRow(
                    connector=connector,
                    delivery_id=delivery_id,
                    content_type=content_type[:200],
                    body=body,
                    status="pending",
                    attempts=0,
                )
            )
    except IntegrityError:
        return False
    return True


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
        # One statement: pick due rows (skipping rows other workers hold on PostgreSQL) and mark
        # them ours. The outer WHERE repeats the due test, so on SQLite (no row locks, but one
        # writer at a time) a row claimed meanwhile is not taken twice.
        due_ids = (
            select(InboxRow.id)
            .where(_due(now, lease))
            .order_by(InboxRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
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
