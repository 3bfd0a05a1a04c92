"""Long IN lists are split without repeats, in first order, into lists of at most the size."""

from __future__ import annotations

from coachbridge.store.chunks import IN_LIST, in_chunks


def test_in_chunks_drops_repeats_keeps_order_and_bounds_each_list() -> None:
    values = [5, 3, 5, *range(10, 2010), 3]
    chunks = list(in_chunks(values))
    assert all(0 < len(chunk) <= IN_LIST for chunk in chunks)
    assert [v for chunk in chunks for v in chunk] == [5, 3, *range(10, 2010)]
    assert list(in_chunks([], size=2)) == []
    assert list(in_chunks(iter("abcab"), size=2)) == [["a", "b"], ["c"]]
