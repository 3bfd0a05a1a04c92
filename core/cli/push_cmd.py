"""``push``: write coachbridge's goals, held sessions and pairings back into an HRIS."""

from __future__ import annotations

import click
from coachbridge.cli.app import App, pass_app
from coachbridge.cli.output import emit, to_json
from coachbridge.cli.root import cli
from coachbridge.errors import ConnectorError, UserError
from coachbridge.hris.push import PushReport, run_push


def _summary(report: PushReport) -> str:
    verb = "would push" if report.dry_run else "pushed"
    counts = report.counts()
    if not counts:
        return f"{report.connector}: nothing to push"
    parts = []
    for kind, actions in counts.items():
        detail = ", ".join(f"{n} {action}" for action, n in sorted(actions.items()))
        parts.append(f"{kind}s: {detail}")
    return f"{report.connector}: {verb}: " + "; ".join(parts)


@cli.command()
@click.argument("connector")
@click.option("--dry-run", is_flag=True, help="Show what would be written; write nothing.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@pass_app
def push(app: App, connector: str, dry_run: bool, fmt: str) -> None:
    """Write goals, held sessions (and pairings, where the HRIS has a place) to CONNECTOR.

    Idempotent: records unchanged since the last push cost no request, an edited one updates
    the record written before. Private session notes are never written.
    """
    conn = app.connector(connector)
    if not conn.supports_push:
        raise UserError(f"connector {connector!r} (plugin {conn.config.plugin!r}) cannot push")
    db = app.database()
    failure: ConnectorError | None = None
    try:
        report = run_push(db, conn, dry_run=dry_run)
    except ConnectorError as exc:
        failure = exc
        report = getattr(exc, "push_report", None) or PushReport(connector, dry_run)
    if failure is not None and report.error is None:
        report.error = str(failure)
    if fmt == "json":
        click.echo(to_json(report.as_dict()))
    else:
        click.echo(_summary(report))
        rows = [
            {
                "kind": r.kind,
                "local_id": r.local_id,
                "action": r.action,
                "external_id": r.external_id or "",
                "message": r.message,
            }
            for r in report.results
            if r.action != "unchanged"
        ]
        if rows:
            emit(rows, "table", ["kind", "local_id", "action", "external_id", "message"])
    if failure is not None:
        raise failure
