"""Learners a rule enrolled but found no guide for, tried again once a guide has room."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from coachbridge.context import Context
from coachbridge.errors import CoachbridgeError
from coachbridge.programs.automation import after_commit, dispatcher_for
from coachbridge.programs.rules import NO_GUIDE, retry_no_guide
from coachbridge.store.tables import EnrollmentRow, PairingRow, PersonRow, ReviewEventRow
from sqlalchemy import select
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


def no_guide_programs(outcome: dict[str, Any] | None) -> set[str]:
    """The programs an event's stored outcome says a rule found no guide in."""
    return {
        r["program"]
        for r in (outcome or {}).get("rules", [])
        if isinstance(r, dict) and r.get("result") == NO_GUIDE and isinstance(r.get("program"), str)
    }


def waiting_learner_events(s: Session) -> list[int]:
    """Events whose rule enrolled a learner but found no guide, for learners who are still
    active, enrolled (not opted out) and without any pairing in that program since the event:
    the ones to try again once guides have room. Oldest first."""
    from sqlalchemy import String, cast

    rows = s.execute(
        select(
            ReviewEventRow.id,
            ReviewEventRow.person_id,
            ReviewEventRow.received_at,
            ReviewEventRow.outcome,
            EnrollmentRow.program_id,
        )
        .join(
            EnrollmentRow,
            (EnrollmentRow.person_id == ReviewEventRow.person_id)
            & (EnrollmentRow.role == "learner")
            & EnrollmentRow.opted_out.is_(False),
        )
        .join(PersonRow, PersonRow.id == ReviewEventRow.person_id)
        .where(
            ReviewEventRow.rules_status == "processed",
            # Narrowed in SQL: only events an outcome says found no guide are read in Python.
            cast(ReviewEventRow.outcome, String).like(f"%{NO_GUIDE}%"),
            PersonRow.status == "active",
            PersonRow.forgotten.is_(False),
        )
        .order_by(ReviewEventRow.id)
    ).all()
    if not rows:
        return []
    learners = sorted({person_id for _, person_id, _, _, _ in rows})
    newest: dict[tuple[str, int], datetime] = {}  # each learner's newest pairing per program
    for chunk in range(0, len(learners), 900):
        for program_id, learner_id, created in s.execute(
            select(PairingRow.program_id, PairingRow.learner_id, PairingRow.created_at).where(
                PairingRow.learner_id.in_(learners[chunk : chunk + 900])
            )
        ):
            key = (program_id, learner_id)
            if key not in newest or created > newest[key]:
                newest[key] = created
    found: list[int] = []
    for event_id, person_id, received, outcome, program_id in rows:
        key = (program_id, person_id)
        if key in newest and newest[key] >= received:
            continue  # paired since (by hand, or by a later event), whatever became of it
        if program_id in no_guide_programs(outcome) and (not found or found[-1] != event_id):
            found.append(event_id)
    return found


def retry_waiting_learners(app: Context, *, now: datetime | None = None) -> int:
    """Try again to pair the learners rules enrolled but found no guide for (a guide may have
    room now: a pairing completed or ended, a guide joined). Only the events' "no guide
    available" results are redone (``retry_no_guide``), one event per transaction, so a learner
    paired now gets the sessions, goal and messages the rule would have given. While a program
    has no free place, only its first waiting learner is tried (that try may enroll newly
    eligible guides); the rest wait for the next run. Returns how many learners were paired."""
    from coachbridge.matching.pool import free_capacity

    now = now or datetime.now(UTC)
    db = app.database()
    with db.transaction() as s:
        ids = waiting_learner_events(s)
    if not ids:
        return 0
    dispatcher = dispatcher_for(app)
    full_and_tried: set[str] = set()
    paired = 0
    for event_id in ids:
        try:
            with db.transaction() as s:
                event = s.get(ReviewEventRow, event_id)
                if event is None:
                    continue
                wanted = [
                    app.config.programs[p]
                    for p in sorted(no_guide_programs(event.outcome))
                    if p in app.config.programs
                ]
                room = [p for p in wanted if sum(free_capacity(s, p).values()) > 0]
                if not room and all(p.id in full_and_tried for p in wanted):
                    continue
                full_and_tried.update(p.id for p in wanted if p not in room)
                effects, count = retry_no_guide(s, app, event, now=now, dispatcher=dispatcher)
        except CoachbridgeError as exc:  # one event's trouble must not stop the daily run
            log.warning("waiting learner of review event %s: %s", event_id, exc)
            continue
        except Exception:  # nor a bug (its transaction was rolled back)
            log.exception("waiting learner of review event %s: retry failed", event_id)
            continue
        paired += count
        after_commit(app, effects, dispatcher)
    return paired
