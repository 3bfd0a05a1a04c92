"""The HTTP client with ``responses``: tokens, 401 retry, backoff, error lines, version fallback."""

from __future__ import annotations

import pytest
import responses
from coachbridge.errors import ConnectorError
from coachbridge_workday.client import WorkdayClient
from coachbridge_workday.config import WorkdayConfig
from responses import matchers

BASE = "https://wd5-impl-services1.workday.com"
TOKEN_URL = f"{BASE}/ccx/oauth2/acme/token"
WORKERS = f"{BASE}/ccx/api/staffing/v6/acme/workers"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _client(
    clock: Clock | None = None, sleeps: list[float] | None = None, **extra: object
) -> WorkdayClient:
    config = WorkdayConfig.model_validate(
        {
            "plugin": "workday",
            "host": "wd5-impl-services1.workday.com",
            "tenant": "acme",
            "client_id": "cid",
            "client_secret": "csecret-XYZ",
            "refresh_token": "rtoken-XYZ",
            "people_report": "isu/Workers",
            "max_retries": 3,
            **extra,
        }
    )
    record = sleeps if sleeps is not None else []
    return WorkdayClient(config, "wd", sleep=record.append, clock=clock or Clock())


def _token(access: str = "tok-1", expires_in: int | None = 3600) -> dict[str, object]:
    body: dict[str, object] = {"access_token": access, "token_type": "Bearer"}
    if expires_in is not None:
        body["expires_in"] = expires_in
    return body


@responses.activate
def test_token_is_form_encoded_refresh_grant_and_cached() -> None:
    responses.post(
        TOKEN_URL,
        json=_token(),
        match=[
            matchers.urlencoded_params_matcher(
                {
                    "grant_type": "refresh_token",
                    "refresh_token": "rtoken-XYZ",
                    "client_id": "cid",
                    "client_secret": "csecret-XYZ",
                }
            )
        ],
    )
    responses.get(WORKERS, json={"data": [], "total": 0})
    client = _client()
    client.api("GET", "staffing", "workers", what="workers")
    client.api("GET", "staffing", "workers", what="workers")
    assert len([c for c in responses.calls if c.request.url == TOKEN_URL]) == 1
    assert responses.calls[1].request.headers["Authorization"] == "Bearer tok-1"


@responses.activate
def test_token_renewed_before_expiry_and_default_lifetime() -> None:
    responses.post(TOKEN_URL, json=_token("a", expires_in=None))
    responses.post(TOKEN_URL, json=_token("b", expires_in=None))
    clock = Clock()
    client = _client(clock)
    assert client.token() == "a"
    clock.now += 13 * 60
    assert client.token() == "a"
    clock.now += 2 * 60  # past ~14 minutes: renewed without waiting for a 401
    assert client.token() == "b"


@responses.activate
def test_expires_in_is_honoured() -> None:
    responses.post(TOKEN_URL, json=_token("a", expires_in=300))
    responses.post(TOKEN_URL, json=_token("b", expires_in=300))
    clock = Clock()
    client = _client(clock)
    assert client.token() == "a"
    clock.now += 250  # a minute of margin before expires_in
    assert client.token() == "b"


@responses.activate
def test_401_is_retried_once_with_a_fresh_token() -> None:
    responses.post(TOKEN_URL, json=_token("old"))
    responses.post(TOKEN_URL, json=_token("new"))
    responses.get(WORKERS, status=401, json={"error": "invalid token"})
    responses.get(WORKERS, json={"data": [], "total": 0})
    body = _client().api("GET", "staffing", "workers", what="workers")
    assert body == {"data": [], "total": 0}
    api_calls = [c for c in responses.calls if c.request.url.startswith(WORKERS)]
    assert [c.request.headers["Authorization"] for c in api_calls] == ["Bearer old", "Bearer new"]


@responses.activate
def test_second_401_is_an_error_naming_the_keys() -> None:
    responses.post(TOKEN_URL, json=_token())
    responses.get(WORKERS, status=401, json={"error": "invalid token"})
    with pytest.raises(ConnectorError, match=r"rejected the credentials.*client_id, client_secret"):
        _client().api("GET", "staffing", "workers", what="staffing workers")
    assert len([c for c in responses.calls if c.request.url.startswith(WORKERS)]) == 2


@responses.activate
def test_invalid_grant_names_the_key_and_hides_secrets() -> None:
    responses.post(
        TOKEN_URL,
        status=400,
        json={"error": "invalid_grant", "error_description": "Invalid refresh token"},
    )
    with pytest.raises(ConnectorError) as info:
        _client().token()
    message = str(info.value)
    assert "connectors.wd.refresh_token" in message and "invalid_grant" in message
    assert "rtoken-XYZ" not in message and "csecret-XYZ" not in message


@responses.activate
def test_invalid_client_names_client_keys() -> None:
    responses.post(TOKEN_URL, status=401, json={"error": "invalid_client"})
    with pytest.raises(
        ConnectorError, match=r"connectors.wd.client_id and connectors.wd.client_secret"
    ):
        _client().token()


@responses.activate
def test_429_and_500_back_off_with_jitter_then_succeed() -> None:
    responses.post(TOKEN_URL, json=_token())
    responses.get(WORKERS, status=429, json={"error": "Too many requests"})
    responses.get(WORKERS, status=500, body="")
    responses.get(WORKERS, json={"data": [], "total": 0})
    sleeps: list[float] = []
    _client(sleeps=sleeps).api("GET", "staffing", "workers", what="workers")
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 1.0 and 0 <= sleeps[1] <= 2.0  # full jitter under a doubling ceiling


@responses.activate
def test_retries_are_bounded() -> None:
    responses.post(TOKEN_URL, json=_token())
    responses.get(WORKERS, status=503, json={"error": "Service Unavailable"})
    sleeps: list[float] = []
    with pytest.raises(
        ConnectorError, match=r"kept failing \(HTTP 503: Service Unavailable\) after 3 retries"
    ):
        _client(sleeps=sleeps).api("GET", "staffing", "workers", what="workers")
    assert len(sleeps) == 3
    assert len([c for c in responses.calls if c.request.url.startswith(WORKERS)]) == 4


@responses.activate
def test_error_body_in_one_line() -> None:
    responses.post(TOKEN_URL, json=_token())
    responses.get(
        WORKERS,
        status=400,
        json={
            "error": "Invalid request",
            "errors": [
                {"error": "limit must be 1..100", "field": "limit"},
                {"error": "bad\noffset"},
            ],
        },
    )
    with pytest.raises(ConnectorError) as info:
        _client().api("GET", "staffing", "workers", what="staffing workers")
    message = str(info.value)
    assert "\n" not in message
    assert "Invalid request; limit must be 1..100 (field limit); bad offset" in message


@responses.activate
def test_403_names_the_security_domain() -> None:
    responses.post(TOKEN_URL, json=_token())
    responses.get(WORKERS, status=403, json={"error": "The task submitted is not authorized."})
    with pytest.raises(ConnectorError, match="Worker Data: Public Worker Reports"):
        _client().api("GET", "staffing", "workers", what="staffing workers")


@responses.activate
def test_404_retried_once_on_the_other_version_and_remembered() -> None:
    responses.post(TOKEN_URL, json=_token())
    responses.get(WORKERS, status=404, json={"error": "Resource not found"})
    v7 = f"{BASE}/ccx/api/staffing/v7/acme/workers"
    responses.get(v7, json={"data": [], "total": 0})
    client = _client()
    client.api("GET", "staffing", "workers", what="workers")
    client.api("GET", "staffing", "workers", what="workers")
    assert client.versions["staffing"] == "v7"
    assert len([c for c in responses.calls if c.request.url.startswith(WORKERS)]) == 1


@responses.activate
def test_404_on_both_versions_names_the_version_key() -> None:
    responses.post(TOKEN_URL, json=_token())
    responses.post(
        f"{BASE}/ccx/api/talentManagement/v2/acme/createMentorshipForWorker",
        status=404,
        json={"error": "x"},
    )
    responses.post(
        f"{BASE}/ccx/api/talentManagement/v1/acme/createMentorshipForWorker",
        status=404,
        json={"error": "x"},
    )
    with pytest.raises(ConnectorError, match=r"v2 nor v1.*talent_management_version"):
        _client().api("POST", "talentManagement", "createMentorshipForWorker", what="mentorship")


@responses.activate
def test_basic_auth_for_raas_without_oauth() -> None:
    config = WorkdayConfig.model_validate(
        {
            "plugin": "workday",
            "host": "wd5-impl-services1.workday.com",
            "tenant": "acme",
            "username": "isu@acme",
            "password": "pw-XYZ",
            "people_report": "isu/Workers",
        }
    )
    url = f"{BASE}/ccx/service/customreport2/acme/isu/Workers"
    responses.get(url, json={"Report_Entry": []})
    client = WorkdayClient(config, "wd")
    client.request("GET", url, what="report")
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")
    assert "pw-XYZ" not in repr(client)


@responses.activate
def test_secret_echoed_by_workday_is_blanked() -> None:
    responses.post(
        TOKEN_URL,
        status=400,
        json={"error": "invalid_grant", "error_description": "token rtoken-XYZ unknown"},
    )
    with pytest.raises(ConnectorError) as info:
        _client().token()
    assert "rtoken-XYZ" not in str(info.value) and "token *** unknown" in str(info.value)
