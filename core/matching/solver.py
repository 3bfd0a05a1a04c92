"""Solving: the lexicographic assignment of learners to guides, with a duality certificate.

``assign`` is a pure function: most learners matched first, then the highest total score.
Internally it is one min-cost maximum flow (OR-tools ``SimpleMinCostFlow``)::

    source -> learner (1) -> [(guide, department) (limit)] -> guide (capacity) -> sink

``solve_max_flow_with_min_cost`` first maximises the flow (the number of matched learners, an
exact integer problem) and then minimises the cost among maximum flows, which is exactly the
lexicographic order the contract asks for, in one call. The optional middle layer carries the
fairness limit ``per_guide_per_department`` inside the optimisation rather than after it.

Integer costs. The solver needs integers, so a score ``s`` becomes the profit
``P = rint((s - lo) * scale)`` with ``scale = 2**k / (hi - lo)`` (``lo``/``hi`` bound the scores)
and the arc cost ``C - P`` with ``C = rint((hi - lo) * scale)``. Every source-sink path uses
exactly one candidate arc, so the constant ``C`` does not change which maximum flow is cheapest;
only the rounding of ``P`` matters: each used arc is off by at most half a unit, hence the
returned total score is within ``matched * (hi - lo) * 2**-k`` of the best total on the caller's
floats (k is 40 up to millions of nodes and never below 24; ``ArraySolution.error_bound``). The
matched count is exact, and the integer problem is solved exactly. Scores in the result are
always the caller's own floats, never the rounded ones.

Certificate. ``potentials`` turns an optimal flow into node potentials (shortest distances in
the residual graph); with them, any pair the solve did not see is priced in exact integer
arithmetic, and when no such pair has a positive reduced profit the flow is optimal over all of
them (linear-programming duality). ``coachbridge.matching.certify`` runs that loop.
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
    error_bound: float  # the total score is within this of the best total on the floats
    duals: Duals | None = None  # node potentials, when asked for


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
    items = candidates if isinstance(candidates, list) else list(candidates)
    parsed = _parse_fast(items, capacity)
    if parsed is None:
        parsed = _parse_checked(items, capacity)
    learners, guides, li, gi, scores = parsed
    # Every capacity is validated, not only those of guides with candidates: a bad entry is a
    # bug in the caller whether or not it happens to matter for this instance.
    caps_by_guide = {g: _check_capacity(g, v) for g, v in capacity.items()}
    if not scores.size:
        return []
    caps = np.fromiter((caps_by_guide[g] for g in guides), dtype=np.int64, count=len(guides))
    groups: NDArray[np.int64] | None = None
    if per_guide_per_group is not None and group_of is not None:
        codes: dict[Hashable, int] = {}
        groups = np.empty(len(learners), dtype=np.int64)
        for pos, learner in enumerate(learners):
            key = group_of.get(learner)
            # A learner without a group gets a code of their own (the limit cannot bind).
            key = ("__own__", pos) if key is None else ("g", key)
            groups[pos] = codes.setdefault(key, len(codes))
    solution = solve_arrays(
        li,
        gi,
        scores,
        caps,
        n_learners=len(learners),
        min_score=float(min_score),
        learner_group=groups,
        per_guide_per_group=per_guide_per_group if groups is not None else None,
    )
    # ``solve_arrays`` returns the chosen arcs sorted by learner position: order them by id.
    given = scores.tolist()
    out = [(learners[li[k]], guides[gi[k]], given[k]) for k in solution.chosen.tolist()]
    try:
        out.sort(key=lambda row: row[0])
    except TypeError:
        order = {v: i for i, v in enumerate(_sorted(row[0] for row in out))}
        out.sort(key=lambda row: order[row[0]])
    return out


_Parsed = tuple[list[Any], list[Any], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]
_PLAIN_SCORES = frozenset({float, int, np.float64, np.float32, np.int64, np.int32})


def _parse_fast(items: list[Any], capacity: Mapping[Any, int]) -> _Parsed | None:
    """Ids to positions and scores to an array at C speed; None when anything needs a look.

    The common input (triples of hashable ids and plain finite numbers, no duplicate pair,
    every guide in ``capacity``) goes through here; anything else returns None and
    ``_parse_checked`` walks the items one by one to name the first bad one.
    """
    try:
        if items and set(map(len, items)) != {3}:
            return None
        lids, gids, raw = zip(*items, strict=True) if items else ((), (), ())
        if not set(map(type, raw)) <= _PLAIN_SCORES:
            return None  # bools, strings, Decimals, ...: check them one by one
        learner_index = {v: i for i, v in enumerate(dict.fromkeys(lids))}
        guide_index = {v: i for i, v in enumerate(dict.fromkeys(gids))}
    except TypeError:  # an item without a length, an unhashable id
        return None
    guides = list(guide_index)
    if any(g not in capacity for g in guides):
        return None
    n = len(items)
    li = np.fromiter(map(learner_index.__getitem__, lids), dtype=np.int64, count=n)
    gi = np.fromiter(map(guide_index.__getitem__, gids), dtype=np.int64, count=n)
    scores = np.fromiter(raw, dtype=np.float64, count=n)
    if not np.isfinite(scores).all():
        return None
    if n:
        keys = li * len(guides) + gi
        keys.sort()
        if np.any(keys[1:] == keys[:-1]):
            return None
    return list(learner_index), guides, li, gi, scores


def _parse_checked(items: list[Any], capacity: Mapping[Any, int]) -> _Parsed:
    """The item-by-item parse: raises ValueError naming the first bad item."""
    learner_index: dict[Any, int] = {}
    guide_index: dict[Any, int] = {}
    learners: list[Any] = []
    guides: list[Any] = []
    seen: set[tuple[int, int]] = set()
    li: list[int] = []
    gi: list[int] = []
    sc: list[float] = []
    for item in items:
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
    return (
        learners,
        guides,
        np.array(li, dtype=np.int64),
        np.array(gi, dtype=np.int64),
        np.array(sc, dtype=np.float64),
    )


@dataclass
class _Network:
    """The flow network of a candidate graph (see the module docstring), costs aside."""

    tails: NDArray[np.int64]
    heads: NDArray[np.int64]
    caps: NDArray[np.int64]
    n_nodes: int
    n_fixed: int  # arcs before the candidate arcs (all of cost 0)
    usable: NDArray[np.int64]  # positions of the candidates with score >= min_score
    learner_node0: int
    guide_node0: int
    group_keys: NDArray[np.int64]  # guide * width + group of each (guide, group) node, sorted
    width: int
    limit: int | None
    used: tuple[NDArray[np.int64], NDArray[np.int64]]  # group_used as sorted keys, counts
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
    group_keys = np.empty(0, dtype=np.int64)
    width = 0
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
        group_keys = uniq.astype(np.int64)
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
    limit = per_guide_per_group if learner_group is not None else None
    used_items = sorted(
        (g * width + grp, n) for (g, grp), n in (group_used or {}).items() if 0 <= grp < width
    )
    used = (
        np.array([k for k, _ in used_items], dtype=np.int64),
        np.array([n for _, n in used_items], dtype=np.int64),
    )
    return _Network(
        np.concatenate(tails),
        np.concatenate(heads),
        np.concatenate(caps),
        next_node,
        n_fixed,
        usable,
        learner_node0,
        guide_node0,
        group_keys,
        width,
        limit,
        used,
        source,
        sink,
    )


@dataclass(frozen=True)
class ScoreScale:
    """How scores become integer profits: ``P = rint((s - lo) * scale)``, cost ``top - P``.

    ``lo`` and ``hi`` bound every score the solve (and any later pricing) may see; the same
    formula on the same float always gives the same integer, so a pair priced later compares
    exactly with the arcs the solve used.
    """

    lo: float
    hi: float
    bits: int

    @property
    def scale(self) -> float:
        return 2.0**self.bits / (self.hi - self.lo) if self.hi > self.lo else 1.0

    @property
    def top(self) -> int:
        return int(np.rint((self.hi - self.lo) * self.scale))

    def profit(self, score: NDArray[np.float64]) -> NDArray[np.int64]:
        return np.rint((score - self.lo) * self.scale).astype(np.int64)

    def error_bound(self, matched: int) -> float:
        """The returned total is within this of the best total on the caller's floats."""
        return matched * (self.hi - self.lo) * 2.0 ** (-self.bits) if self.hi > self.lo else 0.0


def score_scale(lo: float, hi: float, *, n_nodes: int, n_learners: int) -> ScoreScale:
    """The integer scaling for scores in ``[lo, hi]`` on a network of ``n_nodes`` nodes."""
    return ScoreScale(float(lo), float(max(hi, lo)), _cost_bits(n_nodes, n_learners))


@dataclass(frozen=True)
class Duals:
    """Node potentials of an optimal flow, for pricing pairs the solve did not see.

    A pair (learner ``l``, guide ``g``) with integer profit ``P`` has the reduced profit
    ``P - (top + learner[l] - head)``, where ``head`` is the potential of the node the pair's
    arc would end in (``head_of``). When no unseen pair has a positive reduced profit, the flow
    is optimal over all of them: every residual arc, old or new, then has a non-negative
    reduced cost, so no negative cycle exists (linear-programming duality).
    """

    scale: ScoreScale
    learner: NDArray[np.int64]  # per learner index
    guide: NDArray[np.int64]  # per guide index
    group_keys: NDArray[np.int64]  # sorted guide * width + group of each (guide, group) node
    group_potential: NDArray[np.int64]
    width: int
    limit: int | None  # per_guide_per_group
    used_keys: NDArray[np.int64]  # sorted guide * width + group of places already taken
    used_counts: NDArray[np.int64]

    def head_of(
        self, guide: NDArray[np.int64], group: NDArray[np.int64] | None
    ) -> NDArray[np.int64]:
        """Potential of the node an arc into ``guide`` (from a learner of ``group``) ends in.

        A (guide, group) pair without a node gets the guide's own potential (a new node
        between them could take any potential between the two), or, when the
        group has no place left at that guide (a hugely negative value: such a pair can never
        be used, so it must never price as an improvement).
        """
        if group is None or self.limit is None:
            return self.guide[guide]
        out = self.guide[guide].copy()
        key = guide * self.width + group
        if self.group_keys.size:
            pos = np.minimum(np.searchsorted(self.group_keys, key), self.group_keys.size - 1)
            hit = self.group_keys[pos] == key
            out[hit] = self.group_potential[pos[hit]]
        else:
            hit = np.zeros(key.shape, dtype=np.bool_)
        used = np.zeros(key.shape, dtype=np.int64)
        if self.used_keys.size:
            pos = np.minimum(np.searchsorted(self.used_keys, key), self.used_keys.size - 1)
            found = self.used_keys[pos] == key
            used[found] = self.used_counts[pos[found]]
        out[~hit & (used >= self.limit)] = np.iinfo(np.int64).min // 4
        return out


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
    scale: ScoreScale | None = None,
    duals: bool = False,
) -> ArraySolution:
    """The solver on arrays (no validation; ``assign`` validates): for callers at scale.

    ``learner``/``guide`` are 0-based indices (``guide`` into ``capacity``), ``score`` finite.
    Returns the positions of the chosen candidates (sorted by learner index). ``group_used``
    counts places of a ``(guide, group)`` already taken (e.g. by existing pairings). ``scale``
    fixes the integer scaling (default: from the usable scores); ``duals`` also returns the
    node potentials that certify the solve (``Duals``). One ``solve_max_flow_with_min_cost``.
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
    if scale is None:
        scale = score_scale(
            float(su.min()), float(su.max()), n_nodes=net.n_nodes, n_learners=n_learners
        )
    supplies = np.zeros(net.n_nodes, dtype=np.int64)
    supplies[net.source] = n_learners
    supplies[net.sink] = -n_learners
    costs = np.concatenate([np.zeros(net.n_fixed, dtype=np.int64), scale.top - scale.profit(su)])
    flow = min_cost_flow.SimpleMinCostFlow()
    # All arcs in one call, as arrays: no Python loop over millions of arcs.
    flow.add_arcs_with_capacity_and_unit_cost(net.tails, net.heads, net.caps, costs)
    flow.set_nodes_supplies(np.arange(net.n_nodes, dtype=np.int64), supplies)
    status = flow.solve_max_flow_with_min_cost()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"min-cost flow solver failed with status {status}")
    flows = flow.flows(np.arange(net.tails.size, dtype=np.int64))
    del flow
    used = flows[net.n_fixed :] > 0
    chosen = net.usable[used]
    chosen = chosen[np.argsort(learner[chosen], kind="stable")]
    bound = scale.error_bound(min(n_learners, int(capacity.sum())))
    found = _duals(net, costs, flows, scale, n_learners, capacity.size) if duals else None
    return ArraySolution(chosen.astype(np.int64), bound, found)


def _duals(
    net: _Network,
    costs: NDArray[np.int64],
    flows: NDArray[np.int64],
    scale: ScoreScale,
    n_learners: int,
    n_guides: int,
) -> Duals:
    """Node potentials of the optimal ``flows``, checked exactly on every residual arc."""
    fwd = flows < net.caps
    bwd = flows > 0
    tails = np.concatenate([net.tails[fwd], net.heads[bwd]])
    heads = np.concatenate([net.heads[fwd], net.tails[bwd]])
    weight = np.concatenate([costs[fwd], -costs[bwd]])
    dist = shortest_distances(tails, heads, weight, net.n_nodes)
    # Guide and (guide, group) nodes as low as their outgoing residual arcs allow: shortest
    # distances give each node its highest feasible potential, and a lower potential at an
    # arc's head can only make unseen pairs price worse (fewer needless additions).
    lowerable = np.zeros(net.n_nodes, dtype=np.bool_)
    lowerable[net.guide_node0 :] = True
    out = lowerable[tails]
    floor = np.full(net.n_nodes, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(floor, tails[out], dist[heads[out]] - weight[out])
    has = lowerable & (floor > np.iinfo(np.int64).min)
    dist[has] = np.minimum(dist[has], floor[has])
    if np.any(dist[heads] > dist[tails] + weight):
        raise RuntimeError("dual potentials do not certify the solve (a residual arc is negative)")
    learner_pot = dist[net.learner_node0 : net.learner_node0 + n_learners]
    guide_pot = dist[net.guide_node0 : net.guide_node0 + n_guides]
    n_groups = net.group_keys.size
    group_pot = dist[net.guide_node0 + n_guides : net.guide_node0 + n_guides + n_groups]
    used_keys, used_counts = net.used
    return Duals(
        scale,
        learner_pot.copy(),
        guide_pot.copy(),
        net.group_keys,
        group_pot.copy(),
        net.width,
        net.limit,
        used_keys,
        used_counts,
    )


def shortest_distances(
    tails: NDArray[np.int64], heads: NDArray[np.int64], weight: NDArray[np.int64], n_nodes: int
) -> NDArray[np.int64]:
    """Shortest distances from a virtual root joined to every node by a 0 arc (integers).

    Bellman-Ford in rounds, each relaxing only the arcs out of nodes whose distance changed in
    the round before, as whole-array operations in exact int64 (SciPy's ``bellman_ford`` always
    makes n - 1 passes: hours at 125,000 nodes). The potentials it returns are verified arc by
    arc by the caller, so a mistake here could only refuse a certificate, never fake one.
    """
    order = np.argsort(tails, kind="stable")
    tails, heads, weight = tails[order], heads[order], weight[order]
    indptr = np.searchsorted(tails, np.arange(n_nodes + 1, dtype=np.int64))
    dist = np.zeros(n_nodes, dtype=np.int64)
    arcs = np.arange(tails.size, dtype=np.int64)
    for _ in range(n_nodes + 1):
        cand = dist[tails[arcs]] + weight[arcs]
        better = cand < dist[heads[arcs]]
        if not better.any():
            return dist
        hit, value = heads[arcs[better]], cand[better]
        np.minimum.at(dist, hit, value)
        active = np.unique(hit)
        starts, ends = indptr[active], indptr[active + 1]
        counts = ends - starts
        total = int(counts.sum())
        offsets = np.repeat(starts - np.cumsum(counts) + counts, counts)
        arcs = np.arange(total, dtype=np.int64) + offsets
    raise RuntimeError("negative cycle in the residual graph: the flow is not optimal")


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
