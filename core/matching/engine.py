"""The matching engine on arrays: top-K candidates, exact solve, widening until the cut is free.

Used by the service (with a pool read from the store) and by the benchmark (with generated
arrays), so that both measure the same code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from coachbridge.matching.scoring import CandidateArrays, Scorer, full_row, top_k
from coachbridge.matching.solver import solve_arrays
from coachbridge.matching.widen import augmenting_path
from numpy.typing import NDArray

ROW_CACHE = 2048  # full candidate rows kept between searches


@dataclass
class EngineResult:
    """Learner row -> guide row, the candidate arcs finally used, and where the time went."""

    match: dict[int, int]
    candidates: CandidateArrays
    widened: int = 0  # candidate arcs added by widening
    rounds: int = 0  # solves after the first
    seconds: dict[str, float] = field(default_factory=dict)


def solve_candidates(
    cands: CandidateArrays,
    free: NDArray[np.int64],
    n_learners: int,
    min_score: float,
    *,
    groups: NDArray[np.int64] | None = None,
    limit: int | None = None,
    group_used: Mapping[tuple[int, int], int] | None = None,
) -> dict[int, int]:
    """Exact lexicographic solve of candidate arcs: learner row -> guide row."""
    if cands.score.size == 0:
        return {}
    sol = solve_arrays(
        cands.learner,
        cands.guide,
        cands.score,
        free,
        n_learners=n_learners,
        min_score=min_score,
        learner_group=groups if limit is not None else None,
        per_guide_per_group=limit,
        group_used=group_used,
    )
    return {int(cands.learner[k]): int(cands.guide[k]) for k in sol.chosen.tolist()}


def match_rows(
    scorer: Scorer,
    free: NDArray[np.int64],
    *,
    k: int,
    min_score: float,
    rows: NDArray[np.int64] | None = None,
    group_of: Callable[[int], int] | None = None,
    limit: int | None = None,
    group_used: dict[tuple[int, int], int] | None = None,
    widen: bool = True,
) -> EngineResult:
    """Match learner ``rows`` (default: all) to guides with ``free`` places.

    Keeps each learner's ``k`` best guides, solves exactly, then, while an unmatched learner
    has an augmenting path in the full candidate set, adds that path's arcs and solves again:
    the final matched count is the maximum the full candidate set allows.
    """
    n_learners = len(scorer.learners)
    rows = np.arange(n_learners, dtype=np.int64) if rows is None else rows
    groups = None
    if limit is not None and group_of is not None:
        groups = np.array([group_of(i) for i in range(n_learners)], dtype=np.int64)
    guide_ok = free > 0
    t0, c0 = time.perf_counter(), time.process_time()
    cands = top_k(scorer, k, min_score, rows=rows, guide_ok=guide_ok)
    t1, c1 = time.perf_counter(), time.process_time()
    match = solve_candidates(
        cands, free, n_learners, min_score, groups=groups, limit=limit, group_used=group_used
    )
    t2, c2 = time.perf_counter(), time.process_time()
    # Wall-clock and CPU seconds: on a shared machine the CPU figure is the steadier one.
    result = EngineResult(
        match,
        cands,
        seconds={
            "candidates": t1 - t0,
            "solve": t2 - t1,
            "candidates_cpu": c1 - c0,
            "solve_cpu": c2 - c1,
        },
    )
    if not widen:
        return result
    cache: dict[int, tuple[NDArray[np.int64], NDArray[np.float64]]] = {}

    def full(x: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        # Full rows are large (every guide a learner may take): keep only the recent ones.
        if x not in cache:
            if len(cache) >= ROW_CACHE:
                cache.pop(next(iter(cache)))
            cache[x] = full_row(scorer, x, min_score, guide_ok)
        return cache[x]

    def row(x: int) -> NDArray[np.int64]:
        return full(x)[0]

    def room_in_group(x: int, g: int, local: dict[int, int], used: dict) -> bool:
        if limit is None or group_of is None:
            return True
        return used.get((g, group_of(x)), 0) < limit

    # First widening step, vectorised: learners the cut left unmatched get their best K guides
    # among those that still have room (one block-wise pass over just those learners).
    waiting = np.array([x for x in rows.tolist() if x not in result.match], dtype=np.int64)
    if waiting.size:
        load0 = np.bincount(
            np.fromiter(result.match.values(), dtype=np.int64, count=len(result.match)),
            minlength=free.size,
        )
        extra = top_k(scorer, k, min_score, rows=waiting, guide_ok=guide_ok & (load0 < free))
        if extra.score.size:
            before = result.candidates.score.size
            result.candidates = result.candidates.extend(extra)
            result.widened += int(result.candidates.score.size - before)
            result.rounds += 1
            result.match = solve_candidates(
                result.candidates,
                free,
                n_learners,
                min_score,
                groups=groups,
                limit=limit,
                group_used=group_used,
            )

    while True:
        # Augment a local copy as far as the full candidate set allows, collecting the arcs of
        # every path, then solve once: the exact solve on the extended lists matches at least
        # as many learners as the augmented matching, which is a maximum one.
        local = dict(result.match)
        added: list[tuple[int, int, float]] = []
        load = np.bincount(
            np.fromiter(local.values(), dtype=np.int64, count=len(local)), minlength=free.size
        )
        used: dict[tuple[int, int], int] = dict(group_used or {})
        if limit is not None and group_of is not None:
            for x, g in local.items():
                used[(g, group_of(x))] = used.get((g, group_of(x)), 0) + 1
        # Paths of length one first, in a single pass: the learner's best guide with room.
        for x in [int(x) for x in rows.tolist() if x not in local]:
            idx, scores = full(x)
            open_ = load[idx] < free[idx]
            for pos in np.flatnonzero(open_)[np.argsort(-scores[open_], kind="stable")].tolist():
                g = int(idx[pos])
                if room_in_group(x, g, local, used):
                    local[x] = g
                    load[g] += 1
                    if limit is not None and group_of is not None:
                        used[(g, group_of(x))] = used.get((g, group_of(x)), 0) + 1
                    added.append((x, g, float(scores[pos])))
                    break
        # Longer paths move matched learners; each search starts from all unmatched learners.
        while True:
            unmatched = [int(x) for x in rows.tolist() if x not in local]
            if not unmatched:
                break
            path = augmenting_path(
                unmatched, local, free, row, group=group_of, limit=limit, group_used=group_used
            )
            if path is None:
                break
            for x, g in path:
                local[x] = g
                added.append((x, g, scorer.pair_score(scorer.breakdown(x, g))))
        if not added:
            break
        li = np.array([a for a, _, _ in added], dtype=np.int64)
        gi = np.array([b for _, b, _ in added], dtype=np.int64)
        scores = np.array([s for _, _, s in added], dtype=np.float64)
        result.candidates = result.candidates.extend(CandidateArrays(li, gi, scores))
        result.widened += len(added)
        result.rounds += 1
        result.match = solve_candidates(
            result.candidates,
            free,
            n_learners,
            min_score,
            groups=groups,
            limit=limit,
            group_used=group_used,
        )
    result.seconds["widen"] = time.perf_counter() - t2
    return result
