"""Offers and requests: what is put to people before a pairing starts (a program's ``choice``).

With ``choice = "learner_picks"`` (or ``"both"``) a matched learner's pairing is stored as
``offered``: the optimum's place is held for them, and they are offered that guide (rank 1)
plus up to ``offer_alternatives`` other guides that still have free places once the optimum is
placed, best first (ranks 2..). Alternatives hold nothing. With ``"guide_accepts"`` the pairing
is stored as ``requested`` and its guide gets a request. Each option is an ``OfferRow``; the
offers made to one learner at once share a ``round_id`` (the id of that round's rank-1 offer).

Answering them (and what follows: activation, re-matching, mail) is
``coachbridge.programs.choice``; this module only writes the rows, inside the caller's
transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import numpy as np
from coachbridge.domain.pairing import PairingStatus
from coachbridge.domain.program import Choice, Program
from coachbridge.matching.criteria import Criterion
from coachbridge.matching.pool import load_pool
from coachbridge.store.audit import audit
from coachbridge.store.tables import OfferRow, PairingRow
from sqlalchemy import func, select
from sqlalchemy.orm import Session

__all__ = [
    "OFFER",
    "REQUEST",
    "first_status",
    "make_request",
    "open_choices",
]

OFFER = "offer"
REQUEST = "request"


def first_status(program: Program) -> str:
    """The status a newly matched pairing gets: ``active`` unless someone must answer first."""
    if program.choice in (Choice.LEARNER_PICKS, Choice.BOTH):
        return PairingStatus.OFFERED.value
    if program.choice is Choice.GUIDE_ACCEPTS:
        return PairingStatus.REQUESTED.value
    return PairingStatus.ACTIVE.value


def make_request(
    s: Session, program: Program, pairing: PairingRow, *, now: datetime, actor: str
) -> OfferRow:
    """A request to the pairing's guide to accept its learner (the pairing is ``requested``)."""
    count = s.scalar(
        select(func.count()).where(
            OfferRow.program_id == program.id,
            OfferRow.learner_id == pairing.learner_id,
            OfferRow.kind == REQUEST,
        )
    )
    row = OfferRow(
        kind=REQUEST,
        program_id=program.id,
        learner_id=pairing.learner_id,
        guide_id=pairing.guide_id,
        rank=int(count or 0) + 1,
        pairing_id=pairing.id,
        score=pairing.score,
        breakdown=dict(pairing.breakdown or {}),
        status="open",
        created_at=now,
        expires_at=now + timedelta(days=program.respond_within_days),
    )
    s.add(row)
    s.flush()
    row.round_id = row.id
    audit(s, actor, "request_guide", "offer", row.id, program=program.id, pairing_id=pairing.id)
    return row


def open_choices(
    s: Session,
    program: Program,
    criteria: Mapping[str, Criterion],
    rows: Sequence[PairingRow],
    *,
    now: datetime,
    actor: str,
) -> list[OfferRow]:
    """The offers (``offered`` pairings) and requests (``requested`` ones) for new pairings.

    Call it after the pairings were flushed, all of one solve at once: the alternatives are the
    guides with free places *after* the optimum has taken its places.
    """
    out: list[OfferRow] = []
    for row in rows:
        if row.status == PairingStatus.REQUESTED.value:
            out.append(make_request(s, program, row, now=now, actor=actor))
    offered = {r.learner_id: r for r in rows if r.status == PairingStatus.OFFERED.value}
    if not offered:
        return out
    expires = now + timedelta(days=program.respond_within_days)
    alternatives = _alternatives(s, program, criteria, offered, now)
    for learner_id in sorted(offered):
        held = offered[learner_id]
        first = OfferRow(
            kind=OFFER,
            program_id=program.id,
            learner_id=learner_id,
            guide_id=held.guide_id,
            rank=1,
            pairing_id=held.id,
            score=held.score,
            breakdown=dict(held.breakdown or {}),
            status="open",
            created_at=now,
            expires_at=expires,
        )
        s.add(first)
        s.flush()
        first.round_id = first.id
        out.append(first)
        for rank, (guide_id, score, breakdown) in enumerate(alternatives[learner_id], start=2):
            alt = OfferRow(
                kind=OFFER,
                program_id=program.id,
                learner_id=learner_id,
                guide_id=guide_id,
                rank=rank,
                round_id=first.id,
                score=score,
                breakdown=breakdown,
                status="open",
                created_at=now,
                expires_at=expires,
            )
            s.add(alt)
            out.append(alt)
        audit(
            s,
            actor,
            "offer_guides",
            "offer",
            first.id,
            program=program.id,
            learner_id=learner_id,
            options=1 + len(alternatives[learner_id]),
        )
    s.flush()
    return out


def _alternatives(
    s: Session,
    program: Program,
    criteria: Mapping[str, Criterion],
    held: Mapping[int, PairingRow],
    now: datetime,
) -> dict[int, list[tuple[int, float, dict[str, float]]]]:
    """Per learner: up to ``offer_alternatives`` other guides with a free place, best first.

    The hard constraints hold (reporting chain, forbids, earlier pairings, ``min_score``); the
    free places are counted after the held pairings took theirs.
    """
    out: dict[int, list[tuple[int, float, dict[str, float]]]] = {lid: [] for lid in held}
    if program.offer_alternatives <= 0:
        return out
    pool = load_pool(s, program, criteria, now=now, only_learners=set(held), include_paired=True)
    room = pool.free > 0
    for learner_id, pairing in held.items():
        lrow = pool.learner_row.get(learner_id)
        if lrow is None:
            continue
        scores, ok = pool.scorer.block(np.array([lrow], dtype=np.int64))
        usable = ok[0] & room & (scores[0] >= program.min_score)
        own = pool.guide_row.get(pairing.guide_id)
        if own is not None:
            usable[own] = False
        cols = np.flatnonzero(usable)
        # Highest score first; ties: the guide enrolled first (as the matching engine breaks them).
        order = cols[np.lexsort((cols, -scores[0][cols]))][: program.offer_alternatives]
        for grow in order.tolist():
            breakdown = pool.scorer.breakdown(lrow, grow)
            out[learner_id].append(
                (pool.guide_ids[grow], pool.scorer.pair_score(breakdown), breakdown)
            )
    return out
