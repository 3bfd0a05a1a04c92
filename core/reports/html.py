"""The self-contained HTML report: one file, inline CSS and SVG, nothing loaded from elsewhere."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import coachbridge.reports.charts as charts
from jinja2 import Environment, PackageLoader, select_autoescape


def _charts(report: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for svg, caption in (
        (charts.funnel(report["funnel"]), "Participation funnel (learners)"),
        (charts.sessions_over_time(report["sessions_over_time"]), "Sessions held per month"),
        (charts.rating_distribution(report["rating_distribution"]), "Session ratings, 1 to 5"),
        (
            charts.retention_curves(report["retention_curves"]),
            "12-month retention (Kaplan-Meier, 95% bands): participants and comparison group",
        ),
        (
            charts.comparison_points(
                {"rating change": report["rating_change"], "promoted": report["promotions"]}
            ),
            "Rating change and promotion rate with 95% intervals",
        ),
    ):
        if svg is not None:
            out.append({"svg": svg, "caption": caption})
    return out


def render_html(reports: list[dict[str, Any]], *, now: datetime, min_group_size: int) -> str:
    """The report page for ``reports`` (one per program)."""
    env = Environment(
        loader=PackageLoader("coachbridge.reports", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = env.get_template("report.html")
    title = (
        f"{reports[0]['name']}: program report"
        if len(reports) == 1
        else "coachbridge: program reports"
    )
    view = [dict(r, charts=_charts(r)) for r in reports]
    return template.render(
        title=title,
        reports=view,
        generated=now.strftime("%Y-%m-%d %H:%M UTC"),
        min_group_size=min_group_size,
    )
