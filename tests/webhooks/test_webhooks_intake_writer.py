"""The inbox's group commit: request threads take turns at writing, one statement per round."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from coachbridge.errors import DatabaseUnavailable
from coachbridge.store import Database
from coachbridge.store.tables import InboxRow
from coachbridge_webhooks import create_app
from coachbridge_webhooks.inbox import GroupCommitter, _Pending
from sqlalchemy import select, text

from tests.webhooks.conftest import Env, _env, review, signed


@pytest.fixture
def pgenv(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Env:
    return _env(tmp_path, pg_url, monkeypatch)


def _rows(db: Database) -> dict[str, InboxRow]:
    with db.transaction() as s:
        return {row.delivery_id: row for row in s.scalars(select(InboxRow))}


def test_a_stored_delivery_reads_back_through_the_orm_as_written(wenv: Env):
    committer = GroupCommitter(wenv.db)
    before = datetime.now(UTC)
    assert committer.submit("reviews", "d-1", "application/json", b'{"a": 1}') is True
    row = _rows(wenv.db)["d-1"]
    assert (row.connector, row.content_type, row.body) == (
        "reviews",
        "application/json",
        b'{"a": 1}',
    )
    assert (row.status, row.attempts, row.next_attempt_at, row.locked_by) == (
        "pending",
        0,
        None,
        None,
    )
    assert row.received_at.tzinfo is not None
    assert before - timedelta(seconds=1) <= row.received_at <= datetime.now(UTC)


def test_deliveries_arriving_during_a_write_share_the_next_round(wenv: Env):
    committer = GroupCommitter(wenv.db)
    real = committer._insert.run
    sizes: list[int] = []

    def slow(items: list[_Pending], now: datetime) -> set[tuple[str, str]]:
        sizes.append(len(items))
        time.sleep(0.02)  # a slow disk: everybody arriving meanwhile waits for the next round
        return real(items, now)

    committer._insert.run = slow  # type: ignore[method-assign]
    ids = [f"d-{n}" for n in range(24)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(
            pool.map(lambda d: committer.submit("reviews", d, "application/json", b"{}"), ids)
        )
    assert all(answers)
    assert set(_rows(wenv.db)) == set(ids)
    assert sum(sizes) == 24 and max(sizes) > 1  # shared rounds, every delivery written once


def test_one_bad_delivery_in_a_round_fails_alone(wenv: Env):
    committer = GroupCommitter(wenv.db)
    real = committer._insert.run

    def picky(items: list[_Pending], now: datetime) -> set[tuple[str, str]]:
        if any(p.delivery_id == "bad" for p in items):
            raise RuntimeError("storing deliveries failed: the store refused a row")
        return real(items, now)

    committer._insert.run = picky  # type: ignore[method-assign]
    batch = [_Pending("reviews", d, "application/json", b"{}") for d in ("a", "bad", "b")]
    committer._write(batch)
    assert [p.new for p in batch] == [True, None, True]
    assert isinstance(batch[1].error, RuntimeError)
    assert set(_rows(wenv.db)) == {"a", "b"}


@pytest.mark.postgres
def test_postgresql_refusing_one_row_fails_only_that_delivery(pgenv: Env):
    env = pgenv
    committer = GroupCommitter(env.db)
    batch = [
        _Pending("reviews", "fine-1", "application/json", b"{}"),
        _Pending("reviews", "x" * 400, "application/json", b"{}"),  # longer than the column
        _Pending("reviews", "fine-2", "application/json", b"{}"),
    ]
    committer._write(batch)
    assert (batch[0].new, batch[2].new) == (True, True)
    assert batch[1].error is not None and "x" * 50 not in str(batch[1].error)
    assert set(_rows(env.db)) == {"fine-1", "fine-2"}
    assert committer.submit("reviews", "after", "application/json", b"{}") is True


def test_a_waiting_delivery_that_times_out_leaves_the_queue(swenv: Env):
    committer = GroupCommitter(swenv.db)
    real = committer._insert.run
    release = threading.Event()

    def stuck(items: list[_Pending], now: datetime) -> set[tuple[str, str]]:
        release.wait(10)
        return real(items, now)

    committer._insert.run = stuck  # type: ignore[method-assign]
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(committer.submit, "reviews", "first", "application/json", b"{}")
        time.sleep(0.1)  # "first" is writing (and stuck)
        with pytest.raises(TimeoutError):
            committer.submit("reviews", "late", "application/json", b"{}", timeout=0.2)
        release.set()
        assert first.result(timeout=10) is True
    committer._insert.run = real  # type: ignore[method-assign]
    assert committer.submit("reviews", "next", "application/json", b"{}") is True
    assert set(_rows(swenv.db)) == {"first", "next"}  # "late" was answered 503, never stored


@pytest.mark.postgres
def test_the_writer_reconnects_after_postgresql_drops_its_connection(pgenv: Env):
    env = pgenv
    committer = GroupCommitter(env.db)
    assert committer.submit("reviews", "before", "application/json", b"{}") is True
    backend = committer._insert._conn.driver_connection.info.backend_pid
    with env.db.engine.begin() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    with pytest.raises(DatabaseUnavailable):
        committer.submit("reviews", "lost", "application/json", b"{}")
    assert committer.submit("reviews", "after", "application/json", b"{}") is True
    assert {"before", "after"} <= set(_rows(env.db))


def test_an_unreachable_database_answers_503_and_stores_nothing(swenv: Env):
    down = Database("postgresql://nobody:hunter2@127.0.0.1:1/none")
    app = create_app(swenv.config, database=down, registry=swenv.registry)
    body, headers = signed(review(), msg_id="msg_down")
    response = app.test_client().post("/webhooks/reviews", data=body, headers=headers)
    assert response.status_code == 503
    text_ = response.get_data(as_text=True)
    assert "hunter2" not in text_ and "nobody" not in text_
