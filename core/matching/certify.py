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
from dataclasses import dataclass

import numpy as np
from coachbridge.matching.scoring import CandidateArrays, Scorer
from coachbridge.matching.solver import Duals, ScoreScale, score_scale
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits


@dataclass
class Pricing:
    """What one pricing pass found."""

    arcs: CandidateArrays  # left-out pairs with a positive reduced profit (the best per learner)
    priced_rows: int  # learners whose full row was scored
    violations: int  # left-out pairs with a positive reduced profit, before the per-learner cut


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


def kth_profit(
    cands: CandidateArrays, n_learners: int, k: int, scale: ScoreScale
) -> NDArray[np.int64]:
    """Each learner's K-th best profit from the top-K lists; the lowest int64 when complete.

    A learner with fewer than K arcs has every allowed pair in its list (``top_k`` returns
    fewer only then), so nothing of theirs was left out.
    """
    low = np.iinfo(np.int64).min
    count = np.bincount(cands.learner, minlength=n_learners)
    worst = np.full(n_learners, np.inf)
    np.minimum.at(worst, cands.learner, cands.score)
    out = np.full(n_learners, low, dtype=np.int64)
    full = count >= k
    out[full] = scale.profit(worst[full])
    return out


def price(
    scorer: Scorer,
    cands: CandidateArrays,
    duals: Duals,
    rows: NDArray[np.int64],
    kth: NDArray[np.int64],
    free: NDArray[np.int64],
    min_score: float,
    *,
    groups: NDArray[np.int64] | None,
    per_learner: int,
) -> Pricing:
    """Left-out pairs of ``rows`` with a positive reduced profit under ``duals``.

    Returns at most ``per_learner`` of them per learner (the largest reduced profits), with
    the scores the scorer gives them.
    """
    scale = duals.scale
    guide_ok = free > 0
    if not rows.size or not guide_ok.any():
        return Pricing(CandidateArrays.empty(), 0, 0)
    n_guides = free.size
    guide_idx = np.arange(n_guides, dtype=np.int64)
    # Screening: a left-out pair of learner l scores at most l's K-th best, and its head node's
    # potential is at most the highest one any usable arc could end in.
    head_max = int(duals.guide[guide_ok].max())
    if duals.limit is not None and duals.group_potential.size:
        head_max = max(head_max, int(duals.group_potential.max()))
    threshold = scale.top + duals.learner[rows]  # + ... - head: violation iff P > threshold - head
    need = rows[kth[rows] > threshold - head_max]
    if not need.size:
        return Pricing(CandidateArrays.empty(), 0, 0)
    # Arcs already in the lists, by learner, to leave them out of the pricing.
    order = np.argsort(cands.learner, kind="stable")
    sorted_learner = cands.learner[order]
    n_rows = len(scorer.learners)
    indptr = np.searchsorted(sorted_learner, np.arange(n_rows + 1, dtype=np.int64))
    out_l: list[NDArray[np.int64]] = []
    out_g: list[NDArray[np.int64]] = []
    out_s: list[NDArray[np.float64]] = []
    violations = 0
    with threadpool_limits(limits=1, user_api="blas"):
        for block in scorer.blocks(need):
            scores = scorer.scores(block)
            ok = scorer.allowed(block)
            ok &= scores >= min_score
            ok &= guide_ok[None, :]
            starts, ends = indptr[block], indptr[block + 1]
            counts = ends - starts
            pos = np.repeat(np.arange(block.size), counts)
            arcs = order[
                np.repeat(starts - np.cumsum(counts) + counts, counts)
                + np.arange(int(counts.sum()))
            ]
            ok[pos, cands.guide[arcs]] = False
            if groups is None or duals.limit is None:
                head = np.broadcast_to(duals.head_of(guide_idx, None), scores.shape)
            else:
                head = np.empty(scores.shape, dtype=np.int64)
                block_groups = groups[block]
                for grp in np.unique(block_groups).tolist():
                    members = block_groups == grp
                    head[members] = duals.head_of(guide_idx, np.full(n_guides, grp))
            # Reduced profit of arc l -> head: P - (top + d(l) - d(head)), in exact int64.
            reduced = scale.profit(scores)
            reduced -= (scale.top + duals.learner[block])[:, None]
            reduced += head
            bad = ok & (reduced > 0)
            r, c = np.nonzero(bad)
            if not r.size:
                continue
            violations += int(r.size)
            red = reduced[r, c]
            # The largest reduced profits of each learner first; keep ``per_learner`` of them.
            sort = np.lexsort((c, -red, r))
            r, c = r[sort], c[sort]
            rank = np.arange(r.size) - np.searchsorted(r, r, side="left")
            keep = rank < per_learner
            r, c = r[keep], c[keep]
            out_l.append(block[r])
            out_g.append(c.astype(np.int64))
            out_s.append(scores[r, c])
    if not out_l:
        return Pricing(CandidateArrays.empty(), int(need.size), 0)
    return Pricing(
        CandidateArrays(np.concatenate(out_l), np.concatenate(out_g), np.concatenate(out_s)),
        int(need.size),
        violations,
    )


def allowed_pair_count(
    scorer: Scorer,
    rows: NDArray[np.int64],
    free: NDArray[np.int64],
    excluded_pairs: Mapping[int, set[int]] | None = None,
) -> int:
    """How many (learner, guide) pairs the hard constraints allow, without scoring any.

    Learners ``rows`` times guides with a free place, less the same person, less every guide
    above the learner (reporting-chain intervals nest, so a guide that starts before the
    learner either contains them or ended before them: two sorted counts), less forbid rules
    and earlier pairings (``excluded_pairs``: learner row -> guide rows) not already counted.
    """
    guide_ok = free > 0
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
