"""The audit log: who did what to which object, and when; ``audit`` writes an entry in the
caller's transaction, ``audit_entries`` reads the log (``coachbridge audit``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from coachbridge.store.db import Database
from coachbridge.store.tables import AuditRow
from sqlalchemy import select
from sqlalchemy.orm import Session


def audit(
    s: Session,
    actor: str,
    action: str,
    object_type: str,
    object_id: object,
    *,
    at: datetime | None = None,
    **details: object,
) -> None:
    """Record who did what to which object (the ``coachbridge audit`` log).

    ``at`` defaults to the wall clock; callers that run on a given clock (rules applied to an
    event, the demo) pass their ``now`` so that time-based checks such as cooldowns agree.
    """
    s.add(
        AuditRow(
            at=at or datetime.now(UTC),
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            details=dict(details),
        )
    )


def audit_entries(
    db: Database,
    *,
    action: str | None = None,
    since: datetime | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """The newest ``limit`` entries first (of one action, at or after ``since``)."""
    with db.transaction() as s:
        stmt = select(AuditRow).order_by(AuditRow.at.desc(), AuditRow.id.desc()).limit(limit)
        if action:
            stmt = stmt.where(AuditRow.action == action)
        if since is not None:
            stmt = stmt.where(AuditRow.at >= since)
        return [
            {
                "id": r.id,
                "at": r.at,
                "actor": r.actor,
                "action": r.action,
                "object_type": r.object_type,
                "object_id": r.object_id,
                "details": r.details,
            }
            for r in s.scalars(stmt)
        ]
