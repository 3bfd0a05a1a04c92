"""Two processes planning sessions for the same person on PostgreSQL never double-book them."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from coachbridge.pairings.scheduling import schedule_pairings
from coachbridge.store import Database
from coachbridge.store.tables import SessionRow
from sqlalchemy import select

from .scheduling_factories import Factory, program

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.postgres
def test_concurrent_runs_wait_for_each_other(pg_url: str) -> None:
    db = Database(pg_url)
    db.upgrade()
    try:
        factory = Factory(db)
        a, b = program(id="a"), program(id="b", kind="coaching")
        guide = factory.person()
        factory.pairing(a, factory.person(), guide)
        factory.pairing(b, factory.person(), guide)
        planned_a = threading.Event()
        errors: list[BaseException] = []

        def first() -> None:
            try:
                with db.transaction() as s:
                    schedule_pairings(s, a, now=NOW)
                    planned_a.set()
                    time.sleep(0.5)  # hold the uncommitted plan while the other run starts
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                planned_a.set()

        thread = threading.Thread(target=first)
        thread.start()
        assert planned_a.wait(10)
        with db.transaction() as s:
            schedule_pairings(s, b, now=NOW)
        thread.join(10)
        assert not errors
        with db.transaction() as s:
            rows = list(s.scalars(select(SessionRow).order_by(SessionRow.start)))
        assert len(rows) == 12
        # Both pairings share the guide: no two sessions may overlap.
        for earlier, later in pairwise(rows):
            assert earlier.start + timedelta(minutes=earlier.minutes) <= later.start
    finally:
        db.dispose()
