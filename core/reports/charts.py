"""Charts as inline SVG, drawn with matplotlib's SVG backend (no pyplot, no display, no files).

Text is drawn as paths, so the page needs no font; every chart has a title and a description
for screen readers. Suppressed figures are left out of a chart, never drawn as zero.
"""

from __future__ import annotations

import io
import re
from typing import Any

import matplotlib

matplotlib.use("svg")  # never a GUI backend, even where a display exists

from coachbridge.reports.suppress import is_suppressed
from matplotlib import rc_context
from matplotlib.figure import Figure

PARTICIPANTS = "#1f5fa8"
COMPARISON = "#c0561e"
_XML_PROLOGUE = re.compile(r"^.*?(<svg\b)", re.S)


def _svg(fig: Figure, salt: str, title: str) -> str:
    buf = io.StringIO()
    with rc_context({"svg.hashsalt": salt, "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = _XML_PROLOGUE.sub(r"\1", buf.getvalue(), count=1)
    # Scale with the page; keep the aspect ratio from the viewBox.
    text = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", text, count=1)
    label = title.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    return text.replace("<svg", f'<svg role="img" aria-label="{label}"', 1)


def _figure() -> Figure:
    fig = Figure(figsize=(6.4, 3.2), dpi=72)
    return fig


def funnel(counts: dict[str, Any]) -> str | None:
    """Horizontal bars: enrolled, matched, first session, active, completed."""
    items = [(k.replace("_", " "), v) for k, v in counts.items() if not is_suppressed(v)]
    if not items:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    labels = [k for k, _ in items][::-1]
    values = [v for _, v in items][::-1]
    ax.barh(labels, values, color=PARTICIPANTS)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v}", va="center", fontsize=9)
    ax.set_xlabel("people")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig, "funnel", "Participation funnel")


def sessions_over_time(rows: list[dict[str, Any]]) -> str | None:
    """Held sessions per month."""
    items = [(r["month"], r["held"]) for r in rows if not is_suppressed(r["held"])]
    if not items:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    ax.bar([m for m, _ in items], [v for _, v in items], color=PARTICIPANTS)
    ax.set_ylabel("sessions held")
    step = max(1, len(items) // 12)
    ax.set_xticks(range(0, len(items), step), [items[i][0] for i in range(0, len(items), step)])
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig, "sessions", "Sessions held per month")


def rating_distribution(dist: dict[str, Any]) -> str | None:
    """Counts of ratings 1 to 5 (suppressed buckets left out)."""
    items = [(k, v) for k, v in dist.items() if not is_suppressed(v)]
    if not items or not any(v for _, v in items):
        return None
    fig = _figure()
    ax = fig.add_subplot()
    ax.bar([k for k, _ in items], [v for _, v in items], color=PARTICIPANTS)
    ax.set_xlabel("rating (1-5)")
    ax.set_ylabel("ratings")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig, "ratings", "Rating distribution")


def retention_curves(curves: dict[str, Any]) -> str | None:
    """Kaplan-Meier curves with 95% bands, participants against the comparison group."""
    drawn = False
    fig = _figure()
    ax = fig.add_subplot()
    for name, color in (("participants", PARTICIPANTS), ("comparison", COMPARISON)):
        c = curves.get(name)
        if not c or is_suppressed(c):
            continue
        drawn = True
        ax.step(c["days"], c["survival"], where="post", color=color, label=f"{name} (n={c['n']})")
        ax.fill_between(c["days"], c["low"], c["high"], step="post", color=color, alpha=0.15)
    if not drawn:
        return None
    ax.set_xlim(0, 365)
    ax.set_ylim(max(0.0, ax.get_ylim()[0]), 1.01)
    ax.set_xlabel("days since the index date")
    ax.set_ylabel("still employed")
    ax.legend(loc="lower left", fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig, "retention", "Retention over 12 months (Kaplan-Meier)")


def comparison_points(results: dict[str, dict[str, Any]]) -> str | None:
    """Point estimates with 95% intervals for each result, participants beside comparison."""
    rows = []
    for label, result in results.items():
        for name, color in (("participants", PARTICIPANTS), ("comparison", COMPARISON)):
            side = result.get(name) or {}
            if is_suppressed(side) or side.get("value") is None:
                continue
            rows.append((f"{label}\n{name}", side["value"], side.get("ci"), color))
    if not rows:
        return None
    fig = Figure(figsize=(6.4, 0.5 * len(rows) + 0.8), dpi=72)
    ax = fig.add_subplot()
    for y, (_label, value, ci, color) in enumerate(rows):
        if ci:
            ax.errorbar(
                value, y, xerr=[[value - ci[0]], [ci[1] - value]], fmt="o", color=color, capsize=4
            )
        else:
            ax.plot(value, y, "o", color=color)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="#888", linewidth=0.5)
    ax.set_xlabel("value with 95% confidence interval")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig, "results", "Results: participants against the comparison group")
