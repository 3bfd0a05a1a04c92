"""Participants' own answers as arrays: the ``topics``, ``goal_text`` and ``availability`` criteria.

Every value is computed so that it is the same whichever block of learners it is scored in
(top-K, widening, certification's pricing, ``--explain``): the products behind it add up
integers only (topic weights, quantised TF-IDF weights, minutes), which floating point adds
exactly in any order, and the one division after them is correctly rounded. So the solve and
the certificate price a pair with the very same float, bit for bit.

A person who did not answer a question scores 0.5 on its criterion (neither helps nor hurts),
as an unknown HRIS fact does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import scipy.sparse as sp
from coachbridge.domain.profile import SLOTS, WEEKDAYS
from coachbridge.matching.criteria import Profile
from numpy.typing import NDArray
from sklearn.feature_extraction.text import TfidfVectorizer

__all__ = [
    "SLOTS",
    "SLOT_HOURS",
    "WEEKDAYS",
    "AnswerSide",
    "GoalTable",
    "SlotTable",
    "TopicTable",
    "answer_sides",
    "availability_block",
    "availability_refused",
    "block_rows",
    "goal_block",
    "slot_windows",
    "topics_block",
]

#: Local hours of a half-day availability slot: ``mon-am`` is Monday 08:00-12:00 in the
#: person's own time zone, ``mon-pm`` Monday 13:00-17:00.
SLOT_HOURS: dict[str, tuple[int, int]] = {"am": (8, 12), "pm": (13, 17)}
_SLOT_INDEX = {slot: i for i, slot in enumerate(SLOTS)}

try:  # scipy's C loops behind its sparse products and ``toarray``, called on a block's rows
    # directly: they add into the array they are given (no product matrix, no fresh block).
    from scipy.sparse._sparsetools import csr_matmat, csr_matvecs, csr_todense
except ImportError:  # pragma: no cover - other scipy layouts: scipy's public operations
    csr_matmat = csr_matvecs = csr_todense = None

# TF-IDF weights (each row has unit length) become integers of QUANT_BITS bits, so a dot
# product of two rows is an integer below 2^24: exact in float32 too, in any summation order.
QUANT_BITS = 11
_UNIT = float(1 << QUANT_BITS)
# A term goes to the dense product when the shares of learners and of guides whose text holds
# it multiply to more than this (a sparse product costs about 300x a dense one per term pair,
# measured at 20,000 x 5,000, where 1e-3 to 5e-3 score within 1% of each other): a few very
# common terms, most of the work of a sparse product.
DENSE_SHARE = 3e-3


def slot_windows(slot: str) -> tuple[int, int]:
    """``(start, end)`` of a slot in minutes from Monday 00:00 of the person's own week."""
    day, half = slot.split("-")
    start, end = SLOT_HOURS[half]
    base = WEEKDAYS.index(day) * 1440
    return base + start * 60, base + end * 60


_WINDOWS = np.array([slot_windows(s) for s in SLOTS], dtype=np.int64)  # 10 x 2, local minutes
SLOT_MINUTES = int(_WINDOWS[0, 1] - _WINDOWS[0, 0])


@dataclass
class AnswerSide:
    """One role's answers as arrays (row ``i`` is the side's person ``i``)."""

    # topics: a learner's r-th of n picks weighs n - r + 1; a guide's offered topics weigh 1.
    topics: NDArray[np.float32]
    topic_total: NDArray[np.float64]  # sum of the row's weights; 0: no topics answered
    goal_dense: NDArray[np.float32]  # quantised TF-IDF weights of the common terms
    goal_sparse: sp.csr_matrix  # the same for every other term (float32, integer values)
    has_goal: NDArray[np.bool_]  # a goal text with at least one word that counts
    # availability: each person's own half-day slots (0/1, local time) and time zone; a zero
    # row without an answer or a known zone. ``SlotTable`` turns the guides' into the minutes
    # each slot of a learner in a given zone shares with each guide.
    slots: NDArray[np.float32]
    offset: NDArray[np.int64]  # minutes ahead of UTC (0 when unknown)
    slot_minutes: NDArray[np.float64]  # minutes a week; 0: no answer or no known time zone

    def factor(self, weight: float) -> NDArray[np.float32]:
        """``_down32(weight, slot_minutes)``, kept per weight (the guides' side of a block)."""
        cache = self.__dict__.setdefault("_factors", {})
        if weight not in cache:
            cache[weight] = _down32(weight, self.slot_minutes)
        return cache[weight]

    def take(self, rows: NDArray[np.int64]) -> AnswerSide:
        return AnswerSide(
            topics=self.topics[rows],
            topic_total=self.topic_total[rows],
            goal_dense=self.goal_dense[rows],
            goal_sparse=self.goal_sparse[rows],
            has_goal=self.has_goal[rows],
            slots=self.slots[rows],
            offset=self.offset[rows],
            slot_minutes=self.slot_minutes[rows],
        )


def _topics(
    learners: Sequence[Profile], guides: Sequence[Profile]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    index: dict[str, int] = {}
    for p in [*learners, *guides]:
        for topic in p.topics:
            index.setdefault(topic.casefold(), len(index))
    width = max(1, len(index))
    lt = np.zeros((len(learners), width), dtype=np.float32)
    gt = np.zeros((len(guides), width), dtype=np.float32)
    for i, p in enumerate(learners):
        n = len(p.topics)
        for r, topic in enumerate(p.topics):
            lt[i, index[topic.casefold()]] = n - r  # first pick n, last pick 1
    for j, p in enumerate(guides):
        for topic in p.topics:
            gt[j, index[topic.casefold()]] = 1.0
    return lt, gt


def _goals(
    learners: Sequence[Profile], guides: Sequence[Profile]
) -> tuple[tuple[NDArray[np.float32], sp.csr_matrix, NDArray[np.bool_]], ...]:
    """TF-IDF rows of the learners' goals and the guides' texts, fitted on the program's texts."""
    texts = [p.goal or "" for p in [*learners, *guides]]
    n_l = len(learners)
    empty = (
        np.zeros((len(texts), 1), dtype=np.float32),
        sp.csr_matrix((len(texts), 1), dtype=np.float32),
        np.zeros(len(texts), dtype=np.bool_),
    )
    matrix: sp.csr_matrix | None = None
    if any(t.strip() for t in texts):
        vectorizer = TfidfVectorizer(
            sublinear_tf=True, strip_accents="unicode", stop_words="english", dtype=np.float64
        )
        try:
            matrix = sp.csr_matrix(vectorizer.fit_transform(texts))
        except ValueError:  # no word that counts in any text (only stop words, say)
            matrix = None
    if matrix is None:
        dense, sparse, has = empty
    else:
        # Rounded down, so that a dot product of two rows never exceeds _UNIT^2 (the cosine
        # stays at most 1 without a clipping pass).
        matrix.data = np.floor(matrix.data * _UNIT)
        matrix.eliminate_zeros()
        has = np.diff(matrix.indptr) > 0
        df_l = np.bincount(matrix[:n_l].indices, minlength=matrix.shape[1])
        df_g = np.bincount(matrix[n_l:].indices, minlength=matrix.shape[1])
        share = (df_l / max(1, n_l)) * (df_g / max(1, len(texts) - n_l))
        common = np.flatnonzero(share > DENSE_SHARE)
        rare = np.flatnonzero(share <= DENSE_SHARE)
        dense = matrix[:, common].toarray().astype(np.float32)
        if dense.shape[1] == 0:
            dense = np.zeros((len(texts), 1), dtype=np.float32)
        sparse = sp.csr_matrix(matrix[:, rare], dtype=np.float32)  # integers below 2^11: exact
        sparse.sort_indices()
    return (
        (dense[:n_l], sp.csr_matrix(sparse[:n_l]), has[:n_l]),
        (dense[n_l:], sp.csr_matrix(sparse[n_l:]), has[n_l:]),
    )


def _offset_minutes(p: Profile) -> int | None:
    return None if p.utc_offset_hours is None else round(p.utc_offset_hours * 60)


def _availability(
    people: Sequence[Profile],
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float64]]:
    """Each person's own slots (see ``AnswerSide.slots``), UTC offset and weekly minutes."""
    x = np.zeros((len(people), len(SLOTS)), dtype=np.float32)
    offset = np.zeros(len(people), dtype=np.int64)
    minutes = np.zeros(len(people), dtype=np.float64)
    for i, p in enumerate(people):
        o = _offset_minutes(p)
        if o is None:
            continue
        for slot in p.availability:
            j = _SLOT_INDEX.get(slot)
            if j is not None:
                x[i, j] = 1.0
        offset[i] = o
        minutes[i] = float(x[i].sum()) * SLOT_MINUTES
    return x, offset, minutes


def _shared_minutes(a: int, o: int) -> NDArray[np.float32]:
    """``m[s, t]``: minutes slot ``s`` in a zone ``a`` minutes ahead of UTC shares with slot ``t``
    in a zone ``o`` ahead.

    A slot at local minute ``m`` of a zone ``o`` minutes ahead of UTC is at ``m - o`` in UTC:
    a Monday-morning slot in Auckland is Sunday evening in UTC, which is fine, since only
    the two people's windows are compared, on the same reference week.
    """
    ls, le = _WINDOWS[:, 0] - a, _WINDOWS[:, 1] - a
    gs, ge = _WINDOWS[:, 0] - o, _WINDOWS[:, 1] - o
    both = np.minimum.outer(le, ge) - np.maximum.outer(ls, gs)
    return np.maximum(both, 0).astype(np.float32)


def _no_terms(n: int) -> sp.csr_matrix:
    return sp.csr_matrix((n, 1), dtype=np.float32)


def answer_sides(
    learners: Sequence[Profile], guides: Sequence[Profile], needed: frozenset[str]
) -> tuple[AnswerSide, AnswerSide]:
    """Both sides' answer arrays; only the criteria in ``needed`` are worked out.

    ``needed`` names the criteria a program weighs or constrains (``topics``, ``goal_text``,
    ``availability``); the others get empty columns (fitting TF-IDF on a large program's texts
    takes a second, which a program that does not weigh ``goal_text`` should not pay).
    """
    n_l, n_g = len(learners), len(guides)
    if "topics" in needed:
        lt, gt = _topics(learners, guides)
    else:
        lt, gt = np.zeros((n_l, 1), np.float32), np.zeros((n_g, 1), np.float32)
    if "goal_text" in needed:
        (ld, ls, lh), (gd, gs, gh) = _goals(learners, guides)
    else:
        ld, ls, lh = np.zeros((n_l, 1), np.float32), _no_terms(n_l), np.zeros(n_l, bool)
        gd, gs, gh = np.zeros((n_g, 1), np.float32), _no_terms(n_g), np.zeros(n_g, bool)
    if "availability" in needed:
        la, lo, lmin = _availability(learners)
        ga, go, gmin = _availability(guides)
    else:
        la, ga = np.zeros((n_l, len(SLOTS)), np.float32), np.zeros((n_g, len(SLOTS)), np.float32)
        lo, go = np.zeros(n_l, np.int64), np.zeros(n_g, np.int64)
        lmin, gmin = np.zeros(n_l), np.zeros(n_g)
    return (
        AnswerSide(lt, lt.sum(axis=1, dtype=np.float64), ld, ls, lh, la, lo, lmin),
        AnswerSide(gt, gt.sum(axis=1, dtype=np.float64), gd, gs, gh, ga, go, gmin),
    )


def block_rows(rows: NDArray[np.int64]) -> NDArray[np.int64] | slice:
    """``rows`` as a slice when they are consecutive (top-K's blocks): no copy of the index."""
    span = rows.size and int(rows[-1]) - int(rows[0]) == rows.size - 1
    if span and (rows.size < 3 or bool((np.diff(rows) == 1).all())):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def _csr_rows(
    m: sp.csr_matrix, picked: NDArray[np.int64] | slice, index: np.dtype[Any]
) -> tuple[NDArray[Any], NDArray[Any], NDArray[np.float32]]:
    """``indptr, indices, data`` of rows ``picked`` of ``m`` (views for a slice), with index
    arrays of the dtype ``index`` (scipy's C loops take one index type for all operands)."""
    if isinstance(picked, slice):
        a, b = int(m.indptr[picked.start]), int(m.indptr[picked.stop])
        indptr = m.indptr[picked.start : picked.stop + 1] - m.indptr[picked.start]
        indices, data = m.indices[a:b], m.data[a:b]
    else:
        sub = m[picked]
        indptr, indices, data = sub.indptr, sub.indices, sub.data
    return indptr.astype(index, copy=False), indices.astype(index, copy=False), data


def _add_times_dense(
    value: NDArray[np.float32],
    lhs: sp.csr_matrix,
    picked: NDArray[np.int64] | slice,
    rhs: NDArray[np.float32],
) -> None:
    """``value += lhs[picked] @ rhs`` in place (``rhs`` dense, C-contiguous): a product over
    the nonzero entries of a sparse left side only."""
    if csr_matvecs is None or not value.flags.c_contiguous:  # pragma: no cover - fallback
        value += lhs[picked] @ rhs
        return
    indptr, indices, data = _csr_rows(lhs, picked, lhs.indices.dtype)
    rows, cols = value.shape
    csr_matvecs(rows, rhs.shape[0], cols, indptr, indices, data, rhs.reshape(-1), value.reshape(-1))


def _add_times_sparse(
    value: NDArray[np.float32],
    lhs: sp.csr_matrix,
    picked: NDArray[np.int64] | slice,
    rhs: sp.csr_matrix,
    bound: int,
) -> None:
    """``value += lhs[picked] @ rhs`` in place, both sparse; ``bound`` is at least the number
    of products (it sizes the product's arrays, instead of a counting pass over them)."""
    bound = min(bound, value.size)  # the product has at most one entry per cell
    if bound == 0:
        return
    if csr_matmat is None or not value.flags.c_contiguous:  # pragma: no cover - fallback
        value += (lhs[picked] @ rhs).toarray()
        return
    index = rhs.indices.dtype
    indptr, indices, data = _csr_rows(lhs, picked, index)
    rows, cols = value.shape
    out_ptr = np.empty(rows + 1, dtype=index)
    out_idx = np.empty(bound, dtype=index)
    out_val = np.empty(bound, dtype=np.float32)
    csr_matmat(
        rows,
        cols,
        indptr,
        indices,
        data,
        rhs.indptr,
        rhs.indices,
        rhs.data,
        out_ptr,
        out_idx,
        out_val,
    )
    # A CSR product holds each cell at most once: adding it in is exact.
    csr_todense(rows, cols, out_ptr, out_idx, out_val, value)


def _unknown(
    value: NDArray[np.float32], lmask: NDArray[np.bool_], gmask: NDArray[np.bool_], half: float
) -> None:
    """A missing answer on either side: the neutral value (0.5, times the weight)."""
    if lmask.any():
        value[lmask, :] = half
    if gmask.any():
        value[:, gmask] = half


# Each criterion below returns ``weight * value`` for learners ``rows`` x every guide as
# float32, in as few passes over the block as it can (at company scale these passes are the
# scoring time): one product that adds up integers (exact, in any order), then one
# multiplication in place by a factor of the row or the pair. Every step is the same IEEE
# operation on the same numbers whichever block a row is scored in, so the values are the same
# bit for bit; they are within about 10^-7 of the exact ones. Each factor is rounded down
# with a margin (``_down32``), so a contribution never exceeds its weight, as the integer
# scaling of scores (``solver.ScoreScale``) needs. The criterion itself is ``weight = 1``.

MARGIN = 1.0 - 2.0**-21


def _down32(weight: float, divisor: NDArray[np.float64] | float) -> NDArray[np.float32]:
    """``weight / divisor`` less a margin, as float32 rounded toward zero (0 for divisor 0)."""
    divisor = np.atleast_1d(np.asarray(divisor, dtype=np.float64))
    exact = np.divide(weight * MARGIN, divisor, out=np.zeros_like(divisor), where=divisor > 0)
    out = exact.astype(np.float32)
    up = out.astype(np.float64) > exact
    out[up] = np.nextafter(out[up], np.float32(0))
    return out


# -- what a scorer keeps per criterion, built once for its learners and guides ------------------


class TopicTable:
    """``topics`` for one scorer: the learners' picks as a sparse matrix (1 to 3 of the topics
    each, typically: a product over them alone beats a dense one), the guides' topics
    transposed, and each learner's factor per weight."""

    def __init__(self, learners: AnswerSide, guides: AnswerSide) -> None:
        self.learners = sp.csr_matrix(learners.topics, dtype=np.float32)
        self.guides_t = np.ascontiguousarray(guides.topics.T)
        self.total = learners.topic_total
        self.unknown = guides.topic_total == 0
        self._factors: dict[float, NDArray[np.float32]] = {}

    def factors(self, weight: float) -> NDArray[np.float32]:
        """``_down32(weight, total)`` of every learner, kept per weight."""
        row = self._factors.get(weight)
        if row is None:
            row = self._factors[weight] = _down32(weight, self.total)
        return row


class GoalTable:
    """``goal_text`` for one scorer: the guides' common terms transposed, their other terms as
    a sparse matrix of terms x guides, and per learner the number of products of its other
    terms with the guides' (it sizes a block's sparse product)."""

    def __init__(self, learners: AnswerSide, guides: AnswerSide) -> None:
        self.dense = learners.goal_dense
        self.dense_t = np.ascontiguousarray(guides.goal_dense.T)
        self.learners = sp.csr_matrix(learners.goal_sparse, dtype=np.float32)
        self.sparse_t = sp.csr_matrix(guides.goal_sparse.T, dtype=np.float32)
        per_term = np.diff(self.sparse_t.indptr)
        at = np.concatenate([[0], np.cumsum(per_term[self.learners.indices], dtype=np.int64)])
        self.products = at[self.learners.indptr[1:]] - at[self.learners.indptr[:-1]]
        self.known = learners.has_goal
        self.unknown = ~guides.has_goal
        self._scales: dict[float, np.float32] = {}

    def scale(self, weight: float) -> np.float32:
        """``weight`` over the largest dot product, rounded down (kept per weight)."""
        if weight not in self._scales:
            self._scales[weight] = _down32(weight, _UNIT * _UNIT)[0]
        return self._scales[weight]


class SlotTable:
    """``availability`` for one scorer, the guides' side built as blocks need it.

    For each learner time zone, the minutes each of its ten slots shares with each guide
    (integers); one product of a learner's own slots (0/1) with it gives the minutes the two
    share, over ten terms instead of ten per guide time zone. And per weight and weekly
    minutes of a learner, the pair factors against every guide.
    """

    def __init__(self, learners: AnswerSide, guides: AnswerSide) -> None:
        self.learners, self.guides = learners, guides
        self.unknown = guides.slot_minutes == 0
        offsets = guides.offset[~self.unknown]
        self._zones = [
            (o, np.flatnonzero(~self.unknown & (guides.offset == o)))
            for o in np.unique(offsets).tolist()
        ]
        self._shared: dict[int, NDArray[np.float32]] = {}
        self._factors: dict[tuple[float, float], NDArray[np.float32]] = {}

    def shared(self, a: int) -> NDArray[np.float32]:
        """Minutes each slot of a learner ``a`` minutes ahead of UTC shares with each guide."""
        table = self._shared.get(a)
        if table is None:
            table = np.zeros((len(SLOTS), self.unknown.size), dtype=np.float32)
            for o, cols in self._zones:
                table[:, cols] = _shared_minutes(a, o) @ self.guides.slots[cols].T
            self._shared[a] = table  # threads may both build it: the same values
        return table

    def factors(self, weight: float, minutes: float) -> NDArray[np.float32]:
        """``max(_down32(weight, minutes), _down32(weight, guide's minutes))`` per guide:
        ``weight / min(learner's, guide's minutes)``, rounded down."""
        key = (weight, minutes)
        row = self._factors.get(key)
        if row is None:
            row = np.maximum(_down32(weight, minutes), self.guides.factor(weight))
            self._factors[key] = row
        return row

    def runs(self, rows: NDArray[np.int64]) -> _ZoneRuns:
        """The block's answered rows grouped by time zone and, within one, weekly minutes."""
        lmin = self.learners.slot_minutes[rows]
        known = np.flatnonzero(lmin > 0)
        if known.size == 0:
            return _ZoneRuns(known, [], rows.size)
        zone, mins = self.learners.offset[rows[known]], lmin[known]
        sort = np.lexsort((mins, zone))
        order, zone, mins = known[sort], zone[sort], mins[sort]
        new_zone = zone[1:] != zone[:-1]
        zones = [0, *(np.flatnonzero(new_zone) + 1).tolist(), order.size]
        cuts = [0, *(np.flatnonzero(new_zone | (mins[1:] != mins[:-1])) + 1).tolist()]
        groups = []
        for a, b in pairwise(zones):
            inner = [c for c in cuts if a <= c < b]
            steps = [(c, d, float(mins[c])) for c, d in pairwise([*inner, b])]
            groups.append((a, b, int(zone[a]), steps))
        return _ZoneRuns(order, groups, rows.size)

    def minutes(
        self,
        rows: NDArray[np.int64],
        runs: _ZoneRuns,
        buf: NDArray[np.float32],
        weight: float | None,
    ) -> None:
        """Minutes each answered row (in ``runs.order``) shares with every guide, into
        ``buf``: one product of ten terms per time zone of the block, integers (exact); with a
        ``weight``, times the pair factors at once, while the zone's rows are in cache."""
        picked = rows[runs.order]
        for a, b, zone, steps in runs.zones:
            np.matmul(self.learners.slots[picked[a:b]], self.shared(zone), out=buf[a:b])
            if weight is not None:
                for c, d, minutes in steps:
                    buf[c:d] *= self.factors(weight, minutes)


@dataclass
class _ZoneRuns:
    """A block's answered rows (``order``: positions in the block) grouped as ``zones``:
    ``(start, end, zone, steps)``, ``steps`` the ``(start, end, minutes)`` runs of the zone's
    rows with the same weekly minutes (positions in ``order``)."""

    order: NDArray[np.int64]
    zones: list[tuple[int, int, int, list[tuple[int, int, float]]]]
    size: int  # rows in the block

    @property
    def in_place(self) -> bool:
        """Every row answered and already in order: nothing to scatter back."""
        return self.order.size == self.size and bool((np.diff(self.order) > 0).all())


def _block(
    rows: NDArray[np.int64], n_cols: int, out: NDArray[np.float32] | None
) -> NDArray[np.float32]:
    return np.empty((rows.size, n_cols), dtype=np.float32) if out is None else out


# -- the criteria, block by block -----------------------------------------------------------------


def topics_block(
    table: TopicTable,
    rows: NDArray[np.int64],
    weight: float = 1.0,
    out: NDArray[np.float32] | None = None,
    picked: NDArray[np.int64] | slice | None = None,
) -> NDArray[np.float32]:
    """``topics``: the weight of the learner's picks the guide offers, over all their weight.

    Written to ``out`` when given (a scorer's scratch block: no fresh memory); ``picked`` is
    ``block_rows(rows)`` if the caller has it.
    """
    picked = block_rows(rows) if picked is None else picked
    value = _block(rows, table.unknown.size, out)
    value.fill(0.0)
    _add_times_dense(value, table.learners, picked, table.guides_t)  # integers, <= the total
    value *= table.factors(weight)[picked][:, None]
    _unknown(value, table.total[picked] == 0, table.unknown, 0.5 * weight)
    return value


def goal_block(
    table: GoalTable,
    rows: NDArray[np.int64],
    weight: float = 1.0,
    out: NDArray[np.float32] | None = None,
    picked: NDArray[np.int64] | slice | None = None,
) -> NDArray[np.float32]:
    """``goal_text``: cosine similarity of the quantised TF-IDF rows (both have unit length).

    Common terms go through one dense product, the others through a sparse one added in
    place; both count integers below 2^24, exact in float32.
    """
    picked = block_rows(rows) if picked is None else picked
    value = _block(rows, table.unknown.size, out)
    np.matmul(table.dense[picked], table.dense_t, out=value)
    bound = int(table.products[picked].sum())
    _add_times_sparse(value, table.learners, picked, table.sparse_t, bound)
    value *= table.scale(weight)  # the dot product is at most _UNIT^2
    _unknown(value, ~table.known[picked], table.unknown, 0.5 * weight)
    return value


def availability_block(
    table: SlotTable,
    rows: NDArray[np.int64],
    weight: float = 1.0,
    out: NDArray[np.float32] | None = None,
    work: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """``availability``: minutes both people are free, over the smaller of their weekly minutes.

    ``1 / min(a, b)`` is ``max(1 / a, 1 / b)``: rows of one zone and weekly minutes share one
    row of pair factors. The shared minutes never exceed either total. ``out`` and ``work``
    (as many rows) are scratch blocks to use, if given.
    """
    value = _block(rows, table.unknown.size, out)
    runs = table.runs(rows)
    if runs.in_place:
        table.minutes(rows, runs, value, weight)
    else:
        spare = None if work is None else work[: runs.order.size]
        buf = _block(runs.order, table.unknown.size, spare)
        table.minutes(rows, runs, buf, weight)
        value[runs.order] = buf
    _unknown(value, table.learners.slot_minutes[rows] == 0, table.unknown, 0.5 * weight)
    return value


def availability_refused(
    table: SlotTable, rows: NDArray[np.int64], work: NDArray[np.float32] | None = None
) -> NDArray[np.bool_]:
    """Pairs whose two people both answered availability and share no minute."""
    refused = np.zeros((rows.size, table.unknown.size), dtype=np.bool_)
    runs = table.runs(rows)
    spare = None if work is None else work[: runs.order.size]
    buf = _block(runs.order, table.unknown.size, spare)
    table.minutes(rows, runs, buf, None)
    refused[runs.order] = buf == 0
    refused[:, table.unknown] = False
    return refused
