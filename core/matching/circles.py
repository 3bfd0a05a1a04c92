"""Solving group circles: learners to guides where a guide takes none or at least a minimum.

A group program (``kind = "group"``) assigns learners to guides exactly like ``solver.assign``
(the most learners placed, then the highest total score) with one more rule: a guide who has no
circle yet either stays without one or takes at least ``minimum`` learners (up to its free
places). That lower bound is semi-continuous (zero *or* at least ``minimum``), which a plain
min-cost flow cannot express, so this is a small integer programme solved exactly with
OR-tools' CP-SAT on the candidate arcs::

    x[a] in {0, 1}          arc a = (learner, guide) used
    y[g] in {0, 1}          guide g opens a circle (only guides without one yet)
    sum_g x[l, g] <= 1                                  each learner at most once
    minimum * y[g] <= sum_l x[l, g] <= free[g] * y[g]   a new circle: none, or min..free
    sum_l x[l, g] <= free[g]                            a guide whose circle exists: any room
    sum_(l in dept) x[l, g] <= limit - used[g, dept]    ``per_guide_per_department``, if set

Lexicographic objective, solved as two exact stages: first the largest number of placed
learners (CP-SAT proves it optimal), then, with that count fixed, the largest total of integer
scores ``P = rint((s - lo) * 2**BITS / (hi - lo))``. Each used arc's score is rounded by at most
half a unit, so the total on the caller's floats is within ``placed * (hi - lo) * 2**-(BITS+1)``
of the best (``CircleSolution.error_bound``). ``optimal`` is True only when CP-SAT reported
OPTIMAL for both stages; a stage stopped by the time limit keeps its best feasible solution and
says so.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from ortools.sat.python import cp_model

__all__ = ["BITS", "CircleSolution", "solve_circles"]

BITS = 20  # score resolution of the second stage: (hi - lo) / 2**20


@dataclass
class CircleSolution:
    """What ``solve_circles`` found: learner row -> guide row, and what is proved about it."""

    match: dict[int, int] = field(default_factory=dict)
    scores: dict[int, float] = field(default_factory=dict)  # learner row -> the arc's score
    optimal: bool = True  # CP-SAT proved both stages optimal on the candidate arcs
    error_bound: float = 0.0  # the total is within this of the best total on the floats
    seconds: float = 0.0
    opened: list[int] = field(default_factory=list)  # guide rows given a new circle


def _solver(workers: int, time_limit: float | None) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = workers
    if time_limit is not None:
        solver.parameters.max_time_in_seconds = time_limit
    return solver


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
    workers: int = 2,
    time_limit: float | None = None,
) -> CircleSolution:
    """Assign learners along the candidate arcs ``(learner[k], guide[k], score[k])``.

    ``free[g]``: how many more learners guide row ``g`` may take; ``minimum[g]``: the least a
    guide must take if it takes any (0 for a guide whose circle already exists). ``group[k]`` is
    the department code of arc ``k``'s learner, for ``limit`` per guide and department
    (``group_used`` counts what each guide already has). Arcs must hold no pair twice.
    """
    started = time.perf_counter()
    learner = np.asarray(learner, dtype=np.int64)
    guide = np.asarray(guide, dtype=np.int64)
    score = np.asarray(score, dtype=np.float64)
    # A guide that cannot reach its minimum, or has no room, can take nobody: drop its arcs.
    usable = (free[guide] > 0) & (free[guide] >= minimum[guide])
    arcs = np.flatnonzero(usable)
    if arcs.size == 0:
        return CircleSolution(seconds=time.perf_counter() - started)
    lo, hi = float(score[arcs].min()), float(score[arcs].max())
    span = hi - lo
    profit = (
        np.rint((score[arcs] - lo) * (2**BITS / span)).astype(np.int64)
        if span > 0
        else np.zeros(arcs.size, dtype=np.int64)
    )
    model = cp_model.CpModel()
    x = [model.new_bool_var(f"x{k}") for k in range(arcs.size)]
    by_learner: dict[int, list[int]] = {}
    by_guide: dict[int, list[int]] = {}
    for i, k in enumerate(arcs.tolist()):
        by_learner.setdefault(int(learner[k]), []).append(i)
        by_guide.setdefault(int(guide[k]), []).append(i)
    for items in by_learner.values():
        if len(items) > 1:
            model.add_at_most_one(x[i] for i in items)
    opens: dict[int, cp_model.IntVar] = {}
    for g, items in by_guide.items():
        load = sum(x[i] for i in items)
        if minimum[g] > 0:
            y = opens[g] = model.new_bool_var(f"y{g}")
            model.add(load <= int(free[g]) * y)
            model.add(load >= int(minimum[g]) * y)
        elif len(items) > free[g]:
            model.add(load <= int(free[g]))
    if limit is not None and group is not None:
        used = group_used or {}
        cells: dict[tuple[int, int], list[int]] = {}
        for i, k in enumerate(arcs.tolist()):
            cells.setdefault((int(guide[k]), int(group[k])), []).append(i)
        for key, items in cells.items():
            room = max(0, limit - used.get(key, 0))
            if len(items) > room:
                model.add(sum(x[i] for i in items) <= room)
    placed = sum(x)
    # Stage 1: the most learners placed.
    model.maximize(placed)
    solver = _solver(workers, time_limit)
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return CircleSolution(optimal=False, seconds=time.perf_counter() - started)
    optimal = status == cp_model.OPTIMAL
    best = round(solver.objective_value)
    # Stage 2: with that many placed, the highest total score (started from stage 1's answer).
    for i, var in enumerate(x):
        model.add_hint(var, bool(solver.value(x[i])))
    model.add(placed >= best)
    model.maximize(sum(int(p) * var for p, var in zip(profit.tolist(), x, strict=True)))
    solver = _solver(workers, time_limit)
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):  # pragma: no cover - hint is valid
        return CircleSolution(optimal=False, seconds=time.perf_counter() - started)
    optimal = optimal and status == cp_model.OPTIMAL
    out = CircleSolution(optimal=optimal)
    for i, k in enumerate(arcs.tolist()):
        if solver.value(x[i]):
            out.match[int(learner[k])] = int(guide[k])
            out.scores[int(learner[k])] = float(score[k])
    out.opened = sorted(g for g, y in opens.items() if solver.value(y))
    out.error_bound = len(out.match) * span * 2.0 ** -(BITS + 1)
    out.seconds = time.perf_counter() - started
    return out
