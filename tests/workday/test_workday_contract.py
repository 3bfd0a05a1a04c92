"""The connector test kit (coachbridge.testing) run against the Workday connector."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from coachbridge.connectors import ConnectorContext
from coachbridge.testing import PeopleContract
from coachbridge_workday.config import WorkdayConfig
from coachbridge_workday.connector import WorkdayConnector

from tests.workday.fake_workday import FakeReview, FakeWorkday, FakeWorker, make_workers


class WorkdayVendor:
    """The kit's handle on the fake Workday tenant."""

    remote = True

    def __init__(self, fake: FakeWorkday) -> None:
        self.fake = fake
        self._next = 900

    def people_ids(self) -> set[str]:
        return set(self.fake.workers)

    def add_person(
        self,
        first_name: str,
        last_name: str,
        *,
        email: str | None = None,
        manager_id: str | None = None,
    ) -> str:
        self._next += 1
        employee_id = f"E{self._next:06d}"
        self.fake.workers[employee_id] = FakeWorker(
            employee_id=employee_id,
            wid=f"{self._next:032x}",
            first=first_name,
            last=last_name,
            email=email,
            title=None,
            location=None,
            timezone=None,
            manager_id=manager_id,
            hire_date=date(2025, 1, 6),
            level=None,
            updated=datetime.now(UTC),
        )
        self.fake.changed()
        # Workday's "updated since" prompt has millisecond precision: let the clock pass the
        # change before the next read starts, as it would between two real syncs.
        time.sleep(0.005)
        return employee_id

    def remove_person(self, external_id: str) -> None:
        del self.fake.workers[external_id]
        self.fake.changed()

    def fail_next(self, status: int) -> None:
        self.fake.failures = [(".", status)] * 50


class TestWorkdayContract(PeopleContract):
    streams = ("people", "reviews")

    @pytest.fixture
    def vendor(self) -> Iterator[WorkdayVendor]:
        server = FakeWorkday(make_workers(12)).start()
        server.reviews.append(FakeReview("E000003", "R-1", "2025", "4", "2025-06-30"))
        try:
            yield WorkdayVendor(server)
        finally:
            server.stop()

    @pytest.fixture
    def settings(self, vendor: WorkdayVendor) -> dict[str, Any]:
        return {
            "plugin": "workday",
            "base_url": vendor.fake.url,
            "tenant": "acme",
            "client_id": "cb-client",
            "client_secret": "s3cret-client",
            "refresh_token": "refresh-abc",
            "people_report": "isu_coaching/Coaching_Workers",
            "reviews_report": "isu_coaching/Coaching_Reviews",
            "updated_since_prompt": "Updated_From",
            "retry_backoff": 0,
        }

    @pytest.fixture
    def make_connector(self) -> Callable[[dict[str, Any]], WorkdayConnector]:
        def make(settings: dict[str, Any]) -> WorkdayConnector:
            config = WorkdayConfig.model_validate(settings)
            return WorkdayConnector(config, ConnectorContext(name=self.name))

        return make
