"""End to end against the local fake BambooHR: full and incremental sync, ratings, faults."""

from __future__ import annotations

import json

import pytest
from coachbridge.errors import ConnectorError
from coachbridge.hris.sync import Syncer
from coachbridge.store import Database
from coachbridge.store.tables import (
    ExternalIdRow,
    PersonRow,
    ReviewEventRow,
    SyncStateRow,
)
from sqlalchemy import select

from tests.bamboohr.conftest import make_connector, spec_operations
from tests.bamboohr.fake_bamboohr import FakeBambooHR


def people_by_ext(db: Database, name: str = "bamboo") -> dict[str, PersonRow]:
    with db.transaction() as s:
        links = {
            link.external_id: s.get(PersonRow, link.person_id)
            for link in s.scalars(select(ExternalIdRow).where(ExternalIdRow.connector == name))
        }
        for row in links.values():
            s.expunge(row)
        return links


def cursor(db: Database, stream: str = "people") -> str | None:
    with db.transaction() as s:
        state = s.get(SyncStateRow, ("bamboo", stream))
        return state.cursor if state else None


def test_full_sync_maps_people_and_managers_in_one_request(
    fake: FakeBambooHR, db: Database
) -> None:
    connector = make_connector(fake.host_url, fake.api_key)
    report = Syncer(db, connector).run()
    assert len(report.new) == 4 and report.warnings == []
    assert [c.template for c in fake.log] == ["/api/v1/reports/custom"]
    call = fake.log[0]
    assert call.query == {"format": "JSON", "onlyCurrent": "true"}
    assert call.headers["Content-Type"] == "application/json"
    assert call.headers["Accept"] == "application/json"
    assert "filters" not in call.body  # everyone, active and inactive
    people = people_by_ext(db)
    ada, charles, grace, alan = (people[k] for k in "1234")
    assert charles.name == "Charlie Babbage" and charles.email == "charles@acme.test"
    assert (charles.job_title, charles.department, charles.division, charles.location) == (
        "CTO",
        "Eng",
        "HQ",
        "London",
    )
    assert str(charles.hire_date) == "2016-03-01"
    assert charles.manager_id == ada.id and alan.manager_id == charles.id
    assert ada.manager_id is None
    assert grace.status == "inactive" and str(grace.termination_date) == "2024-12-31"
    assert ada.status == "active" and ada.termination_date is None  # "0000-00-00" is no date
    state = json.loads(cursor(db))
    assert state == {"since": "2025-01-01T00:00:00+00:00", "supervisor": "supervisorEId"}


def test_supervisor_eid_as_employee_number_and_email_fallback(
    fake: FakeBambooHR, sqlite_db: Database
) -> None:
    db = sqlite_db
    # supervisorEId holds employee numbers here, and supervisorId is missing: resolve by number.
    for emp, data in fake.employees.items():
        sup = data.get("supervisorEId")
        data["supervisorEId"] = fake.employees[sup]["employeeNumber"] if sup else None
        data["supervisorId"] = None
        if emp != "4":
            data["supervisorEmail"] = None
    fake.employees["4"]["supervisorEId"] = None  # only the email names Alan's manager
    Syncer(db, make_connector(fake.host_url, fake.api_key)).run()
    people = people_by_ext(db)
    assert people["2"].manager_id == people["1"].id
    assert people["4"].manager_id == people["2"].id
    assert json.loads(cursor(db))["supervisor"] == "supervisorEId:number"


def test_fields_the_key_cannot_see_are_warned_by_name(
    fake: FakeBambooHR, sqlite_db: Database
) -> None:
    db = sqlite_db
    fake.hidden_fields = {"workEmail", "department"}
    report = Syncer(db, make_connector(fake.host_url, fake.api_key)).run()
    assert len(report.warnings) == 1
    assert "workEmail" in report.warnings[0] and "department" in report.warnings[0]
    assert "jobTitle" not in report.warnings[0]


def test_incremental_sync_fetches_only_changes_in_constant_requests(
    fake: FakeBambooHR, db: Database
) -> None:
    connector = make_connector(fake.host_url, fake.api_key)
    Syncer(db, connector).run()
    fake.log.clear()
    later = "2025-02-01T00:00:00+00:00"
    fake.update_employee("4", later, jobTitle="Senior Engineer")
    fake.update_employee("3", later, status="Active", terminationDate="0000-00-00")
    fake.add_employee(
        "5",
        later,
        firstName="Katherine",
        lastName="Johnson",
        workEmail="kj@acme.test",
        jobTitle="Analyst",
        department="Eng",
        division="HQ",
        location="NYC",
        hireDate="2025-02-01",
        employeeNumber="E5",
        supervisorEId="4",
    )
    report = Syncer(db, make_connector(fake.host_url, fake.api_key)).run()
    templates = [c.template for c in fake.log]
    assert templates == ["/api/v1/employees/changed", "/api/v1/reports/custom"]
    assert fake.log[0].query["since"] == "2025-01-01T00:00:00+00:00"
    assert sorted(fake.log[1].body["filters"]["employeeIds"]) == [3, 4, 5]
    assert (len(report.new), len(report.changed), len(report.reactivated)) == (1, 1, 1)
    people = people_by_ext(db)
    assert people["4"].job_title == "Senior Engineer"
    assert people["5"].manager_id == people["4"].id
    assert json.loads(cursor(db))["since"] == later
    # Nothing changed since: one cheap request, nothing written.
    fake.log.clear()
    report = Syncer(db, make_connector(fake.host_url, fake.api_key)).run()
    assert [c.template for c in fake.log] == ["/api/v1/employees/changed"]
    assert not (report.new or report.changed)


def test_gateway_base_url_form(fake: FakeBambooHR, sqlite_db: Database) -> None:
    db = sqlite_db
    report = Syncer(db, make_connector(fake.gateway_url, fake.api_key)).run()
    assert len(report.new) == 4
    assert fake.log[0].path == "/v1/reports/custom"


def test_rating_changes_become_review_events(fake: FakeBambooHR, db: Database) -> None:
    connector = make_connector(fake.host_url, fake.api_key, rating_field="performanceRating")
    Syncer(db, connector).run()
    with db.transaction() as s:
        first = list(s.scalars(select(ReviewEventRow)))
    # The first sync back-fills: recorded, but not run through the rules.
    assert len(first) == 4 and {r.rules_status for r in first} == {"skipped"}
    fake.update_employee("4", "2099-01-01T00:00:00+00:00", performanceRating="4")
    fake.update_employee("2", "2099-01-01T00:00:00+00:00", jobTitle="Chief Engineer")
    report = Syncer(
        db, make_connector(fake.host_url, fake.api_key, rating_field="performanceRating")
    ).run()
    assert report.reviews_new == 1  # Charles changed, but not his rating
    with db.transaction() as s:
        event = s.scalars(select(ReviewEventRow).order_by(ReviewEventRow.id.desc())).first()
        assert event is not None
        assert (event.raw_rating, event.rating, event.scale_max) == (4.0, 0.75, 5.0)
        assert event.subject_external_id == "4" and event.rules_status == "pending"
        assert event.person_id == people_by_ext(db)["4"].id
    # A re-run sees nothing new.
    assert (
        Syncer(db, make_connector(fake.host_url, fake.api_key, rating_field="performanceRating"))
        .run()
        .reviews_new
        == 0
    )


@pytest.mark.parametrize("fault", ["html", "xml", "truncated", "500"])
def test_a_failing_incremental_sync_keeps_store_and_cursor(
    fake: FakeBambooHR, sqlite_db: Database, fault: str
) -> None:
    db = sqlite_db
    Syncer(db, make_connector(fake.host_url, fake.api_key)).run()
    before = cursor(db)
    fake.update_employee("4", "2025-03-01T00:00:00+00:00", jobTitle="Changed")
    connector = make_connector(fake.host_url, fake.api_key, max_retries=0)
    original = fake.h_report
    # The changed list succeeds; the report that follows fails.
    fake.h_report = lambda request, body: fake._fault(fault)  # type: ignore[method-assign]
    with pytest.raises(ConnectorError) as info:
        Syncer(db, connector).run()
    fake.h_report = original  # type: ignore[method-assign]
    assert fake.api_key not in str(info.value)
    assert "BambooHR POST v1/reports/custom" in str(info.value)
    assert cursor(db) == before
    assert people_by_ext(db)["4"].job_title == "Engineer"
    # The next run repeats the window and picks the change up.
    Syncer(db, make_connector(fake.host_url, fake.api_key)).run()
    assert people_by_ext(db)["4"].job_title == "Changed"


def test_throttling_is_retried_with_retry_after(fake: FakeBambooHR, sqlite_db: Database) -> None:
    db = sqlite_db
    fake.throttle = [(503, "2"), (429, "1")]
    connector = make_connector(fake.host_url, fake.api_key)
    slept: list[float] = []
    connector.client.sleep = slept.append
    report = Syncer(db, connector).run()
    assert len(report.new) == 4 and slept == [2.0, 1.0]


def test_requests_follow_the_openapi_spec(fake: FakeBambooHR, sqlite_db: Database) -> None:
    db = sqlite_db
    ops = spec_operations()
    Syncer(db, make_connector(fake.host_url, fake.api_key)).run()
    fake.update_employee("4", "2025-02-01T00:00:00+00:00", jobTitle="X")
    Syncer(db, make_connector(fake.host_url, fake.api_key)).run()
    assert fake.log
    for call in fake.log:
        assert call.template in ops, call.template
        assert call.method in ops[call.template], (call.method, call.template)
        for required in ops[call.template][call.method]:
            assert required in call.query, (required, call.template)


def write_config(tmp_path, base_url: str, **extra: str):  # type: ignore[no-untyped-def]
    lines = [
        "[connectors.bamboo]",
        'plugin = "bamboohr"',
        'company_domain = "acme"',
        'api_key = "${BAMBOO_KEY}"',
        f'base_url = "{base_url}"',
        *(f'{k} = "{v}"' for k, v in extra.items()),
    ]
    path = tmp_path / "coachbridge.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_cli_check_and_sync_against_the_fake(
    fake: FakeBambooHR, sqlite_url: str, run_cli, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, fake.host_url)
    env = {"BAMBOO_KEY": fake.api_key}
    checked = run_cli("--config", config, "--db", sqlite_url, "check", env=env)
    assert checked.exit_code == 0, checked.output
    assert "connector bamboo: ok" in checked.stdout
    fake.hidden_fields = {"workEmail"}
    checked = run_cli("--config", config, "--db", sqlite_url, "check", env=env)
    assert checked.exit_code == 1 and "cannot see these needed fields: workEmail" in checked.stdout
    fake.hidden_fields = set()
    synced = run_cli("--config", config, "--db", sqlite_url, "sync", "bamboo", env=env)
    assert synced.exit_code == 0, synced.output
    assert "4 new" in synced.stdout


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda fake: setattr(fake, "api_key", "other"), "rejected the API key (401)"),
        (lambda fake: setattr(fake, "forbidden", True), "refused access (403): "),
        (lambda fake: setattr(fake, "company", "other-co"), "(unknown company or path)"),
    ],
)
def test_cli_sync_failures_are_one_clear_line(
    fake: FakeBambooHR,
    sqlite_url: str,
    run_cli,
    tmp_path,
    mutate,
    expected: str,  # type: ignore[no-untyped-def]
) -> None:
    config = write_config(tmp_path, fake.gateway_url)
    env = {"BAMBOO_KEY": fake.api_key}
    assert run_cli("--config", config, "--db", sqlite_url, "sync", env=env).exit_code == 0
    mutate(fake)
    result = run_cli("--config", config, "--db", sqlite_url, "sync", "--full", env=env)
    assert result.exit_code == 1
    assert expected in result.output and "Traceback" not in result.output
    assert env["BAMBOO_KEY"] not in result.output
    people = run_cli("--config", config, "--db", sqlite_url, "people", "--format", "json", env=env)
    assert len(json.loads(people.stdout)) == 4  # nothing already synced was lost


def _spec_required(title: str) -> list[str]:
    """The ``required`` list of the response schema with this title in BambooHR's spec."""
    from tests.bamboohr.conftest import SPEC

    lines = SPEC.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f"title: {title}")
    block = iter(lines[start + 1 : start + 12])
    for line in block:
        if line.strip() == "required:":
            break
    required: list[str] = []
    for line in block:
        if not line.strip().startswith("- "):
            break
        required.append(line.strip()[2:].strip("'"))
    return required


def test_fake_answers_have_the_spec_shapes(fake: FakeBambooHR) -> None:
    import requests

    auth = (fake.api_key, "x")
    json_accept = {"Accept": "application/json"}
    changed = requests.get(
        f"{fake.host_url}/api/v1/employees/changed",
        params={"since": "2024-01-01T00:00:00+00:00"},
        auth=auth,
        headers=json_accept,
        timeout=5,
    )
    assert _spec_required("ChangedEmployeeIdsResponse") == ["latest", "employees"]
    assert set(changed.json()) == {"latest", "employees"}
    assert isinstance(changed.json()["employees"], dict)  # keyed by id, not a list
    # Without the JSON Accept header the fake answers XML, as BambooHR may.
    xml = requests.get(
        f"{fake.host_url}/api/v1/employees/changed",
        params={"since": "2024-01-01T00:00:00+00:00"},
        auth=auth,
        timeout=5,
    )
    assert xml.text.startswith("<?xml")
    # The custom report refuses */* without ?format= (404) and a charset in Content-Type (400).
    report = f"{fake.host_url}/api/v1/reports/custom"
    body = json.dumps({"fields": ["firstName"]})
    star = requests.post(
        report, data=body, auth=auth, headers={"Content-Type": "application/json"}, timeout=5
    )
    assert star.status_code == 404
    charset = requests.post(
        report,
        params={"format": "JSON"},
        data=body,
        auth=auth,
        headers={"Content-Type": "application/json; charset=UTF-8"},
        timeout=5,
    )
    assert charset.status_code == 400
    # Training records of someone without any: [] rather than {}.
    records = requests.get(
        f"{fake.host_url}/api/v1/training/record/employee/1",
        auth=auth,
        headers=json_accept,
        timeout=5,
    )
    assert records.json() == []
    assert requests.get(report, timeout=5).status_code in (401, 404)


def test_a_field_that_becomes_hidden_keeps_its_stored_value(
    fake: FakeBambooHR, sqlite_db: Database
) -> None:
    Syncer(sqlite_db, make_connector(fake.host_url, fake.api_key)).run()
    fake.hidden_fields = {"workEmail", "supervisorEId", "supervisorId", "supervisorEmail"}
    fake.update_employee("4", "2025-02-01T00:00:00+00:00", jobTitle="Staff Engineer")
    report = Syncer(sqlite_db, make_connector(fake.host_url, fake.api_key)).run(full=True)
    assert any("workEmail" in w for w in report.warnings)
    people = people_by_ext(sqlite_db)
    assert people["4"].job_title == "Staff Engineer"
    assert people["4"].email == "alan@acme.test"  # not wiped because the key lost access
    assert people["4"].manager_id == people["2"].id


def test_extra_fields_are_kept_and_rules_can_use_them(fake: FakeBambooHR, db: Database) -> None:
    from coachbridge.domain.rule import Rule
    from coachbridge.programs.rules import event_facts, render

    fake.update_employee("2", "2025-01-01T00:00:00+00:00", customCostCenter="CC-42")
    connector = make_connector(fake.host_url, fake.api_key, fields=["customCostCenter"])
    Syncer(db, connector).run()
    people = people_by_ext(db)
    assert people["2"].extra == {"customCostCenter": "CC-42", "employeeNumber": "E2"}
    assert people["1"].extra == {"employeeNumber": "E1"}  # no cost centre: nothing kept

    fake.update_employee("2", customCostCenter="CC-7")
    report = Syncer(db, connector).run()
    assert [c.external_id for c in report.changed] == ["2"]
    assert "extra" in report.changed[0].fields
    assert people_by_ext(db)["2"].extra["customCostCenter"] == "CC-7"

    rule = Rule.model_validate(
        {
            "on": "review.completed",
            "when": [{"field": "person.extra.customCostCenter", "op": "in", "value": ["CC-7"]}],
            "then": {"enroll": "p", "goal": "Plan for {person_extra_customCostCenter}"},
        }
    )
    with db.transaction() as s:
        charles, ada = (s.get(PersonRow, people_by_ext(db)[k].id) for k in "21")
        event = ReviewEventRow(type="review.completed", cycle="2026-H2", rating=0.25)
        assert rule.matches(event_facts(event, charles))
        assert not rule.matches(event_facts(event, ada))  # no such field: no match
        assert render(rule.then.goal, event_facts(event, charles)) == "Plan for CC-7"
        assert render(rule.then.goal, event_facts(event, ada)) == "Plan for "
    with pytest.raises(ValueError, match=r"person\.extra\.<name>"):
        Rule.model_validate(
            {
                "on": "review.completed",
                "when": [{"field": "person.shoe", "op": "==", "value": 1}],
                "then": {"enroll": "p"},
            }
        )


def test_a_custom_field_the_key_cannot_see_is_kept() -> None:
    from coachbridge_bamboohr.mapping import to_record

    row = {"id": "2", "firstName": "Charles", "employeeNumber": "E2", "customCostCenter": ""}
    record, _ = to_record(row, None, ["customCostCenter"], present=["id", "firstName"])
    assert record is not None and record.extra == {}  # neither field returned: both kept
    record, _ = to_record(row, None, ["customCostCenter"], present=list(row))
    assert record is not None  # returned but empty: the stored value goes
    assert record.extra == {"customCostCenter": None, "employeeNumber": "E2"}
