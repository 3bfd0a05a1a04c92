"""The shared retry policy (coachbridge.http) on its own: what is repeated, how long it waits."""

from __future__ import annotations

import socket

import pytest
import requests
import responses
from coachbridge.http import RetryPolicy, send_with_retries

URL = "https://vendor.example.test/api/things"


def _send(method: str = "GET", url: str = URL):  # type: ignore[no-untyped-def]
    session = requests.Session()
    return lambda: session.request(method, url, timeout=5)


@responses.activate
def test_retry_after_is_obeyed_and_the_wait_is_counted() -> None:
    responses.get(URL, status=503, headers={"Retry-After": "7"})
    responses.get(URL, status=200, json={"ok": True})
    slept: list[float] = []
    sent = send_with_retries(_send(), idempotent=True, policy=RetryPolicy(), sleep=slept.append)
    assert sent.response.status_code == 200 and sent.attempts == 2
    assert slept == [7.0] and sent.waited == 7.0


@responses.activate
def test_backoff_is_exponential_full_jitter_and_capped() -> None:
    responses.get(URL, status=502)
    slept: list[float] = []
    policy = RetryPolicy(max_retries=6, backoff_base=0.5, backoff_cap=2.0)
    sent = send_with_retries(_send(), idempotent=True, policy=policy, sleep=slept.append)
    assert sent.response.status_code == 502 and sent.attempts == 7 and len(slept) == 6
    for attempt, delay in enumerate(slept):
        assert 0 <= delay <= min(2.0, 0.5 * 2**attempt)
    assert len(set(slept)) > 1  # jittered, not a fixed schedule


@responses.activate
def test_a_wait_beyond_the_budget_is_not_made() -> None:
    responses.get(URL, status=429, headers={"Retry-After": "600"})
    policy = RetryPolicy(max_wait=60)
    sent = send_with_retries(
        _send(), idempotent=True, policy=policy, sleep=lambda s: pytest.fail("waited")
    )
    assert sent.attempts == 1 and sent.retry_after == 600 and len(responses.calls) == 1


@pytest.mark.parametrize("status", [500, 502, 504])
@responses.activate
def test_an_unsafe_request_is_not_repeated_after_a_fault(status: int) -> None:
    responses.post(URL, status=status)
    sent = send_with_retries(
        _send("POST"), idempotent=False, policy=RetryPolicy(), sleep=lambda s: None
    )
    assert sent.response.status_code == status and len(responses.calls) == 1


@pytest.mark.parametrize("status", [429, 503])
@responses.activate
def test_an_unsafe_request_is_repeated_when_the_server_did_not_process_it(status: int) -> None:
    responses.post(URL, status=status)
    responses.post(URL, status=201)
    sent = send_with_retries(
        _send("POST"), idempotent=False, policy=RetryPolicy(), sleep=lambda s: None
    )
    assert sent.response.status_code == 201 and len(responses.calls) == 2


@responses.activate
def test_a_dropped_connection_repeats_a_read_but_not_a_write() -> None:
    responses.get(URL, body=requests.ConnectionError("reset"))
    responses.get(URL, status=200)
    assert (
        send_with_retries(
            _send(), idempotent=True, policy=RetryPolicy(), sleep=lambda s: None
        ).attempts
        == 2
    )
    responses.post(URL, body=requests.ConnectionError("reset"))
    with pytest.raises(requests.ConnectionError):
        send_with_retries(
            _send("POST"), idempotent=False, policy=RetryPolicy(), sleep=lambda s: None
        )
    assert len([c for c in responses.calls if c.request.method == "POST"]) == 1


def test_a_connection_that_never_opened_is_repeated_even_for_a_write() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    calls = 0
    session = requests.Session()

    def send() -> requests.Response:
        nonlocal calls
        calls += 1
        return session.post(f"http://127.0.0.1:{port}/x", timeout=5)

    with pytest.raises(requests.ConnectionError):
        send_with_retries(
            send, idempotent=False, policy=RetryPolicy(max_retries=2), sleep=lambda s: None
        )
    assert calls == 3


@responses.activate
def test_read_timeouts_follow_the_policy() -> None:
    responses.get(URL, body=requests.exceptions.ReadTimeout("slow"))
    responses.get(URL, status=200)
    with pytest.raises(requests.exceptions.ReadTimeout):
        send_with_retries(
            _send(),
            idempotent=True,
            policy=RetryPolicy(retry_read_timeouts=False),
            sleep=lambda s: None,
        )
    assert len(responses.calls) == 1
    responses.reset()
    responses.get(URL, body=requests.exceptions.ReadTimeout("slow"))
    responses.get(URL, status=200)
    sent = send_with_retries(_send(), idempotent=True, policy=RetryPolicy(), sleep=lambda s: None)
    assert sent.response.status_code == 200 and sent.attempts == 2
