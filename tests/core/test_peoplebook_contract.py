"""The test kit run against the example connector of docs/plugins.md."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import responses
from coachbridge.connectors import ConnectorContext
from coachbridge.testing import PeopleContract

from tests.core.peoplebook import PeoplebookConfig, PeoplebookConnector

URL = "https://acme.peoplebook.test"


class FakePeoplebook:
    """The fake HR API the kit drives: its clock ticks once per change."""

    remote = True

    def __init__(self) -> None:
        self.clock = 0
        self.people: dict[str, dict[str, Any]] = {}
        self.failing: int | None = None
        boss = self.add_person("Ada", "Lovelace", email="ada@acme.test")
        self.add_person("Alan", "Turing", email="alan@acme.test", manager_id=boss)

    def people_ids(self) -> set[str]:
        return set(self.people)

    def add_person(
        self,
        first_name: str,
        last_name: str,
        *,
        email: str | None = None,
        manager_id: str | None = None,
    ) -> str:
        self.clock += 1
        pid = str(100 + self.clock)
        self.people[pid] = {
            "id": pid,
            "first_name": first_name,
            "last_name": last_name,
            "email": email,
            "manager_id": manager_id,
            "updated_at": self.clock,
        }
        return pid

    def remove_person(self, external_id: str) -> None:
        self.clock += 1
        del self.people[external_id]

    def fail_next(self, status: int) -> None:
        self.failing = status

    def answer(self, request: Any) -> tuple[int, dict[str, str], str]:
        if self.failing:
            return self.failing, {}, ""
        query = parse_qs(urlparse(request.url).query)
        since = int(query["updated_since"][0]) if "updated_since" in query else -1
        people = [p for p in self.people.values() if p["updated_at"] > since]
        body = {"people": people, "now": str(self.clock)}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)


class TestPeoplebookContract(PeopleContract):
    streams = ("people",)

    @pytest.fixture
    def vendor(self) -> Iterator[FakePeoplebook]:
        fake = FakePeoplebook()
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.add_callback(responses.GET, f"{URL}/people", callback=fake.answer)
            yield fake

    @pytest.fixture
    def settings(self, vendor: FakePeoplebook) -> dict[str, Any]:
        return {"plugin": "peoplebook", "base_url": URL, "token": "pb-secret-token"}

    @pytest.fixture
    def make_connector(self) -> Callable[[dict[str, Any]], PeoplebookConnector]:
        def make(settings: dict[str, Any]) -> PeoplebookConnector:
            config = PeoplebookConfig.model_validate(settings)
            connector = PeoplebookConnector(config, ConnectorContext(name=self.name))
            connector.sleep = lambda seconds: None  # retries without real waiting
            return connector

        return make
