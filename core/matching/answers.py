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
    "answer_sides",
    "availability_block",
    "availability_refused",
    "goal_block",
    "slot_windows",
    "topics_block",
]

#: Local hours of a half-day availability slot: ``mon-am`` is Monday 08:00-12:00 in the
#: person's own time zone, ``mon-pm`` Monday 13:00-17:00.
SLOT_HOURS: dict[str, tuple[int, int]] = {"am": (8, 12), "pm": (13, 17)}
_SLOT_INDEX = {slot: i for i, slot in enumerate(SLOTS)}

try:  # scipy's C loop behind ``toarray`` (it adds into its output); a numpy fallback if absent
    from scipy.sparse._sparsetools import csr_todense as _csr_add
except ImportError:  # pragma: no cover - other scipy layouts
    _csr_add = None

# TF-IDF weights (each row has unit length) become integers of QUANT_BITS bits, so a dot
# product of two rows is an integer below 2^24: exact in float32 too, in any summation order.
QUANT_BITS = 11
_UNIT = float(1 << QUANT_BITS)
# A term goes to the dense product when the shares of learners and of guides whose text holds
# it multiply to more than this (a sparse product costs about 800x a dense one per term pair,
# measured): a few very common terms, most of the work of a sparse product.
DENSE_SHARE = 1e-3


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
    goal_sparse: sp.csr_matrix  # the same for every other term (float64, integer values)
    has_goal: NDArray[np.bool_]  # a goal text with at least one word that counts
    # availability: learners hold, per guide time-zone group, the minutes each of their slots
    # shares with each slot of a guide in that group; guides hold their own slots (0/1) in
    # their group's columns. One product then gives the minutes two people share.
    slots: NDArray[np.float32]
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
        sp.csr_matrix((len(texts), 1), dtype=np.float64),
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
        sparse = sp.csr_matrix(matrix[:, rare])
        sparse.sort_indices()
    return (
        (dense[:n_l], sp.csr_matrix(sparse[:n_l]), has[:n_l]),
        (dense[n_l:], sp.csr_matrix(sparse[n_l:]), has[n_l:]),
    )


def _offset_minutes(p: Profile) -> int | None:
    return None if p.utc_offset_hours is None else round(p.utc_offset_hours * 60)


def _availability(
    learners: Sequence[Profile], guides: Sequence[Profile]
) -> tuple[NDArray[np.float32], NDArray[np.float64], NDArray[np.float32], NDArray[np.float64]]:
    """Slot features of both sides (see ``AnswerSide.slots``) and each person's weekly minutes.

    A slot at local minute ``m`` of a zone ``o`` minutes ahead of UTC is at ``m - o`` in UTC:
    a Monday-morning slot in Auckland is Sunday evening in UTC, which is fine, since only
    the two people's windows are compared, on the same reference week.
    """

    def own(people: Sequence[Profile]) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
        x = np.zeros((len(people), len(SLOTS)), dtype=np.float32)
        minutes = np.zeros(len(people), dtype=np.float64)
        for i, p in enumerate(people):
            if _offset_minutes(p) is None:
                continue
            for slot in p.availability:
                j = _SLOT_INDEX.get(slot)
                if j is not None:
                    x[i, j] = 1.0
            minutes[i] = float(x[i].sum()) * SLOT_MINUTES
        return x, minutes

    lx, lmin = own(learners)
    gx, gmin = own(guides)
    goffs = sorted({o for p in guides if (o := _offset_minutes(p)) is not None}) or [0]
    group = {o: j for j, o in enumerate(goffs)}
    width = len(SLOTS) * len(goffs)
    gfeat = np.zeros((len(guides), width), dtype=np.float32)
    for j, p in enumerate(guides):
        o = _offset_minutes(p)
        if o is not None and gmin[j] > 0:
            b = group[o] * len(SLOTS)
            gfeat[j, b : b + len(SLOTS)] = gx[j]
    lfeat = np.zeros((len(learners), width), dtype=np.float32)
    loffs = np.array(
        [_offset_minutes(p) if _offset_minutes(p) is not None else 0 for p in learners]
    )
    for a in np.unique(loffs).tolist():
        # shared[s, j*10 + t]: minutes the learner's slot s (zone a) shares with slot t of a
        # guide in zone goffs[j]; both windows in UTC minutes of the reference week.
        ls, le = _WINDOWS[:, 0] - a, _WINDOWS[:, 1] - a
        shared = np.zeros((len(SLOTS), width), dtype=np.float32)
        for j, o in enumerate(goffs):
            gs, ge = _WINDOWS[:, 0] - o, _WINDOWS[:, 1] - o
            both = np.minimum.outer(le, ge) - np.maximum.outer(ls, gs)
            shared[:, j * len(SLOTS) : (j + 1) * len(SLOTS)] = np.maximum(both, 0)
        rows = np.flatnonzero((loffs == a) & (lmin > 0))
        lfeat[rows] = lx[rows] @ shared  # integers below 2^24: exact
    return lfeat, lmin, gfeat, gmin


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
        ld, ls, lh = np.zeros((n_l, 1), np.float32), sp.csr_matrix((n_l, 1)), np.zeros(n_l, bool)
        gd, gs, gh = np.zeros((n_g, 1), np.float32), sp.csr_matrix((n_g, 1)), np.zeros(n_g, bool)
    if "availability" in needed:
        la, lmin, ga, gmin = _availability(learners, guides)
    else:
        la, ga = np.zeros((n_l, 1), np.float32), np.zeros((n_g, 1), np.float32)
        lmin, gmin = np.zeros(n_l), np.zeros(n_g)
    return (
        AnswerSide(lt, lt.sum(axis=1, dtype=np.float64), ld, ls, lh, la, lmin),
        AnswerSide(gt, gt.sum(axis=1, dtype=np.float64), gd, gs, gh, ga, gmin),
    )


def _rows(rows: NDArray[np.int64]) -> NDArray[np.int64] | slice:
    """``rows`` as a slice when they are consecutive (top-K's blocks): no copy of the index."""
    span = rows.size and int(rows[-1]) - int(rows[0]) == rows.size - 1
    if span and (rows.size < 3 or bool((np.diff(rows) == 1).all())):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def _add_sparse(value: NDArray[np.float32], extra: sp.csr_matrix) -> None:
    """Add a CSR matrix of integers to ``value`` in place (a CSR product holds each cell once,
    so a flat fancy add is exact)."""
    data = extra.data.astype(np.float32)
    if _csr_add is not None and value.flags.c_contiguous:
        # scipy's own C loop (what ``toarray`` runs), which adds into the array it is given.
        _csr_add(value.shape[0], value.shape[1], extra.indptr, extra.indices, data, value)
        return
    at = np.repeat(
        np.arange(value.shape[0], dtype=np.int64) * value.shape[1], np.diff(extra.indptr)
    )
    at += extra.indices
    value.reshape(-1)[at] += data


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


def topics_block(
    learners: AnswerSide,
    rows: NDArray[np.int64],
    guides_t: NDArray[np.float32],
    guides: AnswerSide,
    weight: float = 1.0,
) -> NDArray[np.float32]:
    """``topics``: the weight of the learner's picks the guide offers, over all their weight.

    ``guides_t`` is the guides' ``topics`` transposed (contiguous, kept by the scorer).
    """
    total = learners.topic_total[rows]
    value = learners.topics[_rows(rows)] @ guides_t  # integers, at most the row's total
    value *= _down32(weight, total)[:, None]
    _unknown(value, total == 0, guides.topic_total == 0, 0.5 * weight)
    return value


def goal_block(
    learners: AnswerSide,
    rows: NDArray[np.int64],
    dense_t: NDArray[np.float32],
    sparse_t: sp.csr_matrix,
    guides: AnswerSide,
    weight: float = 1.0,
) -> NDArray[np.float32]:
    """``goal_text``: cosine similarity of the quantised TF-IDF rows (both have unit length).

    Common terms go through one dense product, the others through a sparse one whose few
    results are added in place; both count integers below 2^24, exact in float32.
    """
    picked = _rows(rows)
    value = learners.goal_dense[picked] @ dense_t
    if sparse_t.nnz:
        extra = sp.csr_matrix(learners.goal_sparse[picked] @ sparse_t)
        if extra.nnz:
            _add_sparse(value, extra)
    value *= _down32(weight, _UNIT * _UNIT)[0]  # the dot product is at most _UNIT^2
    _unknown(value, ~learners.has_goal[rows], ~guides.has_goal, 0.5 * weight)
    return value


def availability_block(
    learners: AnswerSide,
    rows: NDArray[np.int64],
    slots_t: NDArray[np.float32],
    guides: AnswerSide,
    weight: float = 1.0,
) -> NDArray[np.float32]:
    """``availability``: minutes both people are free, over the smaller of their weekly minutes.

    ``slots_t`` is the guides' ``slots`` transposed (kept by the scorer). ``1 / min(a, b)`` is
    ``max(1 / a, 1 / b)``: the pair's factor comes from a row and a column factor in one
    pass. The shared minutes never exceed either total.
    """
    lmin, gmin = learners.slot_minutes[rows], guides.slot_minutes
    value = learners.slots[_rows(rows)] @ slots_t  # minutes, integers
    value *= np.maximum.outer(_down32(weight, lmin), guides.factor(weight))
    _unknown(value, lmin == 0, gmin == 0, 0.5 * weight)
    return value


def availability_refused(
    learners: AnswerSide, rows: NDArray[np.int64], slots_t: NDArray[np.float32], guides: AnswerSide
) -> NDArray[np.bool_]:
    """Pairs whose two people both answered availability and share no minute."""
    refused = (learners.slots[_rows(rows)] @ slots_t) == 0
    refused &= (learners.slot_minutes[rows] > 0)[:, None]
    refused &= (guides.slot_minutes > 0)[None, :]
    return refused
