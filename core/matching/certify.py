"""Certification: prove the solve optimal over every allowed pair, or make it so.

The solve sees a list of guides per learner (plus widening's arcs). Its dual values (node
potentials, ``solver.Duals``) price every pair it did not see: a left-out pair ``(l, g)`` with
a positive reduced profit could improve the total, so it is added and the problem solved
again. When no left-out pair has one, every arc of the full graph has a non-negative reduced
cost under those potentials, which proves the flow optimal over all of them (linear-programming
duality; the matched count is already the maximum the full set allows, which widening proves).

Pricing is block-wise like scoring and never builds the learners x guides matrix. It is exact:
scores become the same integers the solve used (``ScoreScale``), potentials are integers, and
every comparison that decides anything is integer arithmetic. Lists and reserves are ranked by
score plus guide potential (an estimate of the final prices at first, see
``engine.estimate_heads``); a learner needs its row scored again only when its bound could
still beat what it has (``Pricer``); every other learner is certified from its lists and
reserve alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
SAMPLE_STRIDE = 16  # as in ``top_k``: every 16th guide gives each row a first cut-off
GUIDE_FILL = 2  # the first lists give each guide at least this many arcs per free place
EPS_UNITS = 4.0  # float keys within this many integer units of the cut-off are kept as well
# Keys only select (every decision is then made on exact integers), so they are float32: half
# the memory traffic of the selection passes, which cost about what scoring does. Each key is
# a score and a potential each rounded to float32, then added in float32: within 3 units of
# the last place of the largest, which this (8 of them, 2^-24 each) covers.
KEY_DTYPE = np.float32
KEY_ROUNDING = 8.0 * 2.0**-24
# Screening by hot columns (``Pricer._hot_columns``): from this many failing rows, with these
# numbers of hot guides tried, in blocks of this many cells, scores raised by this margin.
HOT_MIN_ROWS = 1000
HOT_STEPS = (16, 64, 256, 1024)
HOT_BLOCK_CELLS = 4_000_000
HOT_MARGIN = 1e-9


class Pricer:
    """Prices left-out pairs round after round, scoring as few learner rows as it can.

    Pairs are ranked by a *key*, a learner's score plus the guide's potential ``h`` (zero, an
    estimate, or the last solve's duals): under prices close to the final ones a learner's
    useful guides are the ones with the best keys, not the best scores (a few popular guides
    would fill every score list). The first scan keeps each learner's ``reserve_k`` best keys
    under the starting potentials: the ``k`` best go to the solve, the rest are a reserve priced
    from memory. Each learner has a bound ``B`` with ``P(l, g) + h(g) <= B`` for every pair it
    does not hold, ``h`` being the potential vector recorded with the bound. Under new
    potentials ``h'`` such a pair prices at most ``B + max(h' - h) - (top + d(l))``, so only a
    learner for whom that is positive has its row scored again; the row then refills the
    reserve with its best keys under the current potentials and sets a bound relative to them,
    so later rounds (whose potentials move little) rarely score it again. With a fairness limit
    the head of a pair depends on the learner's group, and bounds are kept on scores alone.

    Selection uses float keys (fast), every comparison that decides anything is exact: kept
    pairs are priced in integers, and the bound is set a few integer units above what any pair
    below the float cut-off can reach (``EPS_UNITS``; the float rounding is far smaller).
    """

    def __init__(
        self,
        scorer: Scorer,
        *,
        k: int,
        reserve_k: int,
        scale: ScoreScale,
        free: NDArray[np.int64],
        min_score: float,
        rows: NDArray[np.int64],
        groups: NDArray[np.int64] | None,
        head: NDArray[np.int64] | None = None,
        workers: int | None = None,
        screen: bool = True,
    ) -> None:
        self.scorer, self.scale, self.free, self.min_score = scorer, scale, free, min_score
        self.rows, self.groups, self.k, self.reserve_k = rows, groups, k, reserve_k
        self.screen = screen
        self.workers = workers or min(4, os.cpu_count() or 1)
        n = len(scorer.learners)
        head0 = np.zeros(free.size, dtype=np.int64) if head is None else head.astype(np.int64)
        # The guide potentials each bound is relative to (index 0: the starting ones).
        self.heads: list[NDArray[np.int64]] = [head0]
        self.bound = np.full(n, LOW, dtype=np.int64)
        # Each learner's best profit over every guide (an upper bound on any of its pairs).
        self.top_profit = np.full(n, LOW, dtype=np.int64)
        self.bound_heads = np.zeros(n, dtype=np.int64)  # index into ``heads``
        self.priced_rows = 0
        # ``screen``: rows may be scored again later (not for an estimate, which prices its
        # reserve alone): keep each one's best profit for the screening bounds.
        kept = self._scan(rows, None, lambda grp: head0, relative=True, first=k, best_profit=screen)
        self.bound[rows] = kept.bound
        self.top_profit[rows] = kept.top
        # Each learner's ``k`` best go to the solve, the rest to the reserve.
        first = kept.first | _guide_fill(kept, first=kept.first, free=free, per_place=GUIDE_FILL)
        self.lists = CandidateArrays(kept.learner[first], kept.guide[first], kept.score[first])
        self.reserve = CandidateArrays(kept.learner[~first], kept.guide[~first], kept.score[~first])

    def forget(self, arcs: CandidateArrays) -> None:
        """Drop reserve pairs the solve now holds (e.g. ones widening added)."""
        if not self.reserve.score.size or not arcs.score.size:
            return
        held = _held(self.reserve, arcs, len(self.scorer.learners), int(self.free.size))
        self.reserve = _subset(self.reserve, ~held)

    def price(
        self,
        arcs: CandidateArrays,
        duals: Duals,
        *,
        per_learner: int,
        rescore: bool = True,
        margin: float = 0.0,
    ) -> CandidateArrays:
        """Left-out pairs with a positive reduced profit under ``duals`` (the best per learner).

        ``arcs`` are the pairs the solve had. An empty result certifies the solve over every
        allowed pair. ``rescore = False`` prices the reserve alone (no row is scored again):
        an estimate, which certifies nothing. When some pair has a positive reduced profit,
        the pairs it can see within ``margin`` (a share of the score range) below zero come
        along: the next solve moves the prices a little, and those are the pairs that would
        turn positive then, each a further solve otherwise.
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
            [int((duals.guide - h)[guide_ok].max()) for h in self.heads], dtype=np.int64
        )
        if duals.limit is not None:
            rise[0] = head_max - int(self.heads[0][guide_ok].min())
        rows = self.rows
        need = rows[:0]
        if rescore:
            if not self.screen:
                raise ValueError("a Pricer made with screen=False prices its reserve alone")
            reach = self.bound[rows] + rise[self.bound_heads[rows]]
            if duals.limit is None:
                reach = np.minimum(reach, self._hot_reach(rows, duals.guide))
                reach = self._hot_columns(rows, reach, arcs, duals)
            need = rows[reach > top + duals.learner[rows]]
        n = len(self.scorer.learners)
        if need.size:
            # Those rows are scored in full below; their reserve is rebuilt from them.
            drop = np.zeros(n, dtype=np.bool_)
            drop[need] = True
            self.reserve = _subset(self.reserve, ~drop[self.reserve.learner])
        floor = -int(margin * top)
        found = [self._price_reserve(duals, floor)]
        if need.size:
            found.append(self._price_rows(need, arcs, duals, floor))
            self.priced_rows += int(need.size)
        learner = np.concatenate([f[0] for f in found])
        guide = np.concatenate([f[1] for f in found])
        score = np.concatenate([f[2] for f in found])
        reduced = np.concatenate([f[3] for f in found])
        if not learner.size or not (reduced > 0).any():
            return CandidateArrays.empty()
        # The largest reduced profits of each learner first; keep ``per_learner`` of them.
        order = np.lexsort((guide, -reduced, learner))
        learner, guide, score = learner[order], guide[order], score[order]
        rank = np.arange(learner.size) - np.searchsorted(learner, learner, side="left")
        take = rank < per_learner
        added = CandidateArrays(learner[take], guide[take], score[take])
        # Pairs moving to the solve leave the reserve (the rest stay there): certification
        # must never count a pair the solve has as left out. An estimate lets them stay
        # (millions of pairs to copy a round): at worst it finds again a pair its solve
        # already has, which the union drops, and it only steers.
        if rescore or margin:
            moved = _held(self.reserve, added, n, int(free.size))
            if moved.any():
                self.reserve = _subset(self.reserve, ~moved)
        return added

    def _hot_reach(self, rows: NDArray[np.int64], head: NDArray[np.int64]) -> NDArray[np.int64]:
        """A second screening bound: the few guides whose potential rose most, apart.

        One guide whose potential rose far would make every learner's ``B + max rise`` pass.
        So for the ``j`` guides with the largest rise (``j`` = 1, 2, 4, ...) a learner's pairs
        with them are bounded by its best profit over all guides (``top_profit``) plus their
        largest new potential, and its other pairs by ``B`` plus the next rise; the smallest
        of these over ``j`` bounds every left-out pair of the learner as well.
        """
        guide_ok = self.free > 0
        out = np.full(rows.size, np.iinfo(np.int64).max, dtype=np.int64)
        which = self.bound_heads[rows]
        h_now = head[guide_ok]
        for idx in np.unique(which).tolist():
            sel = which == idx
            rise = h_now - self.heads[idx][guide_ok]
            order = np.argsort(-rise, kind="stable")
            rise_sorted = rise[order]
            hot_max = np.maximum.accumulate(h_now[order])
            n_open = rise_sorted.size
            steps = [1 << i for i in range(max(1, n_open.bit_length()))]
            steps = [j for j in steps if j < n_open] + [n_open]
            bound = self.bound[rows[sel]]
            best = self.top_profit[rows[sel]]
            reach = np.full(bound.size, np.iinfo(np.int64).max, dtype=np.int64)
            for j in steps:
                cold = bound + rise_sorted[j] if j < n_open else np.full_like(bound, LOW)
                reach = np.minimum(reach, np.maximum(cold, best + hot_max[j - 1]))
            out[sel] = reach
        return out

    def _hot_columns(
        self, rows: NDArray[np.int64], reach: NDArray[np.int64], arcs: CandidateArrays, duals: Duals
    ) -> NDArray[np.int64]:
        """A third screening bound: the guides whose potential rose most, scored apart.

        When a few guides' potentials rose far (the estimate overpriced them), ``B + max rise``
        fails for most learners. For the ``j`` guides with the largest rise (``j`` chosen to
        score the fewest pairs) every learner's pairs with them are bounded from above by
        scoring just those columns (a scorer over those guides; a margin covers the last-bit
        differences of that arithmetic, and the bound only decides whether a row is scored
        again, exactly, never whether a pair is left out); its other pairs by ``B`` plus the
        largest remaining rise. Built-in criteria only (a plugin's columns cost what its rows
        do).
        """
        scorer, scale = self.scorer, self.scale
        guide_ok = self.free > 0
        n_open = int(guide_ok.sum())
        util = scale.top + duals.learner[rows]
        fail = reach > util
        plugin = any(name in scorer.plugins for name in scorer.names)
        if plugin or int(fail.sum()) < HOT_MIN_ROWS or n_open < 2 * HOT_STEPS[0]:
            return reach
        open_idx = np.flatnonzero(guide_ok)
        which = self.bound_heads[rows]
        used = np.unique(which).tolist()
        rises = {i: (duals.guide - self.heads[i])[open_idx] for i in used}
        orders = {i: np.argsort(-rises[i], kind="stable") for i in used}
        bound = self.bound[rows]
        best: tuple[int, NDArray[np.int64], NDArray[np.int64]] | None = None
        best_cost = int(fail.sum()) * n_open
        for j in HOT_STEPS:
            if j >= n_open // 2:
                break
            hot = np.unique(np.concatenate([open_idx[orders[i][:j]] for i in used]))
            cold = np.full(rows.size, LOW, dtype=np.int64)
            is_hot = np.zeros(self.free.size, dtype=np.bool_)
            is_hot[hot] = True
            for i in used:
                r = duals.guide - self.heads[i]
                cold_rise = int(r[guide_ok & ~is_hot].max())
                sel = which == i
                cold[sel] = bound[sel] + cold_rise
            cost = int((fail & (cold > util)).sum()) * n_open + hot.size * int(fail.sum())
            if cost < best_cost:
                best, best_cost = (j, hot, cold), cost
        if best is None:
            return reach
        _, hot, cold = best
        check = np.flatnonzero(fail & (cold <= util))
        if not check.size:
            return reach
        sub = Scorer(
            scorer.learners,
            scorer.guides.take(hot),
            scorer.weights,
            plugins=scorer.plugins,
            settings=scorer.settings,
        )
        hot_pos = np.full(self.free.size, -1, dtype=np.int64)
        hot_pos[hot] = np.arange(hot.size)
        row_pos = np.full(len(scorer.learners), -1, dtype=np.int64)
        row_pos[rows[check]] = np.arange(check.size)
        # Pairs the solve holds or the reserve prices exactly are left out of this bound.
        skip_r: list[NDArray[np.int64]] = []
        skip_c: list[NDArray[np.int64]] = []
        for pairs in (arcs, self.reserve):
            rp, hp = row_pos[pairs.learner], hot_pos[pairs.guide]
            keep = (rp >= 0) & (hp >= 0)
            skip_r.append(rp[keep])
            skip_c.append(hp[keep])
        sr, sc = np.concatenate(skip_r), np.concatenate(skip_c)
        order = np.argsort(sr, kind="stable")
        sr, sc = sr[order], sc[order]
        margin = HOT_MARGIN * (1.0 + sum(abs(w) for w in scorer.weights.values()))
        head = duals.guide[hot]
        hot_reach = np.empty(check.size, dtype=np.int64)
        size = max(1, HOT_BLOCK_CELLS // max(1, hot.size))
        with threadpool_limits(limits=1, user_api="blas"):
            for start in range(0, check.size, size):
                part = np.arange(start, min(start + size, check.size))
                upper = sub.scores(rows[check[part]])
                upper += margin
                value = np.ceil((upper - scale.lo) * scale.scale).astype(np.int64) + 1
                value += head[None, :]
                lo_i, hi_i = np.searchsorted(sr, [part[0], part[-1] + 1])
                value[sr[lo_i:hi_i] - part[0], sc[lo_i:hi_i]] = LOW
                hot_reach[part] = value.max(axis=1)
        out = reach.copy()
        out[check] = np.minimum(reach[check], np.maximum(cold[check], hot_reach))
        return out

    def _price_reserve(self, duals: Duals, floor: int) -> tuple[NDArray[Any], ...]:
        r = self.reserve
        if not r.score.size:
            return _none()
        reduced = self.scale.profit(r.score)
        reduced -= self.scale.top + duals.learner[r.learner]
        groups = self.groups[r.learner] if self.groups is not None else None
        reduced += duals.head_of(r.guide, groups)
        bad = reduced > floor
        return r.learner[bad], r.guide[bad], r.score[bad], reduced[bad]

    def _price_rows(
        self, need: NDArray[np.int64], arcs: CandidateArrays, duals: Duals, floor: int
    ) -> tuple[NDArray[Any], ...]:
        n_guides = self.free.size
        guide_idx = np.arange(n_guides, dtype=np.int64)
        # Bounds relative to the guide potentials, unless a fairness limit makes heads depend
        # on the learner's group as well (then they are turned into bounds on scores alone).
        relative = self.groups is None or duals.limit is None
        if relative:
            self.heads.append(duals.guide.copy())

            def head(grp: int | None) -> NDArray[np.int64]:
                return duals.guide

        else:
            cache: dict[int | None, NDArray[np.int64]] = {}

            def head(grp: int | None) -> NDArray[np.int64]:
                if grp not in cache:
                    g = None if grp is None else np.full(n_guides, grp, dtype=np.int64)
                    cache[grp] = duals.head_of(guide_idx, g)
                return cache[grp]

        kept = self._scan(need, arcs, head, relative=relative)
        self.bound[need] = kept.bound
        self.bound_heads[need] = len(self.heads) - 1 if relative else 0
        self.reserve = CandidateArrays(
            np.concatenate([self.reserve.learner, kept.learner]),
            np.concatenate([self.reserve.guide, kept.guide]),
            np.concatenate([self.reserve.score, kept.score]),
        )
        reduced = kept.value - (self.scale.top + duals.learner[kept.learner])
        bad = reduced > floor
        return kept.learner[bad], kept.guide[bad], kept.score[bad], reduced[bad]

    def _scan(
        self,
        rows: NDArray[np.int64],
        held: CandidateArrays | None,
        head: Callable[[int | None], NDArray[np.int64]],
        *,
        relative: bool,
        first: int = 0,
        best_profit: bool = False,
    ) -> _Kept:
        """Score ``rows`` block-wise and keep each row's ``reserve_k`` best keys (plus ties).

        ``head(group)`` gives the integer guide potentials for learners of ``group`` (None
        without groups); ``held`` pairs (the solve's arcs) are left out. Returns the kept
        pairs with their exact ``P + head`` (``first`` marks each row's ``first`` best of them)
        and, per row, a bound on ``P + head`` of every pair not kept and not held (``LOW``
        when the row kept all of them). With ``relative = False`` the bound is turned into a
        bound on ``P`` alone. ``best_profit``: also each row's best profit over every guide
        (else ``LOW``).
        """
        scorer, scale = self.scorer, self.scale
        n_guides = self.free.size
        guide_drop = ~(self.free > 0)
        any_drop = bool(guide_drop.any())
        floor = sum(min(0.0, w) for w in scorer.weights.values())
        check_min = bool(self.min_score > floor)
        indptr = order = None
        if held is not None and held.score.size:
            # The held arcs by learner, to leave them out.
            order = np.argsort(held.learner, kind="stable")
            indptr = np.searchsorted(
                held.learner[order], np.arange(len(scorer.learners) + 1, dtype=np.int64)
            )
        groups = self.groups
        width = min(self.reserve_k, n_guides)
        unusable = np.iinfo(np.int64).min // 8
        # Float heads and the float rounding they can bring (see the class docstring).
        heads_f: dict[int | None, NDArray[np.float64]] = {}
        grps: list[int | None] = [None]
        if groups is not None and not relative:
            grps = [int(g) for g in np.unique(groups[rows]).tolist()]
        magnitude = abs(scale.lo) + abs(scale.hi) + 1.0
        for grp in grps:
            h = head(grp)
            usable = h > unusable
            hf = np.where(usable, h / scale.scale, -np.inf)
            heads_f[grp] = hf
            if usable.any():
                magnitude = max(magnitude, float(np.abs(hf[usable]).max()) + abs(scale.lo) + 1)
        heads_key = heads_f[None].astype(KEY_DTYPE) if None in heads_f else np.empty(0, KEY_DTYPE)
        # Rounding: the float64 arithmetic on cut-offs, and the keys themselves (KEY_DTYPE).
        eps_units = EPS_UNITS + 8.0 * magnitude * scale.scale * (2.0**-52 + KEY_ROUNDING)
        eps_f = eps_units / scale.scale

        def one(block: NDArray[np.int64]) -> tuple[NDArray[Any], ...]:
            scores = scorer.scores(block)
            if groups is not None and not relative:
                block_groups = groups[block]
                key = np.empty(scores.shape, dtype=KEY_DTYPE)
                for grp in np.unique(block_groups).tolist():
                    sel = block_groups == grp
                    key[sel] = scores[sel] + heads_f[int(grp)][None, :]
            else:
                # Rounded first, added in place: half the time of one mixed-type ``np.add``.
                key = scores.astype(KEY_DTYPE)
                key += heads_key
            rules = scorer.excluded_by_rules(block)
            if rules is not None:
                key[rules] = -np.inf
            if any_drop:
                key[:, guide_drop] = -np.inf
            if check_min:
                key[scores < self.min_score] = -np.inf
            if indptr is not None and order is not None:
                starts, ends = indptr[block], indptr[block + 1]
                counts = ends - starts
                total = int(counts.sum())
                pos = np.repeat(np.arange(block.size), counts)
                offsets = np.repeat(starts - np.cumsum(counts) + counts, counts)
                key[pos, held.guide[order[offsets + np.arange(total)]]] = -np.inf  # type: ignore[union-attr]

            def valid(ri: NDArray[np.int64], ci: NDArray[np.int64]) -> NDArray[np.bool_]:
                return scorer.pairs_ok(block[ri], ci)

            ri, ci, cut = _row_best(key, width, eps_f, valid)
            sc = scores[ri, ci]
            if groups is not None and not relative:
                hv = np.empty(ri.size, dtype=np.int64)
                rg = groups[block[ri]]
                for grp in np.unique(rg).tolist():
                    sel = rg == grp
                    hv[sel] = head(int(grp))[ci[sel]]
            else:
                hv = head(None)[ci]
            value = scale.profit(sc) + hv
            bound = np.full(block.size, LOW, dtype=np.int64)
            has = np.isfinite(cut)
            bound[has] = np.ceil((cut[has] - scale.lo) * scale.scale - eps_units + 1.0).astype(
                np.int64
            )
            if not relative and has.any():
                # P + h(g) <= B for every pair left out, so P <= B - min h.
                for pos in np.flatnonzero(has).tolist():
                    h = head(int(groups[block[pos]]))  # type: ignore[index]
                    ok = (h > unusable) & ~guide_drop
                    bound[pos] -= int(h[ok].min()) if ok.any() else 0
            best = np.zeros(ri.size, dtype=np.bool_)
            if first:
                best = _first_best(ri, ci, value, block.size, first)
            top = np.full(block.size, LOW, dtype=np.int64)
            if best_profit and scores.shape[1]:
                top = scale.profit(scores.max(axis=1))
            return block[ri], ci.astype(np.int64), sc, value, bound, best, top

        blocks = list(scorer.blocks(rows))
        # The blocks are the parallelism (as in ``top_k``); BLAS threads only contend.
        with threadpool_limits(limits=1, user_api="blas"):
            if self.workers > 1 and len(blocks) > 1:
                with ThreadPoolExecutor(max_workers=self.workers) as pool:
                    parts = list(pool.map(one, blocks))
            else:
                parts = [one(b) for b in blocks]
        if not parts:
            empty = np.empty(0, dtype=np.int64)
            return _Kept(
                empty, empty, np.empty(0), empty, empty, np.empty(0, dtype=np.bool_), empty
            )
        return _Kept(*(np.concatenate([p[i] for p in parts]) for i in range(7)))


def _guide_fill(
    kept: _Kept, *, first: NDArray[np.bool_], free: NDArray[np.int64], per_place: int
) -> NDArray[np.bool_]:
    """Kept pairs to add to the lists so that each guide has ``per_place`` arcs per free place.

    A guide the price estimate made too dear would otherwise be in almost no list: the solve
    leaves it empty, its price drops to zero, and every learner's bound fails the screening.
    Its best pairs by key among the kept ones give the solve the choice.
    """
    out = np.zeros(first.size, dtype=np.bool_)
    if not first.size:
        return out
    have = np.bincount(kept.guide[first], minlength=free.size)
    want = np.maximum(per_place * free - have, 0)
    pos = np.flatnonzero(~first & (want[kept.guide] > 0))
    if not pos.size:
        return out
    order = np.lexsort((kept.learner[pos], -kept.value[pos], kept.guide[pos]))
    pos = pos[order]
    g = kept.guide[pos]
    rank = np.arange(g.size) - np.searchsorted(g, g, side="left")
    out[pos[rank < want[g]]] = True
    return out


@dataclass
class _Kept:
    """What ``Pricer._scan`` kept: pairs, their exact ``P + head``, and each row's bound."""

    learner: NDArray[np.int64]
    guide: NDArray[np.int64]
    score: NDArray[np.float64]
    value: NDArray[np.int64]
    bound: NDArray[np.int64]  # per scanned row, in the order of the rows
    first: NDArray[np.bool_]  # among each row's ``first`` best (by ``value``, then guide)
    top: NDArray[np.int64]  # per scanned row: its best profit over every guide (with ``first``)


def _row_best(
    key: NDArray[np.floating[Any]],
    width: int,
    eps: float,
    valid: Callable[[NDArray[np.int64], NDArray[np.int64]], NDArray[np.bool_]],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Each row's ``width`` largest keys plus every key within ``eps`` below the smallest.

    ``key`` is -inf where there is no pair; ``valid(ri, ci)`` (broadcasting) tells which other
    positions are pairs (the reporting-chain test, run only on the few candidates). Returns
    the kept positions and each row's cut-off (the ``width``-th largest valid key; -inf when
    the row has no more than ``width`` valid keys, all of them kept). Every valid position
    not kept has a key below ``cut - eps``. A sample of every ``SAMPLE_STRIDE``-th column gives
    each row a first cut-off that, as a rule, a few times ``width`` keys reach, so no full
    selection runs over the row (rows where it fails get one). Kept positions come row by row;
    within a row in no particular order.
    """
    n_rows, n_cols = key.shape
    cut = np.full(n_rows, -np.inf)
    out_r: list[NDArray[np.int64]] = []
    out_c: list[NDArray[np.int64]] = []
    if not n_cols or width < 1:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, cut
    dense = np.ones(n_rows, dtype=np.bool_)
    if n_cols >= 2 * width * SAMPLE_STRIDE:
        sample = key[:, ::SAMPLE_STRIDE]
        w = sample.shape[1]
        j = min(w, -(-3 * width // SAMPLE_STRIDE) + 1)
        first = np.partition(sample, w - j, axis=1)[:, w - j]
        first[~np.isfinite(first)] = np.inf  # too few keys in the sample: full selection
        # Flat positions, then rows and columns: numpy's two-dimensional ``nonzero`` costs
        # several times as much over a whole block.
        flat = np.flatnonzero(key >= first[:, None])
        ri, ci = np.divmod(flat, n_cols)
        ok = valid(ri, ci)
        ri, ci, vals = ri[ok], ci[ok], key.reshape(-1)[flat[ok]]
        c, count = _kth_largest(vals, ri, n_rows, width, -np.inf)
        has = count >= width
        c = c.astype(np.float64)
        c[~has] = -np.inf
        # The band below the cut-off must lie among the candidates (above the first cut-off).
        good = has & (c - eps >= first)
        sel = good[ri] & (vals >= (c - eps)[ri])
        out_r.append(ri[sel])
        out_c.append(ci[sel])
        cut[good] = c[good]
        dense = ~good
    redo = np.flatnonzero(dense)
    if redo.size:
        sub = key[redo]
        ok = valid(redo[:, None], np.arange(n_cols, dtype=np.int64)[None, :])
        sub[~ok] = -np.inf
        if width < n_cols:
            c = np.partition(sub, n_cols - width, axis=1)[:, n_cols - width].astype(np.float64)
        else:
            c = np.full(redo.size, -np.inf)
        thr = np.where(np.isfinite(c), c - eps, -np.inf)
        r, cc = np.nonzero(np.isfinite(sub) & (sub >= thr[:, None]))
        out_r.append(redo[r])
        out_c.append(cc)
        cut[redo] = c
    return np.concatenate(out_r).astype(np.int64), np.concatenate(out_c).astype(np.int64), cut


def _kth_largest(
    vals: NDArray[Any], rows: NDArray[np.int64], n_rows: int, k: int, low: Any
) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Each row's ``k``-th largest of ``vals`` (``rows`` gives each value's row), and counts.

    Rows with fewer than ``k`` values get ``low``. The values are laid out one row each in
    a matrix padded with ``low`` and selected in place: no sort of every value.
    """
    count = np.bincount(rows, minlength=n_rows)
    out = np.full(n_rows, low, dtype=vals.dtype)
    widest = int(count.max(initial=0))
    if widest < k:
        return out, count
    order = np.argsort(rows, kind="stable")  # rows usually come sorted: then a linear pass
    r = rows[order]
    start = np.cumsum(count) - count
    table = np.full((n_rows, widest), low, dtype=vals.dtype)
    table[r, np.arange(r.size) - start[r]] = vals[order]
    kth = np.partition(table, widest - k, axis=1)[:, widest - k]
    has = count >= k
    out[has] = kth[has]
    return out, count


def _first_best(
    ri: NDArray[np.int64],
    ci: NDArray[np.int64],
    value: NDArray[np.int64],
    n_rows: int,
    first: int,
) -> NDArray[np.bool_]:
    """Each row's ``first`` best positions by ``value``, ties to the lower column."""
    low = np.iinfo(np.int64).min
    kth, _ = _kth_largest(value, ri, n_rows, first, low)
    best = value > kth[ri]
    tie = np.flatnonzero(value == kth[ri])
    if tie.size:
        room = first - np.bincount(ri[best], minlength=n_rows)
        tie = tie[np.lexsort((ci[tie], ri[tie]))]
        rt = ri[tie]
        rank = np.arange(rt.size) - np.searchsorted(rt, rt, side="left")
        best[tie[rank < room[rt]]] = True
    return best


def _held(
    pairs: CandidateArrays, others: CandidateArrays, n_learners: int, n_guides: int
) -> NDArray[np.bool_]:
    """Which of ``pairs`` are among ``others``.

    The reserve holds millions of pairs and ``others`` few learners' worth: only the pairs of
    those learners are compared (``np.isin`` over all of them sorts millions of keys a round).
    """
    out = np.zeros(pairs.score.size, dtype=np.bool_)
    if not pairs.score.size or not others.score.size:
        return out
    of_theirs = np.zeros(n_learners, dtype=np.bool_)
    of_theirs[others.learner] = True
    pos = np.flatnonzero(of_theirs[pairs.learner])
    width = max(n_guides, 1)
    keys = pairs.learner[pos] * width + pairs.guide[pos]
    # Binary search in the few sorted keys of ``others`` (``np.isin`` would sort both).
    theirs = np.sort(others.learner * width + others.guide)
    at = np.minimum(np.searchsorted(theirs, keys), theirs.size - 1)
    out[pos[theirs[at] == keys]] = True
    return out


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
