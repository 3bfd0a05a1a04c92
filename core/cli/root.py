"""The ``coachbridge`` command group and its global options; every command module adds to it."""

from __future__ import annotations

import logging
import sys

import click
from coachbridge import __version__
from coachbridge.app import App


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Config file (default: $COACHBRIDGE_CONFIG, else ./coachbridge.toml if present).",
)
@click.option(
    "--db",
    "db_url",
    metavar="URL",
    help="SQLAlchemy URL or SQLite file path (default: [database] url, "
    "$COACHBRIDGE_DATABASE_URL, else ./coachbridge.db).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(__version__, prog_name="coachbridge")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, db_url: str | None, verbose: int) -> None:
    """coachbridge: coaching and mentoring programs inside the HR system you already run."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    app = App(config_option=config_path, db_option=db_url)
    ctx.obj = app
    ctx.call_on_close(app.close)
