"""Push results are recorded item by item: a crash loses at most the item in flight.

The goal is written first, then the session (whose training-type lookup we hold). If the push
dies there, the goal's BambooHR id must already be in ``external_refs``, so the next push
updates it instead of creating a second goal in BambooHR.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from coachbridge.connectors import PushItem, PushResult
from coachbridge.hris.push import run_push
from coachbridge.store import Database
from coachbridge.store.tables import ExternalRefRow
from sqlalchemy import select

from tests.bamboohr.conftest import make_connector
from tests.bamboohr.fake_bamboohr import FakeBambooHR
from tests.bamboohr.test_bamboohr_push import setup_program


def _refs(db: Database) -> list[tuple[str, int, str | None]]:
    with db.transaction() as s:
        return [
            (r.kind, r.local_id, r.external_id)
            for r in s.scalars(select(ExternalRefRow).order_by(ExternalRefRow.kind))
        ]


def test_each_result_is_stored_before_the_next_item_is_pushed(
    fake: FakeBambooHR, db: Database
) -> None:
    ids = setup_program(fake, db)
    real = make_connector(fake.host_url, fake.api_key)
    stored_when_called: list[list[tuple[str, int, str | None]]] = []

    class Watching:
        """The real connector, noting what the store already held when each item arrived."""

        name = real.name
        push_kinds = real.push_kinds

        def push(self, items: list[PushItem], *, dry_run: bool) -> list[PushResult]:
            stored_when_called.append(_refs(db))
            return real.push(items, dry_run=dry_run)

    report = run_push(db, Watching())  # type: ignore[arg-type]
    assert report.counts() == {"goal": {"created": 1}, "session": {"created": 1}}
    (goal,) = fake.goals.values()
    assert stored_when_called == [[], [("goal", ids["goal"], f"4:{goal['id']}")]]


def test_a_push_killed_mid_run_keeps_what_was_written(
    fake: FakeBambooHR, sqlite_url: str, tmp_path: Path
) -> None:
    db = Database(sqlite_url)
    db.upgrade()
    ids = setup_program(fake, db)
    reached, release = threading.Event(), threading.Event()
    original = fake.h_list_types

    def held(request: Any, body: Any) -> Any:  # the second item's first request
        reached.set()
        release.wait(30)
        return original(request, body)

    fake.h_list_types = held  # type: ignore[method-assign]
    # The handler holds the fake's lock; the test reads fake.goals only after release.
    config = tmp_path / "coachbridge.toml"
    config.write_text(
        f'[connectors.bamboo]\nplugin = "bamboohr"\ncompany_domain = "acme"\n'
        f'api_key = "${{BAMBOO_KEY}}"\nbase_url = "{fake.host_url}"\n'
    )
    script = Path(sys.executable).parent / "coachbridge"
    proc = subprocess.Popen(
        [str(script), "--config", str(config), "--db", sqlite_url, "push", "bamboo"],
        env={**os.environ, "BAMBOO_KEY": fake.api_key},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert reached.wait(60), proc.stderr.read() if proc.poll() is not None else "no request"
        os.kill(proc.pid, signal.SIGKILL)  # no finally, no atexit: a real crash
        proc.wait(30)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        if proc.stderr:
            proc.stderr.close()
    del fake.h_list_types
    (goal,) = fake.goals.values()
    assert _refs(db) == [("goal", ids["goal"], f"4:{goal['id']}")]

    report = run_push(db, make_connector(fake.host_url, fake.api_key))
    assert report.counts() == {"goal": {"unchanged": 1}, "session": {"created": 1}}
    assert len(fake.goals) == 1 and len(fake.training_records) == 1
    db.dispose()
