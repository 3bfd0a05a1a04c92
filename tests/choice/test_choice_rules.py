"""A review rule in a program with a choice: the rule's learner gets offers; the rule's goal,
sessions and messages come when the pairing starts, as they do for an active pairing today."""

from __future__ import annotations

from datetime import timedelta

from coachbridge.programs import choice
from coachbridge.programs.automation import process_review_events
from coachbridge.store import Database
from coachbridge.store.tables import (
    GoalRow,
    NotificationRow,
    OfferRow,
    PairingRow,
    SessionRow,
)
from sqlalchemy import func, select

from tests.choice.choice_world import NOW, OUTBOX, Ctx, company, program, rule_and_review


def _count(db: Database, table: type, *where: object) -> int:
    with db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def test_a_rule_offers_then_starts_with_its_goal_and_sessions(db: Database) -> None:
    ctx = Ctx(db, program(offer_alternatives=1))
    company(ctx, learners=0, guides=3)
    event_id = rule_and_review(ctx)
    OUTBOX.clear()
    outcomes = process_review_events(ctx, [event_id], now=NOW)
    (result,) = outcomes[event_id]["rules"]
    assert result["result"] == "offered"
    with db.transaction() as s:
        pairing = s.scalars(select(PairingRow)).one()
        assert pairing.status == "offered" and pairing.source_key == f"rule:{event_id}:0"
        offers = list(s.scalars(select(OfferRow).order_by(OfferRow.rank)))
    # Nothing starts yet: no goal, no session, no pairing message; the offer is mailed.
    assert _count(db, GoalRow) == 0 and _count(db, SessionRow) == 0
    assert [m.key for m in OUTBOX] == [f"choice:offer:{offers[0].id}"]
    # The learner picks the alternative: the new pairing carries the rule and starts.
    answer = choice.accept(ctx, offers[1].id, now=NOW + timedelta(days=1))
    with db.transaction() as s:
        started = s.get(PairingRow, answer.pairing_id)
        assert started.status == "active" and started.source_key == f"rule:{event_id}:0"
        assert s.get(PairingRow, pairing.id).source_key is None
        goal = s.scalars(select(GoalRow)).one()
        assert goal.title == "Plan after the 2027-H1 review" and goal.pairing_id == started.id
    assert _count(db, SessionRow, SessionRow.pairing_id == answer.pairing_id) == 2
    assert _count(db, NotificationRow, NotificationRow.key.like(f"pairing:{started.id}:%")) == 2
    # Repeating the event changes nothing.
    again = process_review_events(ctx, [event_id], now=NOW + timedelta(days=2))
    assert again == {} or again[event_id]["rules"][0]["result"] != "offered"
    assert _count(db, PairingRow) == 2 and _count(db, GoalRow) == 1
