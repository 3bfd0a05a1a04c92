"""The worker end to end in-process: deliveries in, coaching out, each effect exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from coachbridge.store.tables import (
    EnrollmentRow,
    ExternalIdRow,
    GoalRow,
    InboxRow,
    NotificationRow,
    PairingRow,
    ReviewEventRow,
    SessionRow,
)
from coachbridge_webhooks import inbox
from coachbridge_webhooks.worker import Worker
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.webhooks.conftest import Env, people_csv, post, review, sync_people


def count(env: Env, table, *where) -> int:
    with env.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(table).where(*where)))


def events(env: Env) -> list[ReviewEventRow]:
    with env.db.transaction() as s:
        return list(s.scalars(select(ReviewEventRow).order_by(ReviewEventRow.id)))


def deliveries(env: Env) -> list[InboxRow]:
    with env.db.transaction() as s:
        return list(s.scalars(select(InboxRow).order_by(InboxRow.id)))


def test_low_rating_enrolls_pairs_schedules_sets_goal_and_notifies(
    wenv: Env, client: FlaskClient, worker: Worker
):
    assert post(client, review("E1", rating=2)) == 202
    assert worker.drain() == 1
    [event] = events(wenv)
    assert event.rules_status == "processed"
    assert event.rating == 0.25 and event.raw_rating == 2 and event.cycle == "2026-H2"
    assert event.via == "webhook"
    [outcome] = event.outcome["rules"]
    assert outcome["result"] == "paired" and outcome["sessions"] == 3
    with wenv.db.transaction() as s:
        learner = s.get(ExternalIdRow, ("hr", "E1")).person_id
        pairing = s.scalars(select(PairingRow)).one()
        assert pairing.learner_id == learner and pairing.status == "active"
        assert pairing.source_key == f"rule:{event.id}:0"
        guides = {s.get(ExternalIdRow, ("hr", g)).person_id for g in ("G1", "G2")}
        assert pairing.guide_id in guides
        goal = s.scalars(select(GoalRow)).one()
        assert goal.title == "Coaching plan after the 2026-H2 review"
        assert goal.owner_id == learner and goal.pairing_id == pairing.id
        sessions = list(s.scalars(select(SessionRow).order_by(SessionRow.seq)))
        assert [x.seq for x in sessions] == [1, 2, 3]
        # a rolling program starts from the event, never in the past
        assert sessions[0].start >= datetime(2026, 11, 20, tzinfo=UTC) or sessions[0].start >= (
            datetime.now(UTC) - timedelta(minutes=1)
        )
        notes = list(s.scalars(select(NotificationRow).order_by(NotificationRow.key)))
        assert [(n.key, n.status, n.channel) for n in notes] == [
            (f"pairing:{pairing.id}:guide:log", "sent", "log"),
            (f"pairing:{pairing.id}:learner:log", "sent", "log"),
        ]
    [row] = deliveries(wenv)
    assert row.status == "done" and row.attempts == 1 and row.locked_by is None


def test_same_review_again_under_a_new_id_changes_nothing(
    wenv: Env, client: FlaskClient, worker: Worker
):
    assert post(client, review("E1"), msg_id="a") == 202
    assert post(client, review("E1"), msg_id="a") == 200  # same delivery: duplicate
    assert post(client, review("E1"), msg_id="b") == 202  # sender retried with a new id
    assert worker.drain() == 2
    assert [r.status for r in deliveries(wenv)] == ["done", "done"]
    assert count(wenv, ReviewEventRow) == 1
    assert count(wenv, PairingRow) == 1
    assert count(wenv, SessionRow) == 3
    assert count(wenv, GoalRow) == 1
    assert count(wenv, NotificationRow) == 2


def test_reprocessing_a_delivery_is_idempotent(wenv: Env, client: FlaskClient, worker: Worker):
    assert post(client, review("E2")) == 202
    worker.drain()
    [row] = deliveries(wenv)
    assert inbox.replay(wenv.db, [row.id]) == 1
    assert worker.drain() == 1
    assert count(wenv, PairingRow) == 1
    assert count(wenv, SessionRow) == 3
    assert count(wenv, EnrollmentRow, EnrollmentRow.role == "learner") == 1


def test_high_rating_matches_no_rule(wenv: Env, client: FlaskClient, worker: Worker):
    assert post(client, review("E1", rating=4)) == 202
    worker.drain()
    [event] = events(wenv)
    assert event.rules_status == "processed" and event.outcome == {"rules": []}
    assert count(wenv, PairingRow) == 0


def test_person_found_by_email_when_no_id(wenv: Env, client: FlaskClient, worker: Worker):
    assert post(client, review(None, email="E3@Example.com")) == 202
    worker.drain()
    [event] = events(wenv)
    assert event.rules_status == "processed"
    assert count(wenv, PairingRow) == 1


def test_unknown_person_is_kept_and_processed_after_a_sync_brings_them(
    wenv: Env, client: FlaskClient, worker: Worker
):
    assert post(client, review("E9")) == 202
    worker.drain()
    [event] = events(wenv)
    assert event.rules_status == "unknown_person" and event.person_id is None
    assert deliveries(wenv)[0].status == "done"
    # A later sync brings E9: the housekeeping pass (and `coachbridge sync`) runs the rules.
    (wenv.path.parent / "people.csv").write_text(people_csv(9, 2))
    sync_people(wenv)
    worker.housekeeping()
    [event] = events(wenv)
    assert event.rules_status == "processed" and event.person_id is not None
    assert count(wenv, PairingRow) == 1


def test_no_guide_available_is_recorded_not_a_failure(
    wenv: Env, client: FlaskClient, worker: Worker
):
    # two guides with capacity 2: four learners fill them, the fifth finds nobody
    (wenv.path.parent / "people.csv").write_text(people_csv(5, 2))
    sync_people(wenv)
    for n in range(1, 6):
        assert post(client, review(f"E{n}")) == 202
    worker.drain()
    assert [r.status for r in deliveries(wenv)] == ["done"] * 5
    # The five arrive as one burst, matched as a cohort: which one of equals waits is the
    # solver's choice, not the order of arrival.
    results = sorted(e.outcome["rules"][0]["result"] for e in events(wenv))
    assert results == ["no guide available"] + ["paired"] * 4
    assert count(wenv, PairingRow) == 4


def test_cooldown_keeps_a_second_cycle_from_firing_again(
    wenv: Env, client: FlaskClient, worker: Worker
):
    assert post(client, review("E1", cycle="2026-H1")) == 202
    assert post(client, review("E1", cycle="2026-H2")) == 202
    worker.drain()
    first, second = events(wenv)
    assert first.outcome["rules"][0]["result"] == "paired"
    assert second.outcome["rules"][0]["result"].startswith("cooldown")
    assert count(wenv, GoalRow) == 1


def test_cycle_events_are_recorded(wenv: Env, client: FlaskClient, worker: Worker):
    assert post(client, {"type": "review_cycle.launched", "data": {"cycle_id": "2026-H2"}}) == 202
    worker.drain()
    [event] = events(wenv)
    assert (event.type, event.cycle, event.rules_status) == (
        "review_cycle.launched",
        "2026-H2",
        "processed",
    )


def test_rule_naming_a_missing_program_is_dead_lettered_with_a_clear_reason(
    wenv: Env, client: FlaskClient
):
    # The config loader refuses such a rule; a config changed under a running worker (the
    # program removed) must still dead-letter clearly rather than crash.
    wenv.config.programs.pop("performance-coaching")
    worker = Worker(wenv.runtime(), worker_id="w", scheduler=False)
    assert post(client, review("E1")) == 202
    worker.drain()
    [row] = deliveries(wenv)
    assert row.status == "dead"
    assert row.last_error == (
        "permanent: rules[0]: unknown program 'performance-coaching' (not in the config)"
    )
    assert count(wenv, ReviewEventRow) == 0  # rolled back with the failed attempt


def test_transient_failures_retry_with_backoff_then_dead_letter(
    wenv: Env, client: FlaskClient, worker: Worker, monkeypatch: pytest.MonkeyPatch
):
    import coachbridge_webhooks.worker as worker_module

    def boom(*args, **kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(worker_module, "apply_rules_batch", boom)
    assert post(client, review("E1")) == 202
    for attempt in (1, 2):
        worker.drain()
        [row] = deliveries(wenv)
        assert row.status == "failed" and row.attempts == attempt
        assert row.last_error == f"attempt {attempt}/3: RuntimeError: database hiccup"
        assert row.next_attempt_at > datetime.now(UTC)
        assert worker.drain() == 0  # not due yet
        with wenv.db.transaction() as s:
            s.get(InboxRow, row.id).next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
    worker.drain()
    [row] = deliveries(wenv)
    assert row.status == "dead" and row.attempts == 3
    assert count(wenv, ReviewEventRow) == 0
    # fixed and replayed: processed normally
    monkeypatch.undo()
    assert inbox.replay(wenv.db, failed=True) == 1
    Worker(wenv.runtime(), worker_id="w2", scheduler=False).drain()
    assert deliveries(wenv)[0].status == "done"
    assert count(wenv, PairingRow) == 1


def test_backoff_grows_and_is_jittered():
    import random

    rng = random.Random(1)
    values = [inbox.backoff(n, rng).total_seconds() for n in range(1, 12)]
    assert 5 <= values[0] <= 15
    assert 10 <= values[1] <= 30
    assert max(values) <= 3600 * 1.5
    assert len(set(values)) == len(values)


def test_stale_processing_row_is_reclaimed_and_a_lost_lease_cannot_settle(wenv: Env, client):
    assert post(client, review("E1")) == 202
    lease = timedelta(minutes=5)
    [row_id] = inbox.claim(wenv.db, "dead-worker", lease=lease)
    # within the lease nobody else can take it
    assert inbox.claim(wenv.db, "other", lease=lease) == []
    later = datetime.now(UTC) + timedelta(minutes=6)
    assert inbox.claim(wenv.db, "other", lease=lease, now=later) == [row_id]
    # the first worker wakes up: it no longer holds the row and settles nothing
    stale = Worker(wenv.runtime(), worker_id="dead-worker", scheduler=False)
    assert stale.process(row_id) is None
    fresh = Worker(wenv.runtime(), worker_id="other", scheduler=False)
    assert fresh.process(row_id) == "done"
    [row] = deliveries(wenv)
    assert row.attempts == 2 and row.status == "done"
    assert count(wenv, PairingRow) == 1


def test_events_list_and_replay_commands(wenv: Env, client: FlaskClient, run_cli, monkeypatch):
    monkeypatch.chdir(wenv.path.parent)
    assert post(client, review("E1"), msg_id="m1") == 202
    wenv.config.programs.pop("performance-coaching")
    Worker(wenv.runtime(), worker_id="w", scheduler=False).drain()
    result = run_cli("events", "list", "--status", "dead", "--format", "json")
    assert result.exit_code == 0, result.stderr
    import json

    [listed] = json.loads(result.stdout)
    assert listed["delivery_id"] == "m1" and listed["status"] == "dead"
    assert "unknown program" in listed["last_error"]
    assert "body" not in listed
    # the config file still has the program: a replay now succeeds
    result = run_cli("events", "replay", "--failed", "--now")
    assert result.exit_code == 0, result.stderr
    assert "queued 1 deliveries again" in result.stdout
    assert deliveries(wenv)[0].status == "done"
    assert run_cli("events", "replay", "999").exit_code == 2
    assert run_cli("events", "replay").exit_code == 2


def test_sync_found_events_go_through_the_same_rules(wenv: Env):
    """`coachbridge sync` calls process_review_events for events after rules_since."""
    from coachbridge.domain import ReviewEvent
    from coachbridge.hris.reviews import store_review_event
    from coachbridge.programs.automation import process_review_events

    since = datetime(2026, 1, 1, tzinfo=UTC)
    with wenv.db.transaction() as s:
        old, _, _ = store_review_event(
            s,
            ReviewEvent(
                cycle="2025-H2",
                subject_external_id="E1",
                raw_rating=1,
                scale_max=5,
                completed_at=datetime(2025, 12, 1, tzinfo=UTC),
                source="hr",
                source_event_id="o",
            ),
            via="sync",
            rules_since=since,
        )
        new, _, _ = store_review_event(
            s,
            ReviewEvent(
                cycle="2026-H2",
                subject_external_id="E2",
                raw_rating=1,
                scale_max=5,
                completed_at=datetime(2026, 11, 1, tzinfo=UTC),
                source="hr",
                source_event_id="n",
            ),
            via="sync",
            rules_since=since,
        )
    assert old.rules_status == "skipped"
    outcomes = process_review_events(wenv.runtime(), [new.id])
    assert outcomes[new.id]["rules"][0]["result"] == "paired"
    assert count(wenv, PairingRow) == 1
    assert {e.rules_status for e in events(wenv)} == {"skipped", "processed"}


def test_messages_never_carry_private_notes(wenv: Env, client: FlaskClient, worker: Worker):
    from coachbridge.notify.messages import pairing_key, pairing_message

    assert post(client, review("E1")) == 202
    worker.drain()
    with wenv.db.transaction() as s:
        pairing = s.scalars(select(PairingRow)).one()
        for row in s.scalars(select(SessionRow)):
            row.private_notes = "PRIVATE-NOTE-TEXT"
            row.agenda = "Agenda: goals"
    with wenv.db.transaction() as s:
        for role in ("learner", "guide"):
            message = pairing_message(s, pairing_key(pairing.id, role, "log"))
            assert message is not None and message.attachments
            assert "PRIVATE-NOTE-TEXT" not in message.body
            assert b"PRIVATE-NOTE-TEXT" not in message.attachments[0].data
            assert "PRIVATE-NOTE-TEXT" not in repr(message)
