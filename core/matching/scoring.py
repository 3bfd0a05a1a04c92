"""Scoring: weighted criteria over blocks of learners, hard constraints as masks, top-K lists.

A pair's score is ``sum(weight[c] * criterion_c(learner, guide))`` over the program's weighted
criteria, added in the order of ``Scorer.names``; the breakdown holds the same terms, so the
breakdown adds up to the score exactly. The dense learners x guides matrix is never built:
``top_k`` walks blocks of learners (a block holds at most ``BLOCK_CELLS`` scores) and keeps each
learner's K best guides.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from coachbridge.errors import ConfigError
from coachbridge.matching.answers import (
    GoalTable,
    SlotTable,
    TopicTable,
    availability_block,
    availability_refused,
    block_rows,
    goal_block,
    topics_block,
)
from coachbridge.matching.criteria import ANSWER_CRITERIA, BUILTIN_CRITERIA, Criterion
from coachbridge.matching.features import Side
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

BLOCK_CELLS = 1_000_000  # scores per block: ~8 MB of float64; small blocks stay in cache
SAMPLE_STRIDE = 16  # top-K: every 16th guide gives each learner a cut-off score first

# The answer constraints, as a refused pair is explained ("the two ...").
CONSTRAINT_TEXT = {
    "language": "share no language (require_common_language)",
    "availability": "share no available hours (require_availability_overlap)",
}

# Criteria that depend only on a person's level, time zone and department.
CATEGORICAL = frozenset({"seniority", "timezone", "department_diversity"})


def _categories(side: Side) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Each person's (level, UTC offset, department) category and one member per category."""
    combined = np.zeros(len(side), dtype=np.int64)
    for column in (
        np.nan_to_num(side.level, nan=-1e300),
        np.nan_to_num(side.utc_offset, nan=-1e300),
        side.department.astype(np.float64),
    ):
        values, codes = np.unique(column, return_inverse=True)
        combined = combined * max(1, values.size) + codes.reshape(-1)
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64), first.astype(np.int64)


def _neutral(unknown: NDArray[np.bool_], values: NDArray[np.float64]) -> NDArray[np.float64]:
    # An unknown fact neither helps nor hurts: it scores half.
    values[unknown] = 0.5
    return values


def _overlap(a: NDArray[np.float32], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Share of each row of ``a``'s tags (weights) that ``b``'s rows offer (0 when ``a`` has none).

    Rows of ``a`` are scaled by their size first, so one matrix product gives the share.
    """
    a64 = a.astype(np.float64)
    size = a64.sum(axis=1)
    a64 /= np.maximum(size, 1e-300)[:, None]
    out = a64 @ b.T
    return np.clip(out, 0.0, 1.0, out=out)


def _language_table(
    learners: Side, guides: Side
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]] | None:
    """The language criterion as a table over language sets (bit masks), when few languages.

    Values are exactly those of the matrix form (1 shared, 0 none, 0.5 when a side has none),
    so a gather from this table replaces a matrix product and a comparison per block.
    """
    width = learners.languages.shape[1]
    if width != guides.languages.shape[1] or width > 10:
        return None
    bits = (1 << np.arange(width, dtype=np.int64)).astype(np.int64)
    lcode = (learners.languages > 0).astype(np.int64) @ bits
    gcode = (guides.languages > 0).astype(np.int64) @ bits
    codes = np.arange(1 << width, dtype=np.int64)
    table = ((codes[:, None] & codes[None, :]) != 0).astype(np.float64)
    table[0, :] = 0.5
    table[:, 0] = 0.5
    return table, lcode, gcode


@dataclass(frozen=True)
class ScoringSettings:
    """Knobs of the built-in criteria (``[programs.settings]``)."""

    seniority_best_gap: float = 2.0
    working_hours: tuple[int, int] = (9, 17)
    # Reverse mentoring: the guide is junior, so the gap counted is learner level minus guide's.
    seniority_reversed: bool = False


class Scorer:
    """Scores blocks of learners against all guides of one program."""

    def __init__(
        self,
        learners: Side,
        guides: Side,
        weights: Mapping[str, float],
        *,
        plugins: Mapping[str, Criterion] | None = None,
        settings: ScoringSettings | None = None,
        excluded: Callable[[NDArray[np.int64]], NDArray[np.bool_]] | None = None,
        excluded_pairs: Mapping[int, set[int]] | None = None,
        mentoring: bool = False,
        category_table: bool = True,
        require_common_language: bool = False,
        require_availability_overlap: bool = False,
        chain_both_ways: bool = False,
    ) -> None:
        self.learners = learners
        self.guides = guides
        self.settings = settings or ScoringSettings()
        self.plugins = dict(plugins or {})
        self.names = [n for n in weights if weights[n] != 0]
        self.weights = {n: float(weights[n]) for n in self.names}
        self.mentoring = mentoring
        # Reverse and peer programs: the learner above the guide is refused too.
        self.chain_both_ways = chain_both_ways
        self._extra_excluded = excluded
        # The same exclusions as learner row -> guide rows, when the caller has them (counting
        # allowed pairs reads these instead of building a mask per block).
        self.excluded_pairs = excluded_pairs
        # Hard constraints on the answers: a pair is refused when the criterion is exactly 0
        # (both sides known, nothing shared); an unknown side (0.5) is never refused.
        self._local = threading.local()  # per scoring thread: masks of its last block
        self.hard = tuple(
            name
            for name, on in (
                ("language", require_common_language),
                ("availability", require_availability_overlap),
            )
            if on
        )
        for name in self.names:
            if name not in BUILTIN_CRITERIA and name not in self.plugins:
                raise ConfigError(f"weights.{name}: unknown matching criterion")
        self._table: NDArray[np.float64] | None = None
        self._lcat = self._gcat = np.empty(0, dtype=np.int64)
        if category_table:
            self._build_category_table()
        self._lang: tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]] | None
        wants_language = "language" in self.names or "language" in self.hard
        self._lang = _language_table(learners, guides) if wants_language else None

    def _build_category_table(self) -> None:
        """Precompute the criteria that depend only on (level, time zone, department).

        People fall into few such categories, so a small table of weighted sums over
        (learner category, guide category) replaces several full passes per block with one
        gather. Its terms are summed in another order than ``pair_score``, so a candidate's
        score may differ from its breakdown's sum in the last bit or so.
        """
        names = [n for n in self.names if n in CATEGORICAL]
        if len(names) < 2 or len(self.guides) < 64:
            return
        lcat, lfirst = _categories(self.learners)
        gcat, gfirst = _categories(self.guides)
        if lfirst.size * gfirst.size > 1_000_000:
            return
        helper = Scorer(
            self.learners.take(lfirst),
            self.guides.take(gfirst),
            {n: self.weights[n] for n in names},
            settings=self.settings,
            category_table=False,
        )
        table = np.zeros((lfirst.size, gfirst.size), dtype=np.float64)
        for name in names:
            part = helper.criterion(name, np.arange(lfirst.size, dtype=np.int64))
            part *= self.weights[name]
            table += part
        self._table, self._lcat, self._gcat = table, lcat, gcat

    # -- criteria ------------------------------------------------------------------------------
    def criterion(self, name: str, rows: NDArray[np.int64]) -> NDArray[np.float64]:
        """Criterion ``name`` for learners ``rows`` against every guide, each value in 0..1.

        Written with in-place arithmetic: at company scale these blocks are the hot loop.
        """
        lr, gd = self.learners, self.guides
        if name == "skills":
            return _overlap(lr.topics[rows], self._guide64("topics"))
        if name == "goals":
            return _overlap(lr.goals[rows], self._guide64("goals"))
        if name == "seniority":
            gap = np.subtract.outer(lr.level[rows], gd.level)
            if not self.settings.seniority_reversed:
                np.negative(gap, out=gap)  # guide level minus learner level
            best = self.settings.seniority_best_gap
            value = np.subtract(gap, best)
            np.abs(value, out=value)
            value /= -(best + 1)
            value += 1.0
            np.clip(value, 0.0, 1.0, out=value)
            with np.errstate(invalid="ignore"):
                value[gap < 1] = 0.0
            if self._has_nan("level"):
                _neutral(np.isnan(gap), value)
            return value
        if name == "timezone":
            return self._timezone(rows)
        if name == "language":
            if self._lang is not None:
                table, lcode, gcode = self._lang
                return np.take(table[lcode[rows]], gcode, axis=1)
            la = lr.languages[rows]
            value = (la @ gd.languages.T > 0).astype(np.float64)
            lempty = la.sum(axis=1) == 0
            gempty = gd.languages.sum(axis=1) == 0
            if lempty.any() or gempty.any():
                _neutral(lempty[:, None] | gempty[None, :], value)
            return value
        if name == "guide_rating":
            # The guide's average received rating (load_pool sets it): the same for every
            # learner; unknown (too few ratings) scores half.
            value = np.full((rows.size, len(gd)), 0.5, dtype=np.float64)
            if gd.rating is not None:
                known = ~np.isnan(gd.rating)
                value[:, known] = gd.rating[known]
            return value
        if name in ANSWER_CRITERIA:
            return self._answer(name, rows).astype(np.float64)
        if name == "department_diversity":
            ld = lr.department[rows]
            value = np.not_equal.outer(ld, gd.department).astype(np.float64)
            if (ld < 0).any() or (gd.department < 0).any():
                _neutral((ld < 0)[:, None] | (gd.department < 0)[None, :], value)
            return value
        return self._plugin(name, rows)

    def _answer_t(self, name: str) -> Any:
        """The answer arrays ``name``'s blocks use (``TopicTable``, ``GoalTable``,
        ``SlotTable``), built once per scorer."""
        la, ga = self.learners.answers, self.guides.answers
        assert la is not None and ga is not None
        cache = self.__dict__.setdefault("_answer_cols", {})
        if name not in cache:
            if name == "topics":
                cache[name] = TopicTable(la, ga)
            elif name == "goal_text":
                cache[name] = GoalTable(la, ga)
            else:
                cache[name] = SlotTable(la, ga)
        return cache[name]

    def _answer(
        self,
        name: str,
        rows: NDArray[np.int64],
        weight: float = 1.0,
        out: NDArray[np.float32] | None = None,
        work: NDArray[np.float32] | None = None,
        picked: NDArray[np.int64] | slice | None = None,
    ) -> NDArray[np.float32]:
        """``weight`` x ``topics``, ``goal_text`` or ``availability`` (see ``answers``), as
        float32; the neutral 0.5 everywhere when the sides carry no answers. Written to
        ``out`` when given (``work``: another scratch block of as many rows; ``picked``:
        ``answers.block_rows(rows)``)."""
        la, ga = self.learners.answers, self.guides.answers
        if la is None or ga is None:
            if out is None:
                return np.full((rows.size, len(self.guides)), 0.5 * weight, dtype=np.float32)
            out.fill(0.5 * weight)
            return out
        table = self._answer_t(name)
        if name == "topics":
            return topics_block(table, rows, weight, out, picked)
        if name == "goal_text":
            return goal_block(table, rows, weight, out, picked)
        return availability_block(table, rows, weight, out, work)

    def weighted(self, name: str, rows: NDArray[np.int64]) -> NDArray[np.floating[Any]]:
        """``weight x criterion`` for ``rows`` x every guide: a pair's contribution to its score
        (float32 for the answer criteria, see ``answers``)."""
        if name in ANSWER_CRITERIA:
            part = self._answer(name, rows, self.weights[name])
        else:
            part = self.criterion(name, rows)
            part *= self.weights[name]
        self._keep_mask(name, rows, part)
        return part

    def _keep_mask(self, name: str, rows: NDArray[np.int64], part: NDArray[Any]) -> None:
        if name in self.hard and self.weights[name] > 0:
            # A constrained criterion is 0 exactly where the constraint refuses the pair: keep
            # that mask for ``excluded_by_rules`` on the same rows (this thread's last block),
            # instead of working the criterion out a second time.
            local = self._local
            if getattr(local, "rows", None) is not rows:
                local.rows, local.masks = rows, {}
            local.masks[name] = part == 0

    def _scratch(self, n_rows: int) -> list[NDArray[np.float32]]:
        """Three float32 blocks of ``n_rows`` x guides, this thread's own, reused block after
        block: fresh blocks of a few MB each cost page faults and cache misses every time."""
        local = self._local
        bufs: list[NDArray[np.float32]] | None = getattr(local, "scratch", None)
        if bufs is None or bufs[0].shape[0] < n_rows:
            shape = (n_rows, len(self.guides))
            bufs = local.scratch = [np.empty(shape, dtype=np.float32) for _ in range(3)]
        return [b[:n_rows] for b in bufs]

    def _add_answers(
        self, names: list[str], rows: NDArray[np.int64], total: NDArray[np.float64]
    ) -> None:
        """Add the answer criteria to ``total``: summed among themselves in float32 first (in
        the order of ``names``, as ``pair_score`` does), in this thread's scratch blocks."""
        sub, part, work = self._scratch(rows.size)
        picked = block_rows(rows)
        for i, name in enumerate(names):
            out = sub if i == 0 else part
            value = self._answer(name, rows, self.weights[name], out, work, picked)
            self._keep_mask(name, rows, value)
            if i:
                sub += value
        total += sub

    def _refused(self, name: str, rows: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Pairs an answer constraint refuses: both sides known, nothing shared."""
        local = self._local
        if getattr(local, "rows", None) is rows and name in local.masks:
            return local.masks.pop(name)
        if name == "availability":
            la, ga = self.learners.answers, self.guides.answers
            if la is None or ga is None:
                return np.zeros((rows.size, len(self.guides)), dtype=np.bool_)
            return availability_refused(self._answer_t(name), rows)
        return self.criterion(name, rows) == 0.0

    def _guide64(self, attr: str) -> NDArray[np.float64]:
        cache = self.__dict__.setdefault("_g64", {})
        if attr not in cache:
            cache[attr] = np.ascontiguousarray(getattr(self.guides, attr), dtype=np.float64)
        return cache[attr]

    def _has_nan(self, attr: str) -> bool:
        cache = self.__dict__.setdefault("_nan", {})
        if attr not in cache:
            cache[attr] = bool(
                np.isnan(getattr(self.learners, attr)).any()
                or np.isnan(getattr(self.guides, attr)).any()
            )
        return cache[attr]

    def _timezone(self, rows: NDArray[np.int64]) -> NDArray[np.float64]:
        start, end = self.settings.working_hours
        length = float(end - start)
        # Working hours in UTC are [start - offset, end - offset]; compare on a 24h circle.
        shift = np.subtract.outer(self.learners.utc_offset[rows], self.guides.utc_offset)
        shift += 12.0
        np.mod(shift, 24.0, out=shift)
        shift -= 12.0
        np.abs(shift, out=shift)
        np.subtract(length, shift, out=shift)
        np.clip(shift, 0.0, length, out=shift)
        shift /= length
        if self._has_nan("utc_offset"):
            lo = self.learners.utc_offset[rows]
            _neutral(np.isnan(lo)[:, None] | np.isnan(self.guides.utc_offset)[None, :], shift)
        return shift

    def _plugin(self, name: str, rows: NDArray[np.int64]) -> NDArray[np.float64]:
        criterion = self.plugins[name]
        if criterion.vectorised:
            lf, gf = self._plugin_features(name)
            return self._checked_block(name, criterion, lf[rows], gf, (rows.size, len(self.guides)))
        fn = criterion.score
        assert fn is not None
        out = np.empty((rows.size, len(self.guides)), dtype=np.float64)
        for a, i in enumerate(rows.tolist()):
            lp = self.learners.profiles[i]
            for j, gp in enumerate(self.guides.profiles):
                value = float(fn(lp, gp))
                if not math.isfinite(value):
                    raise ConfigError(f"matching criterion {name!r} returned {value!r}")
                out[a, j] = min(1.0, max(0.0, value))
        return out

    def _plugin_features(self, name: str) -> tuple[NDArray[Any], NDArray[Any]]:
        """A vectorised criterion's feature rows of both sides (computed once, then kept)."""
        cache = self.__dict__.setdefault("_features", {})
        if name not in cache:
            features = self.plugins[name].features
            assert features is not None
            lf = np.asarray(features(self.learners.profiles))
            gf = np.asarray(features(self.guides.profiles))
            for side, arr, n in (
                ("learners", lf, len(self.learners)),
                ("guides", gf, len(self.guides)),
            ):
                if arr.ndim < 1 or arr.shape[0] != n:
                    raise ConfigError(
                        f"matching criterion {name!r}: features gave {arr.shape[0] if arr.ndim else 0} "
                        f"rows for {n} {side}"
                    )
            cache[name] = (lf, gf)
        return cache[name]

    @staticmethod
    def _checked_block(
        name: str, criterion: Criterion, lf: NDArray[Any], gf: NDArray[Any], shape: tuple[int, int]
    ) -> NDArray[np.float64]:
        assert criterion.score_block is not None
        value = np.asarray(criterion.score_block(lf, gf), dtype=np.float64)
        if value.shape != shape:
            raise ConfigError(
                f"matching criterion {name!r}: score_block returned shape {value.shape}, "
                f"expected {shape}"
            )
        # One summing pass finds a NaN or infinity (the sum is then not finite); only then, or
        # when finite values overflow the sum, is every value looked at.
        if not math.isfinite(float(value.sum())) and not np.isfinite(value).all():
            raise ConfigError(f"matching criterion {name!r} returned a value that is not finite")
        return np.clip(value, 0.0, 1.0)  # a new array: the plugin's own is left as it was

    # -- scores and masks ------------------------------------------------------------------
    def block(self, rows: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Scores of ``rows`` x all guides, and the mask of pairs no constraint excludes."""
        return self.scores(rows), self.allowed(rows)

    def scores(self, rows: NDArray[np.int64]) -> NDArray[np.float64]:
        """Scores of ``rows`` x all guides (constraints not applied)."""
        total: NDArray[np.float64] | None = None
        if self._table is not None:
            # Rows of the small table first, then a gather along the guides: far cheaper than
            # one two-dimensional fancy index over the whole block.
            total = np.take(self._table[self._lcat[rows]], self._gcat, axis=1)
            names = [n for n in self.names if n not in CATEGORICAL]
        else:
            names = self.names
        # The answer criteria are summed among themselves first, in float32 (half the memory
        # traffic; see ``answers``), then added once; the others one by one, in float64.
        answers = [n for n in names if n in ANSWER_CRITERIA]
        for name in [n for n in names if n not in ANSWER_CRITERIA]:
            part = self.weighted(name, rows)
            if total is None:
                total = part  # 0.0 + part is part: one pass saved
            else:
                total += part  # same order and rounding as ``pair_score``
        if total is None:
            total = np.zeros((rows.size, len(self.guides)), dtype=np.float64)
        if answers:
            self._add_answers(answers, rows, total)
        return total

    def allowed(self, rows: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Hard constraints: not the same person, not anyone above in the reporting chain
        (with ``chain_both_ways``, neither above the other), and the rules and answer
        constraints of ``excluded_by_rules``."""
        ok = self.chain_ok(rows)
        excluded = self.excluded_by_rules(rows)
        if excluded is not None:
            ok &= ~excluded
        return ok

    def excluded_by_rules(self, rows: NDArray[np.int64]) -> NDArray[np.bool_] | None:
        """The caller's extra exclusions (forbid rules, earlier pairings) and the program's
        answer constraints (``require_common_language``, ``require_availability_overlap``)
        for ``rows``, if any. Every path that scores pairs (top-K, widening, pricing,
        ``--all-pairs``, one learner) applies them through here or ``allowed``."""
        out = None if self._extra_excluded is None else self._extra_excluded(rows)
        for name in self.hard:
            refused = self._refused(name, rows)
            out = refused if out is None else (out | refused)
        return out

    def refused_by(self, learner_row: int, guide_row: int) -> list[str]:
        """The answer constraints that refuse one pair (``language``, ``availability``)."""
        rows = np.array([learner_row], dtype=np.int64)
        return [n for n in self.hard if self._refused(n, rows)[0, guide_row]]

    def notes(self, learner_row: int, guide_row: int) -> dict[str, str]:
        """Why a criterion scored the neutral 0.5 for one pair: whose answer or fact is missing."""
        la, ga = self.learners.answers, self.guides.answers
        out: dict[str, str] = {}

        def who(learner: bool, guide: bool) -> str:
            return "both" if learner and guide else "learner" if learner else "guide"

        for name in self.names:
            if name in ANSWER_CRITERIA:
                if la is None or ga is None:
                    out[name] = "no answer: 0.5 (both)"
                    continue
                if name == "topics":
                    lm, gm = la.topic_total[learner_row] == 0, ga.topic_total[guide_row] == 0
                elif name == "goal_text":
                    lm, gm = not la.has_goal[learner_row], not ga.has_goal[guide_row]
                else:
                    lm, gm = la.slot_minutes[learner_row] == 0, ga.slot_minutes[guide_row] == 0
                if lm or gm:
                    out[name] = f"no answer: 0.5 ({who(bool(lm), bool(gm))})"
            elif name == "language":
                lm = not self.learners.languages[learner_row].any()
                gm = not self.guides.languages[guide_row].any()
                if lm or gm:
                    out[name] = f"no languages known: 0.5 ({who(bool(lm), bool(gm))})"
        return out

    def chain_ok(self, rows: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Not the same person and not anyone above in the reporting chain, for rows x guides."""
        guides = np.arange(len(self.guides), dtype=np.int64)
        return self.pairs_ok(rows[:, None], guides[None, :])

    def pairs_ok(self, lrows: NDArray[np.int64], grows: NDArray[np.int64]) -> NDArray[np.bool_]:
        """``chain_ok`` for pairs ``(lrows[i], grows[i])`` (broadcast): O(1) per pair.

        The guide is above the learner exactly when the guide's Euler-tour interval contains
        the learner's (see ``features.euler_intervals``).
        """
        lr, gd = self.learners, self.guides
        ok = lr.ids[lrows] != gd.ids[grows]
        ltin, gtin = lr.tin[lrows], gd.tin[grows]
        above = (gtin >= 0) & (ltin >= 0) & (gtin < ltin) & (lr.tout[lrows] <= gd.tout[grows])
        ok &= ~above
        if self.chain_both_ways:
            below = (gtin >= 0) & (ltin >= 0) & (ltin < gtin) & (gd.tout[grows] <= lr.tout[lrows])
            ok &= ~below
        return ok

    def breakdown(self, learner_row: int, guide_row: int) -> dict[str, float]:
        """Each weighted criterion's contribution for one pair (they add up to its score)."""
        rows = np.array([learner_row], dtype=np.int64)
        out: dict[str, float] = {}
        for name in self.names:
            if name in self.plugins and self.plugins[name].vectorised:
                lf, gf = self._plugin_features(name)
                block = self._checked_block(
                    name, self.plugins[name], lf[rows], gf[[guide_row]], (1, 1)
                )
                value = float(block[0, 0])
            elif name in self.plugins:
                fn = self.plugins[name].score
                assert fn is not None
                lp, gp = self.learners.profiles[learner_row], self.guides.profiles[guide_row]
                value = min(1.0, max(0.0, float(fn(lp, gp))))
            elif name in ANSWER_CRITERIA:
                out[name] = float(self.weighted(name, rows)[0, guide_row])
                continue
            else:
                value = float(self.criterion(name, rows)[0, guide_row])
            out[name] = self.weights[name] * value
        return out

    def pair_score(self, breakdown: Mapping[str, float]) -> float:
        """The score from a breakdown, summed in the same order as ``block`` does (the answer
        criteria, summed in float32 there, may differ from their float64 sum here in about
        the 8th digit)."""
        total = 0.0
        for name in self.names:
            if name not in ANSWER_CRITERIA:
                total = total + breakdown[name]
        sub = np.float32(0.0)
        for name in self.names:
            if name in ANSWER_CRITERIA:
                sub = np.float32(sub + np.float32(breakdown[name]))
        return total + float(sub) if sub else total

    def blocks(self, rows: NDArray[np.int64] | None = None) -> Iterator[NDArray[np.int64]]:
        """Learner row indices in blocks small enough to score at once."""
        rows = np.arange(len(self.learners), dtype=np.int64) if rows is None else rows
        size = max(1, BLOCK_CELLS // max(1, len(self.guides)))
        for start in range(0, rows.size, size):
            yield rows[start : start + size]


@dataclass
class CandidateArrays:
    """Sparse candidate lists: ``learner[k]`` (row) may take ``guide[k]`` (row) at ``score[k]``."""

    learner: NDArray[np.int64]
    guide: NDArray[np.int64]
    score: NDArray[np.float64]

    @classmethod
    def empty(cls) -> CandidateArrays:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))

    def extend(self, other: CandidateArrays) -> CandidateArrays:
        """Union with ``other``; a pair present in both is kept once (``self``'s copy).

        ``self`` holds no pair twice. Only the arcs of learners that ``other`` touches are
        compared, so widening a few thousand learners never sorts millions of arcs.
        """
        if other.score.size == 0:
            return self
        width = int(max(self.guide.max(initial=0), other.guide.max(initial=0))) + 1
        rows = int(max(self.learner.max(initial=0), other.learner.max(initial=0))) + 1
        touched = np.zeros(rows, dtype=np.bool_)
        touched[other.learner] = True
        mine = np.flatnonzero(touched[self.learner])
        old_keys = self.learner[mine] * width + self.guide[mine]
        new_keys = other.learner * width + other.guide
        _, first = np.unique(new_keys, return_index=True)
        first.sort()
        fresh = first[~np.isin(new_keys[first], old_keys)]
        return CandidateArrays(
            np.concatenate([self.learner, other.learner[fresh]]),
            np.concatenate([self.guide, other.guide[fresh]]),
            np.concatenate([self.score, other.score[fresh]]),
        )


def top_k(
    scorer: Scorer,
    k: int,
    min_score: float,
    *,
    rows: NDArray[np.int64] | None = None,
    guide_ok: NDArray[np.bool_] | None = None,
    workers: int | None = None,
) -> CandidateArrays:
    """Each learner's ``k`` best allowed guides with score >= ``min_score``.

    ``guide_ok`` masks guides out entirely (e.g. no free capacity). Blocks are scored on
    ``workers`` threads (default: the CPU count, at most 4); numpy releases the GIL in the
    heavy operations, and each block is independent. Ties at the K-th place go to the lower
    guide row (with few guides, to numpy's selection), deterministically for the same input.
    """
    n_guides = len(scorer.guides)
    if n_guides == 0 or k <= 0:
        return CandidateArrays.empty()
    drop = None if guide_ok is None or guide_ok.all() else ~guide_ok
    sparse = n_guides >= 4 * k * SAMPLE_STRIDE

    def one(block: NDArray[np.int64]) -> tuple[NDArray[np.int64], ...]:
        scores = scorer.scores(block)
        rules = scorer.excluded_by_rules(block)
        if rules is not None:
            # Answer constraints can refuse most pairs: putmask is a fifth faster than indexing
            # by the mask (measured at 61% refused).
            np.putmask(scores, rules, -np.inf)
        if drop is not None:
            scores[:, drop] = -np.inf
        if not sparse:
            return _dense_top_k(scorer, block, scores, k, min_score)
        return _sampled_top_k(scorer, block, scores, k, min_score)

    blocks = list(scorer.blocks(rows))
    workers = workers or min(4, os.cpu_count() or 1)
    # The blocks are the parallelism: BLAS threads inside each block's small matrix product
    # only contend with them (measured: 2-3x the CPU time at company scale).
    with threadpool_limits(limits=1, user_api="blas"):
        if workers > 1 and len(blocks) > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                parts = list(pool.map(one, blocks))
        else:
            parts = [one(b) for b in blocks]
    if not parts:
        return CandidateArrays.empty()
    return CandidateArrays(
        np.concatenate([p[0] for p in parts]).astype(np.int64),
        np.concatenate([p[1] for p in parts]).astype(np.int64),
        np.concatenate([p[2] for p in parts]),
    )


def _dense_top_k(
    scorer: Scorer,
    block: NDArray[np.int64],
    scores: NDArray[np.float64],
    k: int,
    min_score: float,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Top-K of a block by a full selection over every guide (``scores`` is changed)."""
    n_guides = scores.shape[1]
    ok = scorer.chain_ok(block)
    ok &= scores >= min_score
    scores[~ok] = -np.inf
    if k < n_guides:
        # argpartition puts the k largest of each row last.
        part = np.argpartition(scores, n_guides - k, axis=1)[:, n_guides - k :]
    else:
        part = np.broadcast_to(np.arange(n_guides), (block.size, n_guides))
    vals = np.take_along_axis(scores, part, axis=1)
    keep = np.isfinite(vals)
    li = np.broadcast_to(block[:, None], part.shape)[keep]
    return li, part[keep], vals[keep]


def _sampled_top_k(
    scorer: Scorer,
    block: NDArray[np.int64],
    scores: NDArray[np.float64],
    k: int,
    min_score: float,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Exact top-K of a block without a full selection over every guide.

    A full ``argpartition`` of every row was most of the scoring time at company scale. A
    sample of every ``SAMPLE_STRIDE``-th guide gives each row a cut-off that, as a rule, a few
    times K scores reach; one comparison pass collects those, the reporting-chain test runs
    only on them (O(1) a pair), and a sort of the few survivors picks the K best. A row whose
    cut-off left fewer than K allowed guides while lower scores could still qualify is redone
    with the full selection, so the result is exactly the top K either way.
    """
    n_rows = scores.shape[0]
    sample = scores[:, ::SAMPLE_STRIDE]
    width = sample.shape[1]
    j = min(width, -(-3 * k // SAMPLE_STRIDE) + 1)
    cut = np.partition(sample, width - j, axis=1)[:, width - j]
    np.maximum(cut, min_score, out=cut)
    ri, ci = np.nonzero(scores >= cut[:, None])
    vals = scores[ri, ci]
    keep = scorer.pairs_ok(block[ri], ci)
    keep &= vals > -np.inf
    ri, ci, vals = ri[keep], ci[keep], vals[keep]
    # Complete rows: K allowed guides found, or the cut-off fell to min_score (nothing missed).
    complete = (np.bincount(ri, minlength=n_rows) >= k) | (cut <= min_score)
    sel = complete[ri]
    ri, ci, vals = ri[sel], ci[sel], vals[sel]
    order = np.lexsort((ci, -vals, ri))
    ri, ci, vals = ri[order], ci[order], vals[order]
    rank = np.arange(ri.size) - np.searchsorted(ri, ri, side="left")
    top = rank < k
    li, gi, sc = block[ri[top]], ci[top], vals[top]
    redo = np.flatnonzero(~complete)
    if redo.size:
        extra = _dense_top_k(scorer, block[redo], scores[redo], k, min_score)
        li = np.concatenate([li, extra[0]])
        gi = np.concatenate([gi, extra[1]])
        sc = np.concatenate([sc, extra[2]])
    return li, gi, sc


def full_row(
    scorer: Scorer, learner_row: int, min_score: float, guide_ok: NDArray[np.bool_] | None = None
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """All guides one learner may take (allowed, score >= ``min_score``), with their scores."""
    scores, ok = scorer.block(np.array([learner_row], dtype=np.int64))
    ok = ok[0] & (scores[0] >= min_score)
    if guide_ok is not None:
        ok &= guide_ok
    idx = np.flatnonzero(ok)
    return idx.astype(np.int64), scores[0][idx]
