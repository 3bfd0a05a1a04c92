"""Small-group suppression: no figure about fewer than ``min_group_size`` people is shown."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SUPPRESSED: dict[str, bool] = {"suppressed": True}


def is_suppressed(value: Any) -> bool:
    """True for the ``{"suppressed": true}`` marker."""
    return isinstance(value, Mapping) and value.get("suppressed") is True


class Suppressor:
    """Applies the ``[reports] min_group_size`` rule the same way in every part of a report."""

    def __init__(self, min_group_size: int) -> None:
        self.k = min_group_size

    def small(self, people: int) -> bool:
        """True when a figure about ``people`` people must not be shown (zero is shown)."""
        return 0 < people < self.k

    def count(self, value: int, people: int | None = None) -> Any:
        """A count, or the marker when it is about too few people."""
        return SUPPRESSED.copy() if self.small(value if people is None else people) else value

    def figure(self, value: Any, people: int) -> Any:
        """Any figure about ``people`` people: itself, or the marker (also when nobody is behind it)."""
        return SUPPRESSED.copy() if people < self.k else value

    def cells(self, counts: Mapping[str, int]) -> dict[str, Any]:
        """Counts by category with primary and secondary suppression.

        The total minus the shown cells gives the hidden cells together, so once any cell is
        hidden, the next smallest are hidden too until at least two are and together they are
        about ``min_group_size`` people or more.
        """
        out: dict[str, Any] = {}
        hidden = [k for k, v in counts.items() if self.small(v)]
        if hidden:
            shown = sorted((v, k) for k, v in counts.items() if k not in hidden and v > 0)
            while shown and (len(hidden) < 2 or sum(counts[h] for h in hidden) < self.k):
                hidden.append(shown.pop(0)[1])
        for key, value in counts.items():
            out[key] = SUPPRESSED.copy() if key in hidden else value
        return out
