"""Configuration that used to load and fail later, or fail with a traceback, or print a secret:
each is now one line naming the key, exit 2 (or 1 for what is unreachable), nothing shown."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest


def _closed_port() -> int:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_relative_sqlite_path_is_beside_the_config_file(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "deploy"
    folder.mkdir()
    config = folder / "coachbridge.toml"
    config.write_text('[database]\nurl = "data/cb.db"\n', encoding="utf-8")
    (folder / "data").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = run_cli("--config", str(config), "people")
    assert result.exit_code == 0, result.output
    assert (folder / "data" / "cb.db").exists() and not (elsewhere / "data").exists()
    config.write_text('[database]\nurl = "sqlite:///data/other.db"\n', encoding="utf-8")
    assert run_cli("--config", str(config), "people").exit_code == 0
    assert (folder / "data" / "other.db").exists()


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("postgresql://postgres:pw@127.0.0.1:notaport/test", "is the port a number"),
        ("postgresql://postgres:pw@127.0.0.1:99999/test", "port 99999 is not 1..65535"),
    ],
)
def test_a_database_url_with_a_bad_port_is_a_config_error(run_cli, url: str, needle: str) -> None:
    result = run_cli("--db", url, "people")
    assert result.exit_code == 2 and needle in result.stderr
    assert "Traceback" not in result.output and "pw@" not in result.output


def test_a_password_in_the_database_urls_query_is_not_shown(run_cli) -> None:
    result = run_cli(
        "--db",
        f"postgresql://postgres@127.0.0.1:{_closed_port()}/test?password=SEKRITPW9",
        "people",
    )
    assert result.exit_code == 1
    assert "SEKRITPW9" not in result.output and "password=***" in result.stderr


def _bamboohr(tmp_path: Path) -> Path:
    config = tmp_path / "coachbridge.toml"
    config.write_text(
        '[connectors.hr]\nplugin = "bamboohr"\ncompany_domain = "acme"\n'
        'api_key = "${BHR_KEY}"\nbase_url = "${BHR_URL}"\nmax_retries = 0\n',
        encoding="utf-8",
    )
    return config


def test_a_password_in_a_connectors_base_url_is_not_shown(run_cli, tmp_path: Path) -> None:
    config = _bamboohr(tmp_path)
    url = f"http://user:SEKRITKEY123@127.0.0.1:{_closed_port()}/?k=SEKRITQ"
    env = {"BHR_KEY": "plain-key", "BHR_URL": url}
    for command in (("check",), ("sync",)):
        result = run_cli("--config", str(config), *command, env=env)
        assert result.exit_code == 1, result.output
        assert "cannot reach" in result.output and "user:***@" in result.output
        assert "SEKRITKEY123" not in result.output and "SEKRITQ" not in result.output


def test_a_secret_that_cannot_travel_in_a_header_names_its_key(run_cli, tmp_path: Path) -> None:
    config = _bamboohr(tmp_path)
    env = {"BHR_KEY": "ключSEKRIT", "BHR_URL": f"http://127.0.0.1:{_closed_port()}"}
    result = run_cli("--config", str(config), "check", env=env)
    assert result.exit_code == 2
    assert "connectors.hr.api_key: holds a character that is not ASCII" in result.stderr
    assert "SEKRIT" not in result.output and "Traceback" not in result.output


def test_db_upgrade_leaves_another_applications_database_alone(run_cli, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("create table theirs (x)")
    result = run_cli("--db", str(other), "db", "upgrade")
    assert result.exit_code == 2 and "no coachbridge schema version" in result.stderr
    with sqlite3.connect(other) as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
    assert tables == ["theirs"]


@pytest.mark.parametrize(
    ("program", "needle"),
    [
        ('holidays = "XX"', "programs[0].holidays: unknown holiday calendar 'XX'"),
        ("min_score = nan", "programs[0].min_score"),
        ("min_score = -1.0", "programs[0].min_score"),
    ],
)
def test_program_values_that_fail_later_are_refused_at_load(
    run_cli, tmp_path: Path, program: str, needle: str
) -> None:
    config = tmp_path / "coachbridge.toml"
    config.write_text(f'[[programs]]\nid = "p"\nkind = "mentoring"\n{program}\n', encoding="utf-8")
    result = run_cli("--config", str(config), "programs")
    assert result.exit_code == 2, result.output
    assert needle in result.stderr


def test_check_refuses_a_weight_no_criterion_has(run_cli, tmp_path: Path) -> None:
    config = tmp_path / "coachbridge.toml"
    config.write_text(
        '[[programs]]\nid = "p"\nkind = "mentoring"\n[programs.weights]\nskilz = 0.4\n',
        encoding="utf-8",
    )
    result = run_cli("--config", str(config), "check")
    assert result.exit_code == 2
    assert f"{config}: programs[0].weights.skilz: unknown matching criterion" in result.stderr


@pytest.mark.parametrize("url", ["not a url", "ftp://example.com", "https://"])
def test_the_public_url_is_an_address_a_browser_opens(run_cli, tmp_path: Path, url: str) -> None:
    config = tmp_path / "coachbridge.toml"
    config.write_text(f'[server]\npublic_url = "{url}"\n', encoding="utf-8")
    result = run_cli("--config", str(config), "people")
    assert result.exit_code == 2 and "server.public_url" in result.stderr
