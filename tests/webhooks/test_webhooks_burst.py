"""A burst of review events is matched as one cohort: the pairings ``match --apply`` gives the
same learners, not first come, first served; every event's effects happen exactly once, and a
batch that dies midway leaves nothing behind."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from coachbridge.domain import Role
from coachbridge.hris.reviews import store_review_event
from coachbridge.matching.service import match_program
from coachbridge.programs import rules as rules_module
from coachbridge.programs.automation import process_review_events
from coachbridge.programs.enrollment import enroll_person
from coachbridge.store.tables import (
    AuditRow,
    EnrollmentRow,
    GoalRow,
    InboxRow,
    NotificationRow,
    PairingRow,
    PersonRow,
    ReviewEventRow,
    SessionRow,
)
from coachbridge_webhooks import inbox
from coachbridge_webhooks.worker import Worker, burst_settings
from sqlalchemy import func, select

from tests.webhooks.conftest import ENV, PEOPLE_HEADER, Env, make_env, review, sync_people

# Two guides with one place each. Ana (E1) fits both but Gil (G1, her own time zone) better;
# Ben (E2) reports to Gus (G2), so only Gil may coach him. First come, first served gives Ana
# Gil and leaves Ben without a guide; matched together, both get one.
PEOPLE = PEOPLE_HEADER + (
    "G1,Gil,Coach,g1@example.com,Staff Engineer,Engineering,Europe/Berlin,,6\n"
    "G2,Gus,Coach,g2@example.com,Staff Engineer,Engineering,America/Los_Angeles,,6\n"
    "E1,Ana,Learner,e1@example.com,Account Executive,Sales,Europe/Berlin,,2\n"
    "E2,Ben,Learner,e2@example.com,Account Executive,Sales,Europe/Berlin,G2,2\n"
)


def setup(folder: Path, url: str, monkeypatch: pytest.MonkeyPatch, extra: str = "") -> Env:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    folder.mkdir(exist_ok=True)
    env = make_env(folder, url, capacity=1, people=PEOPLE, extra=extra)
    sync_people(env)
    return env


def accept(env: Env, *employees: str) -> None:
    for n, employee in enumerate(employees):
        body = json.dumps(review(employee, rating=2)).encode()
        assert inbox.accept(env.db, "reviews", f"d-{employee}-{n}", "application/json", body)


def pairs(env: Env) -> set[tuple[str, str, float]]:
    """(learner email, guide email, score) of every pairing: comparable across stores."""
    with env.db.transaction() as s:
        email = dict(s.execute(select(PersonRow.id, PersonRow.email)).all())
        return {
            (email[p.learner_id], email[p.guide_id], round(p.score, 9))
            for p in s.scalars(select(PairingRow))
        }


def counts(env: Env) -> dict[str, int]:
    tables = (
        EnrollmentRow,
        PairingRow,
        SessionRow,
        GoalRow,
        NotificationRow,
        ReviewEventRow,
        AuditRow,
    )
    with env.db.transaction() as s:
        out = {
            t.__tablename__: int(s.scalar(select(func.count()).select_from(t)) or 0) for t in tables
        }
        out["done"] = int(s.scalar(select(func.count()).where(InboxRow.status == "done")) or 0)
    return out


def match_apply_reference(tmp_path: Path, sqlite_url: str, monkeypatch) -> set:
    """What ``match --apply`` gives Ana and Ben enrolled as the program's waiting learners."""
    ref = setup(tmp_path / "ref", sqlite_url.replace(".db", "-ref.db"), monkeypatch)
    program = ref.config.programs["performance-coaching"]
    with ref.db.transaction() as s:
        for email in ("e1@example.com", "e2@example.com"):
            person = s.scalars(select(PersonRow).where(PersonRow.email == email)).one()
            enroll_person(s, program, person.id, Role.LEARNER, source="test")
    match_program(ref.runtime(), program.id, store_as="active")
    result = pairs(ref)
    ref.db.dispose()
    return result


def test_first_come_first_served_is_worse_than_the_cohort(tmp_path, sqlite_url, monkeypatch):
    """The instance really is one where greedy loses: events one at a time pair only Ana."""
    env = setup(tmp_path / "greedy", sqlite_url, monkeypatch)
    with env.db.transaction() as s:
        from coachbridge.domain import ReviewEvent

        ids = []
        for employee in ("E1", "E2"):
            event = ReviewEvent(
                type="review.completed",
                cycle="2026-H2",
                subject_external_id=employee,
                raw_rating=2,
                scale_min=1,
                scale_max=5,
                source="reviews",
                source_event_id=f"greedy-{employee}",
            )
            ids.append(store_review_event(s, event, via="test", people_from="hr").row.id)
    process_review_events(env.runtime(), ids)
    assert pairs(env) and {(a, b) for a, b, _ in pairs(env)} == {
        ("e1@example.com", "g1@example.com")
    }


def test_a_burst_gets_the_pairings_match_apply_gives_each_effect_once(
    tmp_path, db_url, sqlite_url, monkeypatch
):
    env = setup(tmp_path / "burst", db_url, monkeypatch)
    accept(env, "E1", "E2")
    worker = Worker(env.runtime(), worker_id="w", scheduler=False, share_writes=False)
    assert worker.drain() == 2
    got = pairs(env)
    assert {(a, b) for a, b, _ in got} == {
        ("e1@example.com", "g2@example.com"),
        ("e2@example.com", "g1@example.com"),
    }
    assert got == match_apply_reference(tmp_path, sqlite_url, monkeypatch)

    # Per event, exactly once: its own pairing (source key), sessions, goal and messages.
    program = env.config.programs["performance-coaching"]
    with env.db.transaction() as s:
        events = list(s.scalars(select(ReviewEventRow).order_by(ReviewEventRow.id)))
        assert [e.rules_status for e in events] == ["processed", "processed"]
        for event in events:
            (result,) = event.outcome["rules"]
            assert result["result"] == "paired"
            pairing = s.get(PairingRow, result["pairing_id"])
            assert pairing.learner_id == event.person_id
            assert pairing.source_key == f"rule:{event.id}:0"
            assert result["sessions"] == program.sessions_planned
            goal = s.get(GoalRow, result["goal_id"])
            assert goal.pairing_id == pairing.id and goal.owner_id == event.person_id
        rows = list(s.scalars(select(InboxRow)))
        assert all(r.status == "done" and r.processed_at is not None for r in rows)
    before = counts(env)
    assert before["goals"] == 2 and before["sessions"] == 2 * program.sessions_planned
    assert before["notifications"] > 0

    # The same deliveries again (a replay) and a later batch change nothing.
    with env.db.transaction() as s:
        for row in s.scalars(select(InboxRow)):
            row.status = "pending"
    assert worker.drain() == 2
    assert counts(env) == before and pairs(env) == got


class Killed(BaseException):
    """What a SIGKILL amounts to for the store: the work stops, nothing after it runs."""


def test_a_batch_killed_midway_leaves_nothing_and_the_next_run_finishes_it(
    tmp_path, db_url, sqlite_url, monkeypatch
):
    env = setup(tmp_path / "kill", db_url, monkeypatch)
    accept(env, "E1", "E2")
    before = counts(env)
    real = rules_module._finish_rule
    calls: list[int] = []

    def finish_then_die(*args, **kwargs):
        real(*args, **kwargs)  # the first event's pairing, sessions and goal are written ...
        calls.append(1)
        raise Killed  # ... then the worker dies

    monkeypatch.setattr(rules_module, "_finish_rule", finish_then_die)
    worker = Worker(env.runtime(), worker_id="dead", scheduler=False, share_writes=False)
    with pytest.raises(Killed):
        worker.run_once()
    assert calls == [1]
    after = counts(env)
    assert after == before  # no event, enrollment, pairing, session, goal, message or audit row
    with env.db.transaction() as s:
        assert {r.status for r in s.scalars(select(InboxRow))} == {"processing"}

    # The lease runs out; another worker processes the batch from scratch.
    monkeypatch.setattr(rules_module, "_finish_rule", real)
    fresh = Worker(
        env.runtime(), worker_id="next", scheduler=False, share_writes=False, lease=timedelta(0)
    )
    assert fresh.drain() >= 2
    assert pairs(env) == match_apply_reference(tmp_path, sqlite_url, monkeypatch)
    done = counts(env)
    assert done["done"] == 2 and done["goals"] == 2


def test_one_bad_delivery_does_not_hold_the_burst_back(tmp_path, sqlite_url, monkeypatch):
    env = setup(tmp_path / "bad", sqlite_url, monkeypatch)
    accept(env, "E1", "E2")
    assert inbox.accept(env.db, "reviews", "broken", "application/json", b"{not json")
    Worker(env.runtime(), worker_id="w", scheduler=False, share_writes=False).drain()
    with env.db.transaction() as s:
        status = {r.delivery_id: r.status for r in s.scalars(select(InboxRow))}
    assert status.pop("broken") == "dead"
    assert set(status.values()) == {"done"}
    assert len(pairs(env)) == 2


def test_burst_settings_default_and_configured(tmp_path, sqlite_url, monkeypatch):
    env = setup(tmp_path / "defaults", sqlite_url, monkeypatch)
    assert burst_settings(env.runtime()) == (2.0, 1000)
    program = env.config.programs["performance-coaching"]
    assert (program.burst_window_seconds, program.burst_max) == (2.0, 1000)
    text = env.path.read_text().replace(
        "cadence_days = 14", "cadence_days = 14\nburst_window_seconds = 0.5\nburst_max = 7"
    )
    env.path.write_text(text)
    from tests.webhooks.conftest import load

    env.config = load(env.path, env.registry)
    assert burst_settings(env.runtime()) == (0.5, 7)
    assert Worker(env.runtime(), scheduler=False).batch == 7


def test_a_live_worker_waits_for_the_burst_to_gather(tmp_path, sqlite_url, monkeypatch):
    env = setup(tmp_path / "gather", sqlite_url, monkeypatch)
    worker = Worker(env.runtime(), worker_id="w", scheduler=False, burst_window=0.6)
    accept(env, "E1")
    started = datetime.now(UTC)
    worker._gather_burst()
    assert datetime.now(UTC) - started >= timedelta(seconds=0.4)  # waited for the window
    accept(env, "E2")
    worker.batch = 2  # as many waiting as a batch takes: no wait
    started = datetime.now(UTC)
    worker._gather_burst()
    assert datetime.now(UTC) - started < timedelta(seconds=0.3)


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ("burst_window_seconds = 0", "burst_window_seconds"),
        ("burst_window_seconds = -1.5", "burst_window_seconds"),
        ("burst_max = 0", "burst_max"),
        ('burst_max = "many"', "burst_max"),
    ],
)
def test_bad_burst_settings_are_config_errors_naming_the_key(
    tmp_path, sqlite_url, monkeypatch, run_cli, setting, key
):
    env = setup(tmp_path / "bad-config", sqlite_url, monkeypatch)
    env.path.write_text(
        env.path.read_text().replace("cadence_days = 14", f"cadence_days = 14\n{setting}")
    )
    result = run_cli("--config", str(env.path), "check")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert key in result.stderr and "Traceback" not in result.stderr


def test_every_message_a_batch_queues_is_sent_after_its_commit(tmp_path, sqlite_url, monkeypatch):
    """A batch queues more messages than one sending round's default (200): all are sent at
    once, none left for housekeeping."""
    from tests.webhooks.conftest import people_csv

    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    env = make_env(tmp_path, sqlite_url, capacity=60, people=people_csv(110, 2))
    sync_people(env)
    accept(env, *(f"E{n}" for n in range(1, 111)))
    Worker(env.runtime(), worker_id="w", scheduler=False, share_writes=False).drain()
    with env.db.transaction() as s:
        statuses = list(s.scalars(select(NotificationRow.status)))
    assert len(statuses) == 220 and set(statuses) == {"sent"}


def test_a_pairings_two_messages_share_one_invitation_built_once(tmp_path, sqlite_url, monkeypatch):
    """The learner's and the guide's message carry the same invitation: a burst builds it once
    per pairing, and a change to the sessions builds it again."""
    from coachbridge.notify.messages import InvitationCache, pairing_message
    from coachbridge.pairings import calendar

    env = setup(tmp_path, sqlite_url, monkeypatch)
    built: list[int] = []
    real = calendar.invitation_for_sessions

    def counting(sessions, pairing, *args, **kwargs):
        built.append(pairing.id)
        return real(sessions, pairing, *args, **kwargs)

    monkeypatch.setattr(calendar, "invitation_for_sessions", counting)
    accept(env, "E1", "E2")
    Worker(env.runtime(), worker_id="w", scheduler=False, share_writes=False).drain()
    with env.db.transaction() as s:
        pairing_ids = list(s.scalars(select(PairingRow.id)))
        sent = list(s.scalars(select(NotificationRow.status)))
    assert len(pairing_ids) == 2 and sent == ["sent"] * 4
    assert sorted(built) == sorted(pairing_ids)  # once per pairing, not once per message

    cache = InvitationCache()
    pid = pairing_ids[0]
    with env.db.transaction() as s:
        learner = pairing_message(s, f"pairing:{pid}:learner:log", invitations=cache)
        guide = pairing_message(s, f"pairing:{pid}:guide:log", invitations=cache)
        assert learner is not None and guide is not None
        assert learner.attachments[0].data == guide.attachments[0].data
        first = s.scalars(
            select(SessionRow).where(SessionRow.pairing_id == pid).order_by(SessionRow.start)
        ).first()
        assert first is not None
        first.start += timedelta(hours=1)
        s.flush()
        moved = pairing_message(s, f"pairing:{pid}:learner:log", invitations=cache)
        assert moved is not None and moved.attachments[0].data != learner.attachments[0].data


@pytest.mark.postgres
def test_a_batch_locks_the_program_before_it_writes_and_people_without_blocking_inserts(
    tmp_path, pg_url, monkeypatch
):
    """Two workers' batches must not deadlock: each takes the rules' program lock before it
    stores anything (storing review events key-share-locks their people), and planning
    sessions locks people FOR NO KEY UPDATE, which an insert referring to them never waits
    for. Measured before: the second batch deadlocked and fell back to one delivery at a time."""
    from sqlalchemy import event

    env = setup(tmp_path, pg_url, monkeypatch)
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()))

    event.listen(env.db.engine, "before_cursor_execute", record)
    accept(env, "E1", "E2")
    Worker(env.runtime(), worker_id="w", scheduler=False, share_writes=False).drain()
    event.remove(env.db.engine, "before_cursor_execute", record)

    def first(prefix: str, needle: str) -> int:
        return next(
            i for i, sql in enumerate(statements) if sql.startswith(prefix) and needle in sql
        )

    program_lock = first("SELECT programs.", "FOR UPDATE")
    assert program_lock < first("INSERT INTO review_events", "")
    assert "FOR NO KEY UPDATE" in statements[first("SELECT people.", "FOR ")]
    with env.db.transaction() as s:
        batches = set(s.scalars(select(InboxRow.processed_at)))
    assert len(batches) == 1  # one unit of work, not one delivery at a time
