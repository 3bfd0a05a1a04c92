"""Which failures the Workday client repeats, and how a cut-off answer is reported.

Reads (and the token request) are repeated after 429, any 5xx, a dropped connection or a cut-off
body. Writes (creating/editing a mentorship or check-in) only after 429/503 or a connection that
never opened: anything else may come after Workday applied the write.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import responses
from coachbridge.errors import ConnectorError
from coachbridge_workday.client import WorkdayClient
from coachbridge_workday.config import WorkdayConfig

from tests.bamboohr.cutoff_server import CutOffServer
from tests.workday.conftest import SECRETS, connector_for
from tests.workday.fake_workday import FakeWorkday
from tests.workday.test_workday_push import _pairing, _session

MENTORSHIPS = r"createMentorshipForWorker"


def _basic_client(url: str, max_retries: int = 2) -> WorkdayClient:
    """A RaaS-style client (HTTP Basic, no token request) with no real sleeping."""
    config = WorkdayConfig.model_validate(
        {
            "plugin": "workday",
            "base_url": url,
            "tenant": "acme",
            "username": "isu_coaching",
            "password": "isu-pass-XYZ",
            "people_report": "isu_coaching/Coaching_Workers",
            "max_retries": max_retries,
            "retry_backoff": 0,
        }
    )
    return WorkdayClient(config, "wd", sleep=lambda seconds: None)


def test_cut_off_read_is_retried_then_one_clear_error() -> None:
    with CutOffServer() as server:
        client = _basic_client(server.url, max_retries=2)
        with pytest.raises(ConnectorError) as info:
            client.request("GET", f"{server.url}/ccx/service/customreport2/acme/x", what="x")
    message = str(info.value)
    assert message.startswith("connector wd: Workday's answer to GET /ccx/service/")
    assert "cut off or garbled (ChunkedEncodingError); nothing was changed" in message
    assert "\n" not in message and "isu-pass-XYZ" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert len(server.requests) == 3


def test_cut_off_write_is_not_repeated() -> None:
    with CutOffServer(status=201, body=b'{"id": "ab') as server:
        client = _basic_client(server.url, max_retries=3)
        with pytest.raises(ConnectorError, match="may have applied it"):
            client.request("POST", f"{server.url}/ccx/api/x", what="creating", json={})
    assert server.requests == ["POST /ccx/api/x"]


def test_dropped_answer_to_a_write_is_not_repeated_but_a_read_is() -> None:
    with CutOffServer(hang_up=True) as server:
        client = _basic_client(server.url, max_retries=2)
        with pytest.raises(ConnectorError, match=r"cannot reach Workday.*may have applied it"):
            client.request("POST", f"{server.url}/ccx/api/x", what="creating", json={})
        assert len(server.requests) == 1
        with pytest.raises(ConnectorError, match="cannot reach Workday"):
            client.request("GET", f"{server.url}/ccx/api/x", what="reading")
        assert len(server.requests) == 4


def test_write_to_a_closed_port_is_retried_because_nothing_was_sent() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    client = _basic_client(f"http://127.0.0.1:{port}", max_retries=2)
    with pytest.raises(ConnectorError, match="cannot reach Workday") as info:
        client.request("POST", f"http://127.0.0.1:{port}/ccx/api/x", what="creating", json={})
    assert client.requests_made == 3 and "may have applied" not in str(info.value)


def test_cli_sync_reports_a_cut_off_answer_in_one_line(
    run_cli,  # type: ignore[no-untyped-def]
    write_config: Callable[..., Path],
) -> None:
    with CutOffServer(body=b'{"access_token": "tok') as server:
        config = write_config(server.url, extra="max_retries = 1")
        for command in (["sync", "wd"], ["check", "wd"]):
            result = run_cli("--config", str(config), *command)
            assert result.exit_code == 1, result.output
            assert "connector wd: " in result.output
            assert "cut off or garbled (ChunkedEncodingError)" in result.output
            assert "Traceback" not in result.output
            for secret in SECRETS.values():
                assert secret not in result.output


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_lost_answer_to_a_write_creates_no_second_mentorship(
    fake: FakeWorkday, status: int
) -> None:
    fake.lost_answers = [(MENTORSHIPS, status)]
    connector = connector_for(fake.url, mentor_type="MT1", max_retries=3)
    with pytest.raises(ConnectorError, match=rf"HTTP {status}.*may have applied it"):
        connector.push([_pairing()], dry_run=False)
    assert len(fake.mentorships) == 1 and fake.count("POST", MENTORSHIPS) == 1


@pytest.mark.parametrize("status", [429, 503])
def test_a_throttled_write_is_repeated(fake: FakeWorkday, status: int) -> None:
    fake.failures = [("checkIns", status)]
    connector = connector_for(fake.url, max_retries=3)
    [result] = connector.push([_session()], dry_run=False)
    assert result.action == "created" and len(fake.check_ins) == 1
    assert fake.count("POST", "checkIns") == 2


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_read_keeps_the_broad_retry(fake: FakeWorkday, status: int) -> None:
    fake.failures = [("/workers$", status)]
    connector = connector_for(fake.url, max_retries=3)
    body = connector.client.api("GET", "staffing", "workers", what="workers")
    assert isinstance(body, dict) and fake.count("GET", "/workers$") == 2


@responses.activate
def test_a_failed_token_request_is_repeated() -> None:
    token_url = "https://wd.example.test/ccx/oauth2/acme/token"
    responses.post(token_url, status=502)
    responses.post(token_url, json={"access_token": "tok-1", "expires_in": 3600})
    connector = connector_for("https://wd.example.test", max_retries=3)
    connector.client._sleep = lambda seconds: None
    assert connector.client.token() == "tok-1" and len(responses.calls) == 2
