"""The circle solver is exact: it agrees with brute force on small random instances."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from coachbridge.matching.circles import solve_circles


def _brute(arcs, free, minimum, n_learners):
    """Best (placed, total) over every assignment that respects the semi-continuous bounds."""
    options = [
        [None] + [k for k, (ll, _g, _s) in enumerate(arcs) if ll == i] for i in range(n_learners)
    ]
    best = (0, 0.0)
    for pick in itertools.product(*options):
        load: dict[int, int] = {}
        total = 0.0
        for k in pick:
            if k is not None:
                g = arcs[k][1]
                load[g] = load.get(g, 0) + 1
                total += arcs[k][2]
        if any(n > free[g] or (minimum[g] and n < minimum[g]) for g, n in load.items()):
            continue
        placed = sum(load.values())
        if (placed, total) > (best[0], best[1] + 1e-9):
            best = (placed, total)
    return best


@pytest.mark.parametrize("seed", range(40))
def test_matches_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    n_learners = rng.randint(2, 7)
    n_guides = rng.randint(1, 3)
    arcs = [
        (i, g, round(rng.random(), 3))
        for i in range(n_learners)
        for g in range(n_guides)
        if rng.random() < 0.7
    ]
    free = np.array([rng.randint(1, 4) for _ in range(n_guides)], dtype=np.int64)
    # Some guides already run a circle (no lower bound), the others must reach 2 or 3.
    minimum = np.array([rng.choice([0, 2, 3]) for _ in range(n_guides)], dtype=np.int64)
    learner = np.array([a[0] for a in arcs], dtype=np.int64)
    guide = np.array([a[1] for a in arcs], dtype=np.int64)
    score = np.array([a[2] for a in arcs], dtype=np.float64)
    got = solve_circles(learner, guide, score, free, minimum)
    assert got.optimal
    load: dict[int, int] = {}
    for g in got.match.values():
        load[g] = load.get(g, 0) + 1
    for g, n in load.items():
        assert n <= free[g]
        assert minimum[g] == 0 or n >= minimum[g], "a new circle below the minimum"
    placed, total = _brute(arcs, free, minimum, n_learners)
    assert len(got.match) == placed
    assert sum(got.scores.values()) == pytest.approx(total, abs=got.error_bound + 1e-9)


def test_a_guide_takes_none_rather_than_too_few() -> None:
    # Two learners fit guide 0 (minimum 3): placing them would break the minimum, so neither is.
    learner = np.array([0, 1, 2, 3, 4], dtype=np.int64)
    guide = np.array([0, 0, 1, 1, 1], dtype=np.int64)
    score = np.array([0.9, 0.9, 0.1, 0.1, 0.1])
    got = solve_circles(learner, guide, score, np.array([6, 6]), np.array([3, 3]))
    assert got.match == {2: 1, 3: 1, 4: 1}
    assert got.opened == [1]


def test_fairness_limit_holds_inside_the_solve() -> None:
    learner = np.array([0, 1, 2, 3], dtype=np.int64)
    guide = np.zeros(4, dtype=np.int64)
    score = np.array([0.5, 0.5, 0.5, 0.5])
    group = np.array([7, 7, 7, 8], dtype=np.int64)
    got = solve_circles(learner, guide, score, np.array([6]), np.array([3]), group=group, limit=2)
    assert len(got.match) == 3 and got.match.get(3) == 0


def test_both_routes_are_exercised() -> None:
    # The flow's own answer (when it respects every minimum) and the MIP: the brute-force
    # instances above go through both, so the agreement covers each.
    methods = set()
    for seed in range(40):
        rng = random.Random(seed)
        n_learners, n_guides = rng.randint(2, 7), rng.randint(1, 3)
        arcs = [
            (i, g, round(rng.random(), 3))
            for i in range(n_learners)
            for g in range(n_guides)
            if rng.random() < 0.7
        ]
        free = np.array([rng.randint(1, 4) for _ in range(n_guides)], dtype=np.int64)
        minimum = np.array([rng.choice([0, 2, 3]) for _ in range(n_guides)], dtype=np.int64)
        if not arcs:
            continue
        got = solve_circles(
            np.array([a[0] for a in arcs]),
            np.array([a[1] for a in arcs]),
            np.array([a[2] for a in arcs], dtype=np.float64),
            free,
            minimum,
        )
        methods.add(got.method)
    assert methods - {""} == {"flow", "mip"}  # "": no usable arc, nothing to solve
