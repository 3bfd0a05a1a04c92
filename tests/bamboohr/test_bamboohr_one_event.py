"""One change, one event: a rating changed in BambooHR reaches coachbridge twice, once in the
field-based webhook's payload and once through the incremental sync the delivery asks for.
Both must be the same review event."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from coachbridge.hris.reviews import store_review_event
from coachbridge.hris.sync import Syncer
from coachbridge.store import Database
from coachbridge.store.tables import ReviewEventRow
from sqlalchemy import select

from tests.bamboohr.conftest import make_connector
from tests.bamboohr.fake_bamboohr import FakeBambooHR

SETTINGS = {"rating_field": "performanceRating", "webhook_secret": "k"}


def _field_based(employee: str, rating: str, stamp: str) -> bytes:
    return json.dumps(
        {
            "employees": [
                {
                    "id": employee,
                    "action": "Updated",
                    "changedFields": ["performanceRating"],
                    "fields": {"performanceRating": rating},
                    "timestamp": stamp,
                }
            ]
        }
    ).encode()


def _ratings_of(db: Database, employee: str) -> list[tuple[float | None, str]]:
    with db.transaction() as s:
        rows = s.scalars(
            select(ReviewEventRow)
            .where(ReviewEventRow.subject_external_id == employee)
            .order_by(ReviewEventRow.id)
        ).all()
        return [(r.raw_rating, r.via) for r in rows]


def _webhook(db: Database, fake: FakeBambooHR, body: bytes) -> None:
    parsed = make_connector(fake.host_url, fake.api_key, **SETTINGS).parse_webhook({}, body)
    with db.transaction() as s:
        for event in parsed.reviews:
            store_review_event(s, event, via="webhook")


@pytest.mark.parametrize("order", ["webhook first", "sync first"])
def test_a_rating_change_is_one_review_event_whichever_way_it_arrives(
    fake: FakeBambooHR, sqlite_db: Database, order: str
) -> None:
    Syncer(sqlite_db, make_connector(fake.host_url, fake.api_key, **SETTINGS)).run()
    assert _ratings_of(sqlite_db, "4") == [(2.0, "sync")]  # the first sync's history

    changed = datetime.now(UTC).replace(microsecond=0)
    fake.update_employee("4", changed.isoformat(), performanceRating="1")
    # BambooHR stamps the delivery a few seconds after the change.
    sent = (changed + timedelta(seconds=7)).strftime("%Y-%m-%dT%H:%M:%S+0000")
    body = _field_based("4", "1", sent)

    def sync() -> None:
        Syncer(sqlite_db, make_connector(fake.host_url, fake.api_key, **SETTINGS)).run()

    steps = [lambda: _webhook(sqlite_db, fake, body), sync]
    for step in steps if order == "webhook first" else reversed(steps):
        step()
    assert [r for r, _ in _ratings_of(sqlite_db, "4")] == [2.0, 1.0]


def test_the_same_rating_again_on_another_day_is_a_new_event(
    fake: FakeBambooHR, sqlite_db: Database
) -> None:
    connector = make_connector(fake.host_url, fake.api_key, **SETTINGS)
    Syncer(sqlite_db, connector).run()
    fake.update_employee("4", "2026-03-01T10:00:00+00:00", performanceRating="1")
    _webhook(sqlite_db, fake, _field_based("4", "1", "2026-03-01T10:00:05+0000"))
    fake.update_employee("4", "2026-05-01T10:00:00+00:00", performanceRating="3")
    _webhook(sqlite_db, fake, _field_based("4", "3", "2026-05-01T10:00:04+0000"))
    fake.update_employee("4", "2026-07-01T10:00:00+00:00", performanceRating="1")
    _webhook(sqlite_db, fake, _field_based("4", "1", "2026-07-01T10:00:03+0000"))
    assert [r for r, _ in _ratings_of(sqlite_db, "4")] == [2.0, 1.0, 3.0, 1.0]
