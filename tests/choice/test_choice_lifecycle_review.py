"""Choice rounds at their edges, on SQLite and PostgreSQL: a held place declined before a pick,
alternatives that disappear, mail that failed, people who left meanwhile, and what a report or
a stored subject may say about someone."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from coachbridge.hris.privacy import forget_person
from coachbridge.jobs.daily import run_daily
from coachbridge.matching.service import match_program
from coachbridge.programs import choice
from coachbridge.programs.automation import process_review_events
from coachbridge.programs.service import opt_out
from coachbridge.reports import build_reports
from coachbridge.store import Database
from coachbridge.store.tables import (
    EnrollmentRow,
    GoalRow,
    NotificationRow,
    OfferRow,
    PairingRow,
    PersonRow,
    SessionRow,
)
from sqlalchemy import func, select, update

import tests.choice.choice_world as world
from tests.choice.choice_world import NOW, OUTBOX, Ctx, company, program, rule_and_review


def _offers(ctx: Ctx) -> list[OfferRow]:
    with ctx.db.transaction() as s:
        return list(s.scalars(select(OfferRow).order_by(OfferRow.id)))


def _pairings(ctx: Ctx) -> list[PairingRow]:
    with ctx.db.transaction() as s:
        return list(s.scalars(select(PairingRow).order_by(PairingRow.id)))


def _count(ctx: Ctx, table: type, *where: object) -> int:
    with ctx.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def test_a_rules_goal_and_sessions_follow_a_pick_after_the_held_place_was_declined(
    db: Database,
) -> None:
    ctx = Ctx(db, program(offer_alternatives=1))
    company(ctx, learners=0, guides=3)
    event_id = rule_and_review(ctx)
    process_review_events(ctx, [event_id], now=NOW)
    held = next(o for o in _offers(ctx) if o.rank == 1)
    alternative = next(o for o in _offers(ctx) if o.rank == 2)
    choice.decline(ctx, held.id, now=NOW + timedelta(hours=1))
    answer = choice.accept(ctx, alternative.id, now=NOW + timedelta(hours=2))
    assert answer.pairing_status == "active"
    assert _count(ctx, GoalRow) == 1
    assert _count(ctx, SessionRow, SessionRow.pairing_id == answer.pairing_id) == 2


def test_a_learner_whose_last_option_disappears_is_matched_again(db: Database) -> None:
    """Lea declined her held place and kept one alternative; Leo picks that guide, who is then
    full: Lea's page would be empty, so she is matched again at once."""
    ctx = Ctx(db, program(offer_alternatives=1))
    company(ctx, learners=2, guides=3)
    match_program(ctx, "mentoring", store_as="active", now=NOW)
    offers = _offers(ctx)
    lea_held = next(o for o in offers if o.learner_id == 1 and o.rank == 1)
    lea_alt = next(o for o in offers if o.learner_id == 1 and o.rank == 2)
    leo_alt = next(o for o in offers if o.learner_id == 2 and o.rank == 2)
    assert leo_alt.guide_id == lea_alt.guide_id  # the one guide both may pick
    choice.decline(ctx, lea_held.id, now=NOW + timedelta(hours=1))
    choice.accept(ctx, leo_alt.id, now=NOW + timedelta(hours=2))
    mine = [o for o in _offers(ctx) if o.learner_id == 1 and o.status == "open"]
    assert mine and all(o.round_id != lea_held.round_id for o in mine)
    assert lea_alt.guide_id not in {o.guide_id for o in mine}


def test_declining_the_held_place_does_not_make_a_learner_unmatched(db: Database) -> None:
    """With open alternatives left, a new matching run offers the learner nothing twice, and
    the round's expiry re-matches them without telling the owner they were left out."""
    ctx = Ctx(db, program(offer_alternatives=1))
    company(ctx, learners=1, guides=4)
    match_program(ctx, "mentoring", store_as="active", now=NOW)
    held = next(o for o in _offers(ctx) if o.rank == 1)
    choice.decline(ctx, held.id, now=NOW + timedelta(hours=1))
    again = match_program(ctx, "mentoring", store_as="active", now=NOW + timedelta(days=1))
    assert not again.created
    assert len({o.round_id for o in _offers(ctx)}) == 1
    OUTBOX.clear()
    run = run_daily(ctx, now=NOW + timedelta(days=5, minutes=1)).choices
    assert run.expired == 1 and run.rematched == 1
    assert not [m for m in OUTBOX if m.key.startswith("choice:owner")]


def test_an_offer_mail_that_failed_is_sent_by_the_next_daily_run(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = Ctx(db, program(offer_alternatives=0, respond_within_days=10))
    company(ctx, learners=1, guides=1)
    match_program(ctx, "mentoring", store_as="active", now=NOW)

    def down(self: object, message: object) -> str:
        raise ConnectionError("smtp down")

    monkeypatch.setattr(world.Outbox, "send", down)
    assert run_daily(ctx, now=NOW).choices.mailed == 0
    monkeypatch.undo()
    OUTBOX.clear()
    assert run_daily(ctx, now=NOW + timedelta(days=1)).choices.mailed == 1
    assert [m.key for m in OUTBOX if m.key.startswith("choice:")] == ["choice:offer:1"]
    assert run_daily(ctx, now=NOW + timedelta(days=2)).choices.mailed == 0  # once sent, done


def test_a_mail_for_an_offer_answered_before_it_went_out_is_not_sent(db: Database) -> None:
    ctx = Ctx(db, program(offer_alternatives=0))
    company(ctx, learners=1, guides=1)
    match_program(ctx, "mentoring", store_as="active", now=NOW)
    (held,) = _offers(ctx)
    with db.transaction() as s:
        s.add(
            NotificationRow(
                key=f"choice:offer:{held.id}",
                channel="choice",
                subject="x",
                status="failed",
                created_at=NOW,
            )
        )
    choice.accept(ctx, held.id, now=NOW)
    OUTBOX.clear()
    choice.mail_choices(ctx, now=NOW + timedelta(days=1))
    assert not [m for m in OUTBOX if m.key == f"choice:offer:{held.id}"]


def test_a_request_subject_names_nobody(db: Database) -> None:
    """Subjects are stored; erasing the learner must leave no trace in the guide's messages."""
    ctx = Ctx(db, program(choice="guide_accepts"))
    company(ctx, learners=1, guides=2)
    match_program(ctx, "mentoring", store_as="active", now=NOW)
    choice.mail_choices(ctx, now=NOW)
    with db.transaction() as s:
        name = s.get(PersonRow, 1).name  # type: ignore[union-attr]
        forget_person(s, s.get(PersonRow, 1), actor="test", now=NOW + timedelta(hours=1))
    with db.transaction() as s:
        subjects = list(s.scalars(select(NotificationRow.subject)))
    assert subjects and not any(name in subject for subject in subjects)


def test_decline_reasons_are_shown_when_enough_people_gave_them_not_enough_declines(
    db: Database,
) -> None:
    ctx = Ctx(db, program(choice="guide_accepts", capacity=2))
    company(ctx, learners=4, guides=3)
    with db.transaction() as s:
        s.execute(update(EnrollmentRow).values(created_at=NOW))
    match_program(ctx, "mentoring", store_as="active", now=NOW)
    declined = 0
    for o in _offers(ctx):
        if o.guide_id == 101:
            choice.decline(ctx, o.id, reason="On parental leave until June", now=NOW)
            declined += 1
    assert declined >= 2  # one guide, several learners
    for day, o in enumerate([o for o in _offers(ctx) if o.status == "open"], start=2):
        choice.accept(ctx, o.id, now=NOW + timedelta(hours=day))
    with db.transaction() as s:
        report = build_reports(s, [ctx.prog], min_group_size=2, now=NOW + timedelta(days=10))[0]
    # One guide's words, however many learners they were given to: not in the report.
    assert "parental" not in json.dumps(report["choice"], default=str).lower()


def test_a_learner_who_opted_out_is_neither_reminded_nor_paired_at_expiry(db: Database) -> None:
    ctx = Ctx(db, program(offer_alternatives=0, respond_within_days=4))
    company(ctx, learners=1, guides=2)
    match_program(ctx, "mentoring", store_as="active", now=NOW)
    opt_out(ctx, "mentoring", "p1@example.com")
    OUTBOX.clear()
    assert run_daily(ctx, now=NOW + timedelta(days=2)).choices.reminded == 0
    run = run_daily(ctx, now=NOW + timedelta(days=4, minutes=1)).choices
    assert run.started == 0 and run.rematched == 0
    assert [p.status for p in _pairings(ctx)] == ["withdrawn"]
    assert _count(ctx, SessionRow) == 0
    assert not [m for m in OUTBOX if m.to_email == "p1@example.com"]
