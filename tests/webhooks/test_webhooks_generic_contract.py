"""The connector test kit (coachbridge.testing) run against the generic (webhook) connector.

It declares no stream: events reach it only by webhook. So it takes the checks every connector
takes (config, secrets, what a sync reads), and the people checks do not apply by declaration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from coachbridge.connectors import ConnectorContext
from coachbridge.testing import ConnectorContract
from coachbridge_webhooks.generic import GenericConfig, GenericConnector

from tests.webhooks.conftest import SECRET


class TestGenericContract(ConnectorContract):
    streams = ()

    @pytest.fixture
    def settings(self) -> dict[str, Any]:
        return {"plugin": "generic", "secret": SECRET, "people_from": "bamboohr"}

    @pytest.fixture
    def make_connector(self) -> Callable[[dict[str, Any]], GenericConnector]:
        def make(settings: dict[str, Any]) -> GenericConnector:
            config = GenericConfig.model_validate(settings)
            return GenericConnector(config, ConnectorContext(name=self.name))

        return make
