"""Refresh tokens that rotate: kept (database, encrypted; or a token file), used by every later
process, never stranded by two processes refreshing at once, and named by ``check``."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from coachbridge.connectors import ConnectorContext, TokenStore
from coachbridge.errors import ConnectorError
from coachbridge.store import Database
from coachbridge.store.tables import ConnectorTokenRow
from coachbridge.store.tokens import DatabaseTokenStore, FileTokenStore
from coachbridge_workday.config import WorkdayConfig
from coachbridge_workday.connector import WorkdayConnector
from sqlalchemy import select

from tests.workday.fake_workday import FakeWorkday

SETTINGS = {
    "plugin": "workday",
    "tenant": "acme",
    "client_id": "cb-client",
    "client_secret": "s3cret-client",
    "refresh_token": "refresh-abc",
    "people_report": "isu_coaching/Coaching_Workers",
    "retry_backoff": 0,
}


def _connector(url: str, tokens: TokenStore | None, **overrides: object) -> WorkdayConnector:
    config = WorkdayConfig.model_validate({**SETTINGS, "base_url": url, **overrides})
    return WorkdayConnector(config, ConnectorContext(name="wd", tokens=tokens))


def _db_store(url: str, secret: str | None = "server-secret") -> DatabaseTokenStore:
    database = Database(url)
    return DatabaseTokenStore("wd", lambda: database, secret)


def test_without_a_store_a_rotated_token_strands_the_next_process(fake: FakeWorkday) -> None:
    """The failure this fixes: the next process still sends the configured, now dead token."""
    fake.rotate_refresh = True
    _connector(fake.url, None).client.token()
    with pytest.raises(ConnectorError, match="invalid_grant"):
        _connector(fake.url, None).client.token()


def test_a_rotated_token_is_kept_encrypted_and_used_by_the_next_process(
    fake: FakeWorkday, db: Database
) -> None:
    fake.rotate_refresh = True
    url = db.url.render_as_string(hide_password=False)
    _connector(fake.url, _db_store(url)).client.token()
    rotated = fake.refresh_token
    assert rotated != "refresh-abc"
    with db.transaction() as session:
        row = session.execute(select(ConnectorTokenRow)).scalar_one()
        assert row.ciphertext and rotated not in row.ciphertext and "refresh" not in row.ciphertext
    # A new process (new store, new engine) refreshes with the kept token, and keeps the next.
    second = _connector(fake.url, _db_store(url))
    second.client.token()
    assert fake.refresh_token != rotated
    third = _connector(fake.url, _db_store(url))
    third.client.token()
    assert fake.grants == 3


def test_two_processes_refreshing_at_once_do_not_strand_each_other(
    fake: FakeWorkday, db: Database
) -> None:
    fake.rotate_refresh = True
    fake.token_delay = 0.3
    url = db.url.render_as_string(hide_password=False)
    connectors = [_connector(fake.url, _db_store(url)) for _ in range(2)]
    errors: list[Exception] = []

    def refresh(connector: WorkdayConnector) -> None:
        try:
            connector.client.token()
        except Exception as exc:  # collected: the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=refresh, args=(c,)) for c in connectors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert fake.grants == 2
    # And the chain is still alive for a third process.
    _connector(fake.url, _db_store(url)).client.token()


def test_a_token_file_is_private_locked_and_shared(fake: FakeWorkday, tmp_path: Path) -> None:
    fake.rotate_refresh = True
    fake.token_delay = 0.2
    path = tmp_path / "wd-tokens.json"
    connectors = [_connector(fake.url, FileTokenStore("wd", path)) for _ in range(3)]
    threads = [threading.Thread(target=c.client.token) for c in connectors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert fake.grants == 3
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert fake.refresh_token in path.read_text()
    _connector(fake.url, FileTokenStore("wd", path)).client.token()
    assert fake.grants == 4


def test_a_token_the_operator_configures_anew_wins_over_the_kept_one(
    fake: FakeWorkday, tmp_path: Path
) -> None:
    fake.rotate_refresh = True
    path = tmp_path / "tokens.json"
    _connector(fake.url, FileTokenStore("wd", path)).client.token()
    # The operator generates a new token in Workday and puts it in the environment.
    fake.refresh_token = "refresh-new-from-ops"
    connector = _connector(
        fake.url, FileTokenStore("wd", path), refresh_token="refresh-new-from-ops"
    )
    assert connector.client.stored_refresh_token() is None
    connector.client.token()
    assert connector.client.stored_refresh_token() is not None


def test_without_secret_key_the_rotation_is_logged_not_kept(
    fake: FakeWorkday, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake.rotate_refresh = True
    connector = _connector(fake.url, _db_store(sqlite_url, secret=None))
    connector.client.token()
    assert "[server] secret_key" in caplog.text and "token_file" in caplog.text
    assert fake.refresh_token not in caplog.text


def test_check_names_the_refresh_token_in_use_never_its_value(
    run_cli, fake: FakeWorkday, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(fake.url)
    config.write_text(
        config.read_text() + '\n[server]\nsecret_key = "a-long-server-secret"\n', encoding="utf-8"
    )
    first = run_cli("--config", str(config), "check", "wd")
    assert first.exit_code == 0, first.output
    assert "refresh token: the configured one (connectors.wd.refresh_token)" in first.stdout
    assert "a rotated one is kept in the database (encrypted)" in first.stdout
    fake.rotate_refresh = True
    second = run_cli("--config", str(config), "check", "wd")
    assert second.exit_code == 0, second.output
    assert "refresh token: the one Workday rotated to" in second.stdout
    assert "ago, kept in the database (encrypted)" in second.stdout
    for output in (first.output, second.output):
        assert fake.refresh_token not in output and "refresh-abc" not in output
    # Without the kept token the third run would fail: the configured one is long dead.
    assert run_cli("--config", str(config), "check", "wd").exit_code == 0


def test_check_without_secret_key_says_a_rotated_token_cannot_be_kept(
    run_cli, fake: FakeWorkday, write_config: Callable[..., Path]
) -> None:
    result = run_cli("--config", str(write_config(fake.url)), "check", "wd")
    assert result.exit_code == 0, result.output
    assert (
        "a rotated one could not be kept: set [server] secret_key or connectors.wd.token_file"
        in result.stdout
    )
