"""An in-test plugin with a fake connector, registered the way a third-party plugin would be."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coachbridge import hookimpl
from coachbridge.connectors import (
    CheckResult,
    Connector,
    ConnectorConfig,
    PeopleBatch,
    SyncContext,
)
from coachbridge.domain import PersonRecord
from coachbridge.errors import ConnectorError
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


class BadPlugin:
    """A plugin implementing a hook that does not exist: must be rejected."""

    @hookimpl
    def coachbridge_no_such_hook(self) -> None:
        """Nothing."""
