"""Numeric features of the learners and guides of one program, for block-wise scoring.

Everything a built-in criterion needs is an array here, so that a block of learners is scored
against every guide with a few matrix operations instead of a Python loop per pair.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from coachbridge.matching.answers import AnswerSide
from coachbridge.matching.criteria import Profile
from numpy.typing import NDArray


@dataclass
class Side:
    """One role's people as arrays (row ``i`` is person ``ids[i]``)."""

    ids: NDArray[np.int64]
    level: NDArray[np.float64]  # NaN when unknown
    department: NDArray[np.int64]  # code; -1 when unknown
    utc_offset: NDArray[np.float64]  # hours; NaN when unknown
    topics: NDArray[np.float32]  # learner: skills wanted; guide: skills offered (n x V)
    goals: NDArray[np.float32]  # learner: goal tags; guide: same as topics
    languages: NDArray[np.float32]  # n x languages, 0/1
    tin: NDArray[np.int64]  # Euler-tour entry time in the org tree (-1: not in the tree)
    tout: NDArray[np.int64]  # Euler-tour exit time
    profiles: list[Profile] = field(default_factory=list)  # for plugin criteria
    rating: NDArray[np.float64] | None = None  # guides: received rating on 0..1, NaN unknown
    answers: AnswerSide | None = None  # intake answers (None: nobody's are used)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def take(self, rows: NDArray[np.int64]) -> Side:
        """The people at ``rows`` as a new side."""
        return Side(
            ids=self.ids[rows],
            level=self.level[rows],
            department=self.department[rows],
            utc_offset=self.utc_offset[rows],
            topics=self.topics[rows],
            goals=self.goals[rows],
            languages=self.languages[rows],
            tin=self.tin[rows],
            tout=self.tout[rows],
            profiles=[self.profiles[i] for i in rows.tolist()] if self.profiles else [],
            rating=None if self.rating is None else self.rating[rows],
            answers=None if self.answers is None else self.answers.take(rows),
        )


def euler_intervals(managers: dict[int, int | None]) -> dict[int, tuple[int, int]]:
    """Entry and exit times of a depth-first walk of the reporting tree.

    ``a`` is ``b``'s manager or anyone above them exactly when ``tin[a] < tin[b]`` and
    ``tout[b] <= tout[a]``: one comparison per pair instead of walking the chain. People caught
    in a reporting cycle (the sync refuses those, but a store may be edited by hand) are left
    out of the tree and so never count as anyone's superior.
    """
    children: dict[int, list[int]] = {}
    roots: list[int] = []
    for person, manager in managers.items():
        if manager is None or manager not in managers:
            roots.append(person)
        else:
            children.setdefault(manager, []).append(person)
    out: dict[int, tuple[int, int]] = {}
    clock = 0
    for root in sorted(roots):
        stack: list[tuple[int, int]] = [(root, 0)]
        start: dict[int, int] = {}
        while stack:
            node, state = stack.pop()
            if state == 0:
                start[node] = clock
                clock += 1
                stack.append((node, 1))
                for child in sorted(children.get(node, ()), reverse=True):
                    stack.append((child, 0))
            else:
                out[node] = (start[node], clock)
    return out


class Vocabulary:
    """Lower-cased tags to column numbers, so that sets of tags become 0/1 rows."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def add(self, tags: Iterable[str]) -> None:
        for tag in tags:
            self.index.setdefault(tag, len(self.index))

    def matrix(self, rows: Sequence[Iterable[str]]) -> NDArray[np.float32]:
        out = np.zeros((len(rows), max(1, len(self.index))), dtype=np.float32)
        for i, tags in enumerate(rows):
            for tag in tags:
                j = self.index.get(tag)
                if j is not None:
                    out[i, j] = 1.0
        return out


def norm_tags(values: object) -> frozenset[str]:
    """A list (or one string, or ``a;b`` text) of tags as a set of trimmed lower-case strings."""
    if values is None:
        return frozenset()
    if isinstance(values, str):
        values = values.replace("|", ";").split(";")
    if not isinstance(values, Iterable):
        return frozenset()
    return frozenset(str(v).strip().lower() for v in values if str(v).strip())
