"""People from staffing REST against the fake: paging, leavers, managers from supervisory orgs."""

from __future__ import annotations

import math

import pytest
from coachbridge.errors import ConnectorError
from coachbridge_workday.rest import split_descriptor

from tests.workday.conftest import connector_for
from tests.workday.fake_workday import FakeWorkday, make_workers


@pytest.fixture
def big() -> FakeWorkday:
    server = FakeWorkday(make_workers(250, seed=3)).start()
    yield server
    server.stop()


def test_descriptor_names() -> None:
    assert split_descriptor("Logan McNeil") == ("Logan", "McNeil")
    assert split_descriptor("Maria Cardoza Lopez (Terminated)") == ("Maria", "Cardoza Lopez")
    assert split_descriptor("Cher") == ("Cher", "")


def test_paged_at_100_until_total_twice(big: FakeWorkday) -> None:
    big.workers["E000010"].active = False
    connector = connector_for(big.url, people_source="rest", people_report=None)
    batch = connector.read_people(None, full=True)
    assert batch.full and len(batch.records) == 250
    calls = [q for m, p, q in big.log if p.endswith("/workers")]
    assert all(q["limit"] == "100" for q in calls)
    without = [q for q in calls if "includeTerminatedWorkers" not in q]
    with_terminated = [q for q in calls if q.get("includeTerminatedWorkers") == "true"]
    assert len(without) == math.ceil(249 / 100) and len(with_terminated) == math.ceil(250 / 100)
    assert [q["offset"] for q in with_terminated] == ["0", "100", "200"]
    by_id = {r.external_id: r for r in batch.records}
    assert by_id["E000010"].status == "inactive"  # seen only with includeTerminatedWorkers
    assert by_id["E000011"].status == "active"


def test_names_and_managers_match_the_tenant(big: FakeWorkday) -> None:
    batch = connector_for(big.url, people_source="rest", people_report=None).read_people(
        None, full=True
    )
    for record in batch.records:
        worker = big.workers[record.external_id]
        assert (record.first_name, record.last_name) == (worker.first, worker.last)
        assert record.manager_external_id == worker.manager_id, record.external_id
        assert record.email == worker.email


def test_org_chart_calls_are_cached(big: FakeWorkday) -> None:
    connector_for(big.url, people_source="rest", people_report=None).read_people(None, full=True)
    charts = [p for m, p, q in big.log if p.endswith("/orgChart")]
    assert len(charts) == len(set(charts))  # never the same organization twice


def test_limit_above_100_is_refused_by_workday(big: FakeWorkday) -> None:
    connector = connector_for(big.url, people_source="rest", people_report=None)
    with pytest.raises(ConnectorError, match=r"limit must be 1\.\.100"):
        connector.client.api("GET", "staffing", "workers", what="workers", params={"limit": 500})


def test_403_on_orgs_names_the_domain(big: FakeWorkday) -> None:
    big.forbidden = [r"/supervisoryOrganizations$"]
    with pytest.raises(ConnectorError, match="View: Supervisory Organization"):
        connector_for(big.url, people_source="rest", people_report=None).read_people(
            None, full=True
        )
