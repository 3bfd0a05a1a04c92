"""The daily health check: each condition, once per pairing, opt-outs, dry runs."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from coachbridge.jobs.daily import run_daily
from coachbridge.jobs.health import run_health_checks
from coachbridge.store import Database
from coachbridge.store.tables import (
    AuditRow,
    EnrollmentRow,
    InboxRow,
    NotificationRow,
    PairingRow,
    SessionRow,
)
from sqlalchemy import select

from tests.health.health_world import NOW, App, World, config, program


def _world(db: Database) -> dict[str, int]:
    prog = program(settings={"first_session_days": 10, "first_session_owner_days": 20})
    with db.transaction() as s:
        w = World(s, prog)
        people = [w.person(f"P{i}") for i in range(12)]
        # 1. made 15 days ago, nothing held: remind both, not yet the owner.
        fresh = w.pair(people[0], people[1], made=NOW - timedelta(days=15))
        # 2. made 30 days ago, nothing held: both and the owner.
        old = w.pair(people[2], people[3], made=NOW - timedelta(days=30))
        # 3. held once 40 days ago (cadence 14 x 2 = 28): stalled.
        stalled = w.pair(people[4], people[5], made=NOW - timedelta(days=60))
        w.session(stalled, 40, "held", seq=1)
        # 4. first session rated 2 by the guide: fit check.
        poor = w.pair(people[6], people[7], made=NOW - timedelta(days=20))
        first = w.session(poor, 5, "held", seq=1)
        w.feedback(first, people[7], 2)
        w.feedback(first, people[6], 5)
        # 5. three missed in a row after a held one: pause, cancel the future ones.
        missing = w.pair(people[8], people[9], made=NOW - timedelta(days=90))
        w.session(missing, 80, "held", seq=1)
        for i, days in enumerate((50, 30, 10)):
            w.session(missing, days, "missed", seq=2 + i)
        w.session(missing, -5, "scheduled", seq=5)
        # 6. healthy: held 3 days ago, rated 4; its learner opted out of messages.
        healthy = w.pair(people[10], people[11], made=NOW - timedelta(days=30))
        good = w.session(healthy, 3, "held", seq=1)
        w.feedback(good, people[10], 4)
        s.query(EnrollmentRow).filter_by(person_id=people[0].id).update({"opted_out": True})
        return {
            "fresh": fresh.id,
            "old": old.id,
            "stalled": stalled.id,
            "poor": poor.id,
            "missing": missing.id,
            "healthy": healthy.id,
            "opted_out": people[0].id,
        }


def test_conditions_once_each(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    ids = _world(db)
    app = App(
        config(program(settings={"first_session_days": 10, "first_session_owner_days": 20})), db
    )
    dry = run_health_checks(app, now=NOW, dry_run=True)
    with db.transaction() as s:
        assert s.scalars(select(NotificationRow)).first() is None
        assert s.get(PairingRow, ids["missing"]).status == "active"
        assert s.get(PairingRow, ids["poor"]).flag is None
    with caplog.at_level(logging.INFO, logger="coachbridge.notify"):
        nudges = run_health_checks(app, now=NOW)
    assert sorted(n.key for n in dry) == sorted(n.key for n in nudges)
    got = {(n.condition, n.pairing_id) for n in nudges}
    # The opted-out learner of the fresh pairing gets nothing; the guide does.
    fresh = [n for n in nudges if n.pairing_id == ids["fresh"]]
    assert [n.recipient_id for n in fresh] != [] and ids["opted_out"] not in [
        n.recipient_id for n in fresh
    ]
    assert ("no_first_session_owner", ids["fresh"]) not in got
    assert ("no_first_session", ids["old"]) in got and ("no_first_session_owner", ids["old"]) in got
    assert ("stalled", ids["stalled"]) in got
    assert ("fit_check", ids["poor"]) in got
    assert ("missed_in_a_row", ids["missing"]) in got
    assert ("missed_in_a_row_owner", ids["missing"]) in got
    assert not any(
        n.pairing_id == ids["healthy"] and n.condition != "feedback_request" for n in nudges
    )
    owner = next(n for n in nudges if n.condition == "fit_check")
    assert owner.to_email == "owner@example.com"
    assert f"coachbridge rematch {ids['poor']}" in owner.body
    with db.transaction() as s:
        missing = s.get(PairingRow, ids["missing"])
        assert missing.status == "paused" and missing.end_reason == "3 missed sessions in a row"
        future = s.scalars(
            select(SessionRow).where(SessionRow.pairing_id == ids["missing"], SessionRow.seq == 5)
        ).one()
        assert future.status == "cancelled"
        assert "guide" in (s.get(PairingRow, ids["poor"]).flag or "")
        statuses = {r.status for r in s.scalars(select(NotificationRow))}
        assert statuses == {"sent"}
        actions = {a.action for a in s.scalars(select(AuditRow))}
        assert {"pause_pairing", "flag_pairing"} <= actions
    # Private notes and comments never reach a message or the log.
    text = " ".join(n.body + n.subject for n in nudges) + caplog.text
    for secret in ("PRIVATE-SESSION-NOTE", "PRIVATE-FEEDBACK-NOTE", "COMMENT-FOR-OWNER"):
        assert secret not in text
    # Feedback requests carry a link for recently ended sessions not yet answered.
    requests = [n for n in nudges if n.condition == "feedback_request"]
    assert requests and all("/feedback/" in n.body for n in requests)
    assert ids["opted_out"] not in {n.recipient_id for n in requests}
    # A second run (and a later one) sends nothing again.
    assert run_health_checks(app, now=NOW) == []
    later = run_health_checks(app, now=NOW + timedelta(hours=1))
    assert later == []


def test_daily_job_purges_old_inbox_bodies(db: Database) -> None:
    app = App(config(program()), db)
    with db.transaction() as s:
        s.add_all(
            [
                InboxRow(
                    connector="c",
                    delivery_id="old",
                    body=b"{}",
                    status="done",
                    processed_at=NOW - timedelta(days=31),
                ),
                InboxRow(
                    connector="c",
                    delivery_id="new",
                    body=b"{}",
                    status="done",
                    processed_at=NOW - timedelta(days=2),
                ),
                InboxRow(connector="c", delivery_id="pending", body=b"{}", status="pending"),
            ]
        )
    purged = run_daily(app, now=NOW, dry_run=True).purged
    assert purged == 0
    purged = run_daily(app, now=NOW).purged
    assert purged == 1
    with db.transaction() as s:
        rows = {r.delivery_id: r for r in s.scalars(select(InboxRow))}
        assert rows["old"].body is None and rows["old"].status == "purged"
        assert rows["new"].body == b"{}" and rows["pending"].body == b"{}"


def test_nudge_cli(run_cli, db_url: str, tmp_path) -> None:
    from tests.health.health_world import write_config

    cfg = str(write_config(tmp_path / "coachbridge.toml"))
    db = Database(db_url)
    db.upgrade()
    _world(db)
    base = ("--config", cfg, "--db", db_url)
    dry = run_cli(*base, "nudge", "--dry-run", "--as-of", NOW.isoformat(), "--format", "json")
    assert dry.exit_code == 0, dry.stderr
    assert '"status": "dry-run"' in dry.stdout
    future = run_cli(*base, "nudge", "--as-of", NOW.isoformat())  # NOW is in 2027
    assert future.exit_code == 2 and "add --dry-run" in future.stderr
    real = run_cli(*base, "nudge", "--as-of", NOW.isoformat(), "--force")
    assert real.exit_code == 0, real.stderr
    assert "fit_check" in real.stdout
    again = run_cli(*base, "nudge", "--as-of", NOW.isoformat(), "--force")
    assert again.exit_code == 0 and "nothing to nudge" in again.stdout
    bad = run_cli(*base, "nudge", "--as-of", "yesterday")
    assert bad.exit_code == 2 and "ISO 8601" in bad.stderr
    for far in ("0001-01-01", "9999-12-31T23:00-14:00"):
        out = run_cli(*base, "nudge", "--dry-run", "--as-of", far)
        assert out.exit_code == 2 and "outside 1900-2199" in out.stderr, out.stderr
    db.dispose()


def test_resumed_pairing_is_not_paused_again_for_old_misses(db: Database) -> None:
    prog = program()
    app = App(config(prog), db)
    with db.transaction() as s:
        w = World(s, prog)
        a, b = w.person("A"), w.person("B")
        pairing = w.pair(a, b, made=NOW - timedelta(days=100))
        w.session(pairing, 90, "held", seq=1)
        for i, days in enumerate((60, 45, 30)):
            w.session(pairing, days, "missed", seq=2 + i)
        pid = pairing.id
    assert any(n.action == "paused" for n in run_health_checks(app, now=NOW))
    with db.transaction() as s:  # the owner resumes it
        s.get(PairingRow, pid).status = "active"
    later = NOW + timedelta(days=1)
    assert not [n for n in run_health_checks(app, now=later) if n.pairing_id == pid]
    with db.transaction() as s:
        assert s.get(PairingRow, pid).status == "active"
        w = World(s, prog, now=later + timedelta(days=50))
        pairing = s.get(PairingRow, pid)
        for i, days in enumerate((40, 25, 10)):
            w.session(pairing, days, "missed", seq=10 + i)
    again = run_health_checks(app, now=later + timedelta(days=50))
    assert any(n.action == "paused" and n.pairing_id == pid for n in again)
    with db.transaction() as s:
        assert s.get(PairingRow, pid).status == "paused"


def test_daily_run_completes_pairings_whose_term_is_over(db: Database) -> None:
    prog = program(start=None, duration_weeks=12)  # rolling: 12 weeks from each pairing
    app = App(config(prog), db)
    with db.transaction() as s:
        w = World(s, prog)
        a, b, c, d = (w.person(n) for n in "ABCD")
        over = w.pair(a, b, made=NOW - timedelta(weeks=13))  # its term ended a week ago
        w.session(over, 60, "held", seq=1)  # and nothing since: "stalled" if still checked
        unmarked = w.session(over, 3, "scheduled", seq=5)  # after the term, not yet marked
        ahead = w.session(over, -3, "scheduled", seq=6)  # moved after the term by hand
        running = w.pair(c, d, made=NOW - timedelta(weeks=3))  # no first session yet
        over_id, unmarked_id, ahead_id, running_id = over.id, unmarked.id, ahead.id, running.id

    def checks(nudges: list) -> set[tuple[int, str]]:
        # Feedback on a session of the last 14 days is asked for whatever the pairing's state.
        return {(n.pairing_id, n.condition) for n in nudges if n.condition != "feedback_request"}

    dry = run_daily(app, now=NOW, dry_run=True)
    assert dry.completed == 1
    assert {p for p, _ in checks(dry.nudges)} == {running_id}  # as in the real run
    with db.transaction() as s:
        assert s.get(PairingRow, over_id).status == "active"  # the dry run stored nothing

    daily = run_daily(app, now=NOW)
    assert daily.completed == 1
    assert {p for p, _ in checks(daily.nudges)} == {running_id}  # not "stalled" for it
    with db.transaction() as s:
        done = s.get(PairingRow, over_id)
        assert done.status == "completed"
        assert done.ended_at == NOW - timedelta(weeks=1)
        assert s.get(SessionRow, ahead_id).status == "cancelled"
        # A session between the term's end and the check may have happened: left to mark.
        assert s.get(SessionRow, unmarked_id).status == "scheduled"
        assert s.get(PairingRow, running_id).status == "active"
        audit = s.scalars(select(AuditRow).where(AuditRow.action == "complete_pairing")).one()
        assert audit.details["sessions_cancelled"] == 1
    assert run_daily(app, now=NOW).completed == 0  # once


def test_an_owners_pause_also_restarts_the_missed_count(db: Database) -> None:
    from coachbridge.pairings.lifecycle import pause_pairing

    prog = program()
    app = App(config(prog), db)
    with db.transaction() as s:
        w = World(s, prog)
        pairing = w.pair(w.person("A"), w.person("B"), made=NOW - timedelta(days=100))
        w.session(pairing, 90, "held", seq=1)
        for i, days in enumerate((60, 45, 30)):
            w.session(pairing, days, "missed", seq=2 + i)
        # The owner paused it for leave after those misses, and it is active again.
        pause_pairing(s, pairing, "leave", NOW - timedelta(days=20), actor="cli")
        pairing.status = "active"
        pid = pairing.id
    nudges = run_health_checks(app, now=NOW)
    assert not [n for n in nudges if n.pairing_id == pid and n.action == "paused"]
    with db.transaction() as s:
        assert s.get(PairingRow, pid).status == "active"


def test_a_pairing_is_nudged_once_per_stall(db: Database) -> None:
    prog = program()  # a session every 14 days; stalled after 2 periods without one
    app = App(config(prog), db)
    with db.transaction() as s:
        w = World(s, prog)
        pairing = w.pair(w.person("A"), w.person("B"), made=NOW - timedelta(days=90))
        w.session(pairing, 60, "held", seq=1)
        pid = pairing.id

    def stalled(at) -> list:  # type: ignore[no-untyped-def]
        return [n for n in run_health_checks(app, now=at) if n.condition == "stalled"]

    assert len(stalled(NOW)) == 2  # learner and guide
    assert stalled(NOW + timedelta(days=7)) == []  # the same stall: once
    with db.transaction() as s:  # they met again, then went quiet again
        World(s, prog, now=NOW + timedelta(days=10)).session(s.get(PairingRow, pid), 0, "held")
    assert stalled(NOW + timedelta(days=20)) == []  # not stalled yet
    again = stalled(NOW + timedelta(days=45))
    assert len(again) == 2 and all(
        n.key.endswith(":" + (NOW + timedelta(days=10)).strftime("%Y%m%d")) for n in again
    )
    assert stalled(NOW + timedelta(days=50)) == []


def test_a_stall_nudged_before_the_key_named_it_is_not_nudged_again(db: Database) -> None:
    prog = program()
    app = App(config(prog), db)
    with db.transaction() as s:
        w = World(s, prog)
        a, b = w.person("A"), w.person("B")
        pairing = w.pair(a, b, made=NOW - timedelta(days=90))
        w.session(pairing, 60, "held", seq=1)
        for person in (a, b):  # keys as an earlier coachbridge wrote them, after that session
            s.add(
                NotificationRow(
                    key=f"health:stalled:{pairing.id}:{person.id}",
                    channel="log",
                    recipient_id=person.id,
                    subject="x",
                    status="sent",
                    created_at=NOW - timedelta(days=20),
                )
            )
    assert not [n for n in run_health_checks(app, now=NOW) if n.condition == "stalled"]


def test_a_session_marked_held_late_still_lets_a_new_stall_be_nudged(db: Database) -> None:
    prog = program()
    app = App(config(prog), db)
    with db.transaction() as s:
        w = World(s, prog)
        pairing = w.pair(w.person("A"), w.person("B"), made=NOW - timedelta(days=120))
        w.session(pairing, 90, "held", seq=1)
        late = w.session(pairing, 60, "scheduled", seq=2)  # happened, not marked yet
        pid, late_id = pairing.id, late.id
    assert [n for n in run_health_checks(app, now=NOW) if n.condition == "stalled"]
    with db.transaction() as s:  # marked held after the nudge: the stall since is a new one
        s.get(SessionRow, late_id).status = "held"
    later = [
        n
        for n in run_health_checks(app, now=NOW + timedelta(days=1))
        if n.condition == "stalled" and n.pairing_id == pid
    ]
    assert len(later) == 2
