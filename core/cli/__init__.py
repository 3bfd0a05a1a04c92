"""The ``coachbridge`` command line.

Global options come before the subcommand. Exit status: 0 success; 2 usage, configuration or
input-data errors; 1 runtime failures. Expected errors print one clear line, never a traceback.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click
import requests
from coachbridge.cli.root import cli
from coachbridge.errors import CoachbridgeError, ConfigError
from sqlalchemy.exc import SQLAlchemyError

# Each module adds its commands to ``cli``; listed here so the order of --help is stable.
COMMAND_MODULES = (
    "coachbridge.cli.setup_cmds",
    "coachbridge.cli.connect_cmd",
    "coachbridge.cli.sync_cmd",
    "coachbridge.cli.people_cmd",
    "coachbridge.cli.reviews_cmd",
    "coachbridge.cli.programs_cmd",
    "coachbridge.cli.matching_cmd",
    "coachbridge.cli.offers_cmd",
    "coachbridge.cli.sessions_cmd",
    "coachbridge.cli.push_cmd",
    "coachbridge.cli.health_cmd",
    "coachbridge.cli.participants_cmd",
    "coachbridge.cli.demo_cmd",
)


for _module in COMMAND_MODULES:
    importlib.import_module(_module)


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the CLI and maps expected errors to exit codes without tracebacks."""
    try:
        cli.main(args=argv, prog_name="coachbridge", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except ConfigError as exc:
        for line in exc.problems:
            click.echo(f"error: {line}", err=True)
        return exc.exit_code
    except CoachbridgeError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except (SQLAlchemyError, requests.RequestException, OSError) as exc:
        # Failures outside the user's input that no part of the code anticipated: still one
        # line and exit 1 (the traceback is in the log with -vv).
        logging.getLogger("coachbridge").debug("unexpected failure", exc_info=True)
        first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
        click.echo(
            f"error: {type(exc).__name__}: {first[:300]} (run with -vv for details)", err=True
        )
        return 1
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
