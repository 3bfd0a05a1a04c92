"""The matching engine on arrays: top-K candidates, widening, one solve, certification.

Used by the service (with a pool read from the store) and by the benchmark (with generated
arrays), so that both measure the same code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from coachbridge import metrics
from coachbridge.matching.certify import Pricer, allowed_pair_count, scale_for
from coachbridge.matching.scoring import CandidateArrays, Scorer, full_row, top_k
from coachbridge.matching.solver import ScoreScale, max_matching_arrays, solve_arrays
from coachbridge.matching.widen import augmenting_path
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

ROW_CACHE = 2048  # full candidate rows kept between searches
# Left-out learners up to which widening tries one-arc paths (one full row each, a few ms at
# 25,000 guides) before paying for a max-flow run (about 3 s at 100,000 x 25,000).
DIRECT_ROWS = 500
# Certification keeps each learner's RESERVE x top_k best guides, priced from memory round after
# round (only learners whose bound could still win are scored again) ...
RESERVE = 2
# ... and the solve starts from each learner's LISTS_PERCENT % x top_k best (at least 5, or
# all top_k): by score less the estimated price they rarely need more, and pricing adds any
# pair that could still improve the total. A min-cost solve at 100,000 x 25,000 took about
# 3.5 s on 1.2 million arcs (12 per learner) and 6.5 s on 2 million (20 per learner).
LISTS_PERCENT = 24
# Starting prices are estimated on a sample from this many (learner, open guide) pairs up,
# over at most this many solves of the sample.
ESTIMATE_PAIRS = 50_000_000
ESTIMATE_ROUNDS = 2
ESTIMATE_RESERVE = 8
# Once pricing finds a pair that improves the total, the pairs within this share of the score
# range below zero come along to the next solve (``Pricer.price``): the prices move a little
# in that solve, and those pairs are the ones that would improve the total then. At 100,000 x
# 25,000 (benchmarks/matching) 0.002 and 0.005 left a third solve, 0.02 did not.
PRICE_MARGIN = 0.02


@dataclass
class EngineResult:
    """Learner row -> guide row, the candidate arcs finally used, and where the time went."""

    match: dict[int, int]
    candidates: CandidateArrays
    widened: int = 0  # candidate arcs added by widening
    rounds: int = 0  # widening rounds
    seconds: dict[str, float] = field(default_factory=dict)
    certified: bool = False  # optimal over every allowed pair, proved by the duals
    allowed_pairs: int = 0  # pairs the hard constraints allow (counted when certifying)
    priced: int = 0  # arcs added by pricing
    pricing_rounds: int = 0  # solves after the first one on the widened lists
    priced_rows: int = 0  # learner rows scored in full by pricing (all rounds)
    solves: int = 0  # min-cost solves run
    error_bound: float = 0.0  # the total is within this of the best on the float scores
    scores: dict[int, float] = field(default_factory=dict)  # learner row -> score optimised


def _pairs_from(
    pick: Callable[..., NDArray[np.int64]],
    cands: CandidateArrays,
    free: NDArray[np.int64],
    n_learners: int,
    min_score: float,
    groups: NDArray[np.int64] | None,
    limit: int | None,
    group_used: Mapping[tuple[int, int], int] | None,
) -> dict[int, int]:
    """Run ``pick`` (which returns the chosen arc indices) and map learner row -> guide row."""
    if cands.score.size == 0:
        return {}
    chosen = pick(
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
    return dict(zip(cands.learner[chosen].tolist(), cands.guide[chosen].tolist(), strict=True))


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
    """Lexicographic solve of candidate arcs (most matched, then highest total): row -> row."""

    def pick(*args: Any, **kwargs: Any) -> NDArray[np.int64]:
        return solve_arrays(*args, **kwargs).chosen

    return _pairs_from(pick, cands, free, n_learners, min_score, groups, limit, group_used)


def max_matching(
    cands: CandidateArrays,
    free: NDArray[np.int64],
    n_learners: int,
    min_score: float,
    *,
    groups: NDArray[np.int64] | None = None,
    limit: int | None = None,
    group_used: Mapping[tuple[int, int], int] | None = None,
) -> dict[int, int]:
    """One maximum matching of the candidate arcs (scores aside): learner row -> guide row."""
    return _pairs_from(
        max_matching_arrays, cands, free, n_learners, min_score, groups, limit, group_used
    )


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
    certify: bool = True,
    estimate: bool = True,
) -> EngineResult:
    """Match learner ``rows`` (default: all) to guides with ``free`` places.

    Keeps each learner's ``k`` best guides. Learners a maximum matching of those lists leaves
    out get their best ``k`` guides among those with room; then, while an unmatched learner has
    an augmenting path in the full candidate set, that path's arcs are added (so the matched
    count is the maximum the full set allows). One min-cost solve on the final lists picks the
    best total among those; with ``certify`` its duals price every left-out allowed pair, and
    pairs that could improve it are added and solved again until none is left, which proves
    the result optimal over every allowed pair. Without ``certify`` the result is optimal on
    the lists (each learner's K best guides plus widening's arcs), as before. ``estimate``
    (with ``certify``) starts from guide prices estimated on a sample of the learners
    (``estimate_heads``); the result is the same either way, only the work differs.
    """
    n_learners = len(scorer.learners)
    rows = np.arange(n_learners, dtype=np.int64) if rows is None else rows
    groups = None
    if limit is not None and group_of is not None:
        groups = np.array([group_of(i) for i in range(n_learners)], dtype=np.int64)
    guide_ok = free > 0
    clock = _Clock()
    n_groups = int(np.unique(groups).size) if groups is not None else 0
    scale = scale_for(scorer, min_score, n_learners, free.size, n_groups)
    pricer: Pricer | None = None
    if certify:
        # Starting guide potentials from a sample of the learners (``estimate_heads``), so
        # the lists already rank guides by score less an estimated price: popular guides no
        # longer crowd every list, and few rows need scoring again. Not with a fairness
        # limit (the heads depend on the group there).
        head = None
        if estimate and limit is None:
            head = estimate_heads(scorer, free, rows, k=k, min_score=min_score, scale=scale)
        clock.lap("estimate")
        # Each learner's RESERVE x K best keys: the best go to the solve, the rest are priced
        # from memory, so few learners need their whole row scored again.
        pricer = Pricer(
            scorer,
            k=_list_size(k),
            reserve_k=RESERVE * k,
            scale=scale,
            free=free,
            min_score=min_score,
            rows=rows,
            groups=groups if limit is not None else None,
            head=head,
        )
        cands = pricer.lists
    else:
        cands = top_k(scorer, k, min_score, rows=rows, guide_ok=guide_ok)
    clock.lap("candidates")
    result = EngineResult({}, cands)

    def solve(duals: bool = False) -> Any:
        solution = solve_arrays(
            result.candidates.learner,
            result.candidates.guide,
            result.candidates.score,
            free,
            n_learners=n_learners,
            min_score=min_score,
            learner_group=groups if limit is not None else None,
            per_guide_per_group=limit,
            group_used=group_used,
            scale=scale,
            duals=duals,
        )
        c = result.candidates
        chosen = solution.chosen
        learners = c.learner[chosen].tolist()
        result.match = dict(zip(learners, c.guide[chosen].tolist(), strict=True))
        result.scores = dict(zip(learners, c.score[chosen].tolist(), strict=True))
        result.solves += 1
        result.error_bound = solution.error_bound
        clock.lap("solve")
        return solution

    if not certify:
        solve()
        if widen:
            before = result.candidates.score.size
            with threadpool_limits(limits=1, user_api="blas"):
                _widen(
                    result, scorer, free, rows, k, min_score, groups, group_of, limit, group_used
                )
            clock.lap("widen")
            if result.candidates.score.size != before:
                solve()  # the one solve on the final lists
        result.seconds = clock.seconds
        return result

    assert pricer is not None
    if widen:
        # Whether the lists can match as many learners as the full candidate set: a plain
        # maximum flow (a tenth of a min-cost solve) tells before the first solve, so that
        # widening, when needed, does not cost a solve of its own.
        result.match = max_matching(
            result.candidates,
            free,
            n_learners,
            min_score,
            groups=groups,
            limit=limit,
            group_used=group_used,
        )
        if len(result.match) < min(rows.size, int(free.sum())):
            listed = result.candidates.score.size  # widening appends its arcs after these
            # Widening scores single learners (one small matrix product each): BLAS threads
            # only add overhead there, as in ``top_k``.
            with threadpool_limits(limits=1, user_api="blas"):
                _widen(
                    result, scorer, free, rows, k, min_score, groups, group_of, limit, group_used
                )
            if result.widened:
                c = result.candidates
                pricer.forget(
                    CandidateArrays(c.learner[listed:], c.guide[listed:], c.score[listed:])
                )
        clock.lap("widen")
    while True:
        solution = solve(duals=True)
        if solution.duals is None:
            break  # no usable arc at all: the lists then hold every allowed pair (none)
        found = pricer.price(
            result.candidates, solution.duals, per_learner=max(1, k), margin=PRICE_MARGIN
        )
        clock.lap("certify")
        if not found.score.size:
            break
        before = result.candidates.score.size
        result.candidates = result.candidates.extend(found)
        added = int(result.candidates.score.size - before)
        if not added:
            raise RuntimeError("pricing found only arcs the solve already had")
        result.priced += added
        result.pricing_rounds += 1
    result.priced_rows = pricer.priced_rows
    result.certified = widen
    result.allowed_pairs = allowed_pair_count(scorer, rows, free, scorer.excluded_pairs)
    clock.lap("certify")
    result.seconds = clock.seconds
    metrics.matching_solved(
        sum(clock.seconds[p] for p in ("estimate", "candidates", "solve", "widen"))
    )
    return result


def _list_size(k: int) -> int:
    """How many of each learner's best keys the first solve takes (see LISTS_PERCENT)."""
    return max(min(k, 5), k * LISTS_PERCENT // 100)


def estimate_heads(
    scorer: Scorer,
    free: NDArray[np.int64],
    rows: NDArray[np.int64],
    *,
    k: int,
    min_score: float,
    scale: ScoreScale,
) -> NDArray[np.int64] | None:
    """Guide potentials estimated on a sample of the learners, or None when not worth it.

    Every ``step``-th learner (``step`` the median free capacity) against every guide with
    its places scaled down alike: one scan keeps each sampled learner's
    ``ESTIMATE_RESERVE x k`` best guides, then a few rounds (``ESTIMATE_ROUNDS``) solve and
    price those pairs like the full problem: the duals of that smaller market approximate the
    full one's. They only steer which pairs are looked at first; certification of the full
    problem does not depend on them.
    """
    open_ = free > 0
    step = int(np.median(free[open_])) if open_.any() else 0
    if step < 2 or rows.size * int(open_.sum()) < ESTIMATE_PAIRS:
        return None
    sample = rows[::step]
    share = np.cumsum(free * (sample.size / rows.size))
    small = np.diff(np.floor(np.concatenate([[0.0], share]))).astype(np.int64)
    small[~open_] = 0
    n_learners = len(scorer.learners)
    # One scan of the sample, keeping each learner's ESTIMATE_RESERVE x K best guides; the
    # rounds then price that reserve only (no row is scored again): an estimate needs no proof.
    pricer = Pricer(
        scorer,
        k=_list_size(k),
        reserve_k=ESTIMATE_RESERVE * k,
        scale=scale,
        free=small,
        min_score=min_score,
        rows=sample,
        groups=None,
        screen=False,
    )
    arcs = pricer.lists
    head = None
    # The sample's solves number the sampled learners alone: every other learner would be a
    # node the flow still has to visit (four in five of them), for nothing.
    local = np.full(n_learners, -1, dtype=np.int64)
    local[sample] = np.arange(sample.size, dtype=np.int64)
    for _ in range(ESTIMATE_ROUNDS):
        solution = solve_arrays(
            local[arcs.learner],
            arcs.guide,
            arcs.score,
            small,
            n_learners=int(sample.size),
            min_score=min_score,
            scale=scale,
            duals=True,
        )
        if solution.duals is None:
            return None
        head = solution.duals.guide
        learner_potential = np.zeros(n_learners, dtype=np.int64)
        learner_potential[sample] = solution.duals.learner
        duals = replace(solution.duals, learner=learner_potential)
        found = pricer.price(arcs, duals, per_learner=max(1, k), rescore=False)
        if not found.score.size:
            break
        arcs = arcs.extend(found)
    if head is None:
        return None
    head = head.copy()
    has = small > 0
    # A guide without a place in the sample: as if it had a place left (no price).
    if has.any() and (open_ & ~has).any():
        head[open_ & ~has] = head[has].max()
    return head


class _Clock:
    """Wall-clock and CPU seconds per phase (on a shared machine the CPU figure is steadier)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        for phase in ("estimate", "candidates", "solve", "widen", "certify"):
            self.seconds[phase] = self.seconds[f"{phase}_cpu"] = 0.0

    def lap(self, phase: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.seconds[phase] += wall - self._wall
        self.seconds[f"{phase}_cpu"] += cpu - self._cpu
        self._wall, self._cpu = wall, cpu


def _widen(
    result: EngineResult,
    scorer: Scorer,
    free: NDArray[np.int64],
    rows: NDArray[np.int64],
    k: int,
    min_score: float,
    groups: NDArray[np.int64] | None,
    group_of: Callable[[int], int] | None,
    limit: int | None,
    group_used: dict[tuple[int, int], int] | None,
) -> None:
    """Extend ``result.candidates`` until a maximum matching of them is maximum overall.

    ``result.match`` is a maximum matching of the lists so far (the solve's, or a plain
    maximum flow's); it is left as it is.
    """
    n_learners = len(scorer.learners)
    guide_ok = free > 0

    def matching() -> dict[int, int]:
        return max_matching(
            result.candidates,
            free,
            n_learners,
            min_score,
            groups=groups,
            limit=limit,
            group_used=group_used,
        )

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

    def room_in_group(x: int, g: int, used: dict[tuple[int, int], int]) -> bool:
        if limit is None or group_of is None:
            return True
        return used.get((g, group_of(x)), 0) < limit

    # Start from the matching given: after a solve, the learners it leaves out are those whose
    # exclusion costs the least score, so widening their lists serves the total score best.
    match, maximum = result.match, True
    # First widening step, vectorised: those learners get their best K guides among those
    # that still have room (one block-wise pass over just those learners).
    waiting = np.array([x for x in rows.tolist() if x not in match], dtype=np.int64)
    if waiting.size:
        load0 = np.bincount(
            np.fromiter(match.values(), dtype=np.int64, count=len(match)), minlength=free.size
        )
        extra = top_k(scorer, k, min_score, rows=waiting, guide_ok=guide_ok & (load0 < free))
        if extra.score.size:
            before = result.candidates.score.size
            result.candidates = result.candidates.extend(extra)
            result.widened += int(result.candidates.score.size - before)
            result.rounds += 1
            # Fill greedily along the new arcs first: when that (with the one-arc paths below)
            # matches every learner, the matching is maximum without a max-flow run.
            match = _fill(match, extra, free, group_of, limit, group_used)
            maximum = False
            if sum(x not in match for x in waiting.tolist()) > DIRECT_ROWS:
                match, maximum = matching(), True
    # ``maximum``: ``match`` is a maximum matching of the current lists, which the search for
    # longer augmenting paths below needs (it only looks for paths that leave the lists).
    while True:
        # Augment a local copy as far as the full candidate set allows, collecting the arcs of
        # every path, then re-match once: a maximum matching of the extended lists matches at
        # least as many learners as the augmented matching.
        local = dict(match)
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
                if room_in_group(x, g, used):
                    local[x] = g
                    load[g] += 1
                    if limit is not None and group_of is not None:
                        used[(g, group_of(x))] = used.get((g, group_of(x)), 0) + 1
                    added.append((x, g, float(scores[pos])))
                    break
        if all(x in local for x in rows.tolist()):
            _add(result, added)  # everyone is matched: nothing more to find
            return
        if not maximum:
            _add(result, added)
            match, maximum = matching(), True
            continue
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
            return
        _add(result, added)
        match = matching()


def _add(result: EngineResult, added: list[tuple[int, int, float]]) -> None:
    """Add ``(learner, guide, score)`` arcs to the result's candidate lists."""
    if not added:
        return
    li = np.array([a for a, _, _ in added], dtype=np.int64)
    gi = np.array([b for _, b, _ in added], dtype=np.int64)
    scores = np.array([s for _, _, s in added], dtype=np.float64)
    before = result.candidates.score.size
    result.candidates = result.candidates.extend(CandidateArrays(li, gi, scores))
    result.widened += int(result.candidates.score.size - before)
    result.rounds += 1


def _fill(
    match: dict[int, int],
    extra: CandidateArrays,
    free: NDArray[np.int64],
    group_of: Callable[[int], int] | None,
    limit: int | None,
    group_used: Mapping[tuple[int, int], int] | None,
) -> dict[int, int]:
    """``match`` plus, for each unmatched learner of ``extra``, its best arc with room left."""
    out = dict(match)
    load = np.bincount(
        np.fromiter(out.values(), dtype=np.int64, count=len(out)), minlength=free.size
    )
    limited = limit is not None and group_of is not None
    used: dict[tuple[int, int], int] = dict(group_used or {})
    if limited:
        for x, g in out.items():
            used[(g, group_of(x))] = used.get((g, group_of(x)), 0) + 1
    order = np.lexsort((-extra.score, extra.learner))  # each learner's arcs, best first
    for x, g in zip(extra.learner[order].tolist(), extra.guide[order].tolist(), strict=True):
        if x in out or load[g] >= free[g]:
            continue
        if limited:
            key = (g, group_of(x))
            if used.get(key, 0) >= limit:
                continue
            used[key] = used.get(key, 0) + 1
        out[x] = g
        load[g] += 1
    return out
