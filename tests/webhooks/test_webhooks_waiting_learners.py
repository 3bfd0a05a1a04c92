"""A learner a rule enrolled but found no guide for is paired by the daily run once a guide has
room: with the sessions, goal and messages the rule would have given, and only once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from coachbridge.jobs.daily import run_daily
from coachbridge.pairings.lifecycle import end_pairing
from coachbridge.programs import waiting
from coachbridge.programs.waiting import retry_waiting_learners
from coachbridge.store.tables import (
    AuditRow,
    ExternalIdRow,
    GoalRow,
    NotificationRow,
    PairingRow,
    ReviewEventRow,
    SessionRow,
)
from coachbridge_webhooks import inbox
from coachbridge_webhooks.worker import Worker
from sqlalchemy import func, select

from tests.webhooks.conftest import Env, one_place_env, review, sync_people

PROGRAM = "performance-coaching"


@pytest.fixture
def full(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """Two guides with one place each, both taken by E1 and E2; E3 waits for a guide."""
    env = one_place_env(tmp_path, db_url, monkeypatch)
    sync_people(env)
    deliver_low(env, "E1", "E2", "E3")
    yield env
    env.db.dispose()


def deliver_low(env: Env, *employees: str) -> None:
    """A rating of 1 for each, processed: a rule enrolls them and pairs those it can."""
    for employee in employees:
        body = json.dumps(review(employee, rating=1)).encode()
        assert inbox.accept(env.db, "reviews", f"low-{employee}", "application/json", body)
    Worker(env.runtime(), worker_id="w", scheduler=False, share_writes=False).drain()


def person(env: Env, employee: str) -> int:
    with env.db.transaction() as s:
        return s.get(ExternalIdRow, ("hr", employee)).person_id


def outcome_of(env: Env, person_id: int) -> dict:
    with env.db.transaction() as s:
        return (
            s.scalars(select(ReviewEventRow).where(ReviewEventRow.person_id == person_id))
            .one()
            .outcome
        )


def test_a_waiting_learner_is_paired_once_a_place_frees(full: Env) -> None:
    e1, e3 = person(full, "E1"), person(full, "E3")
    assert outcome_of(full, e3)["rules"][0]["result"] == "no guide available"
    now = datetime.now(UTC)
    assert run_daily(full.runtime(), now=now).paired == 0  # still no room

    with full.db.transaction() as s:
        [first] = s.scalars(select(PairingRow).where(PairingRow.learner_id == e1))
        end_pairing(s, first, "moved to another team", now)
    daily = run_daily(full.runtime(), now=now + timedelta(hours=1))
    assert daily.paired == 1
    result = outcome_of(full, e3)["rules"][0]
    assert result["result"] == "paired" and result["sessions"] == 3
    with full.db.transaction() as s:
        pairing = s.scalars(select(PairingRow).where(PairingRow.learner_id == e3)).one()
        assert pairing.status == "active" and pairing.source_key.startswith("rule:")
        assert s.scalar(select(func.count()).where(SessionRow.pairing_id == pairing.id)) == 3
        goal = s.scalars(select(GoalRow).where(GoalRow.pairing_id == pairing.id)).one()
        assert goal.title == "Coaching plan after the 2026-H2 review"
        # Due six weeks after the coaching starts, not after the review (it could be overdue).
        assert goal.due_date == (now + timedelta(hours=1)).date() + timedelta(weeks=6)
        fired = select(func.count()).where(
            AuditRow.action == "rule_fired", AuditRow.object_id.like(f"%:person:{e3}")
        )
        assert s.scalar(fired) == 1  # the retry is the same firing: no new cooldown
        keys = set(s.scalars(select(NotificationRow.key)))
        assert {f"pairing:{pairing.id}:learner:log", f"pairing:{pairing.id}:guide:log"} <= keys

    assert run_daily(full.runtime(), now=now + timedelta(hours=2)).paired == 0  # once
    with full.db.transaction() as s:
        assert s.scalar(select(func.count()).where(PairingRow.learner_id == e3)) == 1


def test_a_learner_paired_by_hand_meanwhile_is_left_alone(full: Env) -> None:
    e1, e2, e3 = person(full, "E1"), person(full, "E2"), person(full, "E3")
    now = datetime.now(UTC)
    with full.db.transaction() as s:
        [first] = s.scalars(select(PairingRow).where(PairingRow.learner_id == e1))
        [second] = s.scalars(select(PairingRow).where(PairingRow.learner_id == e2))
        # E1's guide has room again, but E3 was meanwhile coached by E2's guide, arranged by
        # hand, and that is over: the rule's need was met, so nobody pairs E3 again.
        end_pairing(s, first, "moved to another team", now)
        manual = PairingRow(
            program_id=first.program_id,
            learner_id=e3,
            guide_id=second.guide_id,
            status="ended",
            end_reason="done early",
            score=0.5,
            created_at=now + timedelta(minutes=1),
        )
        s.add(manual)
    assert retry_waiting_learners(full.runtime(), now=now + timedelta(hours=1)) == 0
    assert outcome_of(full, e3)["rules"][0]["result"] == "no guide available"


def test_a_retry_is_not_held_back_by_its_own_cooldown(full: Env) -> None:
    """The rule's cooldown (180 days) counts firings for other events, not this one's."""
    e1, e3 = person(full, "E1"), person(full, "E3")
    now = datetime.now(UTC)
    with full.db.transaction() as s:
        fired = s.scalars(
            select(AuditRow).where(
                AuditRow.action == "rule_fired", AuditRow.object_id.like(f"%:person:{e3}")
            )
        ).all()
        assert len(fired) == 1  # the first try fired the rule (enrolled E3)
        [first] = s.scalars(select(PairingRow).where(PairingRow.learner_id == e1))
        end_pairing(s, first, "moved", now)
    assert retry_waiting_learners(full.runtime(), now=now) == 1
    assert not outcome_of(full, e3)["rules"][0]["result"].startswith("cooldown")


def test_the_owner_hears_of_a_learner_waiting_a_week(full: Env) -> None:
    program = full.config.programs["performance-coaching"]
    full.config.programs["performance-coaching"] = program.model_copy(
        update={"owner": "people@example.com"}
    )
    e3 = person(full, "E3")
    now = datetime.now(UTC)

    def waiting(at: datetime) -> list:  # type: ignore[type-arg]
        return [
            n
            for n in run_daily(full.runtime(), now=at).nudges
            if n.condition == "waiting_for_guide"
        ]

    assert waiting(now) == []  # enrolled just now: not yet
    [told] = waiting(now + timedelta(days=8))
    assert told.to_email == "people@example.com" and told.pairing_id is None
    assert f"(person {e3})" in told.body and told.subject.endswith("waiting for a coach")
    assert waiting(now + timedelta(days=9)) == []  # once


def _waiting_event(env: Env, employee: str) -> int:
    with env.db.transaction() as s:
        pid = s.get(ExternalIdRow, ("hr", employee)).person_id
        return s.scalars(select(ReviewEventRow.id).where(ReviewEventRow.person_id == pid)).one()


def test_only_no_guide_results_are_redone(full: Env) -> None:
    e1 = person(full, "E1")
    event_id = _waiting_event(full, "E3")
    kept = [
        {"rule": "rules[0]", "program": PROGRAM, "result": "cooldown: fired for this person"},
        {"rule": "gone", "program": PROGRAM, "enrolled": "learner", "result": "no guide available"},
    ]
    with full.db.transaction() as s:
        s.get(ReviewEventRow, event_id).outcome = {"rules": kept}
        [first] = s.scalars(select(PairingRow).where(PairingRow.learner_id == e1))
        end_pairing(s, first, "moved", datetime.now(UTC))  # room for one
    # A cooldown result is not re-evaluated, a result of a rule no longer configured is kept.
    assert retry_waiting_learners(full.runtime()) == 0
    with full.db.transaction() as s:
        assert s.get(ReviewEventRow, event_id).outcome == {"rules": kept}
        assert s.scalar(select(func.count()).where(PairingRow.status == "active")) == 1


def test_one_failing_event_does_not_stop_the_others(
    full: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # E4 waits too; two places free up.
    deliver_low(full, "E4")
    with full.db.transaction() as s:
        for pairing in s.scalars(select(PairingRow).where(PairingRow.status == "active")):
            end_pairing(s, pairing, "moved", datetime.now(UTC))
    e3_event = _waiting_event(full, "E3")
    real = waiting.retry_no_guide

    def flaky(s, ctx, event, **kwargs):  # type: ignore[no-untyped-def]
        if event.id == e3_event:
            raise RuntimeError("a bug")
        return real(s, ctx, event, **kwargs)

    monkeypatch.setattr(waiting, "retry_no_guide", flaky)
    assert retry_waiting_learners(full.runtime()) == 1  # E4
    with full.db.transaction() as s:
        event = s.get(ReviewEventRow, e3_event)
        assert event.rules_status == "processed"  # as it was: tried again tomorrow
        assert event.outcome["rules"][0]["result"] == "no guide available"
    monkeypatch.setattr(waiting, "retry_no_guide", real)
    assert retry_waiting_learners(full.runtime()) == 1  # E3, the next day


def test_a_full_program_tries_only_its_first_waiting_learner(
    full: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliver_low(full, "E4")
    tried: list[int] = []
    real = waiting.retry_no_guide

    def counting(s, ctx, event, **kwargs):  # type: ignore[no-untyped-def]
        tried.append(event.id)
        return real(s, ctx, event, **kwargs)

    monkeypatch.setattr(waiting, "retry_no_guide", counting)
    assert retry_waiting_learners(full.runtime()) == 0
    assert tried == [_waiting_event(full, "E3")]  # E4 waits for the next run
