"""BambooHR retries are not lost: a validly signed delivery older than the tolerance but inside
``retry_window`` is taken, a second copy changes nothing, one older than the window gets 401."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from coachbridge.store.tables import InboxRow
from sqlalchemy import func, select

from tests.webhooks.conftest import Env, make_env

HOOK_SECRET = "bamboo-private-key"
BAMBOO = """
[connectors.bamboo]
plugin = "bamboohr"
company_domain = "acme"
api_key = "0123456789abcdef"
base_url = "http://127.0.0.1:9"
webhook_secret = "bamboo-private-key"
rating_field = "performanceRating"
"""


def _delivery(employee: str, rating: str, minutes_ago: float) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "employees": [
                {
                    "id": employee,
                    "action": "Updated",
                    "changedFields": ["performanceRating"],
                    "fields": {"performanceRating": rating},
                    "timestamp": "2026-11-20T10:00:00+0000",
                }
            ]
        }
    ).encode()
    return body, _signed(body, minutes_ago)


def _signed(body: bytes, minutes_ago: float) -> dict[str, str]:
    stamp = str(int(time.time() - minutes_ago * 60))
    digest = hmac.new(HOOK_SECRET.encode(), body + stamp.encode(), hashlib.sha256).hexdigest()
    return {
        "X-BambooHR-Signature": digest,
        "X-BambooHR-Timestamp": stamp,
        "Content-Type": "application/json",
    }


@pytest.fixture
def benv(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("REVIEWS_SECRET", "whsec_" + "a" * 32)
    env = make_env(tmp_path, sqlite_url, extra=BAMBOO)
    yield env
    env.db.dispose()


def _client(env: Env) -> Any:
    from coachbridge_webhooks import create_app

    return create_app(env.config, database=env.db, registry=env.registry).test_client()


def _inbox(env: Env) -> int:
    with env.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(InboxRow)) or 0)


def test_a_retry_inside_the_window_is_taken_once_and_an_older_one_refused(benv: Env) -> None:
    client = _client(benv)
    body, headers = _delivery("4", "2", minutes_ago=0)
    assert client.post("/webhooks/bamboo", data=body, headers=headers).status_code == 202
    assert _inbox(benv) == 1
    # BambooHR's fourth retry, 75 minutes later, still signed at the first attempt: a duplicate.
    answer = client.post("/webhooks/bamboo", data=body, headers=_signed(body, 75))
    assert answer.status_code == 200 and answer.get_json()["status"] == "duplicate"
    assert _inbox(benv) == 1
    # A delivery we answered 5xx, arriving for the first time as its last retry (155 min).
    late, headers = _delivery("2", "1", minutes_ago=155)
    assert client.post("/webhooks/bamboo", data=late, headers=headers).status_code == 202
    assert _inbox(benv) == 2
    # Older than retry_window (3 h): refused as today, nothing stored.
    stale, headers = _delivery("3", "1", minutes_ago=181)
    assert client.post("/webhooks/bamboo", data=stale, headers=headers).status_code == 401
    assert _inbox(benv) == 2
