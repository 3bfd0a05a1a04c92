"""Group programs in the store: the circle solve on a pool, and which circle a pairing joins.

A group program (``kind = "group"``) keeps one pairing per learner, as every program does, and
ties a guide's learners together in a ``circles`` row. A guide without an open circle may open
one only with at least ``circle_size[0]`` learners; a guide whose circle is open takes more up
to ``circle_size[1]`` (its capacity) without a lower bound. ``solve_pool`` runs the exact
solver of ``coachbridge.matching.circles`` on each learner's ``top_k`` best guides.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from coachbridge.domain.pairing import OPEN
from coachbridge.domain.program import Program, ProgramKind
from coachbridge.matching.certify import allowed_pair_count
from coachbridge.matching.circles import CircleSolution, solve_circles
from coachbridge.matching.pool import Pool
from coachbridge.matching.scoring import CandidateArrays, top_k
from coachbridge.store.tables import CircleRow, PairingRow
from sqlalchemy import func, select
from sqlalchemy.orm import Session

__all__ = [
    "CIRCLE_BELOW_MINIMUM",
    "GroupResult",
    "circle_loads",
    "is_group",
    "join_circles",
    "solve_pool",
    "unplaced_reason",
]

CIRCLE_BELOW_MINIMUM = "circle_below_minimum"


def is_group(program: Program) -> bool:
    return program.kind == ProgramKind.GROUP


def circle_loads(s: Session, program_id: str) -> dict[int, int]:
    """Open pairings per guide in the program: the size of each guide's current circle."""
    return {
        int(g): int(n)
        for g, n in s.execute(
            select(PairingRow.guide_id, func.count())
            .where(PairingRow.program_id == program_id, PairingRow.status.in_(OPEN))
            .group_by(PairingRow.guide_id)
        ).all()
    }


@dataclass
class GroupResult:
    solution: CircleSolution
    candidates: CandidateArrays
    room: np.ndarray  # free places per guide row left after the solve
    certified: bool  # optimal over every allowed pair (every guide was a candidate)
    allowed_pairs: int


def solve_pool(
    pool: Pool,
    loads: dict[int, int],
    exclude: set[int],
    used: dict[tuple[int, int], int],
    pinned: dict[int, int],
) -> GroupResult:
    """The exact circle assignment of the pool's learners (less ``exclude``) to its guides.

    ``loads``: guide id -> open pairings; ``pinned``: guide row -> learners pinned to it in
    this proposal (they count toward the circle, lowering the minimum still to be reached).
    """
    program = pool.program
    assert program.circle_size is not None
    minimum_size, maximum = program.circle_size
    # An enrollment's own capacity may lower a guide's room, never lift it above the maximum.
    free = np.minimum(
        pool.free, np.array([maximum - loads.get(g, 0) for g in pool.guide_ids], dtype=np.int64)
    ).clip(min=0)
    minimum = np.zeros(len(pool.guide_ids), dtype=np.int64)
    for grow, gid in enumerate(pool.guide_ids):
        if loads.get(gid, 0) == 0:
            minimum[grow] = max(0, minimum_size - pinned.get(grow, 0))
    rows = np.array([i for i in range(len(pool.learner_ids)) if i not in exclude], dtype=np.int64)
    guide_ok = (free > 0) & (free >= minimum)
    cands = (
        top_k(pool.scorer, program.top_k, program.min_score, rows=rows, guide_ok=guide_ok)
        if rows.size
        else CandidateArrays.empty()
    )
    group = (
        np.array([pool.group_of_row(int(r)) for r in cands.learner.tolist()], dtype=np.int64)
        if pool.limit is not None
        else None
    )
    solution = solve_circles(
        cands.learner,
        cands.guide,
        cands.score,
        free,
        minimum,
        group=group,
        limit=pool.limit,
        group_used=used,
    )
    room = free.copy()
    for grow in solution.match.values():
        room[grow] -= 1
    # Every allowed guide was a candidate when top_k covers them all: the optimum over the
    # candidate arcs is then the optimum over every allowed pair.
    certified = solution.optimal and program.top_k >= len(pool.guide_ids)
    allowed = (
        allowed_pair_count(
            pool.scorer, rows, np.ones(len(pool.guide_ids), np.int64), pool.forbidden
        )
        if certified
        else 0
    )
    return GroupResult(solution, cands, room, certified, allowed)


def unplaced_reason(pool: Pool, lrow: int, result: GroupResult, fallback: str) -> str:
    """``circle_below_minimum`` when a guide that fits had room but no circle could reach the
    minimum; else the one-to-one reason (``fallback``)."""
    if fallback != "guides_full":
        return fallback
    scores, ok = pool.scorer.block(np.array([lrow], dtype=np.int64))
    fits = ok[0] & (scores[0] >= pool.program.min_score) & (result.room > 0)
    return CIRCLE_BELOW_MINIMUM if fits.any() else fallback


def join_circles(s: Session, program: Program, rows: Sequence[PairingRow]) -> None:
    """Give each new pairing of a group program its guide's open circle (made when none is)."""
    if not is_group(program) or not rows:
        return
    guides = {r.guide_id for r in rows}
    open_circle = _open_circles(s, program.id, guides)
    for row in sorted(rows, key=lambda r: r.id or 0):
        if row.guide_id not in open_circle:
            circle = CircleRow(program_id=program.id, guide_id=row.guide_id)
            s.add(circle)
            s.flush()
            open_circle[row.guide_id] = circle.id
        row.circle_id = open_circle[row.guide_id]
    s.flush()


def _open_circles(s: Session, program_id: str, guides: Iterable[int]) -> dict[int, int]:
    """Guide id -> the circle of their open pairings in the program."""
    out: dict[int, int] = {}
    for guide_id, circle_id in s.execute(
        select(PairingRow.guide_id, PairingRow.circle_id)
        .where(
            PairingRow.program_id == program_id,
            PairingRow.guide_id.in_(list(guides)),
            PairingRow.status.in_(OPEN),
            PairingRow.circle_id.is_not(None),
        )
        .order_by(PairingRow.id)
    ):
        if circle_id is not None and guide_id not in out:
            out[guide_id] = circle_id
    return out
