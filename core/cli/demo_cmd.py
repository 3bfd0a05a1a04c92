"""``demo``: the whole loop on the bundled sample company."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click
from coachbridge.cli.app import App, pass_app
from coachbridge.cli.root import cli
from coachbridge.store.db import normalize_url


@cli.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-output"),
    show_default=True,
    help="Where the calendar files and the report go.",
)
@pass_app
def demo(app: App, out: Path) -> None:
    """Run a year of the sample company through coachbridge and print what happened.

    Uses a throwaway SQLite database unless the global --db names one (then you can explore
    the result afterwards, e.g. `coachbridge --db demo.db pairings`).
    """
    from coachbridge.demo.story import Demo

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="coachbridge-demo-") as tmp:
        work = Path(tmp)
        db_url = normalize_url(app.db_option) if app.db_option else f"sqlite:///{work / 'demo.db'}"
        result = Demo(work, out, db_url, app.registry).run()
    for line in result.lines:
        click.echo(line)
