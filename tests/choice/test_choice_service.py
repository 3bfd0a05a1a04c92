"""Offers and requests in the store: made by matching, answered, expired, re-matched."""

from __future__ import annotations

from datetime import timedelta

import pytest
from coachbridge.errors import UserError
from coachbridge.jobs.daily import run_daily
from coachbridge.links import LinkExpired, LinkForged, LinkUsed
from coachbridge.matching.service import match_program
from coachbridge.programs import choice
from coachbridge.store import Database
from coachbridge.store.tables import NotificationRow, OfferRow, PairingRow, SessionRow
from sqlalchemy import func, select

from tests.choice.choice_world import NOW, OUTBOX, Ctx, company, program


def _offers(ctx: Ctx) -> list[OfferRow]:
    with ctx.db.transaction() as s:
        return list(s.scalars(select(OfferRow).order_by(OfferRow.id)))


def _pairings(ctx: Ctx) -> dict[int, PairingRow]:
    with ctx.db.transaction() as s:
        return {p.id: p for p in s.scalars(select(PairingRow))}


def _count(ctx: Ctx, table: type, *where: object) -> int:
    with ctx.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def test_learner_picks_makes_offers_and_holds_the_optimum(db: Database) -> None:
    ctx = Ctx(db, program(offer_alternatives=2))
    _lids, gids = company(ctx, learners=2, guides=4)
    out = match_program(ctx, "mentoring", store_as="active", now=NOW)
    assert out.created and len(out.created) == 2
    pairings = _pairings(ctx)
    assert {p.status for p in pairings.values()} == {"offered"}
    assert all(p.activated_at is None for p in pairings.values())
    offers = _offers(ctx)
    firsts = [o for o in offers if o.rank == 1]
    assert len(firsts) == 2
    for first in firsts:
        assert (
            first.pairing_id in pairings and pairings[first.pairing_id].guide_id == first.guide_id
        )
        alts = [o for o in offers if o.round_id == first.id and o.rank > 1]
        # Two guides are left with a free place once the optimum took two: both offered,
        # best first, never the learner's own optimum.
        assert [o.rank for o in alts] == [2, 3]
        assert first.guide_id not in {o.guide_id for o in alts}
        assert alts[0].score >= alts[1].score
        assert {o.guide_id for o in alts} <= set(gids) - {p.guide_id for p in pairings.values()}
        assert first.expires_at == NOW + timedelta(days=5)
    # No session is planned before the pairing starts.
    assert _count(ctx, SessionRow) == 0


def test_accepting_the_optimum_starts_the_pairing_at_once(db: Database) -> None:
    ctx = Ctx(db, program())
    company(ctx, learners=1, guides=3)
    match_program(ctx, "mentoring", store_as="active", now=NOW)
    first = next(o for o in _offers(ctx) if o.rank == 1)
    answer = choice.accept(ctx, first.id, now=NOW)
    assert answer.status == "accepted" and answer.pairing_status == "active"
    pairing = _pairings(ctx)[first.pairing_id]
    assert pairing.status == "active" and pairing.activated_at == NOW
    assert _count(ctx, SessionRow, SessionRow.pairing_id == pairing.id) == 6
    # The other options closed with it; the pairing messages were queued and sent.
    assert {o.status for o in _offers(ctx) if o.id != first.id} == {"withdrawn"}
    assert _count(ctx, NotificationRow, NotificationRow.key.like(f"pairing:{pairing.id}:%")) == 2
    with pytest.raises(LinkUsed):
        choice.accept(ctx, first.id, now=NOW)


def test_picking_an_alternative_releases_the_held_place(db: Database) -> None:
    ctx = Ctx(db, program(offer_alternatives=2))
    company(ctx, learners=2, guides=3)
    match_program(ctx, "mentoring", store_as="active", now=NOW)
    offers = _offers(ctx)
    # One guide is left free after the optimum: both learners are offered it.
    alts = [o for o in offers if o.rank == 2]
    assert len(alts) == 2 and alts[0].guide_id == alts[1].guide_id
    a, b = alts
    answer = choice.accept(ctx, a.id, now=NOW)
    assert answer.pairing_status == "active"
    pairings = _pairings(ctx)
    held = pairings[next(o.pairing_id for o in offers if o.id == a.round_id)]
    assert held.status == "withdrawn" and held.activated_at is None
    assert pairings[answer.pairing_id].guide_id == a.guide_id
    # The guide is full now: the alternative disappeared from the other learner's offers.
    after = {o.id: o for o in _offers(ctx)}
    assert after[b.id].status == "withdrawn"
    with pytest.raises(LinkUsed):
        choice.accept(ctx, b.id, now=NOW)


def test_offer_expiry_takes_the_optimal_guide_and_reminds_first(db: Database) -> None:
    ctx = Ctx(db, program(respond_within_days=4))
    company(ctx, learners=1, guides=2)
    OUTBOX.clear()
    match_program(ctx, "mentoring", store_as="active", now=NOW)
    first = next(o for o in _offers(ctx) if o.rank == 1)
    # Mailed when made? match_program alone does not mail; the daily run mails what is unsent.
    daily = run_daily(ctx, now=NOW + timedelta(days=2))
    assert daily.choices is not None and daily.choices.reminded == 1
    keys = [m.key for m in OUTBOX]
    assert f"choice:offer:{first.id}" in keys and f"choice:remind:{first.id}" in keys
    offer_mail = next(m for m in OUTBOX if m.key == f"choice:offer:{first.id}")
    assert "http://cb.test/offers/" in offer_mail.body and offer_mail.to_email == "p1@example.com"
    # A second run the same day sends nothing again.
    again = run_daily(ctx, now=NOW + timedelta(days=2, hours=1))
    assert again.choices is not None and again.choices.reminded == 0 and again.choices.mailed == 0
    daily = run_daily(ctx, now=NOW + timedelta(days=4, minutes=1))
    assert daily.choices is not None and daily.choices.started == 1
    pairing = _pairings(ctx)[first.pairing_id]
    assert pairing.status == "active"
    assert {o.status for o in _offers(ctx)} == {"expired"}
    assert _count(ctx, SessionRow, SessionRow.pairing_id == pairing.id) > 0


def test_guide_decline_rematches_the_learner_alone_without_that_guide(db: Database) -> None:
    ctx = Ctx(db, program(choice="guide_accepts", max_requests=2))
    company(ctx, learners=1, guides=3)
    match_program(ctx, "mentoring", store_as="active", now=NOW)
    (req,) = _offers(ctx)
    assert req.kind == "request" and req.rank == 1
    assert _pairings(ctx)[req.pairing_id].status == "requested"
    answer = choice.decline(ctx, req.id, reason="no time this quarter", now=NOW)
    assert answer.status == "declined" and answer.pairing_status == "requested"
    pairings = _pairings(ctx)
    assert pairings[req.pairing_id].status == "withdrawn"
    new = pairings[answer.pairing_id]
    assert new.guide_id != req.guide_id
    second = [o for o in _offers(ctx) if o.id != req.id]
    assert [(o.kind, o.rank, o.status) for o in second] == [("request", 2, "open")]
    assert _offers(ctx)[0].reason == "no time this quarter"
    # The second decline reaches max_requests: not re-matched, the owner is told.
    last = choice.decline(ctx, second[0].id, now=NOW)
    assert last.pairing_id is None
    assert _count(ctx, NotificationRow, NotificationRow.key == f"choice:owner:{second[0].id}") == 1
    with ctx.db.transaction() as s:
        note = s.scalars(
            select(NotificationRow).where(NotificationRow.key.like("choice:owner:%"))
        ).one()
        assert note.status == "sent"
    accepted = choice.list_offers(ctx, closed=True)
    assert [r["status"] for r in accepted] == ["declined", "declined"]
    assert choice.list_offers(ctx) == []


def test_both_is_a_pick_then_an_acceptance(db: Database) -> None:
    ctx = Ctx(db, program(choice="both"))
    company(ctx, learners=1, guides=3)
    match_program(ctx, "mentoring", store_as="active", now=NOW)
    alt = next(o for o in _offers(ctx) if o.rank == 2)
    answer = choice.accept(ctx, alt.id, now=NOW)
    assert answer.pairing_status == "requested"
    req = next(o for o in _offers(ctx) if o.kind == "request")
    assert req.guide_id == alt.guide_id and req.pairing_id == answer.pairing_id
    done = choice.accept(ctx, req.id, now=NOW + timedelta(days=1))
    assert done.pairing_status == "active"


def test_request_expiry_rematches_in_the_daily_run(db: Database) -> None:
    ctx = Ctx(db, program(choice="guide_accepts"))
    company(ctx, learners=1, guides=2)
    match_program(ctx, "mentoring", store_as="active", now=NOW)
    (req,) = _offers(ctx)
    daily = run_daily(ctx, now=NOW + timedelta(days=6))
    assert daily.choices is not None and daily.choices.expired == 1 and daily.choices.rematched == 1
    offers = _offers(ctx)
    assert offers[0].status == "expired" and offers[1].status == "open"
    assert offers[1].guide_id != req.guide_id
    with pytest.raises(LinkExpired):
        choice.accept(ctx, req.id, now=NOW + timedelta(days=6))


def test_expired_and_unknown_offers_are_refused_and_change_nothing(db: Database) -> None:
    ctx = Ctx(db, program())
    company(ctx, learners=1, guides=2)
    match_program(ctx, "mentoring", store_as="active", now=NOW)
    first = next(o for o in _offers(ctx) if o.rank == 1)
    with pytest.raises(LinkExpired):
        choice.accept(ctx, first.id, now=NOW + timedelta(days=30))
    with pytest.raises(LinkForged, match="unknown offer id 999"):
        choice.decline(ctx, 999, now=NOW)
    with pytest.raises(UserError, match="reason"):
        choice.decline(ctx, first.id, reason="x" * 1001, now=NOW)
    assert {o.status for o in _offers(ctx)} == {"open"}
    assert {p.status for p in _pairings(ctx).values()} == {"offered"}


def test_choice_none_pairs_at_once_as_before(db: Database) -> None:
    ctx = Ctx(db, program(choice="none"))
    company(ctx, learners=2, guides=2)
    match_program(ctx, "mentoring", store_as="active", now=NOW)
    assert {p.status for p in _pairings(ctx).values()} == {"active"}
    assert _offers(ctx) == []


def test_forgetting_a_person_withdraws_their_offers_and_erases_reasons(db: Database) -> None:
    from coachbridge.hris.privacy import forget_person
    from coachbridge.store.tables import PersonRow

    ctx = Ctx(db, program(choice="guide_accepts"))
    company(ctx, learners=2, guides=3)
    match_program(ctx, "mentoring", store_as="active", now=NOW)
    first, second = _offers(ctx)
    choice.decline(ctx, first.id, reason="personal matters", now=NOW)
    with db.transaction() as s:
        forget_person(s, s.get(PersonRow, first.learner_id), actor="test", now=NOW)
    rows = {o.id: o for o in _offers(ctx)}
    assert rows[first.id].reason is None
    assert all(o.status != "open" for o in rows.values() if o.learner_id == first.learner_id)
    assert rows[second.id].status == "open"  # the other learner's request stands


def test_rematching_an_offered_pairing_withdraws_its_round(db: Database) -> None:
    from coachbridge.pairings.service import rematch_pairing

    ctx = Ctx(db, program(offer_alternatives=1))
    company(ctx, learners=1, guides=4)
    match_program(ctx, "mentoring", store_as="active", now=NOW)
    first, alt = _offers(ctx)
    out = rematch_pairing(ctx, first.pairing_id, "HR moved them", now=NOW)
    assert out["new"] is not None and out["new"]["status"] == "offered"
    rows = {o.id: o for o in _offers(ctx)}
    assert rows[first.id].status == "withdrawn" and rows[alt.id].status == "withdrawn"
    # The old alternative cannot give the learner a second guide.
    with pytest.raises(LinkUsed):
        choice.accept(ctx, alt.id, now=NOW)
    fresh = [o for o in rows.values() if o.status == "open"]
    assert fresh and all(o.round_id != first.id for o in fresh)
