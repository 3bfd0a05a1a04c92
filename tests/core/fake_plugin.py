"""An in-test plugin with a fake connector, a command and a scheduled job, registered the way a
third-party plugin would be."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import click
from coachbridge import hookimpl
from coachbridge.app import App
from coachbridge.cli.app import pass_app
from coachbridge.config import Config
from coachbridge.connectors import (
    CheckResult,
    Connector,
    ConnectorConfig,
    PeopleBatch,
    SyncContext,
)
from coachbridge.domain import PersonRecord
from coachbridge.errors import ConnectorError
from coachbridge.schedules import Job
from pydantic import SecretStr

PEOPLE: list[dict[str, Any]] = [
    {
        "external_id": "1",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "level": 7,
    },
    {
        "external_id": "2",
        "first_name": "Alan",
        "last_name": "Turing",
        "email": "alan@example.com",
        "manager_external_id": "1",
        "level": 4,
    },
    {
        "external_id": "3",
        "first_name": "Grace",
        "last_name": "Hopper",
        "email": "grace@example.com",
        "manager_external_id": "1",
        "level": 3,
    },
]


class FakeConfig(ConnectorConfig):
    token: SecretStr
    fail_check: bool = False


class FakeConnector(Connector):
    config_model = FakeConfig
    people: list[dict[str, Any]] = PEOPLE

    def check(self) -> list[CheckResult]:
        assert isinstance(self.config, FakeConfig)
        if self.config.fail_check:
            raise ConnectorError(f"connector {self.name}: the fake says no")
        return [CheckResult(True, "fake API reachable")]

    def read_people(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> PeopleBatch:
        records = [PersonRecord(**p) for p in type(self).people]
        return PeopleBatch(records=records, full=True, cursor="c1")


@hookimpl
def coachbridge_register_connectors(register: Callable[[str, type[Connector]], None]) -> None:
    register("fake", FakeConnector)


@click.command("fake-count")
@click.option("--shout", is_flag=True)
@pass_app
def fake_count(app: App, shout: bool) -> None:
    """Count the configured connectors (a third-party command)."""
    text = f"{len(app.config.connectors)} connector(s) configured"
    click.echo(text.upper() if shout else text)


@hookimpl
def coachbridge_register_commands(register: Callable[[click.Command], None]) -> None:
    register(fake_count)


#: What the job saw: (connector names of the context's config, now).
JOB_RUNS: list[tuple[list[str], datetime]] = []


def fake_job(ctx: Any, now: datetime) -> None:
    JOB_RUNS.append((sorted(ctx.config.connectors), now))


@hookimpl
def coachbridge_register_jobs(register: Callable[[Job], None], config: Config) -> None:
    if config.connectors:  # the configuration decides what to schedule
        register(Job("fake:tidy", fake_job, every=timedelta(hours=6)))


class BadPlugin:
    """A plugin implementing a hook that does not exist: must be rejected."""

    @hookimpl
    def coachbridge_no_such_hook(self) -> None:
        """Nothing."""
