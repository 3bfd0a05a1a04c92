"""Pricing at scale: price-adjusted lists, sampled selection, bounds and the price estimate.

Each test would fail if certification could miss a better pair: the selection must keep every
pair above its cut-off, a learner's bound must cover every pair it does not hold, and the
certified result (estimated prices, many guides, the sampled selection) must equal the
optimum over every allowed pair.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from coachbridge.matching import assign_with_limits
from coachbridge.matching.certify import (
    LOW,
    Pricer,
    _first_best,
    _held,
    _kth_largest,
    _row_best,
    scale_for,
)
from coachbridge.matching.engine import estimate_heads, match_rows
from coachbridge.matching.scoring import CandidateArrays, Scorer
from coachbridge.matching.solver import solve_arrays

from tests.matching.test_matching_engine import sides


def _all_pairs(scorer: Scorer, free: np.ndarray, min_score: float) -> list[tuple[int, int, float]]:
    rows = np.arange(len(scorer.learners), dtype=np.int64)
    scores, ok = scorer.block(rows)
    ok &= (scores >= min_score) & (free > 0)[None, :]
    r, c = np.nonzero(ok)
    return list(zip(r.tolist(), c.tolist(), scores[r, c].tolist(), strict=True))


def _instance(seed: int, n_learners: int, n_guides: int) -> tuple[Scorer, np.ndarray]:
    rng = np.random.default_rng(seed)
    learners, guides = sides(rng, n_learners, n_guides)
    # A few "star" guides that suit nearly everyone: the case where score lists crowd.
    guides.topics[: max(1, n_guides // 20)] = 1.0
    guides.goals = guides.topics
    scorer = Scorer(learners, guides, {"skills": 0.6, "seniority": 0.3, "timezone": 0.1})
    free = rng.integers(0, 4, n_guides).astype(np.int64)
    free[: max(1, n_guides // 20)] = 2
    return scorer, free


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_row_best_keeps_every_key_above_the_cut(seed: int, dtype: type) -> None:
    # float32: the keys the certified engine selects on.
    rng = np.random.default_rng(seed)
    n_rows, n_cols = int(rng.integers(1, 30)), int(rng.integers(1, 900))
    width = int(rng.integers(1, 12))
    key = (np.round(rng.random((n_rows, n_cols)) * 50) / 50).astype(dtype)  # many ties
    key[rng.random(key.shape) < 0.2] = -np.inf
    invalid = rng.random(key.shape) < 0.1
    eps = 0.01

    def valid(ri: np.ndarray, ci: np.ndarray) -> np.ndarray:
        return ~invalid[ri, ci]

    ri, ci, cut = _row_best(key.copy(), width, eps, valid)
    kept = np.zeros(key.shape, dtype=np.bool_)
    kept[ri, ci] = True
    real = np.isfinite(key) & ~invalid
    assert not (kept & ~real).any()  # only real pairs are kept
    for r in range(n_rows):
        values = np.sort(key[r][real[r]])[::-1]
        if values.size <= width:
            assert cut[r] == -np.inf and kept[r].sum() == values.size
        else:
            assert cut[r] == values[width - 1]
            # every real pair left out lies below the cut-off by more than eps
            assert (key[r][real[r] & ~kept[r]] < cut[r] - eps).all()
            assert kept[r].sum() >= width


@pytest.mark.parametrize("seed", range(10))
def test_kth_largest_and_first_best_agree_with_a_sort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_rows = int(rng.integers(1, 12))
    size = int(rng.integers(0, 300))
    rows = rng.integers(0, n_rows, size).astype(np.int64)
    if seed % 2:
        rows = np.sort(rows)  # as ``_row_best`` hands them over; unsorted works as well
    cols = rng.permutation(size).astype(np.int64)
    value = rng.integers(0, 6, size).astype(np.int64)  # many ties
    k = int(rng.integers(1, 8))
    kth, count = _kth_largest(value, rows, n_rows, k, np.iinfo(np.int64).min)
    best = _first_best(rows, cols, value, n_rows, k)
    for r in range(n_rows):
        mine = np.flatnonzero(rows == r)
        assert count[r] == mine.size
        ranked = mine[np.lexsort((cols[mine], -value[mine]))]  # value down, then column up
        if mine.size >= k:
            assert kth[r] == value[ranked[k - 1]]
        else:
            assert kth[r] == np.iinfo(np.int64).min
        assert set(np.flatnonzero(best & (rows == r)).tolist()) == set(ranked[:k].tolist())


@pytest.mark.parametrize("seed", range(6))
def test_held_agrees_with_isin(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_learners, n_guides = 40, 30

    def pairs(n: int) -> CandidateArrays:
        keys = rng.choice(n_learners * n_guides, size=n, replace=False)
        return CandidateArrays(keys // n_guides, keys % n_guides, rng.random(n))

    reserve, others = pairs(500), pairs(int(rng.integers(0, 80)))
    expected = np.isin(
        reserve.learner * n_guides + reserve.guide, others.learner * n_guides + others.guide
    )
    assert (_held(reserve, others, n_learners, n_guides) == expected).all()


def _first_solve(seed: int) -> tuple[np.ndarray, Pricer, CandidateArrays, object]:
    scorer, free = _instance(seed, 60, 200)
    free[:] = np.maximum(free, 1)
    scale = scale_for(scorer, 0.0, 60, 200, 0)
    rows = np.arange(60, dtype=np.int64)
    pricer = Pricer(
        scorer, k=1, reserve_k=3, scale=scale, free=free, min_score=0.0, rows=rows, groups=None
    )
    arcs = pricer.lists
    solution = solve_arrays(
        arcs.learner, arcs.guide, arcs.score, free, n_learners=60, scale=scale, duals=True
    )
    return free, pricer, arcs, solution.duals


@pytest.mark.parametrize("seed", range(4))
def test_a_margin_needs_an_improving_pair_and_adds_only_near_ones(seed: int) -> None:
    # Lists of one guide each against 200 guides: the first solve's duals leave improving
    # pairs. With a margin, the pairs it adds are improving or within it below zero; once
    # nothing improves, a margin adds nothing (or certification would never end).
    free, pricer, arcs, duals = _first_solve(seed)
    scale = pricer.scale
    found = pricer.price(arcs, duals, per_learner=50, margin=0.05)
    assert found.score.size
    reduced = scale.profit(found.score) - (scale.top + duals.learner[found.learner])
    reduced += duals.guide[found.guide]
    assert (reduced > 0).any()
    assert (reduced > -int(0.05 * scale.top)).all()
    arcs = arcs.extend(found)
    for _ in range(20):
        solution = solve_arrays(
            arcs.learner, arcs.guide, arcs.score, free, n_learners=60, scale=scale, duals=True
        )
        more = pricer.price(arcs, solution.duals, per_learner=50, margin=0.5)
        if not more.score.size:
            break
        arcs = arcs.extend(more)
    else:
        raise AssertionError("a margin kept pricing from ending")
    # It ended although the reserve still holds pairs within that margin below zero.
    near = pricer._price_reserve(solution.duals, -int(0.5 * scale.top))
    assert near[0].size and (near[3] <= 0).all()


def test_an_estimate_pricer_does_not_score_rows_again() -> None:
    scorer, free = _instance(1, 30, 100)
    scale = scale_for(scorer, 0.0, 30, 100, 0)
    rows = np.arange(30, dtype=np.int64)
    pricer = Pricer(
        scorer,
        k=1,
        reserve_k=3,
        scale=scale,
        free=free,
        min_score=0.0,
        rows=rows,
        groups=None,
        screen=False,
    )
    assert (pricer.top_profit[rows] == LOW).all()  # no screening data was worked out
    arcs = pricer.lists
    solution = solve_arrays(
        arcs.learner, arcs.guide, arcs.score, free, n_learners=30, scale=scale, duals=True
    )
    pricer.price(arcs, solution.duals, per_learner=5, rescore=False)
    with pytest.raises(ValueError, match="reserve alone"):
        pricer.price(arcs, solution.duals, per_learner=5)


@pytest.mark.parametrize("seed", range(8))
def test_bounds_cover_every_pair_left_out(seed: int) -> None:
    # Random potentials, many guides (the sampled selection runs): for each learner, every
    # allowed pair outside its lists and reserve has P + h <= its bound, exactly. Scores
    # here take few values; potentials of a few hundred units split those ties by less than
    # the float keys resolve, so pairs left out lie within a few units of the bound.
    scorer, free = _instance(500 + seed, 25, 400)
    rng = np.random.default_rng(seed)
    scale = scale_for(scorer, 0.0, 25, 400, 0)
    spread = 2**38 if seed % 2 else 300
    head = rng.integers(-spread, spread, 400).astype(np.int64)
    rows = np.arange(25, dtype=np.int64)
    pricer = Pricer(
        scorer,
        k=2,
        reserve_k=4,
        scale=scale,
        free=free,
        min_score=0.0,
        rows=rows,
        groups=None,
        head=head,
        workers=1,
    )
    scores, ok = scorer.block(rows)
    ok &= (free > 0)[None, :]
    held = np.zeros(ok.shape, dtype=np.bool_)
    for arrays in (pricer.lists, pricer.reserve):
        held[arrays.learner, arrays.guide] = True
    value = scale.profit(scores) + head[None, :]
    for x in rows.tolist():
        left = ok[x] & ~held[x]
        if pricer.bound[x] == LOW:
            assert not left.any()
        else:
            assert (value[x][left] <= pricer.bound[x]).all()
            assert (scale.profit(scores[x][ok[x]]) <= pricer.top_profit[x]).all()


@pytest.mark.parametrize("seed", range(16))
@pytest.mark.parametrize("hot", [False, True])
@pytest.mark.parametrize("margin", [0.0, 0.02])
def test_certified_with_estimated_prices_equals_the_all_pairs_optimum(
    seed: int, hot: bool, margin: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The price estimate on a sample runs on these small instances too, and the lists are
    # short against many guides: the optimum needs pairs far down the score lists. With
    # ``hot`` the screening by hot columns runs whenever a row fails the plain one; the
    # pricing margin only changes which pairs come along, never the result.
    monkeypatch.setattr("coachbridge.matching.engine.ESTIMATE_PAIRS", 0)
    monkeypatch.setattr("coachbridge.matching.engine.PRICE_MARGIN", margin)
    if hot:
        monkeypatch.setattr("coachbridge.matching.certify.HOT_MIN_ROWS", 0)
        monkeypatch.setattr("coachbridge.matching.certify.HOT_STEPS", (1, 4, 16))
    rng = np.random.default_rng(seed)
    n_learners, n_guides = int(rng.integers(20, 120)), int(rng.integers(130, 300))
    scorer, free = _instance(seed, n_learners, n_guides)
    min_score = [0.0, 0.3][seed % 2]
    free[:] = np.maximum(free, 2 if seed % 3 else 0)  # a median capacity of 2 or more: sampled
    result = match_rows(scorer, free, k=1 + seed % 3, min_score=min_score)
    assert result.certified
    best = assign_with_limits(
        _all_pairs(scorer, free, min_score),
        {j: int(free[j]) for j in range(n_guides)},
        min_score=min_score,
    )
    assert len(result.match) == len(best)
    assert math.fsum(result.scores.values()) == pytest.approx(
        math.fsum(s for _, _, s in best), abs=1e-9
    )
    load = np.bincount(list(result.match.values()), minlength=n_guides)
    assert (load <= free).all()


def test_the_estimate_prices_popular_guides() -> None:
    scorer, free = _instance(3, 200, 150)
    free[:] = 2
    scale = scale_for(scorer, 0.0, 200, 150, 0)
    rows = np.arange(200, dtype=np.int64)
    import coachbridge.matching.engine as engine

    saved = engine.ESTIMATE_PAIRS
    engine.ESTIMATE_PAIRS = 0
    try:
        head = estimate_heads(scorer, free, rows, k=3, min_score=0.0, scale=scale)
    finally:
        engine.ESTIMATE_PAIRS = saved
    assert head is not None and head.shape == (150,)
    stars = np.arange(150 // 20)
    # A lower potential is a higher price: the stars everyone wants cost the most.
    assert head[stars].max() < np.median(head)
    # Too small to be worth it with the default threshold.
    assert estimate_heads(scorer, free, rows, k=3, min_score=0.0, scale=scale) is None
