"""BambooHR's two streams: reviews share the people stream's report within one sync (through the
core's SyncContext) and never depend on what an earlier read left on the connector."""

from __future__ import annotations

import json

from coachbridge.connectors import SyncContext
from coachbridge.hris.sync import Syncer
from coachbridge.store import Database

from tests.bamboohr.conftest import make_connector
from tests.bamboohr.fake_bamboohr import FakeBambooHR

RATING = {"rating_field": "performanceRating"}
REPORT = "/api/v1/reports/custom"


def test_a_sync_with_ratings_fetches_the_report_once(
    fake: FakeBambooHR, sqlite_db: Database
) -> None:
    report = Syncer(sqlite_db, make_connector(fake.host_url, fake.api_key, **RATING)).run()
    assert len(report.new) == 4 and report.reviews_new == 4
    assert [c.template for c in fake.log] == [REPORT]


def test_reviews_read_alone_fetch_the_report_themselves(fake: FakeBambooHR) -> None:
    batch = make_connector(fake.host_url, fake.api_key, **RATING).read_reviews(None, full=True)
    assert sorted(e.subject_external_id or "" for e in batch.events) == ["1", "2", "3", "4"]
    assert [c.template for c in fake.log] == [REPORT]


def test_reviews_do_not_use_rows_an_earlier_read_left_behind(fake: FakeBambooHR) -> None:
    connector = make_connector(fake.host_url, fake.api_key, **RATING)
    since = json.dumps({"since": "2025-06-01T00:00:00+00:00", "supervisor": "supervisorEId"})
    fake.update_employee("4", "2099-01-01T00:00:00+00:00", performanceRating="4")
    changed = connector.read_people(since, full=False)  # only employee 4
    assert [r.external_id for r in changed.records] == ["4"]
    # Without this sync's context the reviews stream reads everyone, not the rows of that read.
    alone = connector.read_reviews(None, full=True)
    assert len(alone.events) == 4


def test_within_one_sync_reviews_see_what_people_read(fake: FakeBambooHR) -> None:
    connector = make_connector(fake.host_url, fake.api_key, **RATING)
    context = SyncContext(connector="bamboo")
    since = json.dumps({"since": "2025-06-01T00:00:00+00:00", "supervisor": "supervisorEId"})
    fake.update_employee("4", "2099-01-01T00:00:00+00:00", performanceRating="4")
    connector.read_people(since, full=False, context=context)
    reviews = connector.read_reviews(None, full=False, context=context)
    assert [e.subject_external_id for e in reviews.events] == ["4"]
    assert len(fake.calls(REPORT)) == 1  # no second report
