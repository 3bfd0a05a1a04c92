"""Program reports: outcome measures against a comparison group, as JSON and one HTML page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from coachbridge.domain.program import Program
from coachbridge.reports.data import load_company, load_program
from coachbridge.reports.measures import program_report
from sqlalchemy.orm import Session

__all__ = ["build_reports", "render_html"]


def build_reports(
    s: Session, programs: list[Program], *, min_group_size: int, now: datetime
) -> list[dict[str, Any]]:
    """One report dict per program, from a single read of the company's people and history."""
    company = load_company(s)
    return [
        program_report(company, load_program(s, p.id), p, min_group_size=min_group_size, now=now)
        for p in programs
    ]


def render_html(reports: list[dict[str, Any]], *, now: datetime, min_group_size: int) -> str:
    """See :func:`coachbridge.reports.html.render_html` (imported lazily: matplotlib is heavy)."""
    from coachbridge.reports.html import render_html as _render

    return _render(reports, now=now, min_group_size=min_group_size)
