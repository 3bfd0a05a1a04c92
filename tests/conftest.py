"""Shared fixtures: isolated working directory, SQLite and real PostgreSQL databases, a CLI runner.

PostgreSQL tests use ``COACHBRIDGE_TEST_PG_URL`` (default: the local server of this machine).
Before any test runs, an unreachable PostgreSQL server or a chromium that cannot start fails the
whole run with one line naming it, unless ``COACHBRIDGE_TEST_SKIP`` opts out of that part
(``postgresql``, ``browser``); only then are those tests skipped (see tests/prerequisites.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from coachbridge.store import Database
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.prerequisites import SKIP_VAR, failure_line, missing, opted_out, pg_admin_url


def _opted_out() -> frozenset[str]:
    try:
        return opted_out(os.environ.get(SKIP_VAR))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_sessionstart(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller checked before starting it
    problems = missing(_opted_out())
    if problems:
        pytest.exit(failure_line(problems), returncode=1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Opted-out parts are skipped, with the reason naming the opt-out."""
    skip = _opted_out()
    for item in items:
        if "pg_server" in getattr(item, "fixturenames", ()) and not item.get_closest_marker(
            "postgres"
        ):
            item.add_marker(pytest.mark.postgres)
        for part, marker in (("postgresql", "postgres"), ("browser", "browser")):
            if part in skip and item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=f"opted out: {SKIP_VAR} names {part}"))


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for var in (
        "COACHBRIDGE_CONFIG",
        "COACHBRIDGE_DATABASE_URL",
        "COACHBRIDGE_PLUGINS",
        "COACHBRIDGE_DISABLE_PLUGINS",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A fresh PostgreSQL database for this test process; yields its URL."""
    admin = create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    name = f"cb_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_admin_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _reset_pg(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def pg_url(pg_server: str) -> str:
    _reset_pg(pg_server)
    return pg_server


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Parametrised: the same test against SQLite and the real PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.upgrade()
    yield database
    database.dispose()


class Cli:
    """Runs the real ``coachbridge`` entry point in-process and returns (exit code, stdout, stderr)."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        from coachbridge.cli import main

        def entry() -> None:
            raise SystemExit(main(list(args)))

        import click

        command = click.Command("coachbridge", callback=entry)
        return self.runner.invoke(command, [], input=input, env=env, catch_exceptions=False)


@pytest.fixture
def run_cli() -> Cli:
    return Cli()
