"""End to end through the real CLI against the fake tenant on loopback."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from coachbridge.store import Database
from coachbridge.store.tables import (
    ExternalIdRow,
    PairingRow,
    PersonRow,
    ProgramRow,
    SessionRow,
    SyncStateRow,
)
from sqlalchemy import func, select

from tests.workday.fake_workday import FakeWorkday


def _db(config: Path) -> Database:
    return Database(f"sqlite:///{config.parent / 'store.db'}")


def _people(run_cli, config: Path) -> list[dict]:
    result = run_cli("--config", str(config), "people", "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_check_proves_credentials_and_report(
    run_cli, fake: FakeWorkday, write_config: Callable[..., Path]
) -> None:
    config = write_config(fake.url, 'reviews_report = "isu_coaching/Coaching_Reviews"')
    result = run_cli("--config", str(config), "check", "wd")
    assert result.exit_code == 0, result.output
    assert "connector wd: ok" in result.stdout
    assert (
        "people_report 'isu_coaching/Coaching_Workers': reachable, 14 columns (schema)"
        in result.stdout
    )
    assert "reviews_report 'isu_coaching/Coaching_Reviews': reachable" in result.stdout


def test_check_with_a_wrong_refresh_token_fails_cleanly(
    run_cli, fake: FakeWorkday, write_config: Callable[..., Path]
) -> None:
    fake.refresh_token = "rotated"
    config = write_config(fake.url)
    result = run_cli("--config", str(config), "check", "wd")
    assert result.exit_code == 1
    assert "invalid_grant" in result.output and "connectors.wd.refresh_token" in result.output
    assert "refresh-abc" not in result.output and "s3cret-client" not in result.output
    assert "Traceback" not in result.output


def test_sync_full_then_incremental(
    run_cli, fake: FakeWorkday, write_config: Callable[..., Path]
) -> None:
    config = write_config(fake.url)
    result = run_cli("--config", str(config), "sync", "wd")
    assert result.exit_code == 0, result.output
    assert "30 new" in result.stdout
    people = _people(run_cli, config)
    assert len(people) == 30
    manager = {p["external_ids"]["wd"]: p for p in people}
    assert manager["E000001"]["manager_id"] == manager["E000000"]["id"]
    with _db(config).transaction() as s:
        cursor = s.get(SyncStateRow, ("wd", "people")).cursor
    assert cursor and cursor.endswith("+00:00")

    # A leaver and a promotion since then: the prompt returns only those two rows.
    fake.workers["E000007"].active = False
    fake.workers["E000007"].updated = datetime.now(UTC)
    fake.workers["E000008"].title = "Director"
    fake.workers["E000008"].updated = datetime.now(UTC)
    result = run_cli("--config", str(config), "sync", "wd")
    assert result.exit_code == 0, result.output
    assert "0 new, 1 changed, 1 leaving" in result.stdout
    assert fake.log[-1][2]["Updated_From"] == cursor
    people = {p["external_ids"]["wd"]: p for p in _people(run_cli, config)}
    assert people["E000007"]["status"] == "inactive"
    assert people["E000008"]["job_title"] == "Director"
    assert len(people) == 30  # an incremental sync never deactivates by absence


def test_without_prompt_leavers_are_found_by_absence(
    run_cli, fake: FakeWorkday, write_config: Callable[..., Path]
) -> None:
    config = write_config(fake.url)
    config.write_text(config.read_text().replace('updated_since_prompt = "Updated_From"\n', ""))
    assert run_cli("--config", str(config), "sync", "wd").exit_code == 0
    del fake.workers["E000029"]
    result = run_cli("--config", str(config), "sync", "wd")
    assert result.exit_code == 0, result.output
    assert "1 leaving" in result.stdout
    assert "Updated_From" not in fake.log[-1][2]


def test_failed_sync_keeps_store_and_cursor(
    run_cli, fake: FakeWorkday, write_config: Callable[..., Path]
) -> None:
    config = write_config(fake.url)
    assert run_cli("--config", str(config), "sync", "wd").exit_code == 0
    with _db(config).transaction() as s:
        before = s.get(SyncStateRow, ("wd", "people")).cursor
        count = s.scalar(select(func.count()).select_from(PersonRow))
    fake.workers["E000003"].title = "Changed"
    fake.workers["E000003"].updated = datetime.now(UTC)
    for mode, expected in (("truncated", "ended early"), ("html", "HTML page")):
        fake.report_mode = mode
        result = run_cli("--config", str(config), "sync", "wd")
        assert (
            result.exit_code == 1 and expected in result.output and "Traceback" not in result.output
        )
    with _db(config).transaction() as s:
        assert s.get(SyncStateRow, ("wd", "people")).cursor == before
        assert s.scalar(select(func.count()).select_from(PersonRow)) == count
    fake.report_mode = "json"
    assert run_cli("--config", str(config), "sync", "wd").exit_code == 0
    people = {p["external_ids"]["wd"]: p for p in _people(run_cli, config)}
    assert people["E000003"]["job_title"] == "Changed"  # the repeated window caught it


def test_missing_column_is_exit_2_naming_the_key(
    run_cli, fake: FakeWorkday, write_config: Callable[..., Path]
) -> None:
    config = write_config(fake.url, '[connectors.wd.columns]\nid = "Employee_Number"')
    result = run_cli("--config", str(config), "sync", "wd")
    assert result.exit_code == 2
    assert "'Employee_Number' (columns.id)" in result.output


def test_missing_env_var_is_a_config_error(
    run_cli, fake: FakeWorkday, write_config: Callable[..., Path], monkeypatch
) -> None:
    config = write_config(fake.url)
    monkeypatch.delenv("WORKDAY_REFRESH_TOKEN")
    result = run_cli("--config", str(config), "check", "wd")
    assert result.exit_code == 2
    assert (
        "connectors.wd.refresh_token: environment variable WORKDAY_REFRESH_TOKEN is not set"
        in result.output
    )


def test_rest_people_source(run_cli, fake: FakeWorkday, write_config: Callable[..., Path]) -> None:
    config = write_config(fake.url, 'people_source = "rest"')
    result = run_cli("--config", str(config), "sync", "wd")
    assert result.exit_code == 0, result.output
    assert "30 new" in result.stdout


def _seed_pairing(config: Path, status: str = "active") -> tuple[int, int]:
    with _db(config).transaction() as s:
        ids = {row.external_id: row.person_id for row in s.scalars(select(ExternalIdRow))}
        s.add(
            ProgramRow(
                id="mentoring", name="Mentoring", kind="mentoring", settings={"objective": "Grow"}
            )
        )
        s.flush()
        pairing = PairingRow(
            program_id="mentoring",
            learner_id=ids["E000005"],
            guide_id=ids["E000001"],
            status=status,
            activated_at=datetime(2026, 1, 5, tzinfo=UTC),
        )
        s.add(pairing)
        s.flush()
        session = SessionRow(
            pairing_id=pairing.id,
            start=datetime(2026, 2, 1, 10, tzinfo=UTC),
            minutes=45,
            status="held",
            agenda="career plan",
            private_notes="PRIVATE: struggling with manager",
        )
        s.add(session)
        s.flush()
        return pairing.id, session.id


def test_push_mentorship_lifecycle(
    run_cli, fake: FakeWorkday, write_config: Callable[..., Path]
) -> None:
    config = write_config(fake.url, 'mentor_type = "mt-formal"\nclose_reason = "cr-done"')
    assert run_cli("--config", str(config), "sync", "wd").exit_code == 0
    pairing_id, _ = _seed_pairing(config)
    result = run_cli("--config", str(config), "push", "wd", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    actions = {(r["kind"], r["action"]) for r in report["results"]}
    assert ("pairing", "created") in actions and ("session", "created") in actions
    [sent] = fake.mentorships.values()
    assert sent["startDate"] == "2026-01-05" and sent["endDate"] == "2026-07-06"  # + 182 days
    assert sent["mentee"] == {"id": fake.workers["E000005"].wid} and sent["purpose"] == "Grow"
    # The check-in carries the date and a neutral line: never the agenda or private notes.
    [check_in] = fake.check_ins.values()
    assert "PRIVATE" not in json.dumps(check_in) and "career plan" not in json.dumps(check_in)

    before = len(fake.log)
    result = run_cli("--config", str(config), "push", "wd", "--format", "json")
    assert not [e for e in fake.log[before:] if e[0] in ("POST", "PATCH")]  # nothing new
    assert {r["action"] for r in json.loads(result.stdout)["results"]} == {"unchanged"}

    with _db(config).transaction() as s:
        row = s.get(PairingRow, pairing_id)
        row.status = "ended"
        row.end_reason = "re-match"
        row.ended_at = datetime(2026, 3, 1, tzinfo=UTC)
    result = run_cli("--config", str(config), "push", "wd", "--format", "json")
    assert result.exit_code == 0, result.output
    assert ("pairing", "closed") in {
        (r["kind"], r["action"]) for r in json.loads(result.stdout)["results"]
    }
    [mentorship] = fake.mentorships.values()
    assert mentorship["state"] == "closed" and mentorship["close"]["comment"] == "re-match"
    assert len(fake.mentorships) == 1


def test_a_date_prompt_brings_back_rows_already_seen_as_unchanged(
    run_cli, fake: FakeWorkday, write_config: Callable[..., Path]
) -> None:
    fake.prompt_type = "date"
    config = write_config(fake.url)
    assert run_cli("--config", str(config), "sync", "wd").exit_code == 0
    # Changed earlier today and applied then: the day's overlap brings it back, unchanged.
    fake.workers["E000004"].updated = datetime.now(UTC)
    fake.workers["E000008"].title = "Director"
    fake.workers["E000008"].updated = datetime.now(UTC)
    result = run_cli("--config", str(config), "sync", "wd")
    assert result.exit_code == 0, result.output
    assert "0 new, 1 changed" in result.stdout
    sent = fake.log[-1][2]["Updated_From"]
    assert len(sent) == 10 and sent < datetime.now(UTC).date().isoformat()
