"""``init``, ``check`` and ``db``: setting coachbridge up and proving the set-up works."""

from __future__ import annotations

from pathlib import Path

import click
from coachbridge.cli.app import App, pass_app
from coachbridge.cli.root import cli
from coachbridge.config import DEFAULT_CONFIG_NAME
from coachbridge.connectors import CheckResult
from coachbridge.errors import ConfigError, ConnectorError, UserError
from coachbridge.matching.managers import manager_warnings
from coachbridge.matching.service import configured_program
from coachbridge.programs.guides import guide_pool_warnings
from coachbridge.programs.service import rule_warnings

EXAMPLE_CONFIG = """\
# coachbridge.toml: everything coachbridge does is configured here.
# Secrets never go in this file: write "${ENV_VAR}" and set the variable in the environment.

[database]
# SQLite file by default; PostgreSQL for production and several processes:
# url = "postgresql://coachbridge@db.internal/coachbridge"
url = "coachbridge.db"

# One table per HR system. The table name ("hr") is how coachbridge names this source:
# external ids are shown as hr:<id>, and `coachbridge sync hr` syncs it.
[connectors.hr]
plugin = "csv"
people = "people.csv"           # relative to this file
# reviews = "reviews.csv"
# max_deactivate = "10%"        # a sync that would deactivate more stops (use --force)
# [connectors.hr.columns]       # coachbridge field -> your file's header
# email = "Work Email"

# [connectors.bamboo]
# plugin = "bamboohr"
# company_domain = "acme"
# api_key = "${BAMBOOHR_API_KEY}"

[[programs]]
id = "mentoring"
name = "Mentoring"
kind = "mentoring"              # coaching | mentoring | peer | reverse | group | manager
duration_weeks = 24
cadence_days = 14
session_minutes = 45
capacity = 2                    # learners per guide
min_score = 0.2
[programs.learners]
level = [1, 3]
[programs.guides]
level = [4, 9]
[programs.weights]
skills = 0.4
seniority = 0.2
timezone = 0.2
department_diversity = 0.2

# [[rules]]
# on = "review.completed"
# when = [{ field = "rating", op = "<=", value = 0.4 }]
# then = { enroll = "mentoring", role = "learner", goal = "Plan after the {cycle} review" }

[notify.log]
"""


@cli.command()
@click.option(
    "--path",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Where to write (default: ./{DEFAULT_CONFIG_NAME}).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: Path | None, force: bool) -> None:
    """Write a commented example configuration file."""
    target = path or Path.cwd() / DEFAULT_CONFIG_NAME
    if target.exists() and not force:
        raise UserError(f"{target} exists; use --force to overwrite it")
    if not target.parent.is_dir():
        raise UserError(f"--path {target}: folder {target.parent} does not exist")
    try:
        target.write_text(EXAMPLE_CONFIG, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--path {target}: cannot write: {exc.strerror}") from None
    click.echo(f"wrote {target}; edit it, then run `coachbridge check`")


@cli.command()
@click.argument("connector", required=False)
@pass_app
def check(app: App, connector: str | None) -> None:
    """Validate the configuration and test each connector (or the one named)."""
    config = app.config
    click.echo(f"config: {config.label}: ok")
    db = app.database()
    click.echo(f"database: {db.safe_url}: ok (schema {db.current_revision()})")
    names = [connector] if connector else sorted(config.connectors)
    if connector:
        config.connector(connector)
    failed = 0
    for name in names:
        try:
            results: list[CheckResult] = app.connector(name).check()
        except ConnectorError as exc:
            click.echo(f"connector {name}: FAILED: {exc}")
            failed += 1
            continue
        ok = all(r.ok for r in results)
        failed += not ok
        click.echo(f"connector {name}: {'ok' if ok else 'FAILED'}")
        for r in results:
            click.echo(f"  {'ok  ' if r.ok else 'FAIL'} {r.message}")
    if not names:
        click.echo("no connectors configured")
    _check_programs(app)
    _check_rules(app)
    _check_managers(app)
    _check_guides(app)
    if failed:
        raise ConnectorError(f"{failed} connector(s) failed their check")


def _check_programs(app: App) -> None:
    """What loading the file cannot know: each program's weights against the criteria the
    installed plugins add (``match`` would refuse an unknown one)."""
    problems = []
    for program_id in app.config.programs:
        try:
            configured_program(app, program_id)
        except ConfigError as exc:
            problems.extend(f"{app.config.label}: {line}" for line in str(exc).splitlines())
    if problems:
        raise ConfigError(problems)
    click.echo(f"programs: {len(app.config.programs)} ok")


def _check_rules(app: App) -> None:
    config = app.config
    if not config.rules:
        return
    warnings = rule_warnings(app)
    click.echo(
        f"rules: {len(config.rules)} ok" + (f", {len(warnings)} warning(s)" if warnings else "")
    )
    for line in warnings:
        click.echo(f"  warn {line}")


def _check_managers(app: App) -> None:
    for line in manager_warnings(app):
        click.echo(f"  warn {line}")


def _check_guides(app: App) -> None:
    for line in guide_pool_warnings(app):
        click.echo(f"  warn {line}")


@cli.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Apply pending migrations (a new database is created at the latest version)."""
    database = app.database(check=False)
    before, after = database.upgrade()
    if before == after:
        click.echo(f"{database.safe_url}: already at the latest schema ({after})")
    else:
        click.echo(f"{database.safe_url}: upgraded {before or 'empty'} -> {after}")


@db.command("current")
@pass_app
def db_current(app: App) -> None:
    """Show the schema version of the database and of this coachbridge."""
    database = app.database(check=False)
    current, head = database.current_revision(), database.head_revision()
    state = "up to date" if current == head else "behind: run `coachbridge db upgrade`"
    click.echo(f"{database.safe_url}: schema {current or 'none'}, latest {head} ({state})")
