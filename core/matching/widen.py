"""Widening: make sure the top-K cut never costs a match.

After solving on the top-K lists, an unmatched learner might still be matchable with the full
candidate set, directly or by moving other learners along an augmenting path. ``augmenting_path``
searches the residual flow network of the full candidate graph (rows are scored lazily, one
learner at a time, so the dense matrix is never built) and returns the candidate arcs of one
augmenting path; the caller adds them to the lists and solves again. When no path exists, the
matched count equals the maximum the full candidate set allows (Berge's theorem, in its
flow-network form).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray


def augmenting_path(
    unmatched: list[int],
    match: dict[int, int],
    free: NDArray[np.int64],
    row: Callable[[int], NDArray[np.int64]],
    *,
    group: Callable[[int], int] | None = None,
    limit: int | None = None,
    group_used: dict[tuple[int, int], int] | None = None,
) -> list[tuple[int, int]] | None:
    """Candidate arcs ``(learner, guide)`` of one augmenting path, or None when there is none.

    ``match`` maps matched learners to their guide, ``free`` is each guide's capacity before
    this matching, ``row(x)`` the guides learner ``x`` may take in the full candidate set.
    With ``limit``, a guide takes at most ``limit`` learners of one ``group(x)`` (less what
    ``group_used`` already holds).
    """
    load = np.zeros(free.shape[0], dtype=np.int64)
    by_guide_group: dict[tuple[int, int], list[int]] = {}
    by_guide: dict[int, list[int]] = {}
    for x, g in match.items():
        load[g] += 1
        by_guide.setdefault(g, []).append(x)
        key = (g, group(x) if group else x)
        by_guide_group.setdefault(key, []).append(x)
    if not np.any(load < free):
        return None  # every guide is full: the sink cannot be reached
    used = group_used or {}

    def group_room(g: int, d: int) -> bool:
        if limit is None:
            return True
        return len(by_guide_group.get((g, d), ())) + used.get((g, d), 0) < limit

    # Nodes: ("L", x), ("D", g, d), ("G", g). parent[node] = previous node (and the arc).
    parent: dict[tuple[int, ...], tuple[int, ...] | None] = {}
    queue: deque[tuple[int, ...]] = deque()
    for x in unmatched:
        node = (0, x)
        parent[node] = None
        queue.append(node)
    found: tuple[int, ...] | None = None
    while queue and found is None:
        node = queue.popleft()
        if node[0] == 0:  # learner x: any guide in their full row except their own
            x = node[1]
            d = group(x) if (group and limit is not None) else -1
            guides = row(x)
            # A guide with a free place (and room in x's group) ends the path right here:
            # checking it first keeps the search from expanding other learners' rows.
            open_guides = guides[load[guides] < free[guides]]
            for g in open_guides.tolist():
                if match.get(x) != g and (d < 0 or group_room(g, d)):
                    mid = (1, g, d)
                    parent.setdefault(mid, node)
                    found = (2, g)
                    parent.setdefault(found, mid)
                    break
            if found is not None:
                break
            for g in guides.tolist():
                if match.get(x) == g:
                    continue
                nxt = (1, g, d)
                if nxt not in parent:
                    parent[nxt] = node
                    queue.append(nxt)
        elif node[0] == 1:  # (guide, group): into the guide if the group has room ...
            g, d = node[1], node[2]
            if d < 0 or group_room(g, d):
                nxt = (2, g)
                if nxt not in parent:
                    parent[nxt] = node
                    if load[g] < free[g]:
                        found = nxt
                        break
                    queue.append(nxt)
            # ... or push out a learner of that group from this guide.
            members = by_guide.get(g, []) if d < 0 else by_guide_group.get((g, d), [])
            for y in members:
                nxt = (0, y)
                if nxt not in parent:
                    parent[nxt] = node
                    queue.append(nxt)
        else:  # guide g (full): reduce one group's flow into g; a learner of it must move
            g = node[1]
            if limit is not None and group is not None:
                for (gg, d), members in by_guide_group.items():
                    if gg == g and members:
                        nxt = (1, g, d)
                        if nxt not in parent:
                            parent[nxt] = node
                            queue.append(nxt)
    if found is None:
        return None
    arcs: list[tuple[int, int]] = []
    node: tuple[int, ...] | None = found
    while node is not None:
        prev = parent[node]
        if prev is not None and prev[0] == 0 and node[0] == 1:
            arcs.append((prev[1], node[1]))
        node = prev
    return arcs
