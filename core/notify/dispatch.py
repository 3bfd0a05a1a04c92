"""Sending notifications at least once, each recognisable by its stable key.

1. Inside the unit of work that creates a pairing, ``queue`` records one ``NotificationRow`` per
   channel and recipient (status ``pending``), keyed by a stable key. The key is unique, so
   re-processing an event queues nothing new.
2. After that transaction commits, ``send_pending`` builds each message from the store, sends
   it and marks the row ``sent``/``skipped``/``failed``. A crash between sending and marking
   leaves the row ``pending``; the next run sends it again with the same key (and the same
   ``Message-ID`` for mail), so the repeat is recognisable rather than a second, different mail.

3. A send that fails is marked ``failed`` with ``next_attempt_at`` set by exponential backoff
   (``RETRY_BASE`` doubled per attempt); ``retry_failed`` (the worker's housekeeping) sends such
   rows again, with the same key and ``Message-ID``, until ``MAX_ATTEMPTS`` tries. After the last
   one ``next_attempt_at`` is cleared and the row stays ``failed`` for good.

On PostgreSQL a row is locked (``FOR UPDATE SKIP LOCKED``) while it is sent, so two workers never
send the same row at the same time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from coachbridge import metrics
from coachbridge.config import validation_problems
from coachbridge.errors import CoachbridgeError, ConfigError
from coachbridge.notify.base import Notifier
from coachbridge.notify.messages import InvitationCache, pairing_key, pairing_message
from coachbridge.store import Database
from coachbridge.store.tables import NotificationRow
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

log = logging.getLogger("coachbridge.notify")

#: How many times one notification is tried in all before it stays ``failed``.
MAX_ATTEMPTS = 6
#: The wait after the first failure; doubled after each further one (1, 2, 4, 8, 16 minutes).
RETRY_BASE = timedelta(minutes=1)


def retry_delay(attempts: int) -> timedelta:
    """The wait before the next try after ``attempts`` failed tries (exponential backoff)."""
    return RETRY_BASE * (2 ** max(0, attempts - 1))


def build_notifiers(
    sections: Mapping[str, Mapping[str, Any]],
    classes: Mapping[str, type[Notifier]],
    file: str = "config",
) -> dict[str, Notifier]:
    """One notifier per ``[notify.<name>]`` section; just ``log`` when there is none.

    Every problem is a ``ConfigError`` naming ``notify.<name>.<field>``.
    """
    if not sections:
        sections = {"log": {}}
    problems: list[str] = []
    out: dict[str, Notifier] = {}
    for name, section in sections.items():
        cls = classes.get(name)
        if cls is None:
            known = ", ".join(sorted(classes)) or "none installed"
            problems.append(f"{file}: notify.{name}: unknown notifier (installed: {known})")
            continue
        try:
            out[name] = cls(cls.config_model.model_validate(dict(section)))
        except ValidationError as exc:
            problems.extend(validation_problems(exc, file, ("notify", name)))
    if problems:
        raise ConfigError(problems)
    return out


class Dispatcher:
    """Queues and sends notifications over every configured channel."""

    def __init__(self, notifiers: Mapping[str, Notifier]) -> None:
        self.notifiers = dict(notifiers)

    def __repr__(self) -> str:
        return f"<Dispatcher {sorted(self.notifiers)}>"

    def queue_pairing(self, s: Session, pairing_id: int, people: Mapping[str, int]) -> list[str]:
        """Queue the pairing message for each side (``{"learner": id, "guide": id}``); keys back."""
        wanted = {
            pairing_key(pairing_id, role, channel): (role, person_id, channel)
            for role, person_id in people.items()
            for channel in self.notifiers
        }
        keys = list(wanted)
        queued = set(s.scalars(select(NotificationRow.key).where(NotificationRow.key.in_(keys))))
        for key, (role, person_id, channel) in wanted.items():
            if key not in queued:
                s.add(
                    NotificationRow(
                        key=key,
                        channel=channel,
                        recipient_id=person_id,
                        subject=f"pairing {pairing_id} ({role})",
                        status="pending",
                    )
                )
        s.flush()
        return keys

    def send_pending(
        self, db: Database, keys: Iterable[str] | None = None, limit: int = 200
    ) -> int:
        """Send pending notifications (the given keys, or any); returns how many were handled."""
        with db.transaction() as s:
            stmt = select(NotificationRow.id).where(NotificationRow.status == "pending")
            if keys is not None:
                stmt = stmt.where(NotificationRow.key.in_(list(keys)))
            ids = list(s.scalars(stmt.order_by(NotificationRow.id).limit(limit)))
        handled = 0
        invitations = InvitationCache()
        for row_id in ids:
            with db.transaction() as s:
                row = s.scalars(
                    select(NotificationRow)
                    .where(NotificationRow.id == row_id, NotificationRow.status == "pending")
                    .with_for_update(skip_locked=True)
                ).first()
                if row is None:  # sent meanwhile by another worker
                    continue
                self._send_row(s, row, invitations=invitations)
                handled += 1
        return handled

    def retry_failed(
        self,
        db: Database,
        *,
        now: datetime | None = None,
        limit: int = 200,
        budget_seconds: float = 10.0,
    ) -> int:
        """Send again the failed notifications whose backoff has passed; returns how many.

        Only rows this dispatcher queued (pairing keys) carry ``next_attempt_at``; rows that
        used up ``MAX_ATTEMPTS`` have none and are left alone.
        """
        now = now or datetime.now(UTC)
        stop_at = time.monotonic() + budget_seconds
        due = (
            NotificationRow.status == "failed",
            NotificationRow.next_attempt_at.is_not(None),
            NotificationRow.next_attempt_at <= now,
        )
        with db.transaction() as s:
            ids = list(
                s.scalars(
                    select(NotificationRow.id)
                    .where(*due)
                    .order_by(NotificationRow.next_attempt_at, NotificationRow.id)
                    .limit(limit)
                )
            )
        handled = 0
        for row_id in ids:
            with db.transaction() as s:
                row = s.scalars(
                    select(NotificationRow)
                    .where(NotificationRow.id == row_id, *due)
                    .with_for_update(skip_locked=True)
                ).first()
                if row is None:  # retried meanwhile by another worker
                    continue
                self._send_row(s, row, now=now)
                handled += 1
            if time.monotonic() > stop_at:
                # A channel that is down costs its timeout per row: waiting that out for every
                # due row would stall the worker's inbox; the rest stay due for the next round.
                break
        return handled

    def _failed(self, row: NotificationRow, detail: str, now: datetime) -> None:
        row.status, row.detail = "failed", detail[:1000]
        metrics.notification(row.channel, "failed")
        if row.attempts < MAX_ATTEMPTS:
            row.next_attempt_at = now + retry_delay(row.attempts)
        else:
            row.next_attempt_at = None
            log.warning("notification %s: giving up after %s attempts", row.key, row.attempts)

    def _send_row(
        self,
        s: Session,
        row: NotificationRow,
        now: datetime | None = None,
        *,
        invitations: InvitationCache | None = None,
    ) -> None:
        now = now or datetime.now(UTC)
        notifier = self.notifiers.get(row.channel)
        if notifier is None:
            row.status, row.detail = "skipped", f"channel {row.channel!r} is not configured"
            return
        message = pairing_message(s, row.key, invitations=invitations)
        if message is None:
            row.status, row.detail = "skipped", "nothing to send (pairing or person gone)"
            return
        row.subject = message.subject[:500]
        row.attempts = (row.attempts or 0) + 1
        try:
            result = notifier.send(message)
        except CoachbridgeError as exc:
            self._failed(row, str(exc), now)
            log.warning("notification %s failed (attempt %s): %s", row.key, row.attempts, exc)
            return
        except Exception as exc:  # a plugin channel's bug must not stop the worker
            self._failed(row, f"{type(exc).__name__}", now)
            log.exception("notifier %s failed on %s", row.channel, row.key)
            return
        row.status = "skipped" if result.startswith("skipped") else "sent"
        metrics.notification(row.channel, row.status)
        row.detail = result[:1000]
        row.next_attempt_at = None
        row.sent_at = datetime.now(UTC)
