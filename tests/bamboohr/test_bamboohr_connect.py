"""``coachbridge connect bamboohr``: fields and lists from the metadata endpoints of the fake
(whose answers are held to BambooHR's OpenAPI document), the table written, and bad input."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.bamboohr.fake_bamboohr import FakeBambooHR

EXISTING = """\
[database]
url = "{db}"

# notifications go to the log for now
[notify.log]
"""


@pytest.fixture
def config(tmp_path: Path, fake: FakeBambooHR, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BAMBOOHR_API_KEY", fake.api_key)
    path = tmp_path / "coachbridge.toml"
    path.write_text(EXISTING.format(db=tmp_path / "store.db"))
    return path


def _connect(run_cli, config: Path, url: str, *extra: str):  # type: ignore[no-untyped-def]
    return run_cli(
        "--config",
        str(config),
        "connect",
        "bamboohr",
        "bamboo",
        "--company-domain",
        "acme",
        "--base-url",
        url,
        "--secret",
        "api_key=BAMBOOHR_API_KEY",
        *extra,
    )


def test_yes_finds_rating_supervisor_and_custom_fields_and_check_passes(
    run_cli, fake: FakeBambooHR, config: Path
) -> None:
    fake.update_employee("2", customShirtSize="L")
    before = config.read_text()
    result = _connect(run_cli, config, fake.host_url, "--yes")
    assert result.exit_code == 0, result.output
    text = config.read_text()
    assert text.startswith(before)
    table = tomllib.loads(text)["connectors"]["bamboo"]
    assert table == {
        "plugin": "bamboohr",
        "company_domain": "acme",
        "base_url": fake.host_url,
        "api_key": "${BAMBOOHR_API_KEY}",
        "rating_field": "performanceRating",
    }
    assert fake.api_key not in result.output and fake.api_key not in text
    out = result.stdout
    assert "rating_field     <- performanceRating  (alias, 100%)" in out
    assert "supervisor: supervisorId, supervisorEId, supervisorEmail" in out
    assert "custom fields: customShirtSize" in out
    assert "department (text, list)" in out  # from /meta/lists
    assert "  2  Charles Babbage  email=charles@acme.test" in out
    assert fake.calls("/api/v1/meta/lists")
    check = run_cli("--config", str(config), "check", "bamboo")
    assert check.exit_code == 0, check.output
    assert "connector bamboo: ok" in check.stdout


def _one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    assert result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_wrong_api_key(run_cli, fake: FakeBambooHR, config: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BAMBOOHR_API_KEY", "f" * 40)
    before = config.read_text()
    result = _connect(run_cli, config, fake.host_url, "--yes")
    assert result.exit_code == 1
    line = _one_error_line(result)
    assert "401" in line or "Invalid API key" in line
    assert "f" * 40 not in result.output
    assert config.read_text() == before


def test_unreachable_bamboohr(run_cli, config: Path) -> None:
    before = config.read_text()
    result = _connect(run_cli, config, "http://127.0.0.1:9", "--yes")
    assert result.exit_code == 1
    line = _one_error_line(result)
    assert line == (
        "error: connector bamboo: BambooHR GET v1/meta/fields: cannot reach "
        "http://127.0.0.1:9/api/ (ConnectionError)"
    )
    assert config.read_text() == before


def test_an_option_of_another_plugin_is_a_usage_error(
    run_cli, fake: FakeBambooHR, config: Path
) -> None:
    before = config.read_text()
    result = _connect(run_cli, config, fake.host_url, "--report", "x/y", "--yes")
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert "--report: not a setting of the bamboohr plugin" in line
    assert config.read_text() == before
    assert not fake.calls("/api/v1/meta/fields")


def test_a_connector_of_that_name_already_configured(
    run_cli, fake: FakeBambooHR, config: Path
) -> None:
    assert _connect(run_cli, config, fake.host_url, "--yes").exit_code == 0
    after = config.read_text()
    again = _connect(run_cli, config, fake.host_url, "--yes")
    assert again.exit_code == 2
    assert "connectors.bamboo already exists" in _one_error_line(again)
    assert config.read_text() == after
