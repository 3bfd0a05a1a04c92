"""Fixtures for the Workday connector: a started fake tenant and a config file pointing at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from coachbridge.connectors import ConnectorContext
from coachbridge_workday.config import WorkdayConfig
from coachbridge_workday.connector import WorkdayConnector

from tests.workday.fake_workday import FakeWorkday, make_workers

SECRETS = {
    "WORKDAY_CLIENT_ID": "cb-client",
    "WORKDAY_CLIENT_SECRET": "s3cret-client",
    "WORKDAY_REFRESH_TOKEN": "refresh-abc",
    "WORKDAY_ISU_PASSWORD": "isu-pass",
    "WORKDAY_HOOK_PASSWORD": "hook-pass",
}


@pytest.fixture
def fake() -> Iterator[FakeWorkday]:
    server = FakeWorkday(make_workers(30)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    return SECRETS


def connector_for(url: str, name: str = "wd", **overrides: object) -> WorkdayConnector:
    """A connector for the fake (OAuth, people report, prompt), fast retries."""
    settings: dict[str, object] = {
        "plugin": "workday",
        "base_url": url,
        "tenant": "acme",
        "client_id": "cb-client",
        "client_secret": "s3cret-client",
        "refresh_token": "refresh-abc",
        "people_report": "isu_coaching/Coaching_Workers",
        "updated_since_prompt": "Updated_From",
        "retry_backoff": 0,
    }
    settings.update(overrides)
    settings = {k: v for k, v in settings.items() if v is not None}
    return WorkdayConnector(WorkdayConfig.model_validate(settings), ConnectorContext(name=name))


@pytest.fixture
def write_config(tmp_path: Path, secrets_env: dict[str, str]) -> Callable[..., Path]:
    """Writes coachbridge.toml for the fake at ``url``; extra lines go into the connector table."""

    def write(url: str, extra: str = "", programs: str = "") -> Path:
        path = tmp_path / "coachbridge.toml"
        path.write_text(
            f"""
[database]
url = "{tmp_path / "store.db"}"

[connectors.wd]
plugin = "workday"
base_url = "{url}"
tenant = "acme"
client_id = "${{WORKDAY_CLIENT_ID}}"
client_secret = "${{WORKDAY_CLIENT_SECRET}}"
refresh_token = "${{WORKDAY_REFRESH_TOKEN}}"
people_report = "isu_coaching/Coaching_Workers"
updated_since_prompt = "Updated_From"
retry_backoff = 0
max_deactivate = "50%"
{extra}
{programs}
""",
            encoding="utf-8",
        )
        return path

    return write
