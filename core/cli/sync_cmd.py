"""``sync``: bring people, reviews and goals from an HRIS into the store."""

from __future__ import annotations

import click
from coachbridge.cli.app import App, pass_app
from coachbridge.cli.output import progress, to_json
from coachbridge.cli.root import cli
from coachbridge.errors import SyncAborted, UserError
from coachbridge.hris.sync import Syncer, SyncReport


def _print_report(report: SyncReport, fmt: str, verbose_changes: bool) -> None:
    if fmt == "json":
        data = report.as_dict()
        if verbose_changes:
            data["details"] = {
                kind: [
                    {"external_id": c.external_id, "name": c.name, "fields": sorted(c.fields)}
                    for c in getattr(report, kind)
                ]
                for kind in ("new", "changed", "leaving", "reactivated")
            }
        click.echo(to_json(data))
        return
    verb = "would change" if report.dry_run else "synced"
    click.echo(
        f"{report.connector}: {verb}: {len(report.new)} new, {len(report.changed)} changed, "
        f"{len(report.leaving)} leaving, {len(report.reactivated)} returning, {report.unchanged} unchanged"
        + (f"; {report.reviews_new} new review events" if report.reviews_new else "")
        + (f"; {report.reviews_corrected} corrected" if report.reviews_corrected else "")
        + (f"; {report.goals_new} new goals" if report.goals_new else "")
        + (f"; {report.trainings_new} new trainings" if report.trainings_new else "")
    )
    if verbose_changes:
        for kind in ("new", "changed", "leaving", "reactivated"):
            for change in getattr(report, kind):
                fields = ", ".join(sorted(change.fields)) if kind == "changed" else ""
                click.echo(
                    f"  {kind:<11} {change.external_id:<12} {change.name}"
                    + (f" ({fields})" if fields else "")
                )
    if report.pairings_ended or report.sessions_cancelled:
        click.echo(
            f"  leavers: {report.pairings_ended} pairings ended, {report.sessions_cancelled} sessions cancelled"
        )
    if report.manager_pairings_ended or report.manager_pairings_started:
        click.echo(
            f"  managers changed: {report.manager_pairings_ended} manager pairings ended, "
            f"{report.manager_pairings_started} started with the new manager, "
            f"{report.manager_sessions_cancelled} sessions cancelled"
        )
    if report.pairings_flagged:
        click.echo(
            f"  {report.pairings_flagged} pairings flagged for HR: guide now in the learner's reporting chain"
        )
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)


@cli.command()
@click.argument("connector", required=False)
@click.option("--full", is_flag=True, help="Read everything, not just changes since the last sync.")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--force", is_flag=True, help="Allow more deactivations than max_deactivate.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@pass_app
def sync(app: App, connector: str | None, full: bool, dry_run: bool, force: bool, fmt: str) -> None:
    """Sync people (and reviews, goals) from one connector, or from all of them in turn."""
    names = [connector] if connector else sorted(app.config.connectors)
    if not names:
        raise UserError("no connectors configured: add a [connectors.<name>] table to the config")
    for name in names:
        app.config.connector(name)
    db = app.database()
    for name in names:
        syncer = Syncer(
            db,
            app.connector(name),
            progress=progress(f"syncing {name}"),
            programs=app.config.programs,
            registry=app.registry,
        )
        report = syncer.run(full=full, dry_run=dry_run, force=force)
        if not dry_run:
            from coachbridge.programs.automation import announce_pairings, process_review_events

            announce_pairings(app, report.manager_pairing_ids)
            # Also retries events that waited for a person this sync may have just brought.
            process_review_events(app, report.reviews_for_rules)
        _print_report(report, fmt, verbose_changes=dry_run)
        if report.blocked:  # the dry run showed who would leave; a real run would refuse
            raise SyncAborted(report.blocked)
