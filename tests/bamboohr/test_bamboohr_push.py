"""Write-back: the core's push items and the BambooHR goals and training records they become."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

from coachbridge.hris.push import build_push_items, run_push
from coachbridge.hris.sync import Syncer
from coachbridge.store import Database
from coachbridge.store.tables import (
    ExternalIdRow,
    ExternalRefRow,
    GoalRow,
    PairingRow,
    ProgramRow,
    SessionRow,
)
from sqlalchemy import select

from tests.bamboohr.conftest import make_connector, spec_operations
from tests.bamboohr.fake_bamboohr import FakeBambooHR

PRIVATE = "PRIVATE NOTE do not sync"


def setup_program(fake: FakeBambooHR, db: Database) -> dict[str, int]:
    """Sync the fake's people, then Charles coaches Alan: one goal, a held and a planned session."""
    Syncer(db, make_connector(fake.host_url, fake.api_key)).run()
    with db.transaction() as s:
        pid = {
            link.external_id: link.person_id
            for link in s.scalars(select(ExternalIdRow).where(ExternalIdRow.connector == "bamboo"))
        }
        s.add(
            ProgramRow(
                id="lead",
                name="Leadership coaching",
                kind="coaching",
                settings={"objective": "grow leaders"},
            )
        )
        s.flush()
        pairing = PairingRow(
            program_id="lead",
            learner_id=pid["4"],
            guide_id=pid["2"],
            status="active",
            activated_at=datetime(2025, 1, 6, tzinfo=UTC),
        )
        s.add(pairing)
        s.flush()
        goal = GoalRow(
            owner_id=pid["4"],
            pairing_id=pairing.id,
            program_id="lead",
            title="Lead a design review",
            measure="reviews led",
            target="3",
            due_date=date(2025, 6, 30),
            progress=40.0,
            status="in_progress",
        )
        imported = GoalRow(  # came from an HRIS: never pushed back
            owner_id=pid["4"],
            title="Imported",
            source_key="import:bamboo:77",
            progress=0.0,
        )
        held = SessionRow(
            pairing_id=pairing.id,
            seq=1,
            start=datetime(2025, 1, 13, 15, 0, tzinfo=UTC),
            minutes=45,
            status="held",
            agenda="AGENDA text",
            private_notes=PRIVATE,
            action_items=["ACTION item"],
        )
        planned = SessionRow(
            pairing_id=pairing.id,
            seq=2,
            start=datetime(2025, 1, 27, 15, 0, tzinfo=UTC),
            minutes=45,
            status="scheduled",
        )
        s.add_all([goal, imported, held, planned])
        s.flush()
        return {"goal": goal.id, "held": held.id, "planned": planned.id, "pairing": pairing.id}


def test_push_items_carry_ids_emails_and_never_private_text(
    fake: FakeBambooHR, sqlite_db: Database
) -> None:
    db = sqlite_db
    ids = setup_program(fake, db)
    with db.transaction() as s:
        items = build_push_items(s, "bamboo")
    kinds = [(i.kind, i.local_id) for i in items]
    assert kinds == [("goal", ids["goal"]), ("session", ids["held"]), ("pairing", ids["pairing"])]
    goal, session, pairing = items
    assert goal.fields == {
        "title": "Lead a design review",
        "description": "Measure: reviews led\nTarget: 3",
        "due_date": "2025-06-30",
        "progress": 40.0,
        "percent": 40,
        "status": "in_progress",
        "completion_date": None,
        "program": "Leadership coaching",
    }
    assert goal.people["owner"] == "4" and goal.people["learner"] == "4"
    assert goal.people["guide"] == "2" and goal.people["guide_email"] == "charles@acme.test"
    assert session.fields["date"] == "2025-01-13" and session.fields["minutes"] == 45
    assert pairing.fields["purpose"] == "grow leaders" and pairing.fields["start"] == "2025-01-06"
    dumped = json.dumps([(i.fields, i.people) for i in items])
    for secret in (PRIVATE, "AGENDA", "ACTION"):
        assert secret not in dumped
    assert all(i.external_id is None and len(i.fingerprint) == 64 for i in items)


def test_push_writes_goal_and_training_then_is_idempotent(fake: FakeBambooHR, db: Database) -> None:
    ids = setup_program(fake, db)
    fake.log.clear()
    report = run_push(db, make_connector(fake.host_url, fake.api_key))
    assert report.counts() == {"goal": {"created": 1}, "session": {"created": 1}}
    (goal,) = fake.goals.values()
    assert isinstance(goal["id"], str)
    assert goal["employeeId"] == "4" and goal["sharedWithEmployeeIds"] == [4, 2]
    assert goal["dueDate"] == "2025-06-30" and goal["percentComplete"] == 40
    (ttype,) = fake.training_types.values()
    assert ttype["name"] == "Coaching session"
    (record,) = fake.training_records.values()
    assert record["employeeId"] == "4" and record["type"] == ttype["id"]
    assert record["completed"] == "2025-01-13" and record["hours"] == 0.75
    assert record["instructor"] == "Charlie Babbage"
    assert PRIVATE not in json.dumps(record) and "AGENDA" not in json.dumps(record)
    with db.transaction() as s:
        refs = {(r.kind, r.local_id): r.external_id for r in s.scalars(select(ExternalRefRow))}
    assert refs == {
        ("goal", ids["goal"]): f"4:{goal['id']}",
        ("session", ids["held"]): str(record["id"]),
    }

    # Second push: nothing changed, no request at all.
    fake.log.clear()
    report = run_push(db, make_connector(fake.host_url, fake.api_key))
    assert report.counts() == {"goal": {"unchanged": 1}, "session": {"unchanged": 1}}
    assert fake.log == []

    # Progress moves in coachbridge: the same BambooHR goal is updated, to 100 with a date.
    with db.transaction() as s:
        row = s.get(GoalRow, ids["goal"])
        row.progress, row.status = 100.0, "completed"
    report = run_push(db, make_connector(fake.host_url, fake.api_key))
    assert report.counts() == {"goal": {"updated": 1}, "session": {"unchanged": 1}}
    assert len(fake.goals) == 1 and goal["percentComplete"] == 100 and goal["completionDate"]
    assert [c.template for c in fake.log][-1] == (
        "/api/v1_1/performance/employees/{employeeId}/goals/{goalId}"
    )

    # Cancelled: closed, not deleted.
    with db.transaction() as s:
        s.get(GoalRow, ids["goal"]).status = "cancelled"
    report = run_push(db, make_connector(fake.host_url, fake.api_key))
    assert report.counts()["goal"] == {"closed": 1} and goal["status"] == "closed"

    ops = spec_operations()
    for call in fake.log:
        assert call.method in ops[call.template], (call.method, call.template)


def test_existing_training_type_is_reused_and_dry_run_writes_nothing(
    fake: FakeBambooHR, sqlite_db: Database
) -> None:
    db = sqlite_db
    setup_program(fake, db)
    fake.training_types["9"] = {"id": 9, "name": "coaching SESSION"}
    fake.log.clear()
    report = run_push(db, make_connector(fake.host_url, fake.api_key), dry_run=True)
    assert report.counts() == {"goal": {"created": 1}, "session": {"created": 1}}
    assert fake.goals == {} and fake.training_records == {}
    assert all(c.method == "GET" for c in fake.log)
    with db.transaction() as s:
        assert list(s.scalars(select(ExternalRefRow))) == []
    run_push(db, make_connector(fake.host_url, fake.api_key))
    assert len(fake.training_types) == 1
    assert [r["type"] for r in fake.training_records.values()] == [9]


def test_a_goal_deleted_in_bamboohr_is_recreated(fake: FakeBambooHR, sqlite_db: Database) -> None:
    db = sqlite_db
    ids = setup_program(fake, db)
    run_push(db, make_connector(fake.host_url, fake.api_key))
    fake.goals.clear()
    with db.transaction() as s:
        s.get(GoalRow, ids["goal"]).title = "Lead two design reviews"
    report = run_push(db, make_connector(fake.host_url, fake.api_key))
    assert report.counts()["goal"] == {"created": 1}
    assert [g["title"] for g in fake.goals.values()] == ["Lead two design reviews"]


def test_a_failure_halfway_keeps_what_was_written(fake: FakeBambooHR, db: Database) -> None:
    ids = setup_program(fake, db)
    connector = make_connector(fake.host_url, fake.api_key, max_retries=0)
    fake.h_list_types = lambda request, body: fake._fault("500")  # type: ignore[method-assign]
    try:
        run_push(db, connector)
    except Exception as exc:
        assert type(exc).__name__ == "ConnectorError"
        assert "server error (500)" in str(exc) and "Internal error" in str(exc)
    else:
        raise AssertionError("the push should have failed")
    with db.transaction() as s:
        refs = [(r.kind, r.local_id) for r in s.scalars(select(ExternalRefRow))]
    assert refs == [("goal", ids["goal"])]  # the goal got through and is remembered
    del fake.h_list_types
    report = run_push(db, make_connector(fake.host_url, fake.api_key))
    assert report.counts() == {"goal": {"unchanged": 1}, "session": {"created": 1}}
    assert len(fake.goals) == 1


def test_push_command(
    fake: FakeBambooHR, db: Database, db_url: str, run_cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "coachbridge.toml"
    config.write_text(
        f'[connectors.bamboo]\nplugin = "bamboohr"\ncompany_domain = "acme"\n'
        f'api_key = "${{BAMBOO_KEY}}"\nbase_url = "{fake.host_url}"\n'
    )
    env = {"BAMBOO_KEY": fake.api_key}
    setup_program(fake, db)
    args = ("--config", str(config), "--db", db_url, "push", "bamboo")
    dry = run_cli(*args, "--dry-run", env=env)
    assert dry.exit_code == 0, dry.output
    assert "would push" in dry.stdout and fake.goals == {}
    result = run_cli(*args, "--format", "json", env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["counts"] == {"goal": {"created": 1}, "session": {"created": 1}}
    assert fake.api_key not in result.output
    again = run_cli(*args, env=env)
    assert again.exit_code == 0 and "1 unchanged" in again.stdout
    with db.transaction() as s:
        s.scalars(select(GoalRow).where(GoalRow.source_key.is_(None))).one().progress = 90.0
    real_key, fake.api_key = fake.api_key, "rotated-key"
    failed = run_cli(*args, env=env)
    assert failed.exit_code == 1
    assert "401" in failed.output and "Traceback" not in failed.output
    assert real_key not in failed.output


class RecordingConnector:
    """Any connector: the core's push machinery must not assume BambooHR."""

    name = "bamboo"
    supports_push = True
    push_kinds = ("goal", "session", "pairing")  # declared, as on ``Connector``

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, bool]] = []

    def push(self, items, *, dry_run: bool):  # type: ignore[no-untyped-def]
        from coachbridge.connectors import PushResult

        out = []
        for item in items:
            self.seen.append((item.kind, item.local_id, dry_run))
            action = "updated" if item.external_id else "created"
            out.append(
                PushResult(
                    item.kind, item.local_id, action, item.external_id or f"x{item.local_id}"
                )
            )
        return out


def test_core_push_is_connector_agnostic(fake: FakeBambooHR, sqlite_db: Database) -> None:
    ids = setup_program(fake, sqlite_db)
    recorder = RecordingConnector()
    dry = run_push(sqlite_db, recorder, dry_run=True)  # type: ignore[arg-type]
    assert {r.kind for r in dry.results} == {"goal", "session", "pairing"}
    with sqlite_db.transaction() as s:
        assert list(s.scalars(select(ExternalRefRow))) == []
    run_push(sqlite_db, recorder)  # type: ignore[arg-type]
    recorder.seen.clear()
    report = run_push(sqlite_db, recorder)  # type: ignore[arg-type]
    assert recorder.seen == [] and {r.action for r in report.results} == {"unchanged"}
    with sqlite_db.transaction() as s:
        s.get(PairingRow, ids["pairing"]).status = "completed"
    run_push(sqlite_db, recorder)  # type: ignore[arg-type]
    assert recorder.seen == [("pairing", ids["pairing"], False)]


def test_switched_off_kinds_are_not_pushed(fake: FakeBambooHR, sqlite_db: Database) -> None:
    setup_program(fake, sqlite_db)
    report = run_push(sqlite_db, make_connector(fake.host_url, fake.api_key, push_sessions=False))
    assert report.counts() == {"goal": {"created": 1}}
    assert fake.training_records == {} and fake.training_types == {}
