"""Solving group circles: learners to guides where a guide takes none or at least a minimum.

A group program (``kind = "group"``) assigns learners to guides exactly like ``solver.assign``
(the most learners placed, then the highest total score) with one more rule: a guide who has no
circle yet either stays without one or takes at least ``minimum`` learners (up to its free
places). That lower bound is semi-continuous (zero *or* at least ``minimum``), which a plain
min-cost flow cannot express, so this is a small mixed-integer programme on the candidate arcs,
solved exactly by HiGHS through OR-tools' linear solver wrapper (``pywraplp``)::

    x[a] in {0, 1}          arc a = (learner, guide) used
    y[g] in {0, 1}          guide g opens a circle (only guides without one yet)
    sum_g x[l, g] <= 1                                  each learner at most once
    minimum * y[g] <= sum_l x[l, g] <= free[g] * y[g]   a new circle: none, or min..free
    x[l, g] <= y[g]                                     (the same, arc by arc: a tighter LP)
    sum_l x[l, g] <= free[g]                            a guide whose circle exists: any room
    sum_(l in dept) x[l, g] <= limit - used[g, dept]    ``per_guide_per_department``, if set

Lexicographic objective, as two exact stages: first the largest number of placed learners,
then, with at least that many placed, the largest total of the scores as given (floats). Both
run with a relative MIP gap of 0; ``optimal`` is True only when HiGHS reports both stages
OPTIMAL, i.e. its best bound met its solution (within its absolute gap tolerance, 1e-6 by
default: ``error_bound``). The arc-by-arc ``x <= y`` rows make the LP relaxation tight: a
guide's fractional opening must cover each of its arcs, not only its load. HiGHS runs with
presolve off: with it, HiGHS 1.12 failed to return any solution on some tiny instances.

The one-to-one min-cost flow on the same arcs is a relaxation (no minimum): when its answer
already respects every minimum, it is optimal here too and no MIP is solved. Otherwise a repair
(close every guide left below its minimum, solve the flow again, until none is) gives a feasible
assignment; when it places as many learners as the flow did (an upper bound), stage 1 is proved
without a MIP and only stage 2 is solved.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from coachbridge.matching.engine import solve_candidates
from coachbridge.matching.scoring import CandidateArrays
from numpy.typing import NDArray
from scipy import optimize, sparse

__all__ = ["MIP_GAP_TOLERANCE", "CircleSolution", "solve_circles"]

# HiGHS stops when best bound and solution are this close (its default absolute MIP gap).
MIP_GAP_TOLERANCE = 1e-6


@dataclass
class CircleSolution:
    """What ``solve_circles`` found: learner row -> guide row, and what is proved about it."""

    match: dict[int, int] = field(default_factory=dict)
    scores: dict[int, float] = field(default_factory=dict)  # learner row -> the arc's score
    optimal: bool = True  # proved optimal on the candidate arcs (both stages)
    error_bound: float = 0.0  # the total is within this of the best total on the floats
    seconds: float = 0.0
    opened: list[int] = field(default_factory=list)  # guide rows given a new circle
    method: str = ""  # "flow" (the relaxation was feasible) or "mip"


def solve_circles(
    learner: NDArray[np.int64],
    guide: NDArray[np.int64],
    score: NDArray[np.float64],
    free: NDArray[np.int64],
    minimum: NDArray[np.int64],
    *,
    group: NDArray[np.int64] | None = None,
    limit: int | None = None,
    group_used: Mapping[tuple[int, int], int] | None = None,
    time_limit: float | None = None,
) -> CircleSolution:
    """Assign learners along the candidate arcs ``(learner[k], guide[k], score[k])``.

    ``free[g]``: how many more learners guide row ``g`` may take; ``minimum[g]``: the least a
    guide must take if it takes any (0 for a guide whose circle already exists). ``group[k]`` is
    the department code of arc ``k``'s learner, for ``limit`` per guide and department
    (``group_used`` counts what each guide already has). Arcs must hold no pair twice.
    ``time_limit`` (seconds, per stage) keeps the best solution found, with ``optimal`` False.
    """
    started = time.perf_counter()
    learner = np.asarray(learner, dtype=np.int64)
    guide = np.asarray(guide, dtype=np.int64)
    score = np.asarray(score, dtype=np.float64)
    free = np.asarray(free, dtype=np.int64)
    minimum = np.asarray(minimum, dtype=np.int64)
    # A guide that cannot reach its minimum, or has no room, can take nobody: drop its arcs.
    arcs = np.flatnonzero((free[guide] > 0) & (free[guide] >= minimum[guide]))
    if arcs.size == 0:
        return CircleSolution(seconds=time.perf_counter() - started)
    cands = CandidateArrays(learner[arcs], guide[arcs], score[arcs])
    groups = group[arcs] if group is not None else None
    out, bound, reached = _flows(cands, free, minimum, groups, limit, group_used)
    if out is None:
        # The repair placing as many as the flow's bound proves stage 1 without a MIP.
        known = reached if reached == bound else None
        out = _by_mip(cands, free, minimum, groups, limit, group_used, time_limit, known)
    out.opened = sorted({g for g in out.match.values() if minimum[g] > 0})
    out.seconds = time.perf_counter() - started
    return out


def _flows(
    cands: CandidateArrays,
    free: NDArray[np.int64],
    minimum: NDArray[np.int64],
    groups: NDArray[np.int64] | None,
    limit: int | None,
    group_used: Mapping[tuple[int, int], int] | None,
) -> tuple[CircleSolution | None, int, int]:
    """The min-cost flow without minimums, and a repair of it; returns (the flow's answer when
    it already respects every minimum, else None; the flow's count, an upper bound on how many
    can be placed; how many the repair placed, a lower bound). The repair closes every guide
    left below its minimum and solves the flow again until none is: a feasible assignment."""
    rows = int(cands.learner.max()) + 1
    room = free.copy()
    bound = -1
    while True:
        match = solve_candidates(
            cands, room, rows, -np.inf, groups=groups, limit=limit, group_used=group_used
        )
        if bound < 0:
            bound = len(match)
        load = np.bincount(np.fromiter(match.values(), np.int64, len(match)), minlength=free.size)
        short = (load > 0) & (load < minimum)
        if not short.any():
            break
        room[short] = 0
    if len(match) < bound or (room != free).any():
        return None, bound, len(match)
    score = {
        (int(a), int(b)): float(c)
        for a, b, c in zip(cands.learner, cands.guide, cands.score, strict=True)
        if match.get(int(a)) == int(b)
    }
    out = CircleSolution(method="flow")
    for x, g in match.items():
        out.match[x] = g
        out.scores[x] = score[(x, g)]
    return out, bound, len(match)


def _by_mip(
    cands: CandidateArrays,
    free: NDArray[np.int64],
    minimum: NDArray[np.int64],
    groups: NDArray[np.int64] | None,
    limit: int | None,
    group_used: Mapping[tuple[int, int], int] | None,
    time_limit: float | None,
    placed: int | None,
) -> CircleSolution:
    """The two MIP stages; ``placed``, when known, is stage 1's answer (proved elsewhere)."""
    n = cands.score.size
    rows, lower, upper, opens = _constraints(cands, free, minimum, groups, limit, group_used)
    width = n + opens.size
    matrix = sparse.csr_array(
        (rows[2], (rows[0], rows[1])),
        shape=(len(lower), width),
    )
    options: dict[str, object] = {"mip_rel_gap": 0.0, "disp": False, "presolve": False}
    if time_limit is not None:
        options["time_limit"] = time_limit
    integral = np.ones(width)
    bounds = optimize.Bounds(np.zeros(width), np.ones(width))

    def solve(cost: NDArray[np.float64], extra: optimize.LinearConstraint | None) -> Any:
        constraints = [optimize.LinearConstraint(matrix, lower, upper)]
        if extra is not None:
            constraints.append(extra)
        return optimize.milp(
            -cost, constraints=constraints, integrality=integral, bounds=bounds, options=options
        )

    # Stage 1: the most learners placed.
    count = np.concatenate([np.ones(n), np.zeros(opens.size)])
    first_optimal = True
    if placed is None:
        first = solve(count, None)
        if first.x is None:  # pragma: no cover - placing nobody is always feasible
            return CircleSolution(optimal=False, method="mip")
        placed, first_optimal = round(-first.fun), first.status == 0
    best = placed
    # Stage 2: with that many placed, the highest total score.
    cost = np.concatenate([cands.score, np.zeros(opens.size)])
    second = solve(cost, optimize.LinearConstraint(count[None, :], best, np.inf))
    if second.x is None:  # pragma: no cover - stage 1's answer is feasible
        return CircleSolution(optimal=False, method="mip")
    out = CircleSolution(
        optimal=first_optimal and second.status == 0,
        method="mip",
        error_bound=max(
            MIP_GAP_TOLERANCE, abs(second.fun - getattr(second, "mip_dual_bound", second.fun))
        ),
    )
    for k in np.flatnonzero(second.x[:n] > 0.5).tolist():
        a, g = int(cands.learner[k]), int(cands.guide[k])
        out.match[a] = g
        out.scores[a] = float(cands.score[k])
    return out


def _constraints(
    cands: CandidateArrays,
    free: NDArray[np.int64],
    minimum: NDArray[np.int64],
    groups: NDArray[np.int64] | None,
    limit: int | None,
    group_used: Mapping[tuple[int, int], int] | None,
) -> tuple[
    tuple[list[int], list[int], list[float]],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.int64],
]:
    """The rows of the module docstring as a sparse matrix (row, column, value) with bounds.

    Columns: one per arc, then one ``y`` per guide that must reach a minimum (``opens``)."""
    n = cands.score.size
    r: list[int] = []
    c: list[int] = []
    v: list[float] = []
    lower: list[float] = []
    upper: list[float] = []

    def row(columns: list[int], values: list[float], lo: float, hi: float) -> None:
        index = len(lower)
        r.extend([index] * len(columns))
        c.extend(columns)
        v.extend(values)
        lower.append(lo)
        upper.append(hi)

    by_learner: dict[int, list[int]] = {}
    by_guide: dict[int, list[int]] = {}
    for k, (a, g) in enumerate(zip(cands.learner.tolist(), cands.guide.tolist(), strict=True)):
        by_learner.setdefault(a, []).append(k)
        by_guide.setdefault(g, []).append(k)
    for items in by_learner.values():
        if len(items) > 1:
            row(items, [1.0] * len(items), -np.inf, 1.0)
    opens = np.array(sorted(g for g in by_guide if minimum[g] > 0), dtype=np.int64)
    column = {int(g): n + i for i, g in enumerate(opens.tolist())}
    for g, items in by_guide.items():
        ones = [1.0] * len(items)
        if g in column:
            y = column[g]
            row([*items, y], [*ones, -float(free[g])], -np.inf, 0.0)
            row([*items, y], [*ones, -float(minimum[g])], 0.0, np.inf)
            for k in items:
                row([k, y], [1.0, -1.0], -np.inf, 0.0)
        elif len(items) > free[g]:
            row(items, ones, -np.inf, float(free[g]))
    if limit is not None and groups is not None:
        used = group_used or {}
        cells: dict[tuple[int, int], list[int]] = {}
        for k, (g, d) in enumerate(zip(cands.guide.tolist(), groups.tolist(), strict=True)):
            cells.setdefault((g, d), []).append(k)
        for key, items in cells.items():
            room = max(0, limit - used.get(key, 0))
            if len(items) > room:
                row(items, [1.0] * len(items), -np.inf, float(room))
    return (r, c, v), np.array(lower), np.array(upper), opens
