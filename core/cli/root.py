"""The ``coachbridge`` command group and its global options; every command module adds to it,
and plugins add theirs through ``coachbridge_register_commands``."""

from __future__ import annotations

import logging
import sys

import click
from coachbridge import __version__
from coachbridge.app import App
from coachbridge.errors import ConfigError
from coachbridge.plugins import Registry

#: Where one invocation keeps its registry (``click.Context.meta`` of the root context).
REGISTRY = "coachbridge.registry"
_BROKEN = "coachbridge.registry-failed"


class CommandLine(click.Group):
    """The built-in commands and those the plugins register.

    The plugins are loaded once per invocation, when the subcommand is looked up (before the
    group's callback runs), and the invocation's ``App`` gets that same registry.
    """

    def registry(self, ctx: click.Context) -> Registry:
        root = ctx.find_root()
        registry = root.meta.get(REGISTRY)
        if registry is None:
            registry = Registry.build()
            for name, plugin in registry.command_plugins.items():
                if name in self.commands:
                    raise ConfigError(
                        f"plugin {plugin!r} registers the command {name!r}, "
                        "which coachbridge has built in"
                    )
            root.meta[REGISTRY] = registry
        return registry

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if ctx.find_root().meta.get(_BROKEN):  # --help after list_commands reported it
            return self.commands.get(cmd_name)
        plugin_commands = self.registry(ctx).commands
        return self.commands.get(cmd_name) or plugin_commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        try:
            plugin_commands = self.registry(ctx).commands
        except ConfigError as exc:
            # --help must still work with a broken plugin; every real command reports it.
            for line in exc.problems:
                click.echo(f"warning: {line}", err=True)
            ctx.find_root().meta[_BROKEN] = True
            plugin_commands = {}
        return sorted({*self.commands, *plugin_commands})


@click.group(
    cls=CommandLine,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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
    app = App(config_option=config_path, db_option=db_url, _registry=ctx.meta.get(REGISTRY))
    ctx.obj = app
    ctx.call_on_close(app.close)
