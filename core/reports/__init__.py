"""Program reports: outcome measures against a comparison group, as JSON and one HTML page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from coachbridge.context import Context
from coachbridge.domain.program import Program
from coachbridge.errors import NotFoundError
from coachbridge.reports.data import load_company, load_program
from coachbridge.reports.measures import program_report
from coachbridge.reports.topics import intake_summary
from sqlalchemy.orm import Session

__all__ = ["build_reports", "culture_view", "program_reports", "render_html"]


def build_reports(
    s: Session, programs: list[Program], *, min_group_size: int, now: datetime
) -> list[dict[str, Any]]:
    """One report dict per program, from a single read of the company's people and history."""
    company = load_company(s)
    reports = []
    for p in programs:
        report = program_report(
            company, load_program(s, p.id), p, min_group_size=min_group_size, now=now
        )
        # The intake questionnaire's answers: counts only, suppressed like every figure.
        intake = intake_summary(s, p, min_group_size=min_group_size)
        if intake is not None:
            report["intake"] = intake
        reports.append(report)
    return reports


def program_reports(
    ctx: Context, program_id: str | None = None, *, now: datetime
) -> list[dict[str, Any]]:
    """The report of one program, else of every configured program (aggregates only)."""
    if program_id is not None:
        programs = [ctx.config.program(program_id)]
    else:
        programs = list(ctx.config.programs.values())
        if not programs:
            raise NotFoundError("no programs are configured: add [[programs]] to the config")
    with ctx.database().transaction() as s:
        return build_reports(s, programs, min_group_size=ctx.config.reports.min_group_size, now=now)


def culture_view(ctx: Context, *, now: datetime) -> dict[str, Any]:
    """The coaching-culture view across every configured program (``report --culture``)."""
    from coachbridge.reports.culture import culture_report

    programs = list(ctx.config.programs.values())
    if not programs:
        raise NotFoundError("no programs are configured: add [[programs]] to the config")
    with ctx.database().transaction() as s:
        return culture_report(
            s, programs, min_group_size=ctx.config.reports.min_group_size, now=now
        )


def render_html(reports: list[dict[str, Any]], *, now: datetime, min_group_size: int) -> str:
    """See :func:`coachbridge.reports.html.render_html` (imported lazily: matplotlib is heavy)."""
    from coachbridge.reports.html import render_html as _render

    return _render(reports, now=now, min_group_size=min_group_size)
