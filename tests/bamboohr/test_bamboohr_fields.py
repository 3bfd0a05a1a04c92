"""Field ids either way (aliases or numeric ids in the custom report's answer), and a key whose
user may not see training settings."""

from __future__ import annotations

import pytest
from coachbridge.errors import ConnectorError
from coachbridge.hris.push import run_push
from coachbridge.store import Database
from coachbridge.store.tables import ExternalRefRow
from sqlalchemy import select

from tests.bamboohr.conftest import make_connector
from tests.bamboohr.fake_bamboohr import FakeBambooHR
from tests.bamboohr.test_bamboohr_push import setup_program


def _people(fake: FakeBambooHR) -> dict[str, tuple]:
    connector = make_connector(fake.host_url, fake.api_key, rating_field="performanceRating")
    batch = connector.read_people(None, full=True)
    return {
        r.external_id: (r.first_name, r.email, r.job_title, r.manager_external_id, r.status)
        for r in batch.records
    }, batch.warnings


def test_an_answer_keyed_by_numeric_field_ids_reads_like_one_keyed_by_aliases(
    fake: FakeBambooHR,
) -> None:
    by_alias, warnings = _people(fake)
    assert not warnings
    fake.report_keys = "id"
    by_id, warnings = _people(fake)
    assert by_id == by_alias and not warnings
    assert by_id["4"] == ("Alan", "alan@acme.test", "Engineer", "2", by_alias["4"][4])
    # The field metadata was read to match them, once.
    assert len(fake.calls("/api/v1/meta/fields")) == 1


def test_an_alias_answer_costs_no_metadata_request(fake: FakeBambooHR) -> None:
    _people(fake)
    assert fake.calls("/api/v1/meta/fields") == []


def test_reviews_read_the_rating_whichever_key_the_answer_uses(fake: FakeBambooHR) -> None:
    fake.report_keys = "id"
    connector = make_connector(fake.host_url, fake.api_key, rating_field="performanceRating")
    events = connector.read_reviews(None, full=True).events
    ratings = {e.subject_external_id: e.raw_rating for e in events}
    assert ratings["4"] == 2.0 and ratings["1"] == 5.0


def test_push_without_training_settings_writes_goals_then_names_the_permission(
    fake: FakeBambooHR, sqlite_db: Database
) -> None:
    setup_program(fake, sqlite_db)
    fake.training_forbidden = True
    with pytest.raises(ConnectorError) as raised:
        run_push(sqlite_db, make_connector(fake.host_url, fake.api_key))
    message = str(raised.value)
    assert "training settings" in message and "403" in message and "\n" not in message
    assert len(fake.goals) == 1 and not fake.training_records
    with sqlite_db.transaction() as s:
        kinds = {r.kind for r in s.scalars(select(ExternalRefRow))}
    assert kinds == {"goal"}  # the goal's id is kept: the next push does not create it again


def test_check_reports_training_settings(fake: FakeBambooHR) -> None:
    ok = make_connector(fake.host_url, fake.api_key).check()
    assert any(r.ok and "training settings readable" in r.message for r in ok)
    fake.training_forbidden = True
    denied = make_connector(fake.host_url, fake.api_key).check()
    assert any(not r.ok and "training settings" in r.message for r in denied)
