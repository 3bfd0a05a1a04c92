"""The audit log: who did what to which object, and when (``coachbridge audit``)."""

from __future__ import annotations

from datetime import UTC, datetime

from coachbridge.store.tables import AuditRow
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
