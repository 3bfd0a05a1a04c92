"""``programs``: the programs configured in ``[[programs]]``."""

from __future__ import annotations

from coachbridge.cli import cli
from coachbridge.cli.app import App, pass_app
from coachbridge.cli.output import emit, format_option

PROGRAM_COLUMNS = (
    "id",
    "name",
    "kind",
    "start",
    "end",
    "duration_weeks",
    "cadence_days",
    "session_minutes",
    "sessions_planned",
    "capacity",
    "min_score",
    "owner",
)


@cli.command()
@format_option()
@pass_app
def programs(app: App, fmt: str) -> None:
    """List the configured programs."""
    rows = []
    for program in app.config.programs.values():
        data = program.model_dump(mode="json")
        data["sessions_planned"] = program.sessions_planned
        rows.append(data)
    emit(
        rows,
        fmt,
        PROGRAM_COLUMNS,
        table_columns=("id", "name", "kind", "start", "duration_weeks", "cadence_days", "capacity"),
        empty="no programs: add [[programs]] tables to the config",
    )
