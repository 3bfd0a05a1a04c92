"""``coachbridge connect workday``: discovery against the fake tenant, the table it writes, and
the bad-input cases (each one error line, the config file unchanged)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workday.fake_workday import FakeWorkday, make_workers

EXISTING = """\
# Acme's coachbridge: the comment on top stays.
[database]
url = "{db}"   # kept beside the config

# the CSV export, until Workday is connected
[connectors.hr]
plugin = "csv"
people = "people.csv"

[[programs]]
id = "mentoring"   # the one program
name = "Mentoring"
kind = "mentoring"
"""

OAUTH = (
    "--secret",
    "client_id=WORKDAY_CLIENT_ID",
    "--secret",
    "client_secret=WORKDAY_CLIENT_SECRET",
    "--secret",
    "refresh_token=WORKDAY_REFRESH_TOKEN",
)


@pytest.fixture
def config(tmp_path: Path, secrets_env: dict[str, str]) -> Path:
    (tmp_path / "people.csv").write_text("id,first_name,last_name\n1,Ada,Lovelace\n")
    path = tmp_path / "coachbridge.toml"
    path.write_text(EXISTING.format(db=tmp_path / "store.db"))
    return path


@pytest.fixture
def renamed() -> Iterator[FakeWorkday]:
    """A tenant whose report author named the columns their own way."""
    server = FakeWorkday(make_workers(12)).start()
    original = server.people_row

    def row(worker):  # type: ignore[no-untyped-def]
        names = {
            "Employee_ID": "Employee_Number",
            "Email_-_Work": "Work_Email_Address",
            "Manager_ID": "Manager_Employee_ID",
            "Business_Title": "Job_Title",
        }
        return {names.get(k, k): v for k, v in original(worker).items()}

    server.people_row = row  # type: ignore[method-assign]
    import tests.workday.fake_workday as module

    columns = module.PEOPLE_COLUMNS
    module.PEOPLE_COLUMNS = tuple(
        {
            "Employee_ID": "Employee_Number",
            "Email_-_Work": "Work_Email_Address",
            "Manager_ID": "Manager_Employee_ID",
            "Business_Title": "Job_Title",
        }.get(c, c)
        for c in columns
    )
    try:
        yield server
    finally:
        module.PEOPLE_COLUMNS = columns
        server.stop()


def _connect(  # type: ignore[no-untyped-def]
    run_cli, config: Path, url: str, *extra: str, input: str | None = None
):
    return run_cli(
        "--config",
        str(config),
        "connect",
        "workday",
        "wd",
        "--base-url",
        url,
        "--tenant",
        "acme",
        "--report",
        "isu_coaching/Coaching_Workers",
        *OAUTH,
        *extra,
        input=input,
    )


def test_yes_writes_a_table_that_check_passes(run_cli, fake: FakeWorkday, config: Path) -> None:
    before = config.read_text()
    result = _connect(run_cli, config, fake.url, "--yes")
    assert result.exit_code == 0, result.output
    text = config.read_text()
    # Every existing line, comment included, is still there and in its order.
    assert text.startswith(before)
    table = tomllib.loads(text)["connectors"]["wd"]
    assert table["client_secret"] == "${WORKDAY_CLIENT_SECRET}"
    assert table["people_report"] == "isu_coaching/Coaching_Workers"
    assert table["updated_since_prompt"] == "Updated_From"
    assert table["columns"]["id"] == "Employee_ID"
    assert table["columns"]["manager_id"] == "Manager_ID"
    assert "s3cret-client" not in text and "s3cret-client" not in result.output
    assert "refresh-abc" not in result.output
    assert "id               <- Employee_ID  (alias, 100%)" in result.stdout
    assert "manager_id       <- Manager_ID  (exact, 100%)" in result.stdout
    assert "Email_-_Work (string)" in result.stdout  # the column's type, from ?xsds
    assert "prompt Updated_From: dateTime (updated_since_prompt)" in result.stdout
    assert "first 5 people as they would be synced:" in result.stdout
    assert "  E000001  Tim Hopper1  email=worker1@acme.example" in result.stdout
    assert "would be missing:\n  preferred_name: no column found" in result.stdout

    check = run_cli("--config", str(config), "check", "wd")
    assert check.exit_code == 0, check.output
    assert "connector wd: ok" in check.stdout


def test_a_date_prompt_is_found_and_renamed_columns_are_proposed(
    run_cli, renamed: FakeWorkday, config: Path
) -> None:
    renamed.prompt_type = "date"
    result = _connect(run_cli, config, renamed.url, "--yes")
    assert result.exit_code == 0, result.output
    table = tomllib.loads(config.read_text())["connectors"]["wd"]
    assert table["updated_since_prompt"] == "Updated_From"
    assert table["columns"]["id"] == "Employee_Number"
    assert table["columns"]["email"] == "Work_Email_Address"
    assert table["columns"]["manager_id"] == "Manager_Employee_ID"
    assert table["columns"]["job_title"] == "Job_Title"
    check = run_cli("--config", str(config), "check", "wd")
    assert check.exit_code == 0, check.output
    assert "prompt Updated_From is a Date" in check.stdout


def _one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    assert result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_unreachable_tenant(run_cli, config: Path) -> None:
    before = config.read_text()
    result = _connect(run_cli, config, "http://127.0.0.1:9", "--yes")
    assert result.exit_code == 1
    assert "127.0.0.1:9" in _one_error_line(result)
    assert config.read_text() == before


def test_wrong_credentials(run_cli, fake: FakeWorkday, config: Path) -> None:
    fake.refresh_token = "another"
    before = config.read_text()
    result = _connect(run_cli, config, fake.url, "--yes")
    assert result.exit_code == 1
    assert "invalid_grant" in _one_error_line(result)
    assert config.read_text() == before


def test_a_report_without_an_id_like_column(run_cli, fake: FakeWorkday, config: Path) -> None:
    import tests.workday.fake_workday as module

    columns = module.PEOPLE_COLUMNS
    module.PEOPLE_COLUMNS = tuple(c for c in columns if c not in ("Employee_ID", "Worker_WID"))
    before = config.read_text()
    try:
        result = _connect(run_cli, config, fake.url, "--yes")
    finally:
        module.PEOPLE_COLUMNS = columns
    assert result.exit_code == 2
    assert "no id-like column" in _one_error_line(result)
    assert config.read_text() == before


def test_a_config_file_whose_folder_does_not_exist(
    run_cli, fake: FakeWorkday, tmp_path: Path, secrets_env: dict[str, str]
) -> None:
    target = tmp_path / "no-such-folder" / "coachbridge.toml"
    result = _connect(run_cli, target, fake.url, "--yes")
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert str(target) in line and "cannot write" in line
    assert not target.parent.exists()
    assert fake.count("POST", "/token") == 0  # refused before the vendor was asked anything


def test_a_config_file_that_cannot_be_replaced(
    run_cli, fake: FakeWorkday, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The last step fails (a full disk, a read-only mount): the file is as it was, no
    # temporary file is left beside it.
    import os

    def refuse(src: object, dst: object) -> None:
        raise OSError(30, "Read-only file system")

    before = config.read_text()
    monkeypatch.setattr(os, "replace", refuse)
    result = _connect(run_cli, config, fake.url, "--yes")
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert line == f"error: {config}: cannot write: Read-only file system"
    assert config.read_text() == before
    assert sorted(p.name for p in config.parent.iterdir()) == ["coachbridge.toml", "people.csv"]


def test_a_secret_is_named_by_its_variable_never_given(
    run_cli, fake: FakeWorkday, config: Path
) -> None:
    before = config.read_text()
    result = run_cli(
        "--config",
        str(config),
        "connect",
        "workday",
        "wd",
        "--base-url",
        fake.url,
        "--tenant",
        "acme",
        "--report",
        "isu_coaching/Coaching_Workers",
        "--secret",
        "client_id=WORKDAY_CLIENT_ID",
        "--secret",
        "client_secret=NOT_SET_ANYWHERE",
        "--secret",
        "refresh_token=WORKDAY_REFRESH_TOKEN",
        "--yes",
    )
    assert result.exit_code == 2
    assert "NOT_SET_ANYWHERE is not set" in _one_error_line(result)
    assert config.read_text() == before


def test_interactive_shows_the_proposal_and_writes_only_when_confirmed(
    run_cli, fake: FakeWorkday, config: Path
) -> None:
    before = config.read_text()
    result = _connect(run_cli, config, fake.url, input="n\n")
    assert result.exit_code == 0, result.output
    assert "[connectors.wd]" in result.stdout and "nothing written" in result.stdout
    assert config.read_text() == before
    result = _connect(run_cli, config, fake.url, input="y\n")
    assert result.exit_code == 0, result.output
    assert "wrote [connectors.wd]" in result.stdout
    assert "[connectors.wd]" in config.read_text()


def test_a_refresh_token_rotated_during_discovery_is_kept(
    run_cli, fake: FakeWorkday, config: Path
) -> None:
    # connect takes a token like any process: on a tenant that rotates refresh tokens the one
    # in the environment is dead afterwards, so connect must keep the new one for `check`.
    config.write_text(config.read_text() + '\n[server]\nsecret_key = "server-secret"\n')
    fake.rotate_refresh = True
    result = _connect(run_cli, config, fake.url, "--yes")
    assert result.exit_code == 0, result.output
    assert fake.refresh_token != "refresh-abc"
    check = run_cli("--config", str(config), "check", "wd")
    assert check.exit_code == 0, check.output
    assert "refresh token: the one Workday rotated to" in check.stdout


@pytest.mark.parametrize("given", ["client_secret=s3cret-client", "s3cret-client"])
def test_a_secret_given_instead_of_its_variable_is_never_repeated(
    run_cli, fake: FakeWorkday, config: Path, given: str
) -> None:
    before = config.read_text()
    result = run_cli(
        "--config", str(config), "connect", "workday", "wd", "--base-url", fake.url,
        "--tenant", "acme", "--report", "isu_coaching/Coaching_Workers", "--secret", given, "--yes",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "environment variable" in _one_error_line(result) or "KEY=ENV_VAR" in result.stderr
    assert "s3cret-client" not in result.output
    assert config.read_text() == before
    assert fake.count("POST", "/token") == 0
