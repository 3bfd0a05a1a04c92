"""Certification: prove the top-K solve optimal over every allowed pair, or make it so.

The solve sees each learner's K best guides (plus widening's arcs). Its dual values (node
potentials, ``solver.Duals``) price every pair it did not see: a left-out pair ``(l, g)`` with
a positive reduced profit could improve the total, so it is added and the problem solved
again. When no left-out pair has one, every arc of the full graph has a non-negative reduced
cost under those potentials, which proves the flow optimal over all of them (linear-programming
duality; the matched count is already the maximum the full set allows, which widening proves).

Pricing is block-wise like scoring and never builds the learners x guides matrix. It is exact:
scores become the same integers the solve used (``ScoreScale``), potentials are integers, and
the comparison is integer arithmetic. A learner needs its row scored only when even its K-th
best score could beat the cheapest head potential; every other learner is certified from its
top-K list alone (no left-out pair of theirs scores above the K-th best).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from coachbridge.matching.scoring import CandidateArrays, Scorer
from coachbridge.matching.solver import Duals, ScoreScale, score_scale
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits


def scale_for(
    scorer: Scorer, min_score: float, n_learners: int, n_guides: int, n_groups: int
) -> ScoreScale:
    """One integer scaling for every score the scorer can produce (so pricing matches solving).

    Each criterion lies in [0, 1], so a score lies between the sums of the negative and of the
    positive weights; ``min_score`` raises the floor when it is higher (lower pairs are never
    usable).
    """
    lo = sum(min(0.0, w) for w in scorer.weights.values())
    hi = sum(max(0.0, w) for w in scorer.weights.values())
    lo = max(lo, float(min_score)) if np.isfinite(min_score) else lo
    nodes = 2 + n_learners + n_guides + n_guides * n_groups
    return score_scale(lo, max(hi, lo), n_nodes=nodes, n_learners=n_learners)


LOW = -(2**62)  # "no left-out pair": the learner holds every allowed pair (room to add to it)


class Pricer:
    """Prices left-out pairs round after round, scoring as few learner rows as it can.

    It starts from each learner's ``reserve_k`` best guides (``top_k`` with the larger K): the
    ``k`` best go to the solve, the rest are kept as a reserve priced from memory. Each learner
    has a bound ``B`` with ``P(l, g) + h(g) <= B`` for every pair it does not hold, where ``h``
    is a vector of guide potentials recorded when the bound was set (zero at the start, where
    ``B`` is the profit of the last guide held). Under new potentials ``h'`` such a pair prices
    at most ``B + max(h' - h) - (top + d(l))``, so only a learner for whom that is positive has
    its row scored again; the row then refills the reserve with the pairs that price best under
    the current potentials and sets a bound relative to them, so later rounds (whose potentials
    move little) rarely score it again. With a fairness limit, bounds stay on scores alone.
    """

    def __init__(
        self,
        scorer: Scorer,
        lists: CandidateArrays,
        *,
        k: int,
        reserve_k: int,
        scale: ScoreScale,
        free: NDArray[np.int64],
        min_score: float,
        rows: NDArray[np.int64],
        groups: NDArray[np.int64] | None,
    ) -> None:
        self.scorer, self.scale, self.free, self.min_score = scorer, scale, free, min_score
        self.rows, self.groups, self.k, self.reserve_k = rows, groups, k, reserve_k
        n = len(scorer.learners)
        order = np.lexsort((lists.guide, -lists.score, lists.learner))
        learner, guide, score = lists.learner[order], lists.guide[order], lists.score[order]
        rank = np.arange(learner.size) - np.searchsorted(learner, learner, side="left")
        first = rank < k
        self.lists = CandidateArrays(learner[first], guide[first], score[first])
        self.reserve = CandidateArrays(learner[~first], guide[~first], score[~first])
        count = np.bincount(learner, minlength=n)
        worst = np.full(n, np.inf)
        np.minimum.at(worst, learner, score)
        self.bound = np.full(n, LOW, dtype=np.int64)
        full = count >= reserve_k
        self.bound[full] = scale.profit(worst[full])
        # The guide potentials each bound is relative to: zeros for the score-only bounds.
        self.heads: list[NDArray[np.int64]] = [np.zeros(free.size, dtype=np.int64)]
        self.bound_heads = np.zeros(n, dtype=np.int64)  # index into ``heads``
        self.priced_rows = 0

    def forget(self, arcs: CandidateArrays) -> None:
        """Drop reserve pairs the solve now holds (e.g. ones widening added)."""
        if not self.reserve.score.size or not arcs.score.size:
            return
        width = max(int(self.free.size), 1)
        held = np.isin(
            self.reserve.learner * width + self.reserve.guide, arcs.learner * width + arcs.guide
        )
        self.reserve = _subset(self.reserve, ~held)

    def price(self, arcs: CandidateArrays, duals: Duals, *, per_learner: int) -> CandidateArrays:
        """Left-out pairs with a positive reduced profit under ``duals`` (the best per learner).

        ``arcs`` are the pairs the solve had. An empty result certifies the solve over every
        allowed pair.
        """
        scale, free = self.scale, self.free
        guide_ok = free > 0
        if not self.rows.size or not guide_ok.any():
            return CandidateArrays.empty()
        top = scale.top
        # Screening (see the class): how far each recorded potential vector may have risen.
        head_max = int(duals.guide[guide_ok].max())
        if duals.limit is not None and duals.group_potential.size:
            head_max = max(head_max, int(duals.group_potential.max()))
        rise = np.array(
            [head_max] + [int((duals.guide - h)[guide_ok].max()) for h in self.heads[1:]],
            dtype=np.int64,
        )
        rows = self.rows
        reach = self.bound[rows] + rise[self.bound_heads[rows]]
        need = rows[reach > top + duals.learner[rows]]
        n = len(self.scorer.learners)
        if need.size:
            # Those rows are scored in full below; their reserve is rebuilt from them.
            drop = np.zeros(n, dtype=np.bool_)
            drop[need] = True
            self.reserve = _subset(self.reserve, ~drop[self.reserve.learner])
        found = [self._price_reserve(duals)]
        if need.size:
            found.append(self._price_rows(need, arcs, duals, per_learner))
            self.priced_rows += int(need.size)
        learner = np.concatenate([f[0] for f in found])
        guide = np.concatenate([f[1] for f in found])
        score = np.concatenate([f[2] for f in found])
        reduced = np.concatenate([f[3] for f in found])
        if not learner.size:
            return CandidateArrays.empty()
        # The largest reduced profits of each learner first; keep ``per_learner`` of them.
        order = np.lexsort((guide, -reduced, learner))
        learner, guide, score = learner[order], guide[order], score[order]
        rank = np.arange(learner.size) - np.searchsorted(learner, learner, side="left")
        take = rank < per_learner
        added = CandidateArrays(learner[take], guide[take], score[take])
        # Pairs moving to the solve leave the reserve (the rest stay there).
        width = max(int(free.size), 1)
        moved = np.isin(
            self.reserve.learner * width + self.reserve.guide, added.learner * width + added.guide
        )
        if moved.any():
            self.reserve = _subset(self.reserve, ~moved)
        return added

    def _price_reserve(self, duals: Duals) -> tuple[NDArray[Any], ...]:
        r = self.reserve
        if not r.score.size:
            return _none()
        reduced = self.scale.profit(r.score)
        reduced -= self.scale.top + duals.learner[r.learner]
        groups = self.groups[r.learner] if self.groups is not None else None
        reduced += duals.head_of(r.guide, groups)
        bad = reduced > 0
        return r.learner[bad], r.guide[bad], r.score[bad], reduced[bad]

    def _price_rows(
        self, need: NDArray[np.int64], arcs: CandidateArrays, duals: Duals, per_learner: int
    ) -> tuple[NDArray[Any], ...]:
        scorer, scale = self.scorer, self.scale
        guide_ok = self.free > 0
        n_guides = self.free.size
        guide_idx = np.arange(n_guides, dtype=np.int64)
        # The solve's arcs, by learner, to leave them out of the pricing.
        order = np.argsort(arcs.learner, kind="stable")
        indptr = np.searchsorted(
            arcs.learner[order], np.arange(len(scorer.learners) + 1, dtype=np.int64)
        )
        out: list[tuple[NDArray[Any], ...]] = []
        refill: list[CandidateArrays] = [self.reserve]
        # Bounds relative to the guide potentials, unless a fairness limit makes heads depend
        # on the learner's group as well (then they stay on scores alone).
        relative = self.groups is None or duals.limit is None
        if relative:
            self.heads.append(duals.guide.copy())
        with threadpool_limits(limits=1, user_api="blas"):
            for block in scorer.blocks(need):
                scores = scorer.scores(block)
                ok = scorer.allowed(block)
                ok &= scores >= self.min_score
                ok &= guide_ok[None, :]
                starts, ends = indptr[block], indptr[block + 1]
                counts = ends - starts
                total = int(counts.sum())
                pos = np.repeat(np.arange(block.size), counts)
                offsets = np.repeat(starts - np.cumsum(counts) + counts, counts)
                held = order[offsets + np.arange(total)]
                ok[pos, arcs.guide[held]] = False
                if self.groups is None or duals.limit is None:
                    head = np.broadcast_to(duals.head_of(guide_idx, None), scores.shape)
                else:
                    head = np.empty(scores.shape, dtype=np.int64)
                    block_groups = self.groups[block]
                    for grp in np.unique(block_groups).tolist():
                        head[block_groups == grp] = duals.head_of(
                            guide_idx, np.full(n_guides, grp, dtype=np.int64)
                        )
                # Reduced profit of the arc l -> head: P - (top + d(l) - d(head)), exact int64.
                reduced = scale.profit(scores)
                reduced -= (scale.top + duals.learner[block])[:, None]
                reduced += head
                # Each row's ``per_learner`` largest positive reduced profits (at company scale
                # a first round finds hundreds of millions: never collect them all).
                bad = np.where(ok, reduced, 0)
                width = min(per_learner, n_guides)
                part = np.argpartition(bad, n_guides - width, axis=1)[:, n_guides - width :]
                vals = np.take_along_axis(bad, part, axis=1)
                hit = vals > 0
                r = np.broadcast_to(np.arange(block.size)[:, None], part.shape)[hit]
                c = part[hit].astype(np.int64)
                out.append((block[r], c, scores[r, c], vals[hit]))
                # The reserve: each row's pairs it does not hold that price best under these
                # potentials (violating ones included: those the solve does not take this round
                # stay priced from here); the bound is relative to the same potentials. One
                # partial selection per row, as in ``top_k``: never a sort of the block.
                key = scale.profit(scores)
                if relative:
                    key += duals.guide[None, :]
                key[~ok] = LOW
                width = min(self.reserve_k, n_guides)
                part = np.argpartition(key, n_guides - width, axis=1)[:, n_guides - width :]
                vals = np.take_along_axis(key, part, axis=1)
                keep = vals > LOW
                rr = np.broadcast_to(np.arange(block.size)[:, None], part.shape)[keep]
                cc = part[keep].astype(np.int64)
                refill.append(CandidateArrays(block[rr], cc, scores[rr, cc]))
                last = np.where(keep, vals, np.iinfo(np.int64).max).min(axis=1)
                bound = np.full(block.size, LOW, dtype=np.int64)
                more = ok.sum(axis=1) > width
                bound[more] = last[more]
                self.bound[block] = bound
                self.bound_heads[block] = len(self.heads) - 1 if relative else 0
        self.reserve = CandidateArrays(
            np.concatenate([f.learner for f in refill]),
            np.concatenate([f.guide for f in refill]),
            np.concatenate([f.score for f in refill]),
        )
        if not out:
            return _none()
        return tuple(np.concatenate([f[i] for f in out]) for i in range(4))


def _subset(arrays: CandidateArrays, keep: NDArray[np.bool_]) -> CandidateArrays:
    return CandidateArrays(arrays.learner[keep], arrays.guide[keep], arrays.score[keep])


def _none() -> tuple[NDArray[Any], ...]:
    return (
        np.empty(0, np.int64),
        np.empty(0, np.int64),
        np.empty(0, np.float64),
        np.empty(0, np.int64),
    )


def allowed_pair_count(
    scorer: Scorer,
    rows: NDArray[np.int64],
    free: NDArray[np.int64],
    excluded_pairs: Mapping[int, set[int]] | None = None,
) -> int:
    """How many (learner, guide) pairs the hard constraints allow (without scoring any, unless
    the program constrains answers: then block by block, with the mask scoring applies).

    Learners ``rows`` times guides with a free place, less the same person, less every guide
    above the learner (reporting-chain intervals nest, so a guide that starts before the
    learner either contains them or ended before them: two sorted counts), less forbid rules
    and earlier pairings (``excluded_pairs``: learner row -> guide rows) not already counted.
    """
    guide_ok = free > 0
    if scorer.hard:
        # Answer constraints (common language, availability overlap) depend on both people's
        # answers: count them block-wise with the very mask scoring applies.
        count = 0
        with threadpool_limits(limits=1, user_api="blas"):
            for block in scorer.blocks(rows):
                ok = scorer.allowed(block)
                ok &= guide_ok[None, :]
                count += int(np.count_nonzero(ok))
        return count
    lr, gd = scorer.learners, scorer.guides
    open_rows = np.flatnonzero(guide_ok)
    total = rows.size * open_rows.size
    if not total:
        return 0
    same = np.isin(lr.ids[rows], gd.ids[open_rows])
    total -= int(np.count_nonzero(same))
    gtin, gtout = gd.tin[open_rows], gd.tout[open_rows]
    in_tree = gtin >= 0
    starts = np.sort(gtin[in_tree])
    ends = np.sort(gtout[in_tree])
    ltin = lr.tin[rows]
    placed = ltin >= 0
    started = np.searchsorted(starts, ltin[placed], side="left")  # gtin < ltin
    ended = np.searchsorted(ends, ltin[placed], side="right")  # gtout <= ltin
    total -= int((started - ended).sum())
    if scorer.chain_both_ways:
        # Reverse mentoring: guides below the learner too (their entry falls inside the
        # learner's interval).
        below_end = np.searchsorted(starts, lr.tout[rows][placed], side="left")
        below_start = np.searchsorted(starts, ltin[placed], side="right")
        total -= int((below_end - below_start).sum())
    if excluded_pairs:
        wanted = set(rows.tolist())
        li: list[int] = []
        gi: list[int] = []
        for row, cols in excluded_pairs.items():
            if row in wanted:
                li.extend([row] * len(cols))
                gi.extend(cols)
        if li:
            la, ga = np.array(li, dtype=np.int64), np.array(gi, dtype=np.int64)
            counted = scorer.pairs_ok(la, ga) & guide_ok[ga]
            total -= int(np.count_nonzero(counted))
    return int(total)
