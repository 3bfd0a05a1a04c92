"""The report's choice figures: aggregates only, suppressed below min_group_size."""

from __future__ import annotations

import json
from datetime import timedelta

from coachbridge.jobs.daily import run_daily
from coachbridge.matching.service import match_program
from coachbridge.programs import choice
from coachbridge.reports import build_reports, render_html
from coachbridge.store import Database
from coachbridge.store.tables import OfferRow
from sqlalchemy import select

from tests.choice.choice_world import NOW, Ctx, company, program


def _report(ctx: Ctx, k: int, now):  # type: ignore[no-untyped-def]
    with ctx.db.transaction() as s:
        return build_reports(s, [ctx.prog], min_group_size=k, now=now)[0]


def test_choice_figures(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.upgrade()
    ctx = Ctx(db, program(offer_alternatives=1, capacity=2))
    company(ctx, learners=6, guides=4)
    match_program(ctx, "mentoring", store_as="active", now=NOW)
    with db.transaction() as s:
        rounds = list(s.scalars(select(OfferRow).where(OfferRow.rank == 1).order_by(OfferRow.id)))
        alts = {o.round_id: o for o in s.scalars(select(OfferRow).where(OfferRow.rank == 2))}
    assert len(rounds) == 6
    later = NOW + timedelta(days=2)
    # Three learners take their first offer, one an alternative, one declines it; one is silent.
    for first in rounds[:3]:
        choice.accept(ctx, first.id, now=later)
    alt = alts.get(rounds[3].round_id)
    assert alt is not None
    choice.accept(ctx, alt.id, now=later)
    choice.decline(ctx, rounds[4].id, reason="Not my field", now=later)
    choice.decline(ctx, rounds[5].id, reason="  not my   FIELD ", now=later)
    run_daily(ctx, now=NOW + timedelta(days=6))
    r = _report(ctx, 2, NOW + timedelta(days=7))
    c = r["choice"]
    assert c["mode"] == "learner_picks"
    # Rounds closed: six first rounds (the two declined ones' alternatives expired or were
    # picked) plus any re-match rounds still open are not counted.
    assert c["chose_first_offer"]["share"] is not None
    assert c["offers_accepted"]["n"] >= 6
    picked_first = c["chose_first_offer"]
    assert picked_first["share"] == round(3 / picked_first["n"], 3)
    assert c["decline_reasons"] == {"not my field": 2}
    assert c["days_to_match"]["n"] >= 4
    # Everything about fewer than k people is hidden; reasons are counted, never attributed.
    big = _report(ctx, 3, NOW + timedelta(days=7))["choice"]
    assert big["decline_reasons"] == {"(other reasons)": {"suppressed": True}}
    text = json.dumps(big, default=str)
    assert "p1@example.com" not in text
    html = render_html([r], now=NOW + timedelta(days=7), min_group_size=2)
    assert "Choosing and accepting" in html and "declined: not my field" in html
    tiny = _report(ctx, 50, NOW + timedelta(days=7))["choice"]
    assert all(v == {"suppressed": True} for k, v in tiny.items() if k != "mode")
