"""Peer programs: one pool, everyone both learner and guide, pairs by a general-graph matching.

The pool is everyone enrolled in the program (either role; ``[programs.participants]`` enrolls
people in both), active, never opted out of it, and without an open pairing in it. A pair's
score is symmetric: each criterion is the average of its two directions (``a`` learning from
``b`` and ``b`` from ``a``), so ``score(a, b) == score(b, a)`` for built-in and plugin criteria
alike. Hard constraints hold both ways: neither is in the other's reporting chain, no forbid
rule and no earlier pairing between the two in this program, in either order.

Candidates are each person's ``top_k`` best allowed partners (with ``score >= min_score``),
the union taken as an undirected graph; when ``top_k`` reaches the pool size less one, that is
every allowed pair. The pairs are an exact maximum-weight matching of that graph with maximum
cardinality first (most people paired, then the highest total), solved by rustworkx's blossom
algorithm on integer weights (``2**WEIGHT_BITS`` per unit of score). People it leaves
unpaired beyond the parity of those who have any allowed partner get every allowed partner
added, and the graph is solved again once. A stored pair lists the lower person id as ``learner_id``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import rustworkx as rx
from coachbridge.domain.pairing import OPEN
from coachbridge.domain.program import Program
from coachbridge.matching.criteria import Criterion
from coachbridge.matching.features import Side, Vocabulary, euler_intervals, norm_tags
from coachbridge.matching.pool import _profile, _side, check_weights, scoring_settings
from coachbridge.matching.scoring import Scorer
from coachbridge.store.tables import EnrollmentRow, PairingRow, PairRuleRow, PersonRow
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

__all__ = [
    "PeerCandidates",
    "PeerPool",
    "PeerScorer",
    "PeerSolution",
    "load_peer_pool",
    "peer_candidates",
    "solve_peer",
]

WEIGHT_BITS = 40  # integer weight per unit of score: rounding moves a pair by <= 2**-41
BLOCK_CELLS = 500_000  # scores per direction per block


class PeerScorer:
    """Symmetric scores and both-way constraints over one pool of people.

    ``forward`` scores row ``a`` as learner against every row as guide; the reverse direction
    of a block of rows is scored by a scorer whose guides are that block, then transposed.
    """

    def __init__(
        self,
        learners: Side,
        guides: Side,
        weights: Mapping[str, float],
        *,
        plugins: Mapping[str, Criterion] | None = None,
        program: Program | None = None,
        forbidden: set[tuple[int, int]] | None = None,
    ) -> None:
        self.learners, self.guides = learners, guides
        self.weights = dict(weights)
        self.plugins = dict(plugins or {})
        self.settings = scoring_settings(program) if program is not None else None
        self.forward = self._scorer(guides)
        self.names = self.forward.names
        # Unordered row pairs (low, high) excluded by forbid rules or an earlier pairing.
        self.forbidden = forbidden or set()
        self._forbidden_of: dict[int, list[int]] = {}
        for a, b in self.forbidden:
            self._forbidden_of.setdefault(a, []).append(b)
            self._forbidden_of.setdefault(b, []).append(a)

    def __len__(self) -> int:
        return len(self.learners)

    def _scorer(self, guides: Side) -> Scorer:
        return Scorer(
            self.learners,
            guides,
            self.weights,
            plugins=self.plugins,
            settings=self.settings,
            chain_both_ways=True,
        )

    def block(self, rows: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Symmetric scores of ``rows`` x everyone, and the mask of allowed pairs."""
        there = self.forward.scores(rows)
        back = self._scorer(self.guides.take(rows)).scores(np.arange(len(self), dtype=np.int64))
        scores = there + back.T
        scores *= 0.5
        everyone = np.arange(len(self), dtype=np.int64)
        ok = self.forward.pairs_ok(rows[:, None], everyone[None, :])
        for a, r in enumerate(rows.tolist()):
            cols = self._forbidden_of.get(r)
            if cols:
                ok[a, cols] = False
        return scores, ok

    def blocks(self, rows: NDArray[np.int64] | None = None) -> Iterator[NDArray[np.int64]]:
        rows = np.arange(len(self), dtype=np.int64) if rows is None else rows
        size = max(1, BLOCK_CELLS // max(1, len(self)))
        for start in range(0, rows.size, size):
            yield rows[start : start + size]

    def breakdown(self, a: int, b: int) -> dict[str, float]:
        """Each criterion's contribution: the mean of its two directions (the same for b, a)."""
        there = self.forward.breakdown(a, b)
        back = self.forward.breakdown(b, a)
        return {name: (there[name] + back[name]) * 0.5 for name in self.names}

    def pair_score(self, breakdown: Mapping[str, float]) -> float:
        return self.forward.pair_score(breakdown)

    def allowed(self, a: int, b: int) -> bool:
        """Both ways: not the same person, neither above the other, no forbid or earlier pair."""
        pair = (min(a, b), max(a, b))
        ok = self.forward.pairs_ok(np.array([a]), np.array([b]))[0]
        return bool(ok) and pair not in self.forbidden


@dataclass
class PeerCandidates:
    """Undirected candidate pairs: rows ``a[i] < b[i]`` at symmetric ``score[i]``."""

    a: NDArray[np.int64]
    b: NDArray[np.int64]
    score: NDArray[np.float64]
    complete: bool = False  # every allowed pair with score >= min_score is here

    @classmethod
    def from_arrays(
        cls, a: NDArray[np.int64], b: NDArray[np.int64], s: NDArray[np.float64], n: int
    ) -> PeerCandidates:
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        _, first = np.unique(lo * max(1, n) + hi, return_index=True)
        return cls(lo[first], hi[first], s[first])

    def extend(self, other: PeerCandidates, n: int) -> PeerCandidates:
        merged = PeerCandidates.from_arrays(
            np.concatenate([self.a, other.a]),
            np.concatenate([self.b, other.b]),
            np.concatenate([self.score, other.score]),
            n,
        )
        merged.complete = self.complete
        return merged


def peer_candidates(
    scorer: PeerScorer,
    k: int,
    min_score: float,
    *,
    rows: NDArray[np.int64] | None = None,
    exclude: set[int] | None = None,
) -> PeerCandidates:
    """Each person's ``k`` best allowed partners with ``score >= min_score``, as undirected pairs.

    ``exclude``: rows taken already (pins); they are neither scored nor anyone's partner.
    """
    n = len(scorer)
    gone = np.zeros(n, dtype=np.bool_)
    if exclude:
        gone[list(exclude)] = True
    if rows is None:
        rows = np.flatnonzero(~gone).astype(np.int64)
    la: list[NDArray[np.int64]] = []
    lb: list[NDArray[np.int64]] = []
    ls: list[NDArray[np.float64]] = []
    for block in scorer.blocks(rows):
        scores, ok = scorer.block(block)
        ok &= scores >= min_score
        ok[:, gone] = False
        scores[~ok] = -np.inf
        kk = min(k, n)
        if kk < n:
            part = np.argpartition(scores, n - kk, axis=1)[:, n - kk :]
        else:
            part = np.broadcast_to(np.arange(n), scores.shape)
        vals = np.take_along_axis(scores, part, axis=1)
        keep = np.isfinite(vals)
        la.append(np.broadcast_to(block[:, None], part.shape)[keep])
        lb.append(part[keep])
        ls.append(vals[keep])
    if not la:
        return PeerCandidates(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    out = PeerCandidates.from_arrays(
        np.concatenate(la).astype(np.int64),
        np.concatenate(lb).astype(np.int64),
        np.concatenate(ls),
        n,
    )
    out.complete = k >= n - 1
    return out


@dataclass
class PeerSolution:
    """Pairs of rows (low, high) with the score optimised, and what the solve covered."""

    pairs: list[tuple[int, int, float]]
    candidates: PeerCandidates
    widened: int = 0  # pairs added for people left out beyond parity
    seconds: dict[str, float] = field(default_factory=dict)
    error_bound: float = 0.0  # the total is within this of the best total on the float scores


def _blossom(cands: PeerCandidates, n: int) -> tuple[list[tuple[int, int, float]], float]:
    """Maximum-cardinality, then maximum-weight matching of the candidate graph (exact)."""
    if cands.score.size == 0:
        return [], 0.0
    hi = float(cands.score.max())
    scale = 2.0**WEIGHT_BITS / hi if hi > 0 else 1.0
    weights = np.rint(cands.score * scale).astype(np.int64)
    graph = rx.PyGraph(multigraph=False)
    graph.add_nodes_from(range(n))
    # Each edge carries its candidate index; the weight function looks the integer up.
    graph.add_edges_from(
        list(zip(cands.a.tolist(), cands.b.tolist(), range(cands.score.size), strict=True))
    )
    weight = weights.tolist()
    chosen = rx.max_weight_matching(graph, max_cardinality=True, weight_fn=weight.__getitem__)
    pairs = []
    for u, v in chosen:
        i = graph.get_edge_data(u, v)
        pairs.append((int(cands.a[i]), int(cands.b[i]), float(cands.score[i])))
    bound = len(pairs) * (0.5 / scale) * 2 if hi > 0 else 0.0
    return sorted(pairs), bound


def solve_peer(
    scorer: PeerScorer,
    *,
    k: int,
    min_score: float,
    exclude: set[int] | None = None,
    widen: bool = True,
) -> PeerSolution:
    """Candidates, one exact solve, and (for people left out beyond parity) one widened solve."""
    n = len(scorer)
    wall, cpu = time.perf_counter(), time.process_time()
    seconds: dict[str, float] = {}

    def lap(phase: str) -> None:
        nonlocal wall, cpu
        w, c = time.perf_counter(), time.process_time()
        seconds[phase] = seconds.get(phase, 0.0) + w - wall
        seconds[f"{phase}_cpu"] = seconds.get(f"{phase}_cpu", 0.0) + c - cpu
        wall, cpu = w, c

    cands = peer_candidates(scorer, k, min_score, exclude=exclude)
    lap("candidates")
    pairs, bound = _blossom(cands, n)
    lap("solve")
    result = PeerSolution(pairs, cands, seconds=seconds, error_bound=bound)
    # Each list holds a person's best allowed partners among everyone, so a person without a
    # candidate pair has no allowed partner at all: only the others can still be paired.
    can_pair = np.zeros(n, dtype=np.bool_)
    can_pair[cands.a] = can_pair[cands.b] = True
    paired = {x for a, b, _ in pairs for x in (a, b)}
    left = [r for r in np.flatnonzero(can_pair).tolist() if r not in paired]
    if widen and not cands.complete and len(left) > int(can_pair.sum()) % 2:
        # Everyone left out gets every allowed partner: a pair among them, or a longer
        # exchange, may pair more people than the top-K lists allowed.
        extra = peer_candidates(
            scorer, n, min_score, rows=np.array(left, dtype=np.int64), exclude=exclude
        )
        lap("candidates")
        grown = cands.extend(extra, n)
        result.widened = int(grown.score.size - cands.score.size)
        if result.widened:
            result.pairs, result.error_bound = _blossom(grown, n)
            result.candidates = grown
        lap("solve")
    return result


@dataclass
class PeerPool:
    """A peer program's pool at one moment: people as rows, in id order."""

    program: Program
    ids: list[int]
    row: dict[int, int]
    scorer: PeerScorer
    pins: list[tuple[int, int]]


def load_peer_pool(
    s: Session, program: Program, criteria: Mapping[str, Criterion], *, now: datetime
) -> PeerPool:
    """Read the program's participants, rules and earlier pairings into a ``PeerPool``."""
    check_weights(program, criteria)
    enrollments = list(
        s.scalars(
            select(EnrollmentRow)
            .where(EnrollmentRow.program_id == program.id)
            .order_by(EnrollmentRow.person_id, EnrollmentRow.role)
        )
    )
    pairings = list(s.scalars(select(PairingRow).where(PairingRow.program_id == program.id)))
    busy = {x for p in pairings if p.status in OPEN for x in (p.learner_id, p.guide_id)}
    opted_out = {e.person_id for e in enrollments if e.opted_out}
    # Both enrollments' preferences: wants and goals from the learner row, offers from the
    # guide row (either may be missing for someone enrolled by hand in one role).
    prefs: dict[int, dict[str, object]] = {}
    for e in enrollments:
        merged = prefs.setdefault(e.person_id, {})
        for key, value in (e.preferences or {}).items():
            if e.role == "learner" or key not in merged:
                merged[key] = value
    wanted = sorted(set(prefs) - opted_out - busy)
    people = {
        p.id: p
        for p in s.scalars(select(PersonRow).where(PersonRow.id.in_(wanted)))
        if p.status == "active" and not p.forgotten
    }
    ids = [pid for pid in wanted if pid in people]
    row = {pid: i for i, pid in enumerate(ids)}
    profiles = [_profile(people[pid], prefs[pid], now) for pid in ids]
    goals = [norm_tags(prefs[pid].get("goals")) for pid in ids]
    topics, langs = Vocabulary(), Vocabulary()
    for p, g in zip(profiles, goals, strict=True):
        topics.add(sorted(p.wants or p.interests))
        topics.add(sorted(p.offers | p.skills))
        topics.add(sorted(g))
        langs.add(sorted(p.languages))
    departments: dict[str, int] = {}
    for p in profiles:
        if p.department:
            departments.setdefault(p.department.strip().lower(), len(departments))
    managers = dict(s.execute(select(PersonRow.id, PersonRow.manager_id)).all())
    euler = euler_intervals(managers)
    lside, gside = (
        _side(
            profiles,
            goals if learner else [],
            learner=learner,
            topics=topics,
            langs=langs,
            departments=departments,
            euler=euler,
        )
        for learner in (True, False)
    )
    forbidden: set[tuple[int, int]] = set()
    pins: list[tuple[int, int]] = []
    for rule in s.scalars(select(PairRuleRow).where(PairRuleRow.program_id == program.id)):
        if rule.kind == "pin":
            pins.append((rule.learner_id, rule.guide_id))
        elif rule.learner_id in row and rule.guide_id in row:
            a, b = row[rule.learner_id], row[rule.guide_id]
            forbidden.add((min(a, b), max(a, b)))
    # Two people paired before in this program are never proposed again, in either order.
    for p in pairings:
        if p.learner_id in row and p.guide_id in row:
            a, b = row[p.learner_id], row[p.guide_id]
            forbidden.add((min(a, b), max(a, b)))
    scorer = PeerScorer(
        lside,
        gside,
        program.weights,
        plugins={n: c for n, c in criteria.items() if n in program.weights},
        program=program,
        forbidden=forbidden,
    )
    return PeerPool(program=program, ids=ids, row=row, scorer=scorer, pins=pins)
