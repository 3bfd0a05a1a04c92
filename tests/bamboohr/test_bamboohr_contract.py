"""The connector test kit (coachbridge.testing) run against the BambooHR connector."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest
from coachbridge.connectors import ConnectorContext
from coachbridge.testing import PeopleContract
from coachbridge_bamboohr import BambooHRConfig, BambooHRConnector

from tests.bamboohr.conftest import seed
from tests.bamboohr.fake_bamboohr import FakeBambooHR, now_iso


class BambooVendor:
    """The kit's handle on the fake BambooHR server."""

    remote = True

    def __init__(self, fake: FakeBambooHR) -> None:
        self.fake = fake
        self._next = 500

    def people_ids(self) -> set[str]:
        return set(self.fake.employees)

    def add_person(
        self,
        first_name: str,
        last_name: str,
        *,
        email: str | None = None,
        manager_id: str | None = None,
    ) -> str:
        self._next += 1
        emp = str(self._next)
        self.fake.add_employee(
            emp,
            now_iso(),
            firstName=first_name,
            lastName=last_name,
            workEmail=email,
            supervisorEId=manager_id,
            performanceRating="3",
        )
        return emp

    def remove_person(self, external_id: str) -> None:
        del self.fake.employees[external_id]
        self.fake.changes[external_id] = ("Deleted", now_iso())

    def add_training(self, external_id: str, training: str, completed_at: date) -> None:
        self.fake.add_training(external_id, training, completed_at.isoformat())

    def fail_next(self, status: int) -> None:
        self.fake.throttle = [(status, None)] * 50


class TestBambooHRContract(PeopleContract):
    streams = ("people", "reviews", "trainings")

    @pytest.fixture
    def vendor(self) -> Iterator[BambooVendor]:
        server = FakeBambooHR()
        seed(server)
        server.start()
        try:
            yield BambooVendor(server)
        finally:
            server.stop()

    @pytest.fixture
    def settings(self, vendor: BambooVendor) -> dict[str, Any]:
        return {
            "plugin": "bamboohr",
            "company_domain": "acme",
            "api_key": vendor.fake.api_key,
            "base_url": vendor.fake.host_url,
            "webhook_secret": "whsec-kit-secret",
            "rating_field": "performanceRating",
        }

    @pytest.fixture
    def make_connector(self) -> Callable[[dict[str, Any]], BambooHRConnector]:
        def make(settings: dict[str, Any]) -> BambooHRConnector:
            config = BambooHRConfig.model_validate(settings)
            connector = BambooHRConnector(config, ConnectorContext(name=self.name))
            connector.client.sleep = lambda seconds: None  # retries without real waiting
            return connector

        return make
