"""Splitting a long ``IN (...)`` list into queries the database accepts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["IN_LIST", "in_chunks"]

T = TypeVar("T")

#: Values per ``IN (...)`` list: well inside SQLite's limit on bound parameters (32,766 since
#: 3.32, 999 before), leaving room for a query's other parameters.
IN_LIST = 900


def in_chunks(values: Iterable[T], size: int = IN_LIST) -> Iterator[list[T]]:
    """``values`` without repeats, in their first order, as lists of at most ``size``."""
    items = list(dict.fromkeys(values))
    for start in range(0, len(items), size):
        yield items[start : start + size]
