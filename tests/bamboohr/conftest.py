"""Fixtures for the BambooHR connector: a running fake server, connectors pointed at it, the spec."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from coachbridge.connectors import ConnectorContext
from coachbridge.store import Database
from coachbridge_bamboohr import BambooHRConfig, BambooHRConnector

from tests.bamboohr.fake_bamboohr import FakeBambooHR

# BambooHR's own OpenAPI specification, kept in the repository (source and licence: spec/README.md).
SPEC = Path(__file__).resolve().parent / "spec" / "bamboohr-public-openapi.yaml"


def make_connector(
    base_url: str, api_key: str, name: str = "bamboo", **settings: object
) -> BambooHRConnector:
    """A connector with fast retries (tests never sleep for real)."""
    config = BambooHRConfig(
        plugin="bamboohr", company_domain="acme", api_key=api_key, base_url=base_url, **settings
    )
    connector = BambooHRConnector(config, ConnectorContext(name=name))
    connector.client.sleep = lambda seconds: None
    return connector


def seed(fake: FakeBambooHR) -> None:
    """Four people: a CEO, her report, his report (an inactive leaver) and a peer."""
    when = "2025-01-01T00:00:00+00:00"
    fake.add_employee(
        "1",
        when,
        firstName="Ada",
        lastName="Lovelace",
        workEmail="ada@acme.test",
        jobTitle="CEO",
        department="Exec",
        division="HQ",
        location="London",
        hireDate="2015-02-01",
        employeeNumber="E1",
        supervisorEId=None,
        supervisorId=None,
        supervisorEmail=None,
        terminationDate="0000-00-00",
        performanceRating="5",
    )
    fake.add_employee(
        "2",
        when,
        firstName="Charles",
        lastName="Babbage",
        preferredName="Charlie",
        workEmail="charles@acme.test",
        jobTitle="CTO",
        department="Eng",
        division="HQ",
        location="London",
        hireDate="2016-03-01",
        employeeNumber="E2",
        supervisorEId="1",
        supervisorId="E1",
        supervisorEmail="ada@acme.test",
        performanceRating="4",
    )
    fake.add_employee(
        "3",
        when,
        firstName="Grace",
        lastName="Hopper",
        workEmail="grace@acme.test",
        jobTitle="Engineer",
        department="Eng",
        division="HQ",
        location="NYC",
        hireDate="2018-04-01",
        employeeNumber="E3",
        supervisorEId="2",
        supervisorId="E2",
        supervisorEmail="charles@acme.test",
        status="Inactive",
        terminationDate="2024-12-31",
        performanceRating="3",
    )
    fake.add_employee(
        "4",
        when,
        firstName="Alan",
        lastName="Turing",
        workEmail="alan@acme.test",
        jobTitle="Engineer",
        department="Eng",
        division="HQ",
        location="NYC",
        hireDate="2019-05-01",
        employeeNumber="E4",
        supervisorEId="2",
        supervisorId="E2",
        supervisorEmail="charles@acme.test",
        performanceRating="2",
    )


@pytest.fixture
def fake() -> Iterator[FakeBambooHR]:
    server = FakeBambooHR()
    seed(server)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def spec_operations() -> dict[str, dict[str, list[str]]]:
    """``{path template: {method: [required query params]}}`` read from BambooHR's OpenAPI spec."""
    ops: dict[str, dict[str, list[str]]] = {}
    path = method = None
    param: dict[str, str] = {}

    def flush_param() -> None:
        if path and method and param.get("in") == "query" and param.get("required") == "true":
            ops[path][method].append(param["name"])

    in_paths = False
    for line in SPEC.read_text().splitlines():
        if line == "paths:":
            in_paths = True
            continue
        if in_paths and re.match(r"^\S", line):
            break
        if not in_paths:
            continue
        m = re.match(r"^  '?(/[^']+?)'?:\s*$", line)
        if m:
            flush_param()
            path, method, param = m.group(1), None, {}
            ops[path] = {}
            continue
        m = re.match(r"^    (get|post|put|delete|patch):\s*$", line)
        if m and path:
            flush_param()
            method, param = m.group(1).upper(), {}
            ops[path][method] = []
            continue
        m = re.match(r"^        -\s*$", line)
        if m:
            flush_param()
            param = {}
            continue
        m = re.match(r"^          (name|in|required): (\S+)", line)
        if m and method:
            param[m.group(1)] = m.group(2).strip("'")
    flush_param()
    return ops


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Database]:
    """For tests whose subject is the connector, not the store: SQLite only, to stay fast."""
    database = Database(sqlite_url)
    database.upgrade()
    yield database
    database.dispose()
