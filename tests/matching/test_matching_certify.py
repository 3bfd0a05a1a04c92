"""Certification: the top-K solve priced with its duals is optimal over every allowed pair."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp
from coachbridge.matching import assign_with_limits
from coachbridge.matching.certify import allowed_pair_count
from coachbridge.matching.criteria import Criterion
from coachbridge.matching.engine import match_rows
from coachbridge.matching.features import Side
from coachbridge.matching.scoring import Scorer
from coachbridge.matching.solver import shortest_distances
from scipy.sparse.csgraph import bellman_ford

from tests.matching.test_matching_engine import sides


def _side(ids: list[int], topics: list[list[float]]) -> Side:
    n = len(ids)
    t = np.array(topics, dtype=np.float32)
    return Side(
        ids=np.array(ids, dtype=np.int64),
        level=np.full(n, 3.0),
        department=np.zeros(n, dtype=np.int64),
        utc_offset=np.zeros(n),
        topics=t,
        goals=t,
        languages=np.ones((n, 1), dtype=np.float32),
        tin=np.full(n, -1, dtype=np.int64),
        tout=np.full(n, -1, dtype=np.int64),
    )


def _total(scorer: Scorer, match: dict[int, int]) -> float:
    scores = scorer.scores(np.arange(len(scorer.learners), dtype=np.int64))
    return math.fsum(float(scores[x, g]) for x, g in match.items())


@pytest.mark.parametrize("fill", [0, 2])
def test_certification_finds_the_optimum_the_top_k_lists_miss(
    fill: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One place per guide, each learner's list holds its two best guides (K = 2):
    #   A: g0 1.0, g1 0.99 (listed), g2 0.98 (left out)
    #   B: g0 0.9, g1 0.5 (listed), g2 0.0
    #   C: g1 0.9, g2 0.5 (listed), g0 0.0
    # The lists match everyone (no widening), best A-g1, B-g0, C-g2 = 2.39; the optimum over
    # every pair is A-g2, B-g0, C-g1 = 2.78, through a pair no list held.
    table = [[1.0, 0.99, 0.98], [0.9, 0.5, 0.0], [0.0, 0.9, 0.5]]
    learners = _side([10, 11, 12], [[1.0]] * 3)
    guides = _side([1, 2, 3], [[1.0]] * 3)
    learners.profiles = [0, 1, 2]  # type: ignore[list-item]  # the criterion reads row numbers
    guides.profiles = [0, 1, 2]  # type: ignore[list-item]
    fit = Criterion("fit", lambda lp, gp: table[lp][gp])  # type: ignore[index]
    scorer = Scorer(learners, guides, {"fit": 1.0}, plugins={"fit": fit})
    free = np.array([1, 1, 1], dtype=np.int64)
    plain = match_rows(scorer, free, k=2, min_score=0.0, certify=False)
    assert plain.match == {0: 1, 1: 0, 2: 2} and not plain.certified and plain.widened == 0
    assert _total(scorer, plain.match) == pytest.approx(2.39)
    # Without the guide fill (each guide's best pairs added to the first lists) pricing has to
    # find the missing pair; with it, g2's best learner A is in the lists from the start.
    monkeypatch.setattr("coachbridge.matching.certify.GUIDE_FILL", fill)
    certified = match_rows(scorer, free, k=2, min_score=0.0)
    assert certified.widened == 0
    assert certified.match == {0: 2, 1: 0, 2: 1}
    assert certified.certified
    if not fill:
        assert certified.priced >= 1 and certified.pricing_rounds >= 1
    assert _total(scorer, certified.match) == pytest.approx(2.78)
    assert certified.scores == {0: 0.98, 1: 0.9, 2: 0.9}  # as the criterion gave them
    assert certified.allowed_pairs == 9


def _all_pairs(scorer: Scorer, free: np.ndarray, min_score: float) -> list[tuple[int, int, float]]:
    n_learners, n_guides = len(scorer.learners), len(scorer.guides)
    scores, ok = scorer.block(np.arange(n_learners, dtype=np.int64))
    return [
        (i, j, float(scores[i, j]))
        for i in range(n_learners)
        for j in range(n_guides)
        if ok[i, j] and scores[i, j] >= min_score and free[j] > 0
    ]


@pytest.mark.parametrize("seed", range(30))
def test_certified_total_equals_the_all_pairs_optimum(seed: int) -> None:
    rng = np.random.default_rng(9000 + seed)
    n_learners, n_guides = int(rng.integers(4, 60)), int(rng.integers(2, 15))
    learners, guides = sides(rng, n_learners, n_guides)
    guides.tin[:] = np.arange(n_guides) * 1000  # each guide manages a few learners
    guides.tout[:] = guides.tin + 1000
    boss = rng.integers(0, n_guides, n_learners)
    learners.tin[:] = guides.tin[boss] + 1 + np.arange(n_learners)
    learners.tout[:] = learners.tin + 1
    forbid = rng.random((n_learners, n_guides)) < 0.1

    def excluded(rows: np.ndarray) -> np.ndarray:
        return forbid[rows]

    weights = {"skills": 0.5, "seniority": 0.2, "timezone": 0.2, "department_diversity": 0.1}
    pairs = {x: set(np.flatnonzero(forbid[x]).tolist()) for x in range(n_learners)}
    scorer = Scorer(learners, guides, weights, excluded=excluded, excluded_pairs=pairs)
    free = rng.integers(0, 4, n_guides).astype(np.int64)
    min_score = [0.0, 0.3][seed % 2]
    limit = [None, 1, 2][seed % 3]

    def group_of(row: int) -> int:
        return int(learners.department[row])

    k = int(rng.integers(1, 4))
    result = match_rows(
        scorer, free, k=k, min_score=min_score, group_of=group_of, limit=limit, group_used={}
    )
    assert result.certified
    best = assign_with_limits(
        _all_pairs(scorer, free, min_score),
        {j: int(free[j]) for j in range(n_guides)},
        min_score=min_score,
        group_of={i: group_of(i) for i in range(n_learners)},
        per_guide_per_group=limit,
    )
    assert len(result.match) == len(best)
    assert math.fsum(result.scores.values()) == pytest.approx(
        math.fsum(s for _, _, s in best), abs=1e-9
    )
    assert result.scores == {x: _all_scores(scorer)[x, g] for x, g in result.match.items()}
    load = np.bincount(list(result.match.values()), minlength=n_guides)
    assert (load <= free).all()
    _, ok = scorer.block(np.arange(n_learners, dtype=np.int64))
    assert all(ok[x, g] for x, g in result.match.items())
    assert result.allowed_pairs == int((ok & (free > 0)[None, :]).sum())


def _all_scores(scorer: Scorer) -> np.ndarray:
    return scorer.scores(np.arange(len(scorer.learners), dtype=np.int64))


@pytest.mark.parametrize("seed", range(12))
def test_certified_result_equals_brute_force(seed: int) -> None:
    """Every assignment of a tiny instance enumerated: most matched, then the highest total."""
    rng = np.random.default_rng(77 + seed)
    n_learners, n_guides = int(rng.integers(2, 7)), int(rng.integers(1, 4))
    learners, guides = sides(rng, n_learners, n_guides)
    scorer = Scorer(learners, guides, {"skills": 0.6, "seniority": 0.4})
    free = rng.integers(0, 3, n_guides).astype(np.int64)
    scores = _all_scores(scorer)
    best = (-1, -math.inf)
    for choice in itertools.product([None, *range(n_guides)], repeat=n_learners):
        load = np.bincount([g for g in choice if g is not None], minlength=n_guides)
        if (load > free).any():
            continue
        picked = [(x, g) for x, g in enumerate(choice) if g is not None]
        best = max(best, (len(picked), math.fsum(float(scores[x, g]) for x, g in picked)))
    result = match_rows(scorer, free, k=1, min_score=0.0)
    assert result.certified
    assert len(result.match) == best[0]
    assert math.fsum(result.scores.values()) == pytest.approx(best[1], abs=1e-9)


@pytest.mark.parametrize("seed", range(10))
def test_shortest_distances_agree_with_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    m = int(rng.integers(1, 200))
    tails, heads = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = tails != heads
    tails, heads = tails[keep], heads[keep]
    # Reduced weights of random potentials: negative arcs, but no negative cycle.
    potential = rng.integers(-50, 50, n)
    weight = rng.integers(0, 20, tails.size) + potential[tails] - potential[heads]
    got = shortest_distances(tails, heads, weight.astype(np.int64), n)
    # The same question for SciPy: a root joined to every node by a 0 arc. (Explicit zero
    # weights are arcs in csgraph; parallel arcs are reduced to their minimum first.)
    best: dict[tuple[int, int], int] = {}
    for t, h, w in zip(tails.tolist(), heads.tolist(), weight.tolist(), strict=True):
        best[(t, h)] = min(best.get((t, h), w), w)
    for v in range(n):
        best[(n, v)] = 0
    keys = list(best)
    graph = sp.csr_array(
        ([float(best[k]) for k in keys], ([k[0] for k in keys], [k[1] for k in keys])),
        shape=(n + 1, n + 1),
    )
    want = bellman_ford(graph, indices=n)[:n]
    assert got.tolist() == want.astype(np.int64).tolist()
    assert (got[heads] <= got[tails] + weight).all()


def test_shortest_distances_refuse_a_negative_cycle() -> None:
    tails, heads = np.array([0, 1]), np.array([1, 0])
    with pytest.raises(RuntimeError, match="negative cycle"):
        shortest_distances(tails, heads, np.array([1, -2], dtype=np.int64), 2)


@pytest.mark.parametrize("seed", range(8))
def test_allowed_pair_count_equals_the_masks(seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    n_learners, n_guides = int(rng.integers(1, 50)), int(rng.integers(1, 30))
    learners, guides = sides(rng, n_learners, n_guides)
    # A real org tree: guides on two levels, learners under second-level guides.
    managers: dict[int, int | None] = {}
    for j in range(n_guides):
        managers[j] = None if j < 2 else int(rng.integers(0, 2))
    for i in range(n_learners):
        managers[1000 + i] = int(rng.integers(0, n_guides))
    if seed % 2:
        learners.ids[0] = 3 % n_guides  # one person on both sides
    from coachbridge.matching.features import euler_intervals

    tour = euler_intervals(managers)
    guides.tin[:] = [tour[int(g)][0] for g in guides.ids]
    guides.tout[:] = [tour[int(g)][1] for g in guides.ids]
    learners.tin[:] = [tour[int(x)][0] if int(x) in tour else -1 for x in learners.ids]
    learners.tout[:] = [tour[int(x)][1] if int(x) in tour else -1 for x in learners.ids]
    forbidden = {
        int(x): {int(g) for g in rng.integers(0, n_guides, 3)}
        for x in rng.integers(0, n_learners, 5)
    }

    def excluded(rows: np.ndarray) -> np.ndarray:
        out = np.zeros((rows.size, n_guides), dtype=np.bool_)
        for a, r in enumerate(rows.tolist()):
            out[a, list(forbidden.get(r, ()))] = True
        return out

    scorer = Scorer(learners, guides, {"skills": 1.0}, excluded=excluded, excluded_pairs=forbidden)
    free = rng.integers(0, 3, n_guides).astype(np.int64)
    rows = np.flatnonzero(rng.random(n_learners) < 0.8).astype(np.int64)
    ok = scorer.allowed(rows) & (free > 0)[None, :]
    assert allowed_pair_count(scorer, rows, free, forbidden) == int(ok.sum())


def _offset_features(profiles: list) -> np.ndarray:
    return np.array([p.utc_offset_hours for p in profiles], dtype=np.float64)


def _offset_block(learners: np.ndarray, guides: np.ndarray) -> np.ndarray:
    return 1.0 - np.abs(np.subtract.outer(learners, guides)) / 12.0


def _offset_pair(learner, guide) -> float:
    return 1.0 - abs(learner.utc_offset_hours - guide.utc_offset_hours) / 12.0


def test_vectorised_plugin_criterion_scores_like_the_per_pair_form() -> None:
    from coachbridge.matching.criteria import Profile
    from coachbridge.matching.scoring import top_k

    rng = np.random.default_rng(5)
    learners, guides = sides(rng, 40, 30)
    for side in (learners, guides):
        side.profiles = [
            Profile(int(pid), utc_offset_hours=float(rng.integers(-8, 9))) for pid in side.ids
        ]
    per_pair = Criterion("near", _offset_pair)
    vectorised = Criterion("near", features=_offset_features, score_block=_offset_block)
    weights = {"skills": 0.5, "near": 0.5}
    slow = Scorer(learners, guides, weights, plugins={"near": per_pair})
    fast = Scorer(learners, guides, weights, plugins={"near": vectorised})
    rows = np.arange(40, dtype=np.int64)
    assert fast.scores(rows).tolist() == slow.scores(rows).tolist()
    a, b = top_k(fast, 5, 0.0), top_k(slow, 5, 0.0)
    assert sorted(zip(a.learner.tolist(), a.guide.tolist(), a.score.tolist(), strict=True)) == (
        sorted(zip(b.learner.tolist(), b.guide.tolist(), b.score.tolist(), strict=True))
    )
    assert fast.breakdown(3, 7) == slow.breakdown(3, 7)
    result = match_rows(fast, np.full(30, 2, dtype=np.int64), k=3, min_score=0.0)
    assert result.certified and len(result.match) == 40


def test_bad_vectorised_criteria_are_config_errors() -> None:
    from coachbridge.errors import ConfigError
    from coachbridge.matching.criteria import Profile

    assert Criterion("x", features=_offset_features).problem() is not None
    assert Criterion("x").problem() is not None
    assert Criterion("x", _offset_pair).problem() is None
    rng = np.random.default_rng(6)
    learners, guides = sides(rng, 4, 3)
    for side in (learners, guides):
        side.profiles = [Profile(int(pid), utc_offset_hours=0.0) for pid in side.ids]
    wrong = Criterion("x", features=_offset_features, score_block=lambda a, b: np.zeros(3))
    scorer = Scorer(learners, guides, {"x": 1.0}, plugins={"x": wrong})
    with pytest.raises(ConfigError, match="shape"):
        scorer.scores(np.arange(4, dtype=np.int64))
    nan = Criterion(
        "x", features=_offset_features, score_block=lambda a, b: np.full((a.size, b.size), np.nan)
    )
    scorer = Scorer(learners, guides, {"x": 1.0}, plugins={"x": nan})
    with pytest.raises(ConfigError, match="not finite"):
        scorer.scores(np.arange(4, dtype=np.int64))
