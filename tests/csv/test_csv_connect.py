"""``coachbridge connect csv``: the header row of an HRIS export, the proposed ``columns``
table, and the bad-input cases."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

EXISTING = """\
# coachbridge for Acme
[database]
url = "{db}"  # local file

[[programs]]
id = "mentoring"
name = "Mentoring"
kind = "mentoring"
"""

EXPORT = """\
Employee Number,Given Name,Surname,Work Email,Dept,Reports To ID,Start Date,Time Zone
100,Ada,Lovelace,ada@acme.test,Exec,,2015-02-01,Europe/London
101,Charles,Babbage,charles@acme.test,Eng,100,2016-03-01,Europe/London
102,Grace,Hopper,,Eng,101,2018-04-01,America/New_York
103,Alan,Turing,alan@acme.test,Eng,101,2019-05-01,Europe/London
104,Edsger,Dijkstra,edsger@acme.test,Eng,101,2019-06-01,Europe/Amsterdam
105,Barbara,Liskov,barbara@acme.test,Eng,100,2020-01-01,America/New_York
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "export.csv").write_text(EXPORT)
    path = tmp_path / "coachbridge.toml"
    path.write_text(EXISTING.format(db=tmp_path / "store.db"))
    return path


def _connect(run_cli, config: Path, people: str, *extra: str):  # type: ignore[no-untyped-def]
    return run_cli("--config", str(config), "connect", "csv", "hr", "--people", people, *extra)


def test_yes_maps_the_export_headers_and_check_passes(run_cli, config: Path) -> None:
    before = config.read_text()
    result = _connect(run_cli, config, "export.csv", "--yes")
    assert result.exit_code == 0, result.output
    text = config.read_text()
    assert text.startswith(before)  # comments and order kept; the table comes after
    table = tomllib.loads(text)["connectors"]["hr"]
    assert table == {
        "plugin": "csv",
        "people": "export.csv",
        "columns": {
            "id": "Employee Number",
            "first_name": "Given Name",
            "last_name": "Surname",
            "email": "Work Email",
            "department": "Dept",
            "manager_id": "Reports To ID",
            "hire_date": "Start Date",
            "timezone": "Time Zone",
        },
    }
    out = result.stdout
    assert "id               <- Employee Number  (alias, 100%)" in out
    assert "first 5 people as they would be synced:" in out
    assert "  102  Grace Hopper  department=Eng, manager_external_id=101" in out
    assert "(empty: email, job_title, location)" in out
    assert "105  Barbara" not in out  # five people, not six
    assert "job_title: no column found; not synced" in out

    check = run_cli("--config", str(config), "check", "hr")
    assert check.exit_code == 0, check.output
    assert "people: " in check.stdout and "6 rows" in check.stdout
    sync = run_cli("--config", str(config), "sync", "hr")
    assert sync.exit_code == 0, sync.output


def test_fuzzy_headers_are_proposed_with_their_confidence(run_cli, config: Path) -> None:
    (config.parent / "odd.csv").write_text(
        "Employee Identifier,First,Last,Email Work Address\n1,Ada,Lovelace,ada@acme.test\n"
    )
    result = _connect(run_cli, config, "odd.csv", "--yes")
    assert result.exit_code == 0, result.output
    columns = tomllib.loads(config.read_text())["connectors"]["hr"]["columns"]
    assert columns["id"] == "Employee Identifier"
    assert columns["email"] == "Email Work Address"
    assert "(fuzzy, " in result.stdout


def _one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    assert result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_file_with_no_id_like_column(run_cli, config: Path) -> None:
    (config.parent / "noid.csv").write_text("Given Name,Surname\nAda,Lovelace\n")
    before = config.read_text()
    result = _connect(run_cli, config, "noid.csv", "--yes")
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert "noid.csv:1: no id-like column (headers found: Given Name, Surname)" in line
    assert config.read_text() == before


def test_a_missing_file(run_cli, config: Path) -> None:
    before = config.read_text()
    result = _connect(run_cli, config, "nowhere.csv", "--yes")
    assert result.exit_code == 2
    assert "nowhere.csv: file not found" in _one_error_line(result)
    assert config.read_text() == before


def test_a_new_config_file_is_created(run_cli, tmp_path: Path) -> None:
    (tmp_path / "export.csv").write_text(EXPORT)
    target = tmp_path / "new.toml"
    result = _connect(run_cli, target, "export.csv", "--yes")
    assert result.exit_code == 0, result.output
    assert tomllib.loads(target.read_text())["connectors"]["hr"]["people"] == "export.csv"
    assert target.stat().st_mode & 0o044  # readable like any file the user writes
