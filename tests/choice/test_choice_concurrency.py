"""Answers racing each other: two clicks, two tabs or two workers make one pairing."""

from __future__ import annotations

import threading
from collections.abc import Callable

from coachbridge.links import LinkUsed
from coachbridge.matching.service import match_program
from coachbridge.programs import choice
from coachbridge.store import Database
from coachbridge.store.tables import OfferRow, PairingRow
from sqlalchemy import select

from tests.choice.choice_world import NOW, Ctx, company, program


def _race(*calls: Callable[[], object]) -> list[object]:
    """Run the calls at the same moment, each on its own connection; results or exceptions."""
    barrier = threading.Barrier(len(calls))
    out: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = calls[i]()
        except Exception as exc:  # collected: the test looks at which one lost
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_two_answers_to_one_offer_make_one_pairing(db: Database) -> None:
    for attempt in range(3):  # a few rounds: the race must hold however the threads interleave
        ctx = Ctx(db, program(id=f"m{attempt}"))
        if attempt == 0:
            company(ctx, learners=1, guides=3)
        else:
            from tests.matching.matching_factory import enroll

            with db.transaction() as s:
                for pid in (1, 101, 102, 103):
                    enroll(s, ctx.prog, pid, "learner" if pid == 1 else "guide")
        match_program(ctx, ctx.prog.id, store_as="active", now=NOW)
        with db.transaction() as s:
            offers = list(
                s.scalars(
                    select(OfferRow)
                    .where(OfferRow.program_id == ctx.prog.id)
                    .order_by(OfferRow.rank)
                )
            )
        first, alt = offers[0], offers[1]
        # Same offer twice, and another option of the same round at the same time.
        results = _race(
            *[
                (lambda c=ctx, o=o: choice.accept(c, o, now=NOW))
                for o in (first.id, first.id, alt.id)
            ]
        )
        won = [r for r in results if isinstance(r, choice.Answer)]
        lost = [r for r in results if isinstance(r, Exception)]
        assert len(won) == 1, results
        assert len(lost) == 2 and all(isinstance(e, LinkUsed) for e in lost), lost
        assert all(e.status == 409 for e in lost)  # type: ignore[attr-defined]
        with db.transaction() as s:
            active = list(
                s.scalars(
                    select(PairingRow).where(
                        PairingRow.program_id == ctx.prog.id, PairingRow.status == "active"
                    )
                )
            )
            assert len(active) == 1
            statuses = sorted(
                o.status
                for o in s.scalars(select(OfferRow).where(OfferRow.program_id == ctx.prog.id))
            )
            assert statuses.count("accepted") == 1


def test_two_learners_racing_for_one_free_place(db: Database) -> None:
    ctx = Ctx(db, program(offer_alternatives=1))
    company(ctx, learners=2, guides=3)
    match_program(ctx, "mentoring", store_as="active", now=NOW)
    with db.transaction() as s:
        alts = list(s.scalars(select(OfferRow).where(OfferRow.rank == 2)))
    assert len(alts) == 2 and alts[0].guide_id == alts[1].guide_id  # the one free place
    results = _race(*[(lambda o=o: choice.accept(ctx, o.id, now=NOW)) for o in alts])
    won = [r for r in results if isinstance(r, choice.Answer)]
    assert len(won) == 1, results
    assert isinstance(next(r for r in results if r not in won), LinkUsed)
    with db.transaction() as s:
        taken = list(
            s.scalars(
                select(PairingRow).where(
                    PairingRow.guide_id == alts[0].guide_id, PairingRow.status == "active"
                )
            )
        )
        assert len(taken) == 1
