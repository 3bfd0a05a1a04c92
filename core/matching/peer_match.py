"""Matching a peer program in the store: propose, apply and list allowed pairs.

The use cases in ``matching.service`` hand a peer program to these functions (and wrap what
they return in their own types), so ``coachbridge match`` (with ``--apply``, ``--propose``,
``--candidates [--all-pairs]``) works the same for it. Every pair is listed once, the lower
person id as ``learner_id``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from coachbridge.domain.pairing import OPEN, PairingStatus
from coachbridge.domain.program import Program
from coachbridge.errors import UserError
from coachbridge.matching.criteria import Criterion
from coachbridge.matching.peer import PeerPool, load_peer_pool, solve_peer
from coachbridge.store.audit import audit
from coachbridge.store.programs import ensure_program_row
from coachbridge.store.tables import EnrollmentRow, PairingRow, PersonRow
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

__all__ = [
    "NO_PARTNER",
    "ODD_ONE_OUT",
    "PARTNERS_BELOW_MIN_SCORE",
    "PARTNERS_TAKEN",
    "PeerProposal",
    "peer_allowed_pairs",
    "peer_apply",
    "peer_explain",
    "peer_propose",
]

# Why a person stayed unpaired (``match`` prints these with their texts, see ``service``).
NO_PARTNER = "no_eligible_partner"
ODD_ONE_OUT = "odd_one_out"
PARTNERS_TAKEN = "partners_taken"
PARTNERS_BELOW_MIN_SCORE = "partners_below_min_score"
EXCLUDED_BY_CONSTRAINT = "excluded_by_constraint"  # the same code as the bipartite kinds'


@dataclass
class PeerProposal:
    """What ``peer_propose`` found; nothing of it is stored."""

    pairs: list[dict[str, Any]] = field(default_factory=list)  # learner_id < guide_id
    unmatched: list[tuple[int, str]] = field(default_factory=list)  # (person id, reason)
    warnings: list[str] = field(default_factory=list)
    arcs: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]] | None = None
    candidates: int = 0
    widened: int = 0
    complete: bool = False  # the candidates were every allowed pair (score >= min_score)


def _pair(pool: PeerPool, a: int, b: int, *, pinned: bool = False) -> dict[str, Any]:
    a, b = min(a, b), max(a, b)  # rows are in id order: the lower id is the learner
    breakdown = pool.scorer.breakdown(a, b)
    return {
        "learner_id": pool.ids[a],
        "guide_id": pool.ids[b],
        "score": pool.scorer.pair_score(breakdown),
        "breakdown": breakdown,
        "pinned": pinned,
    }


def _pins(pool: PeerPool, proposal: PeerProposal) -> set[int]:
    """Pinned pairs first, when both are in the pool and the pair is allowed both ways."""
    taken: set[int] = set()
    for x, y in sorted(pool.pins):
        a, b = pool.row.get(x), pool.row.get(y)
        if a is None or b is None or a in taken or b in taken:
            if x in pool.row or y in pool.row:
                proposal.warnings.append(
                    f"pin {x}-{y}: both must be in the pool (enrolled, active, not paired yet) "
                    "and in no other pin; pin skipped"
                )
            continue
        if not pool.scorer.allowed(a, b):
            proposal.warnings.append(
                f"pin {x}-{y}: one is in the other's reporting chain, or the two were paired "
                "before; pin skipped"
            )
            continue
        taken |= {a, b}
        proposal.pairs.append(_pair(pool, a, b, pinned=True))
    return taken


def _reasons(pool: PeerPool, left: list[int], taken: set[int]) -> dict[int, str]:
    """Why each row in ``left`` stayed unpaired (checked against the whole pool)."""
    out: dict[int, str] = {}
    matchable: list[int] = []
    others = np.ones(len(pool.ids), dtype=np.bool_)
    others[list(taken)] = False
    for r in left:
        scores, ok = pool.scorer.block(np.array([r], dtype=np.int64))
        ok = ok[0] & others
        if not others.sum() - (1 if others[r] else 0):
            out[r] = NO_PARTNER
        elif not ok.any():
            out[r] = EXCLUDED_BY_CONSTRAINT
        elif not (scores[0][ok] >= pool.program.min_score).any():
            out[r] = PARTNERS_BELOW_MIN_SCORE
        else:
            matchable.append(r)
    for r in matchable:
        out[r] = ODD_ONE_OUT if len(matchable) == 1 else PARTNERS_TAKEN
    return out


def peer_propose(
    s: Session, program: Program, criteria: Mapping[str, Criterion], *, now: datetime
) -> PeerProposal:
    """The best pairing of a peer program's pool; nothing is written.

    Pins first; then the most people paired and the highest total over the candidate pairs
    (see ``matching.peer``); everyone left out carries a reason.
    """
    pool = load_peer_pool(s, program, criteria, now=now)
    proposal = PeerProposal()
    taken = _pins(pool, proposal)
    solution = solve_peer(pool.scorer, k=program.top_k, min_score=program.min_score, exclude=taken)
    c = solution.candidates
    ids = np.array(pool.ids, dtype=np.int64)
    order = np.lexsort((ids[c.b], ids[c.a])) if c.score.size else np.empty(0, np.int64)
    proposal.arcs = (ids[c.a][order], ids[c.b][order], c.score[order])
    proposal.candidates = int(c.score.size)
    proposal.widened = solution.widened
    proposal.complete = c.complete
    for a, b, _ in solution.pairs:
        proposal.pairs.append(_pair(pool, a, b))
    proposal.pairs.sort(key=lambda p: p["learner_id"])
    paired = taken | {x for a, b, _ in solution.pairs for x in (a, b)}
    left = [r for r in range(len(pool.ids)) if r not in paired]
    reasons = _reasons(pool, left, taken)
    proposal.unmatched = [(pool.ids[r], reasons[r]) for r in left]
    return proposal


def peer_explain(
    s: Session,
    program: Program,
    criteria: Mapping[str, Criterion],
    person_id: int,
    *,
    now: datetime,
    partner: Mapping[int, int],
    limit: int = 5,
) -> list[dict[str, Any]]:
    """The person's best partners by symmetric score, each with why it was (not) the choice.

    ``partner``: person id -> partner id in the proposal being explained (both directions).
    """
    pool = load_peer_pool(s, program, criteria, now=now)
    r = pool.row.get(person_id)
    if r is None:
        raise UserError(
            f"person {person_id} is not in the pool of peer program {program.id!r} (enrolled, "
            "active, opted out of neither role, without an open pairing)"
        )
    scores, ok = pool.scorer.block(np.array([r], dtype=np.int64))
    order = [c for c in np.lexsort((np.arange(len(pool.ids)), -scores[0])).tolist() if c != r]
    out: list[dict[str, Any]] = []
    for c in order[:limit]:
        other, score = pool.ids[c], float(scores[0, c])
        if partner.get(person_id) == other:
            why = "chosen"
        elif not ok[0, c]:
            why = "excluded: reporting chain (either way), forbid rule or earlier pairing"
        elif score < program.min_score:
            why = f"score below min_score {program.min_score}"
        elif other in partner:
            why = "paired with someone else: more people paired (or a higher total)"
        else:
            why = "another pairing gave a better overall result"
        breakdown = pool.scorer.breakdown(r, c)
        out.append(
            {
                "guide_id": other,
                "score": pool.scorer.pair_score(breakdown),
                "breakdown": breakdown,
                "allowed": bool(ok[0, c]),
                "why_not": why,
            }
        )
    return out


def peer_allowed_pairs(
    s: Session,
    program: Program,
    criteria: Mapping[str, Criterion],
    *,
    now: datetime,
    max_pairs: int,
) -> tuple[int, Iterator[tuple[list[int], list[int], list[float]]]]:
    """Every unordered pair of the pool the hard constraints allow, each once (lower id first).

    ``min_score`` is not applied (it is the solver's rule, not a hard constraint). Refuses a
    pool with more than ``max_pairs`` pairs.
    """
    pool = load_peer_pool(s, program, criteria, now=now)
    n = len(pool.ids)
    count = n * (n - 1) // 2
    if count > max_pairs:
        raise UserError(
            f"--all-pairs: peer program {program.id!r} has {n:,} people, up to {count:,} "
            f"pairs, more than {max_pairs:,}; write the engine's candidates "
            f"(--candidates without --all-pairs) instead"
        )
    ids = np.array(pool.ids, dtype=np.int64)
    # Count first (the caller reports it), then stream: two passes, like the bipartite case.
    total = 0
    for block in pool.scorer.blocks():
        _, ok = pool.scorer.block(block)
        total += int(np.count_nonzero(_upper(ok, block)))

    def blocks() -> Iterator[tuple[list[int], list[int], list[float]]]:
        for block in pool.scorer.blocks():
            scores, ok = pool.scorer.block(block)
            r, c = np.nonzero(_upper(ok, block))
            yield ids[block[r]].tolist(), ids[c].tolist(), scores[r, c].tolist()

    return total, blocks()


def _upper(ok: np.ndarray, block: np.ndarray) -> np.ndarray:
    """Only pairs (a, b) with a < b: each unordered pair once."""
    cols = np.arange(ok.shape[1])
    return ok & (cols[None, :] > block[:, None])


def peer_apply(
    s: Session,
    program: Program,
    pairs: list[tuple[int, int, float, dict[str, float]]],
    *,
    status: str,
    actor: str,
    now: datetime | None,
) -> list[PairingRow]:
    """Store peer pairs ``(id, id, score, breakdown)``, the lower id as learner.

    A pair either of whose people meanwhile left the pool (paired, opted out, inactive) is
    skipped; existing pairings are never changed. Returns the new rows.
    """
    ensure_program_row(s, program)
    busy = {
        x
        for p in s.scalars(
            select(PairingRow).where(
                PairingRow.program_id == program.id, PairingRow.status.in_(OPEN)
            )
        )
        for x in (p.learner_id, p.guide_id)
    }
    enrolled: dict[int, bool] = {}
    for e in s.scalars(select(EnrollmentRow).where(EnrollmentRow.program_id == program.id)):
        enrolled[e.person_id] = enrolled.get(e.person_id, True) and not e.opted_out
    active = set(
        s.scalars(
            select(PersonRow.id).where(
                PersonRow.id.in_(list(enrolled)),
                PersonRow.status == "active",
                PersonRow.forgotten.is_(False),
            )
        )
    )
    rows: list[PairingRow] = []
    for x, y, score, breakdown in pairs:
        both = (x, y)
        if any(x in busy or not enrolled.get(x) or x not in active for x in both):
            continue
        busy.update(both)
        row = PairingRow(
            program_id=program.id,
            learner_id=min(both),
            guide_id=max(both),
            score=score,
            breakdown=dict(breakdown),
            status=status,
            activated_at=now if status == PairingStatus.ACTIVE.value else None,
        )
        s.add(row)
        rows.append(row)
    s.flush()
    for row in rows:
        audit(
            s,
            actor,
            "create_pairing",
            "pairing",
            row.id,
            program=program.id,
            status=status,
            learner_id=row.learner_id,
            guide_id=row.guide_id,
        )
    return rows
