"""Printing listings as a table, JSON or CSV, the same way for every command."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click
from coachbridge.csvcells import cell_text, json_default, to_csv

FORMATS = ("table", "json", "csv")


def format_option(default: str = "table") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default=default,
        show_default=True,
        help="Output format.",
    )


def to_json(data: Any) -> str:
    return json.dumps(data, default=json_default, indent=2, ensure_ascii=False)


def to_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], max_width: int = 40) -> str:
    def text(value: Any) -> str:
        value = cell_text(value)
        if isinstance(value, float):
            value = f"{value:.3f}"
        out = str(value).replace("\n", " ")
        return out if len(out) <= max_width else out[: max_width - 1] + "…"

    cells = [[text(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(
        "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )
    return "\n".join(lines)


def emit(
    rows: Sequence[Mapping[str, Any]],
    fmt: str,
    columns: Sequence[str],
    *,
    table_columns: Sequence[str] | None = None,
    empty: str = "nothing to list",
) -> None:
    """Print ``rows``: JSON (every key), CSV (``columns``) or a table (``table_columns``)."""
    if fmt == "json":
        click.echo(to_json([dict(r) for r in rows]))
    elif fmt == "csv":
        click.echo(to_csv(rows, columns), nl=False)
    elif not rows:
        click.echo(f"({empty})")
    else:
        click.echo(to_table(rows, table_columns or columns))


def progress(label: str) -> Callable[[int, int], None] | None:
    """A progress callback drawing a bar on a terminal; None (quiet) when stderr is not one."""
    if not sys.stderr.isatty():
        return None
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = click.progressbar(length=total, label=label, file=sys.stderr)
            bar.__enter__()
            state["bar"] = bar
            state["done"] = 0
        bar.update(done - state["done"])
        state["done"] = done
        if done >= total:
            bar.__exit__(None, None, None)
            state.pop("bar")

    return update


#: A row id on the command line: a positive 64-bit integer, so that an absurd value is a usage
#: error naming the argument instead of an overflow inside the database driver.
ROW_ID = click.IntRange(1, 2**31 - 1)  # the ids' column is a 32-bit integer on PostgreSQL
