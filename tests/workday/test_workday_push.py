"""Write-back against the fake: mentorships created, edited and closed; check-ins; dry runs."""

from __future__ import annotations

import pytest
from coachbridge.connectors import PushItem
from coachbridge.errors import ConnectorError
from coachbridge_workday.writeback import worker_ref

from tests.workday.conftest import connector_for
from tests.workday.fake_workday import FakeWorkday


def _pairing(
    status: str = "active",
    external_id: str | None = None,
    kind: str = "mentoring",
    **fields: object,
) -> PushItem:
    values = {
        "program": "Mentoring",
        "kind": kind,
        "start": "2026-01-05",
        "end": "2026-07-05",
        "status": status,
        "end_reason": None,
        "purpose": "Grow into a lead role",
        **fields,
    }
    return PushItem(
        kind="pairing",
        local_id=1,
        fields=values,
        people={"learner": "E000005", "guide": "E000001", "learner_name": "L", "guide_name": "G"},
        external_id=external_id,
        fingerprint=f"fp-{status}",
        previous_fingerprint="fp-old" if external_id else None,
    )


def _session(external_id: str | None = None) -> PushItem:
    return PushItem(
        kind="session",
        local_id=9,
        fields={
            "date": "2026-02-01",
            "start": "2026-02-01T10:00:00+00:00",
            "minutes": 45,
            "program": "Coaching",
            "description": "Coaching session with G",
        },
        people={"learner": "E000005", "guide": "E000001"},
        external_id=external_id,
        fingerprint="s1",
        previous_fingerprint="s0" if external_id else None,
    )


def test_worker_references() -> None:
    assert worker_ref("0123456789abcdef0123456789abcdef", "Employee_ID") == {
        "id": "0123456789abcdef0123456789abcdef"
    }
    assert worker_ref("21001", "Employee_ID") == {"id": "Employee_ID=21001"}
    assert worker_ref("C-7", "Contingent_Worker_ID") == {"id": "Contingent_Worker_ID=C-7"}


def test_mentorship_created_then_closed(fake: FakeWorkday) -> None:
    connector = connector_for(fake.url, mentor_type="mt-formal", close_reason="cr-done")
    [created] = connector.push([_pairing()], dry_run=False)
    assert created.action == "created" and created.external_id in fake.mentorships
    sent = fake.mentorships[created.external_id]
    # Both workers are known to Workday: referenced by their WIDs, never Employee_ID=...
    assert sent["mentee"] == {"id": fake.workers["E000005"].wid}
    assert sent["mentor"] == {"id": fake.workers["E000001"].wid}
    assert sent["mentorType"] == {"id": "mt-formal"} and sent["startDate"] == "2026-01-05"
    assert sent["endDate"] == "2026-07-05" and sent["purpose"] == "Grow into a lead role"

    ended = _pairing("ended", created.external_id, end="2026-03-01", end_reason="learner left")
    [closed] = connector.push([ended], dry_run=False)
    assert closed.action == "closed" and closed.external_id == created.external_id
    state = fake.mentorships[created.external_id]
    assert state["state"] == "closed"
    assert state["close"]["closeMentorshipReason"] == {"id": "cr-done"}
    assert state["close"]["endDate"] == "2026-03-01" and state["close"]["comment"] == "learner left"


def test_edit_of_an_active_mentorship(fake: FakeWorkday) -> None:
    connector = connector_for(fake.url, mentor_type="mt", close_reason="cr")
    [created] = connector.push([_pairing()], dry_run=False)
    [edited] = connector.push(
        [_pairing(external_id=created.external_id, end="2026-09-01")], dry_run=False
    )
    assert (
        edited.action == "updated"
        and fake.mentorships[created.external_id]["endDate"] == "2026-09-01"
    )


def test_missing_keys_are_named(fake: FakeWorkday) -> None:
    connector = connector_for(fake.url)
    [result] = connector.push([_pairing()], dry_run=False)
    assert result.action == "skipped" and "connectors.wd.mentor_type" in result.message
    [result] = connector.push([_pairing("completed", "m-1")], dry_run=False)
    assert result.action == "skipped" and "connectors.wd.close_reason" in result.message
    assert not fake.mentorships


def test_only_mentoring_kinds_become_mentorships(fake: FakeWorkday) -> None:
    connector = connector_for(fake.url, mentor_type="mt", close_reason="cr")
    [result] = connector.push([_pairing(kind="coaching")], dry_run=False)
    assert result.action == "skipped" and not fake.mentorships


def test_workday_validation_error_is_that_items_result(fake: FakeWorkday) -> None:
    connector = connector_for(fake.url, mentor_type="mt", close_reason="cr")
    bad = _pairing()
    bad.people["guide"] = "NOPE"
    results = connector.push([bad, _session()], dry_run=False)
    assert results[0].action == "skipped"
    assert "is not a valid ID value for type = Worker (field mentor)" in results[0].message
    assert results[1].action == "created"


def test_check_in_created_and_updated_without_private_text(fake: FakeWorkday) -> None:
    connector = connector_for(fake.url)
    [created] = connector.push([_session()], dry_run=False)
    assert created.action == "created"
    stored = fake.check_ins[created.external_id]
    # The path names the worker by WID (looked up once by employee id), as Workday documents.
    assert stored["worker"] == fake.workers["E000005"].wid and stored["date"] == "2026-02-01"
    assert fake.log[1][1].endswith("/workers") and fake.log[1][2]["search"] == "E000005"
    assert stored["description"] == "Coaching session with G (45 min)"
    assert set(stored) == {"worker", "date", "description"}
    [updated] = connector.push([_session(created.external_id)], dry_run=False)
    assert updated.action == "updated"
    assert fake.count("GET", "/workers$") == 1  # the WID lookup is cached


def test_dry_run_sends_nothing(fake: FakeWorkday) -> None:
    connector = connector_for(fake.url, mentor_type="mt", close_reason="cr")
    results = connector.push([_pairing(), _session()], dry_run=True)
    assert [r.action for r in results] == ["created", "created"]
    assert not fake.log


def test_goals_are_skipped_with_a_reason(fake: FakeWorkday) -> None:
    item = PushItem(kind="goal", local_id=3, fields={"title": "x"}, people={"owner": "E000005"})
    [result] = connector_for(fake.url).push([item], dry_run=False)
    assert result.action == "skipped" and "read-only" in result.message


def test_talent_management_v1_tenant(fake: FakeWorkday) -> None:
    fake.versions["talentManagement"] = {"v1"}
    connector = connector_for(fake.url, mentor_type="mt", close_reason="cr")
    [created] = connector.push([_pairing()], dry_run=False)
    assert created.action == "created"
    assert (
        fake.count("POST", "/talentManagement/v2/") == 1
        and fake.count("POST", "/talentManagement/v1/") == 1
    )


def test_server_failure_stops_the_push(fake: FakeWorkday) -> None:
    fake.failures = [("checkIns", 503)] * 10
    with pytest.raises(ConnectorError, match="kept failing"):
        connector_for(fake.url, max_retries=2).push([_session()], dry_run=False)


def test_a_worker_workday_does_not_find_is_referenced_as_documented(fake: FakeWorkday) -> None:
    """Body references take ``Employee_ID=...`` (Workday's reference model documents
    ``type=value`` ids); a check-in's path takes the WID only, so without one it is skipped."""
    fake.unlisted = {"E000005"}
    connector = connector_for(fake.url, mentor_type="mt", close_reason="cr")
    [created] = connector.push([_pairing()], dry_run=False)
    assert created.action == "created"
    sent = fake.mentorships[created.external_id]
    assert sent["mentee"] == {"id": "Employee_ID=E000005"}
    assert sent["mentor"] == {"id": fake.workers["E000001"].wid}
    [skipped] = connector.push([_session()], dry_run=False)
    assert skipped.action == "skipped" and "WID" in skipped.message and "E000005" in skipped.message
    assert not fake.check_ins


def test_check_in_answers_carry_only_documented_properties(fake: FakeWorkday) -> None:
    # staffing v6 documents a check-in detail as id, date, description, associatedTopics and
    # checkInAttachments; the fake's record of which worker it belongs to is not in the answer.
    connector = connector_for(fake.url)
    wid = fake.workers["E000005"].wid
    body = {"date": "2026-02-01", "description": "Coaching session"}
    created = connector.client.api(
        "POST", "staffing", f"workers/{wid}/checkIns", what="test", json_body=body
    )
    assert set(created) == {"id", "date", "description"}
    updated = connector.client.api(
        "PATCH",
        "staffing",
        f"workers/{wid}/checkIns/{created['id']}",
        what="test",
        json_body={"description": "Moved"},
    )
    assert updated == {"id": created["id"], "date": "2026-02-01", "description": "Moved"}
    assert fake.check_ins[created["id"]]["worker"] == wid  # kept, but only by the fake
