"""Spreadsheet-safe CSV cells: what ``--format csv`` writes and what a CSV import reads back.

A text cell that a spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return) is written with a leading ``'``; importing strips it again, so a file
exported by coachbridge round-trips exactly. Connector plugins that read CSV use
``unescape_cell``; this module is part of the public API.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any

__all__ = ["cell_text", "escape_cell", "json_default", "read_records", "to_csv", "unescape_cell"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def escape_cell(value: Any) -> Any:
    """Make a CSV cell safe to open in a spreadsheet: text that would be a formula gets a ``'``.

    Text that itself starts with ``'`` gets one too, so that ``unescape_cell`` can always tell
    an escape from a real quote and the file round-trips exactly.
    """
    if isinstance(value, str) and value.startswith((*_FORMULA_START, "'")):
        return "'" + value
    return value


def unescape_cell(value: str) -> str:
    """Undo ``escape_cell`` when a file we exported comes back."""
    if len(value) >= 2 and value[0] == "'" and value[1] in "=+-@\t\r'":
        return value[1:]
    return value


def cell_text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, default=json_default, ensure_ascii=False, sort_keys=True)
    return value


def to_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([escape_cell(cell_text(row.get(c))) for c in columns])
    return buf.getvalue()


def read_records(
    where: object, reader: Any, names: Sequence[str]
) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    """The records after the header of a ``csv.reader(..., strict=True)``: ``(line, cells)``,
    ``line`` the physical line the record starts on (the header is line 1), ``cells`` by the
    header's ``names`` (unescaped, stripped; a missing cell is ``""``); and the problems, one
    line each, ``"WHERE:LINE: ..."``: a record with more cells than the header names, or a
    malformed file (a quote never closed fails at the end, naming the line it opened on).
    Blank records are skipped."""
    rows: list[tuple[int, dict[str, str]]] = []
    problems: list[str] = []
    previous_end = reader.line_num
    try:
        for record in reader:
            # A record starts on the line after the one before it ended (cells may hold new
            # lines; counting those misses the ones a quote swallowed).
            start, previous_end = previous_end + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if len(record) > len(names):
                problems.append(
                    f"{where}:{start}: {len(record)} cells, but the header names "
                    f"{len(names)} columns"
                )
                continue
            cells = {
                name: unescape_cell(record[i].strip()) if i < len(record) else ""
                for i, name in enumerate(names)
                if name
            }
            rows.append((start, cells))
    except csv.Error as exc:
        hint = (
            " (a quote opened on this line is never closed?)" if "end of data" in str(exc) else ""
        )
        problems.append(f"{where}:{previous_end + 1}: malformed CSV: {exc}{hint}")
    return rows, problems
