"""Proposing which of a source's columns holds each coachbridge field, for ``coachbridge connect``.

Every connector whose source names its own columns (a Workday report, a CSV header, BambooHR's
fields) shares this one helper, so a proposal reads the same whichever vendor it came from:
first an exact name, then a known alias, then a fuzzy match (rapidfuzz), each with its
confidence. A column is proposed for one field at most.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from rapidfuzz import fuzz

__all__ = ["FieldMatch", "MatchHow", "normalize_name", "propose_mapping"]

MatchHow = Literal["exact", "alias", "fuzzy", "none"]

#: Below this fuzzy score (0-100) a column is not proposed: "Manager_ID" must not become the
#: guess for "id" just because they share two letters.
DEFAULT_CUTOFF = 80.0


@dataclass(frozen=True)
class FieldMatch:
    """One field's proposal: the column (None: nothing fits), how it was found and how sure."""

    field: str
    column: str | None
    how: MatchHow
    confidence: float  # 100 for exact and alias matches, rapidfuzz's score for fuzzy ones

    @property
    def found(self) -> bool:
        return self.column is not None


def normalize_name(name: str) -> str:
    """``Email_-_Work``, ``email work`` and ``EmailWork`` all become ``emailwork``."""
    return re.sub(r"[^0-9a-z]", "", name.casefold())


def _words(name: str) -> str:
    # camelCase and separators become spaces, so token_set_ratio compares words.
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return " ".join(re.split(r"[^0-9A-Za-z]+", spaced)).casefold().strip()


def propose_mapping(
    fields: Mapping[str, Sequence[str]],
    columns: Sequence[str],
    *,
    cutoff: float = DEFAULT_CUTOFF,
) -> list[FieldMatch]:
    """For each field (in the order given, with its known aliases) the column that holds it.

    Exact names win over aliases, aliases over fuzzy matches, across all fields, so a column
    that is some field's exact name is never taken by another field's fuzzy guess.
    """
    by_norm: dict[str, str] = {}
    for column in columns:
        by_norm.setdefault(normalize_name(column), column)
    taken: set[str] = set()
    chosen: dict[str, FieldMatch] = {}

    for field in fields:
        column = by_norm.get(normalize_name(field))
        if column is not None and column not in taken:
            chosen[field] = FieldMatch(field, column, "exact", 100.0)
            taken.add(column)
    for field, aliases in fields.items():
        if field in chosen:
            continue
        for alias in aliases:
            column = by_norm.get(normalize_name(alias))
            if column is not None and column not in taken:
                chosen[field] = FieldMatch(field, column, "alias", 100.0)
                taken.add(column)
                break
    # Fuzzy: best pairs first, so two fields never fight over one column in field order.
    candidates: list[tuple[float, str, str]] = []
    for field, aliases in fields.items():
        if field in chosen:
            continue
        # A name of two or three letters ("id") is inside too many headers to guess from.
        names = [w for n in (field, *aliases) if len(normalize_name(w := _words(n))) >= 4]
        if not names:
            continue
        for column in columns:
            if column in taken:
                continue
            # WRatio scales partial and token-set matches below 100: a fuzzy guess is never
            # as sure as a name.
            score = max(fuzz.WRatio(n, _words(column)) for n in names)
            if score >= cutoff:
                candidates.append((score, field, column))
    for score, field, column in sorted(candidates, key=lambda c: (-c[0], c[1], c[2])):
        if field in chosen or column in taken:
            continue
        chosen[field] = FieldMatch(field, column, "fuzzy", round(score, 1))
        taken.add(column)
    return [chosen.get(f) or FieldMatch(f, None, "none", 0.0) for f in fields]
