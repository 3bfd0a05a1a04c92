"""Solving: the exact, lexicographic assignment of learners to guides.

``assign`` is a pure function: most learners matched first, then the highest total score.
Internally it is a min-cost maximum flow (OR-tools ``SimpleMinCostFlow``)::

    source -> learner (1) -> [(guide, department) (limit)] -> guide (capacity) -> sink

``solve_max_flow_with_min_cost`` first maximises the flow (the number of matched learners, an
exact integer problem) and then minimises the cost among maximum flows, which is exactly the
lexicographic order the contract asks for. The optional middle layer carries the fairness limit
``per_guide_per_department`` inside the optimisation rather than after it.

Exactness. The solver needs integer costs, so a score ``s`` becomes the cost
``round((s_max - s) * 2**k / (s_max - s_min))``. Shifting every used arc by ``s_max`` does not
change which maximum flow is cheapest (all of them carry the same number of arcs), so only the
rounding matters: each used arc is off by at most half a unit, hence the returned total score is
within ``matched * (s_max - s_min) * 2**-k`` of the true optimum (k is 40 up to millions of
nodes and never below 24; ``solve_arrays`` returns the figure). The matched count is exact.
Scores in the result are always the caller's own floats, never the rounded ones.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from ortools.graph.python import max_flow, min_cost_flow

L = TypeVar("L", bound=Hashable)
G = TypeVar("G", bound=Hashable)

_MAX_BITS = 40
_MIN_BITS = 24


@dataclass(frozen=True)
class ArraySolution:
    """What ``solve_arrays`` found: the indices of the used candidate arcs and a precision bound."""

    chosen: NDArray[np.int64]  # positions into the candidate arrays, one per matched learner
    error_bound: float  # the total score is within this of the exact optimum


def _check_capacity(guide: object, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"capacity of guide {guide!r} must be an integer, got {value!r}")
    if value < 0:
        raise ValueError(f"capacity of guide {guide!r} must not be negative, got {value!r}")
    return int(value)


def _check_score(learner: object, guide: object, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"score of pair ({learner!r}, {guide!r}) must be a number, got {value!r}")
    score = float(value)
    if not math.isfinite(score):
        raise ValueError(f"score of pair ({learner!r}, {guide!r}) must be finite, got {value!r}")
    return score


def _sort_key(value: object) -> tuple[int, Any]:
    # Ids of one comparable type sort naturally; a mix falls back to a stable textual order.
    return (0, value) if isinstance(value, int | float | str) else (1, repr(value))


def _sorted(values: Iterable[Any]) -> list[Any]:
    items = list(values)
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=lambda v: (type(v).__name__, _sort_key(v)))


def assign(
    candidates: Iterable[tuple[L, G, float]],
    capacity: Mapping[G, int],
    *,
    min_score: float = 0.0,
) -> list[tuple[L, G, float]]:
    """Assign learners to guides: the most learners matched, then the highest total score.

    Each learner gets at most one guide, each guide at most ``capacity[guide]`` learners, and a
    candidate ``(learner, guide, score)`` is usable only when ``score >= min_score``. Returns the
    chosen triples with their scores exactly as given, sorted by learner; ``[]`` when no pair is
    feasible. Inputs are read once and left unchanged.

    :raises ValueError: naming the item, for a negative or non-integer capacity, a NaN or
        infinite score, a duplicate ``(learner, guide)`` pair, or a guide without a capacity entry.
    """
    return assign_with_limits(candidates, capacity, min_score=min_score)


def assign_with_limits(
    candidates: Iterable[tuple[L, G, float]],
    capacity: Mapping[G, int],
    *,
    min_score: float = 0.0,
    group_of: Mapping[L, Hashable] | None = None,
    per_guide_per_group: int | None = None,
) -> list[tuple[L, G, float]]:
    """``assign`` plus a fairness limit inside the optimisation.

    With ``per_guide_per_group = N`` a guide takes at most N learners of one group (``group_of``
    maps a learner to its group, e.g. department; a learner missing from it is in a group of its
    own, so the limit never binds for them). Same validation and result shape as ``assign``.
    """
    if isinstance(min_score, bool) or not isinstance(min_score, numbers.Real):
        raise ValueError(f"min_score must be a number, got {min_score!r}")
    if math.isnan(min_score):
        raise ValueError("min_score must not be NaN")
    if per_guide_per_group is not None:
        _check_capacity("<per_guide_per_group>", per_guide_per_group)
        if group_of is None:
            raise ValueError("per_guide_per_group needs group_of (learner -> group)")

    learner_index: dict[Any, int] = {}
    guide_index: dict[Any, int] = {}
    learners: list[Any] = []
    guides: list[Any] = []
    seen: set[tuple[int, int]] = set()
    li: list[int] = []
    gi: list[int] = []
    sc: list[float] = []
    for item in candidates:
        try:
            learner, guide, raw = item
        except (TypeError, ValueError):
            raise ValueError(
                f"candidate {item!r} must be a (learner, guide, score) triple"
            ) from None
        score = _check_score(learner, guide, raw)
        lpos = learner_index.get(learner)
        if lpos is None:
            lpos = learner_index[learner] = len(learners)
            learners.append(learner)
        gpos = guide_index.get(guide)
        if gpos is None:
            if guide not in capacity:
                raise ValueError(f"guide {guide!r} has no capacity entry")
            gpos = guide_index[guide] = len(guides)
            guides.append(guide)
        if (lpos, gpos) in seen:
            raise ValueError(f"duplicate candidate pair ({learner!r}, {guide!r})")
        seen.add((lpos, gpos))
        li.append(lpos)
        gi.append(gpos)
        sc.append(score)
    # Every capacity is validated, not only those of guides with candidates: a bad entry is a
    # bug in the caller whether or not it happens to matter for this instance.
    caps_by_guide = {g: _check_capacity(g, v) for g, v in capacity.items()}
    if not sc:
        return []
    caps = np.array([caps_by_guide[g] for g in guides], dtype=np.int64)
    groups: NDArray[np.int64] | None = None
    if per_guide_per_group is not None and group_of is not None:
        codes: dict[Hashable, int] = {}
        groups = np.empty(len(learners), dtype=np.int64)
        for pos, learner in enumerate(learners):
            key = group_of.get(learner)
            # A learner without a group gets a code of their own (the limit cannot bind).
            key = ("__own__", pos) if key is None else ("g", key)
            groups[pos] = codes.setdefault(key, len(codes))
    scores = np.array(sc, dtype=np.float64)
    solution = solve_arrays(
        np.array(li, dtype=np.int64),
        np.array(gi, dtype=np.int64),
        scores,
        caps,
        n_learners=len(learners),
        min_score=float(min_score),
        learner_group=groups,
        per_guide_per_group=per_guide_per_group if groups is not None else None,
    )
    out = [(learners[li[k]], guides[gi[k]], sc[k]) for k in solution.chosen.tolist()]
    by_learner = {row[0]: row for row in out}
    return [by_learner[learner] for learner in _sorted(by_learner)]


@dataclass
class _Network:
    """The flow network of a candidate graph (see the module docstring), costs aside."""

    tails: NDArray[np.int64]
    heads: NDArray[np.int64]
    caps: NDArray[np.int64]
    n_nodes: int
    n_fixed: int  # arcs before the candidate arcs (all of cost 0)
    usable: NDArray[np.int64]  # positions of the candidates with score >= min_score
    source: int = 0
    sink: int = 1


def _network(
    learner: NDArray[np.int64],
    guide: NDArray[np.int64],
    score: NDArray[np.float64],
    capacity: NDArray[np.int64],
    *,
    n_learners: int,
    min_score: float,
    learner_group: NDArray[np.int64] | None,
    per_guide_per_group: int | None,
    group_used: Mapping[tuple[int, int], int] | None,
) -> _Network | None:
    usable = np.flatnonzero(score >= min_score)
    if usable.size == 0 or n_learners == 0:
        return None
    lu, gu = learner[usable], guide[usable]
    n_guides = int(capacity.shape[0])
    source, sink = 0, 1
    learner_node0 = 2
    guide_node0 = learner_node0 + n_learners

    tails: list[NDArray[np.int64]] = []
    heads: list[NDArray[np.int64]] = []
    caps: list[NDArray[np.int64]] = []

    # source -> learner, capacity 1
    tails.append(np.zeros(n_learners, dtype=np.int64))
    heads.append(np.arange(n_learners, dtype=np.int64) + learner_node0)
    caps.append(np.ones(n_learners, dtype=np.int64))
    # guide -> sink, the guide's capacity
    tails.append(np.arange(n_guides, dtype=np.int64) + guide_node0)
    heads.append(np.full(n_guides, sink, dtype=np.int64))
    caps.append(capacity.astype(np.int64))

    next_node = guide_node0 + n_guides
    if learner_group is not None and per_guide_per_group is not None:
        # One (guide, group) node per pair that occurs; learner arcs end there.
        width = int(learner_group.max()) + 1
        key = gu.astype(np.int64) * width + learner_group[lu]
        uniq, inverse = np.unique(key, return_inverse=True)
        group_nodes = next_node + np.arange(uniq.size, dtype=np.int64)
        next_node += uniq.size
        uniq_guide = uniq // width
        group_caps = np.full(uniq.size, per_guide_per_group, dtype=np.int64)
        if group_used:
            uniq_group = uniq % width
            for pos, (g, grp) in enumerate(
                zip(uniq_guide.tolist(), uniq_group.tolist(), strict=True)
            ):
                group_caps[pos] = max(0, per_guide_per_group - group_used.get((g, grp), 0))
        tails.append(group_nodes)
        heads.append(uniq_guide + guide_node0)
        caps.append(group_caps)
        cand_heads = group_nodes[inverse.reshape(-1)]
    else:
        cand_heads = gu.astype(np.int64) + guide_node0
    n_fixed = sum(int(t.size) for t in tails)
    tails.append(lu.astype(np.int64) + learner_node0)
    heads.append(cand_heads)
    caps.append(np.ones(usable.size, dtype=np.int64))
    return _Network(
        np.concatenate(tails),
        np.concatenate(heads),
        np.concatenate(caps),
        next_node,
        n_fixed,
        usable,
        source,
        sink,
    )


def solve_arrays(
    learner: NDArray[np.int64],
    guide: NDArray[np.int64],
    score: NDArray[np.float64],
    capacity: NDArray[np.int64],
    *,
    n_learners: int,
    min_score: float = 0.0,
    learner_group: NDArray[np.int64] | None = None,
    per_guide_per_group: int | None = None,
    group_used: Mapping[tuple[int, int], int] | None = None,
) -> ArraySolution:
    """The solver on arrays (no validation; ``assign`` validates): for callers at scale.

    ``learner``/``guide`` are 0-based indices (``guide`` into ``capacity``), ``score`` finite.
    Returns the positions of the chosen candidates (sorted by learner index). ``group_used``
    counts places of a ``(guide, group)`` already taken (e.g. by existing pairings).
    """
    net = _network(
        learner,
        guide,
        score,
        capacity,
        n_learners=n_learners,
        min_score=min_score,
        learner_group=learner_group,
        per_guide_per_group=per_guide_per_group,
        group_used=group_used,
    )
    if net is None:
        return ArraySolution(np.empty(0, dtype=np.int64), 0.0)
    su = score[net.usable]
    s_max, s_min = float(su.max()), float(su.min())
    span = s_max - s_min
    supplies = np.zeros(net.n_nodes, dtype=np.int64)
    supplies[net.source] = n_learners
    supplies[net.sink] = -n_learners
    fixed_costs = np.zeros(net.n_fixed, dtype=np.int64)
    bits = _cost_bits(net.n_nodes, n_learners)
    while True:
        if span > 0:
            cand_cost = np.rint((s_max - su) * (2.0**bits / span)).astype(np.int64)
            bound = min(n_learners, int(capacity.sum())) * span * 2.0 ** (-bits)
        else:
            cand_cost = np.zeros(su.size, dtype=np.int64)
            bound = 0.0
        flow = min_cost_flow.SimpleMinCostFlow()
        # All arcs in one call, as arrays: no Python loop over millions of arcs.
        flow.add_arcs_with_capacity_and_unit_cost(
            net.tails, net.heads, net.caps, np.concatenate([fixed_costs, cand_cost])
        )
        flow.set_nodes_supplies(np.arange(net.n_nodes, dtype=np.int64), supplies)
        status = flow.solve_max_flow_with_min_cost()
        if status == flow.BAD_COST_RANGE and bits > _MIN_BITS:
            bits = max(_MIN_BITS, bits - 4)  # the solver's own overflow guard: coarser costs
            continue
        break
    if status != flow.OPTIMAL:
        raise RuntimeError(f"min-cost flow solver failed with status {status}")
    arc_ids = np.arange(net.n_fixed, net.n_fixed + su.size, dtype=np.int64)
    used = flow.flows(arc_ids) > 0
    chosen = net.usable[used]
    chosen = chosen[np.argsort(learner[chosen], kind="stable")]
    return ArraySolution(chosen.astype(np.int64), bound)


def max_matching_arrays(
    learner: NDArray[np.int64],
    guide: NDArray[np.int64],
    score: NDArray[np.float64],
    capacity: NDArray[np.int64],
    *,
    n_learners: int,
    min_score: float = 0.0,
    learner_group: NDArray[np.int64] | None = None,
    per_guide_per_group: int | None = None,
    group_used: Mapping[tuple[int, int], int] | None = None,
) -> NDArray[np.int64]:
    """Positions of the candidates in one maximum matching, scores aside (same arguments).

    A plain maximum flow (OR-tools ``SimpleMaxFlow``) on the network ``solve_arrays`` uses: it
    answers "how many learners can these arcs match, and which ones are left out" in a
    fraction of the time of the min-cost solve, which the engine runs once at the end.
    """
    net = _network(
        learner,
        guide,
        score,
        capacity,
        n_learners=n_learners,
        min_score=min_score,
        learner_group=learner_group,
        per_guide_per_group=per_guide_per_group,
        group_used=group_used,
    )
    if net is None:
        return np.empty(0, dtype=np.int64)
    if net.n_nodes >= 2**31 or net.tails.size >= 2**31:
        raise ValueError("candidate graph too large for the max-flow solver (2**31 nodes or arcs)")
    flow = max_flow.SimpleMaxFlow()
    flow.add_arcs_with_capacity(
        net.tails.astype(np.int32), net.heads.astype(np.int32), net.caps.astype(np.int64)
    )
    status = flow.solve(net.source, net.sink)
    if status != flow.OPTIMAL:
        raise RuntimeError(f"max-flow solver failed with status {status}")
    arc_ids = np.arange(net.n_fixed, net.n_fixed + net.usable.size, dtype=np.int32)
    used = np.asarray(flow.flows(arc_ids)) > 0
    return net.usable[used].astype(np.int64)


def _cost_bits(n_nodes: int, n_learners: int) -> int:
    # OR-tools' cost scaling multiplies costs by about the node count, and the total cost sums
    # up to one arc cost per learner: keep both well inside int64 (the solver also checks).
    headroom = 62 - math.ceil(math.log2(max(n_nodes, n_learners) + 2)) - 3
    return max(_MIN_BITS, min(_MAX_BITS, headroom))


def pairs_total(pairs: Sequence[tuple[Any, Any, float]]) -> float:
    """The total score of an assignment (math.fsum, so the order of pairs does not matter)."""
    return math.fsum(p[2] for p in pairs)
