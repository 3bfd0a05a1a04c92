"""Which failures the BambooHR client repeats, and how a cut-off answer is reported.

A read may be repeated after any transient fault. A write (POST) is repeated only after 429/503,
where BambooHR did not process it: a 502/504 or a cut-off answer can come after the goal or
training record was created, and repeating it would create a second one.
"""

from __future__ import annotations

import pytest
import responses
from coachbridge.errors import ConnectorError
from coachbridge.hris.push import run_push
from coachbridge.store import Database
from coachbridge.store.tables import ExternalRefRow
from sqlalchemy import select

from tests.bamboohr.conftest import make_connector
from tests.bamboohr.cutoff_server import CutOffServer
from tests.bamboohr.fake_bamboohr import FakeBambooHR
from tests.bamboohr.test_bamboohr_push import setup_program

KEY = "c0ffee" * 6 + "beef"
HOST = "https://acme.bamboohr.com"
GOALS = f"{HOST}/api/v1/performance/employees/4/goals"
CHANGED = f"{HOST}/api/v1/employees/changed"


def test_cut_off_read_is_retried_then_one_clear_error() -> None:
    with CutOffServer() as server:
        connector = make_connector(server.url, KEY, max_retries=2)
        with pytest.raises(ConnectorError) as info:
            connector.read_people(None, full=True)
    message = str(info.value)
    assert message.startswith("connector bamboo: BambooHR POST v1/reports/custom: the answer from ")
    assert "was cut off or garbled (ChunkedEncodingError)" in message
    assert "\n" not in message and KEY not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert len(server.requests) == 3  # the report is a read: first try and two retries


def test_cut_off_write_is_not_repeated() -> None:
    with CutOffServer(status=201, body=b'{"goal": {"id": "1') as server:
        connector = make_connector(server.url, KEY, max_retries=3)
        with pytest.raises(ConnectorError, match="may or may not have applied it"):
            connector.client.request("POST", "v1/performance/employees/4/goals", json_body={})
    assert server.requests == ["POST /api/v1/performance/employees/4/goals"]


def test_client_names_the_connector_when_told() -> None:
    with CutOffServer() as server:
        connector = make_connector(server.url, KEY, max_retries=0)
        connector.client.connector = "bamboo"
        with pytest.raises(ConnectorError, match=r"^connector bamboo: BambooHR GET v1/meta"):
            connector.client.request("GET", "v1/meta/fields")


def test_cli_sync_and_check_report_a_cut_off_answer_in_one_line(
    sqlite_url: str,
    run_cli,  # type: ignore[no-untyped-def]
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    with CutOffServer() as server:
        config = tmp_path / "coachbridge.toml"
        config.write_text(
            "[connectors.bamboo]\n"
            'plugin = "bamboohr"\n'
            'company_domain = "acme"\n'
            'api_key = "${BAMBOO_KEY}"\n'
            f'base_url = "{server.url}"\n'
            "max_retries = 0\n"
        )
        env = {"BAMBOO_KEY": KEY}
        for command in (["sync", "bamboo"], ["check"]):
            result = run_cli("--config", str(config), "--db", sqlite_url, *command, env=env)
            assert result.exit_code == 1, result.output
            assert "cut off or garbled (ChunkedEncodingError)" in result.output
            assert "Traceback" not in result.output and KEY not in result.output


@pytest.mark.parametrize("status", [500, 502, 504])
@responses.activate
def test_write_is_not_repeated_after_a_gateway_or_server_error(status: int) -> None:
    responses.post(GOALS, status=status, headers={"X-BambooHR-Error-Message": "Upstream"})
    responses.post(GOALS, status=201, json={"goal": {"id": "9"}})
    connector = make_connector(HOST, KEY, max_retries=3)
    with pytest.raises(ConnectorError) as info:
        connector.client.request("POST", "v1/performance/employees/4/goals", json_body={})
    assert len(responses.calls) == 1
    assert f"({status})" in str(info.value) and "Upstream" in str(info.value)
    if status != 500:
        assert "not repeated, because BambooHR may have applied it" in str(info.value)


@pytest.mark.parametrize("status", [429, 503])
@responses.activate
def test_write_is_repeated_after_throttling(status: int) -> None:
    responses.post(GOALS, status=status, headers={"Retry-After": "1"})
    responses.post(GOALS, status=201, json={"goal": {"id": "9"}})
    connector = make_connector(HOST, KEY, max_retries=3)
    answer = connector.client.request("POST", "v1/performance/employees/4/goals", json_body={})
    assert answer == {"goal": {"id": "9"}} and len(responses.calls) == 2


@pytest.mark.parametrize("status", [502, 504])
@responses.activate
def test_read_keeps_the_broad_retry(status: int) -> None:
    responses.get(CHANGED, status=status)
    responses.get(CHANGED, json={"latest": None, "employees": {}})
    connector = make_connector(HOST, KEY, max_retries=3)
    assert connector.client.request("GET", "v1/employees/changed") == {
        "latest": None,
        "employees": {},
    }
    assert len(responses.calls) == 2


def test_push_after_a_lost_answer_creates_no_duplicate_goal(
    fake: FakeBambooHR, sqlite_db: Database
) -> None:
    setup_program(fake, sqlite_db)
    fake.lost_answers = [502]  # BambooHR creates the goal; the gateway answers 502
    with pytest.raises(ConnectorError, match="may have applied it"):
        run_push(sqlite_db, make_connector(fake.host_url, fake.api_key, max_retries=3))
    assert len(fake.goals) == 1
    assert len(fake.calls("/api/v1/performance/employees/{employeeId}/goals", "POST")) == 1
    with sqlite_db.transaction() as s:
        assert list(s.scalars(select(ExternalRefRow))) == []
