"""``assign``: exact and lexicographic, checked against brute force and an independent solver."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from fractions import Fraction
from types import MappingProxyType

import numpy as np
import pytest
from coachbridge.matching import assign, assign_with_limits
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching


def brute_force(cands, capacity, min_score, group_of=None, limit=None):
    """(matched count, total score) of the lexicographic optimum, by enumeration."""
    by_learner: dict = {}
    for learner, guide, score in cands:
        if score >= min_score:
            by_learner.setdefault(learner, []).append((guide, score))
    learners = list(by_learner)
    best = (0, Fraction(0))
    for choice in itertools.product(*[[None, *by_learner[x]] for x in learners]):
        load = Counter(c[0] for c in choice if c is not None)
        if any(load[g] > capacity[g] for g in load):
            continue
        if limit is not None:
            per = Counter(
                (c[0], group_of.get(x)) for x, c in zip(learners, choice, strict=True) if c
            )
            if any(n > limit for (g, grp), n in per.items() if grp is not None):
                continue
        used = [c for c in choice if c is not None]
        key = (len(used), Fraction(math.fsum(c[1] for c in used)))
        best = max(best, key)
    return best[0], float(best[1])


def check_valid(result, cands, capacity, min_score):
    given = {(x, g): s for x, g, s in cands}
    learners = [x for x, _, _ in result]
    assert learners == sorted(learners)
    assert len(set(learners)) == len(learners)
    load = Counter(g for _, g, _ in result)
    assert all(load[g] <= capacity[g] for g in load)
    for x, g, s in result:
        assert given[(x, g)] == s  # exactly the caller's float
        assert s >= min_score


def random_instance(rng: random.Random, n_learners: int, n_guides: int, density: float, ties: bool):
    capacity = {f"g{j}": rng.choice([0, 1, 1, 2, 3]) for j in range(n_guides)}
    cands = []
    for i in range(n_learners):
        for j in range(n_guides):
            if rng.random() < density:
                score = rng.choice([0.0, 0.25, 0.5, 1.0]) if ties else rng.uniform(-1, 1)
                cands.append((i, f"g{j}", score))
    return cands, capacity


@pytest.mark.parametrize("seed", range(60))
def test_assign_matches_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    cands, capacity = random_instance(rng, rng.randint(1, 6), rng.randint(1, 4), 0.6, seed % 2 == 0)
    # Thresholds exactly at a score that occurs, so that ">= min_score" is exercised.
    min_score = rng.choice([0.0, 0.25, 0.5, -0.5]) if seed % 2 == 0 else rng.uniform(-1, 0.5)
    result = assign(cands, capacity, min_score=min_score)
    check_valid(result, cands, capacity, min_score)
    count, total = brute_force(cands, capacity, min_score)
    assert len(result) == count
    assert math.fsum(s for _, _, s in result) == pytest.approx(total, abs=1e-9)


def test_most_learners_first_then_score() -> None:
    # Matching 1-a alone scores 10; matching both learners scores 2: two learners win.
    cands = [(1, "a", 10.0), (1, "b", 1.0), (2, "a", 1.0)]
    assert assign(cands, {"a": 1, "b": 1}) == [(1, "b", 1.0), (2, "a", 1.0)]


def test_threshold_is_inclusive_and_capacity_zero_is_honoured() -> None:
    cands = [(1, "a", 0.2), (2, "a", 0.1999999), (3, "z", 5.0)]
    assert assign(cands, {"a": 5, "z": 0}, min_score=0.2) == [(1, "a", 0.2)]


def test_no_feasible_pair_returns_empty_list() -> None:
    assert assign([], {}) == []
    assert assign([(1, "a", 0.1)], {"a": 1}, min_score=0.5) == []
    assert assign([(1, "a", 0.9)], {"a": 0}) == []


def test_accepts_any_iterable_and_mapping_and_leaves_them_unchanged() -> None:
    cands = [(1, "a", 0.5), (2, "a", 0.7), (2, "b", 0.1)]
    caps = {"a": 1, "b": 1}
    frozen = MappingProxyType(dict(caps))
    result = assign((c for c in cands), frozen)
    assert result == [(1, "a", 0.5), (2, "b", 0.1)]
    assert cands == [(1, "a", 0.5), (2, "a", 0.7), (2, "b", 0.1)] and caps == {"a": 1, "b": 1}


def test_any_hashable_ids_and_numpy_numbers() -> None:
    cands = [((1, "x"), frozenset({2}), np.float64(0.5))]
    result = assign(cands, {frozenset({2}): np.int64(1)})
    assert result == [((1, "x"), frozenset({2}), np.float64(0.5))]


@pytest.mark.parametrize(
    ("cands", "caps", "needle"),
    [
        ([(1, "a", 0.5)], {"a": -1}, "'a'"),
        ([(1, "a", 0.5)], {"a": 1.5}, "'a'"),
        ([(1, "a", 0.5)], {"a": True}, "'a'"),
        ([(1, "a", float("nan"))], {"a": 1}, "(1, 'a')"),
        ([(1, "a", float("inf"))], {"a": 1}, "(1, 'a')"),
        ([(1, "a", 0.5), (1, "a", 0.6)], {"a": 1}, "duplicate candidate pair (1, 'a')"),
        ([(1, "ghost", 0.5)], {"a": 1}, "'ghost' has no capacity entry"),
        ([(1, "a")], {"a": 1}, "triple"),
    ],
)
def test_bad_input_raises_value_error_naming_the_item(cands, caps, needle) -> None:
    with pytest.raises(ValueError) as info:
        assign(cands, caps)
    assert needle in str(info.value)


def lsa_optimum(cands, capacity, min_score):
    """Independent exact method on floats: maximum cardinality, then scipy's dense LSA."""
    usable = [c for c in cands if c[2] >= min_score]
    learners = sorted({c[0] for c in usable})
    slots = [(g, k) for g in sorted(capacity) for k in range(capacity[g])]
    if not usable or not slots:
        return 0, 0.0
    li = {x: i for i, x in enumerate(learners)}
    cols: dict = {}
    for j, (g, _) in enumerate(slots):
        cols.setdefault(g, []).append(j)
    rows, colsx = [], []
    for x, g, _ in usable:
        for j in cols.get(g, []):
            rows.append(li[x])
            colsx.append(j)
    graph = csr_matrix((np.ones(len(rows)), (rows, colsx)), shape=(len(learners), len(slots)))
    count = int((maximum_bipartite_matching(graph, perm_type="column") >= 0).sum())
    dummies = len(learners) - count
    cost = np.full((len(learners), len(slots) + dummies), np.inf)
    cost[:, len(slots) :] = 0.0
    for x, g, s in usable:
        for j in cols.get(g, []):
            cost[li[x], j] = -s
    r, c = linear_sum_assignment(cost)
    total = math.fsum(-cost[i, j] for i, j in zip(r, c, strict=True) if j < len(slots))
    return count, total


@pytest.mark.parametrize("seed", range(8))
def test_assign_matches_an_independent_exact_solver_on_medium_instances(seed: int) -> None:
    rng = random.Random(1000 + seed)
    n_learners, n_guides = rng.randint(60, 150), rng.randint(10, 40)
    cands, capacity = random_instance(rng, n_learners, n_guides, 0.15, seed % 3 == 0)
    min_score = 0.0 if seed % 3 == 0 else -0.3
    result = assign(cands, capacity, min_score=min_score)
    check_valid(result, cands, capacity, min_score)
    count, total = lsa_optimum(cands, capacity, min_score)
    assert len(result) == count
    got = math.fsum(s for _, _, s in result)
    assert abs(got - total) <= 1e-6 * max(1.0, abs(total))


@pytest.mark.parametrize("seed", range(40))
def test_fairness_limit_is_part_of_the_optimum(seed: int) -> None:
    rng = random.Random(5000 + seed)
    cands, capacity = random_instance(rng, rng.randint(2, 6), rng.randint(1, 3), 0.7, seed % 2 == 0)
    group_of = {i: rng.choice(["Eng", "Sales", None]) for i in range(6)}
    limit = rng.choice([1, 2])
    result = assign_with_limits(
        cands, capacity, group_of=group_of, per_guide_per_group=limit, min_score=0.0
    )
    check_valid(result, cands, capacity, 0.0)
    per = Counter((g, group_of[x]) for x, g, _ in result if group_of[x] is not None)
    assert all(n <= limit for n in per.values())
    count, total = brute_force(cands, capacity, 0.0, group_of, limit)
    assert len(result) == count
    assert math.fsum(s for _, _, s in result) == pytest.approx(total, abs=1e-9)


def test_fairness_limit_changes_the_answer() -> None:
    cands = [(1, "a", 0.9), (2, "a", 0.9), (2, "b", 0.1)]
    groups = {1: "Eng", 2: "Eng"}
    assert assign(cands, {"a": 2, "b": 1}) == [(1, "a", 0.9), (2, "a", 0.9)]
    limited = assign_with_limits(cands, {"a": 2, "b": 1}, group_of=groups, per_guide_per_group=1)
    assert limited == [(1, "a", 0.9), (2, "b", 0.1)]


def test_scores_spanning_many_magnitudes_stay_exact_enough() -> None:
    rng = random.Random(7)
    cands = [(i, f"g{j}", rng.uniform(0, 1e6)) for i in range(80) for j in range(8)]
    cands += [(i, "tiny", 1e-7 * i) for i in range(80)]
    caps = {f"g{j}": 5 for j in range(8)} | {"tiny": 80}
    result = assign(cands, caps)
    count, total = lsa_optimum(cands, caps, 0.0)
    assert len(result) == count == 80
    assert abs(math.fsum(s for _, _, s in result) - total) <= 1e-6 * total
