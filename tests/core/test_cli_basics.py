"""Command-line conventions: global options, exit codes, one clear line, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

from coachbridge.store import Database
from sqlalchemy import text


def test_help_and_version(run_cli) -> None:
    result = run_cli("--help")
    assert result.exit_code == 0
    for command in ("init", "check", "db", "sync", "people", "programs"):
        assert command in result.stdout
    assert run_cli("--version").exit_code == 0


def test_unknown_command_is_usage_error(run_cli) -> None:
    result = run_cli("frobnicate")
    assert result.exit_code == 2
    assert "No such command" in result.stderr


def test_init_writes_example_and_refuses_to_overwrite(run_cli, tmp_path: Path) -> None:
    assert run_cli("init").exit_code == 0
    assert (tmp_path / "coachbridge.toml").read_text().startswith("# coachbridge.toml")
    again = run_cli("init")
    assert again.exit_code == 2
    assert "exists" in again.stderr
    assert "Traceback" not in again.stderr


def test_config_errors_exit_2_one_line_each(run_cli, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[programs]]\nid = "p"\nkind = "nope"\ncapacity = -1\n[mystery]\n')
    result = run_cli("--config", str(config), "people")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"error: {config}: ") for line in lines)
    assert any("programs[0].capacity" in line for line in lines)
    assert any("mystery: unknown key" in line for line in lines)
    assert "Traceback" not in result.stderr


def test_config_from_environment_variable(run_cli, tmp_path: Path) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text('[[programs]]\nid = "p1"\nkind = "coaching"\n')
    result = run_cli("programs", "--format", "json", env={"COACHBRIDGE_CONFIG": str(config)})
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["id"] == "p1"


def test_unreachable_database_exits_1_without_password(run_cli) -> None:
    result = run_cli("--db", "postgresql://user:topsecretpw@127.0.0.1:1/nowhere", "people")
    assert result.exit_code == 1
    assert "not reachable" in result.stderr
    assert "topsecretpw" not in result.stderr
    assert "Traceback" not in result.stderr


def test_new_sqlite_file_is_created_at_latest_schema(run_cli, tmp_path: Path) -> None:
    result = run_cli("--db", str(tmp_path / "new.db"), "people", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == []
    current = run_cli("--db", str(tmp_path / "new.db"), "db", "current")
    assert "up to date" in current.stdout


def test_database_behind_says_so_and_changes_nothing(run_cli, db_url: str) -> None:
    database = Database(db_url)
    database.upgrade()
    with database.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000_old'"))
    result = run_cli("--db", db_url, "people")
    assert result.exit_code == 2
    assert "run `coachbridge db upgrade`" in result.stderr
    assert database.current_revision() == "0000_old"
    database.dispose()


def test_db_upgrade_is_idempotent(run_cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    first = run_cli("--db", url, "db", "upgrade")
    assert first.exit_code == 0 and "upgraded" in first.stdout
    second = run_cli("--db", url, "db", "upgrade")
    assert second.exit_code == 0 and "already at the latest schema" in second.stdout


def test_unknown_person_exits_2(run_cli, tmp_path: Path) -> None:
    result = run_cli("--db", str(tmp_path / "x.db"), "people", "show", "nobody@example.com")
    assert result.exit_code == 2
    assert "unknown person 'nobody@example.com'" in result.stderr


def test_sync_without_connectors_is_a_config_error(run_cli) -> None:
    result = run_cli("sync")
    assert result.exit_code == 2
    assert "no connectors configured" in result.stderr


def test_csv_cells_round_trip_through_escaping() -> None:
    from coachbridge.csvcells import escape_cell, unescape_cell

    for cell in ("=SUM(A1)", "+1", "-x", "@me", "\ttab", "'quoted", "''twice", "'=x", "plain"):
        assert unescape_cell(escape_cell(cell)) == cell
    assert escape_cell("=1+1") == "'=1+1"
    assert escape_cell(-5) == -5  # numbers stay numbers


def test_out_of_range_options_are_usage_errors(run_cli, tmp_path: Path) -> None:
    db = ("--db", str(tmp_path / "x.db"))
    huge = "99999999999999999999999"
    for args, says in (
        (("match", "p", "--apply", "--propose"), "not both"),
        (("goals", "update", "1", "--progress", "nan"), "'nan' is not a number"),
        (("goals", "add", "--person", "1", "--pairing", huge, "--title", "x"), "--pairing"),
        (("events", "list", "--limit", huge), "--limit"),
        (("audit", "--limit", huge), "--limit"),
        (("serve", "--port", "99999"), "--port"),
        (("enroll", "p", "--person", "1", "--role", "guide", "--capacity", huge), "--capacity"),
    ):
        result = run_cli(*db, *args)
        assert result.exit_code == 2, (args, result.stderr)
        assert says in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)


def test_blank_and_impossible_paths_are_usage_errors(run_cli, tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    config = tmp_path / "c.toml"
    config.write_text('[[programs]]\nid = "p"\nkind = "mentoring"\n', encoding="utf-8")
    report = ("--config", str(config), "--db", str(tmp_path / "x.db"), "report")
    for args, says in (
        (("--db", "   ", "people"), "--db: give"),
        (("--config", "", "people"), "--config: give"),
        (("init", "--path", str(tmp_path / "nodir" / "x.toml")), "does not exist"),
        ((*report, "--html", str(tmp_path / "dir")), "not a regular"),
        ((*report, "--html", " "), "--html: give"),
    ):
        result = run_cli(*args)
        assert result.exit_code == 2, (args, result.stderr)
        assert says in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)


def test_a_bad_server_log_format_exits_2_naming_the_key(run_cli, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[server]\nlog_format = "yaml"\n')
    result = run_cli("--config", str(config), "people")
    assert result.exit_code == 2
    assert "server.log_format" in result.stderr
    assert "Traceback" not in result.stderr
