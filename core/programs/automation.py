"""Review events through the rules, one transaction each, and what follows each commit.

Callers: ``coachbridge sync`` (events found by a sync after the connector's ``rules_since``) and
the webhook worker (every delivered event). Events about a person not yet in the store stay
``unknown_person``; ``retry_unknown_person_events`` runs them once a sync brings the person
(callers that poll, such as the worker, check ``people_watermark`` first so an event about
someone who never arrives is not re-run every round).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from coachbridge.context import Context
from coachbridge.programs.rules import Effects, RuleFailure, apply_rules
from coachbridge.store import Database
from coachbridge.store.people import people_state
from coachbridge.store.tables import ReviewEventRow, SessionRow
from sqlalchemy import select

if TYPE_CHECKING:
    from coachbridge.notify.dispatch import Dispatcher

log = logging.getLogger(__name__)


def after_commit(ctx: Context, effects: Effects, dispatcher: Dispatcher | None = None) -> None:
    """Send the queued notifications and tell observers, once the store has committed."""
    if dispatcher is not None and effects.notification_keys:
        # All of them: a batch of review events queues far more than one round's default.
        keys = effects.notification_keys
        dispatcher.send_pending(ctx.database(), keys, limit=len(keys))
    if effects.pairings and any(p.choice != "none" for p in ctx.config.programs.values()):
        # Offers and requests the rules made go to the person who must answer.
        from coachbridge.programs.choice import mail_choices

        mail_choices(ctx, now=datetime.now(UTC))
    if effects.outcomes:
        _observe_review_events(ctx, effects.outcomes)
    # New pairings were announced by the matching service when their transaction committed.
    if not effects.sessions:
        return
    from coachbridge.pairings.scheduling import session_model

    with ctx.database().transaction() as s:
        for srow in s.scalars(select(SessionRow).where(SessionRow.id.in_(effects.sessions))):
            try:
                model = session_model(srow)
            except Exception:  # observers are best-effort; a model mismatch must not block
                log.debug("session %s not passed to observers", srow.id, exc_info=True)
                continue
            ctx.registry.session_scheduled(model)


def _observe_review_events(ctx: Context, outcomes: dict[int, dict[str, Any]]) -> None:
    """Tell ``coachbridge_on_review_event`` observers what the rules did with each event."""
    from coachbridge.domain import ReviewEvent
    from pydantic import ValidationError

    with ctx.database().transaction() as s:
        rows = list(s.scalars(select(ReviewEventRow).where(ReviewEventRow.id.in_(list(outcomes)))))
    for row in rows:
        try:
            model = ReviewEvent(
                type=row.type,
                cycle=row.cycle,
                person_id=row.person_id,
                subject_external_id=row.subject_external_id,
                subject_email=row.subject_email,
                raw_rating=row.raw_rating,
                scale_min=row.scale_min,
                scale_max=row.scale_max,
                rating=row.rating,
                completed_at=row.completed_at,
                source=row.source,
                source_event_id=row.source_event_id,
            )
        except ValidationError:  # observers are best-effort; a stored oddity must not block
            log.debug("review event %s not passed to observers", row.id, exc_info=True)
            continue
        ctx.registry.review_event(model, outcomes[row.id])


def announce_pairings(ctx: Context, pairing_ids: Sequence[int]) -> int:
    """Mail both sides of each active pairing the "you have been paired" message (with its
    sessions' invitation), after the commit that made the pairings; returns how many messages
    were queued. A message's key names its pairing, side and channel, so announcing a pairing
    again sends nothing new. For pairings made outside matching and the rules, such as the
    ones a sync starts when someone moves to another manager."""
    if not pairing_ids:
        return 0
    from coachbridge.store.tables import PairingRow

    dispatcher = dispatcher_for(ctx)
    keys: list[str] = []
    with ctx.database().transaction() as s:
        for pairing_id in dict.fromkeys(pairing_ids):
            row = s.get(PairingRow, pairing_id)
            if row is None or row.status != "active":
                continue
            people = {"learner": row.learner_id, "guide": row.guide_id}
            keys += dispatcher.queue_pairing(s, row.id, people)
    if keys:
        dispatcher.send_pending(ctx.database(), keys, limit=len(keys))
    return len(keys)


def dispatcher_for(ctx: Context) -> Dispatcher:
    """The notification dispatcher for the config's ``[notify.*]`` sections."""
    from coachbridge.notify.dispatch import Dispatcher, build_notifiers

    return Dispatcher(build_notifiers(ctx.config.notify, ctx.registry.notifiers, ctx.config.label))


def process_review_events(
    app: Context,
    event_ids: Sequence[int],
    *,
    now: datetime | None = None,
    retry_unknown: bool = True,
) -> dict[int, dict[str, Any]]:
    """Apply the rules to the stored events ``event_ids``, one transaction each. Idempotent.

    Then (``retry_unknown``) events still waiting for their person are retried, since the sync
    that called this may have just brought them. Returns the outcome per processed event.
    """
    now = now or datetime.now(UTC)
    db = app.database()
    dispatcher = dispatcher_for(app)
    outcomes: dict[int, dict[str, Any]] = {}
    for event_id in event_ids:
        with db.transaction() as s:
            event = s.get(ReviewEventRow, event_id)
            if event is None:
                continue
            try:
                effects = apply_rules(s, app, event, now=now, dispatcher=dispatcher)
            except RuleFailure as exc:
                event.rules_status = "failed"
                event.outcome = {"error": str(exc)}
                log.warning("review event %s: %s", event_id, exc)
                continue
        outcomes.update(effects.outcomes)
        after_commit(app, effects, dispatcher)
    if retry_unknown:
        outcomes.update(retry_unknown_person_events(app, now=now, dispatcher=dispatcher))
    return outcomes


def people_watermark(db: Database) -> tuple[int, int | None, datetime | None, int]:
    """What changes whenever a person is added, updated or linked to another connector's id:
    (count, max id, last update, number of external ids).

    Events waiting for their person can only resolve after one of these moved (a sync that only
    links an existing person to a new connector's id changes just the last), so a poller
    remembers this and retries only when it moved.
    """
    with db.transaction() as s:
        return people_state(s)


def retry_unknown_person_events(
    app: Context, *, now: datetime | None = None, dispatcher: Dispatcher | None = None
) -> dict[int, dict[str, Any]]:
    """Run the rules on events whose person was unknown and is now in the store."""
    now = now or datetime.now(UTC)
    db = app.database()
    dispatcher = dispatcher or dispatcher_for(app)
    with db.transaction() as s:
        ids = list(
            s.scalars(
                select(ReviewEventRow.id)
                .where(ReviewEventRow.rules_status == "unknown_person")
                .order_by(ReviewEventRow.id)
            )
        )
    outcomes: dict[int, dict[str, Any]] = {}
    for event_id in ids:
        with db.transaction() as s:
            event = s.get(ReviewEventRow, event_id)
            if event is None or event.rules_status != "unknown_person":
                continue
            try:
                effects = apply_rules(s, app, event, now=now, dispatcher=dispatcher)
            except RuleFailure as exc:
                event.rules_status = "failed"
                event.outcome = {"error": str(exc)}
                continue
        outcomes.update(effects.outcomes)
        after_commit(app, effects, dispatcher)
    return outcomes
