"""A rule that finds no guide with room enrolls the people [programs.guides] now admits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import coachbridge.programs.enrollment as enrollment
import pytest
from coachbridge.hris.sync import Syncer
from coachbridge.programs import rules as automation
from coachbridge.programs.enrollment import opt_out
from coachbridge.store.tables import EnrollmentRow, PairingRow, PersonRow, ReviewEventRow
from coachbridge_webhooks import inbox
from coachbridge_webhooks.worker import Worker
from sqlalchemy import select

from tests.webhooks.conftest import ENV, Env, make_env, one_place_env, people_csv, review


@pytest.fixture
def fresh(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """People synced, nobody enrolled: as right after a first sync, before `coachbridge enroll`."""
    env = one_place_env(tmp_path, db_url, monkeypatch)
    Syncer(env.db, env.runtime().connector("hr")).run(full=True)
    yield env
    env.db.dispose()


def deliver(env: Env, delivery_id: str, employee: str) -> None:
    body = json.dumps(review(employee, rating=1)).encode()
    assert inbox.accept(env.db, "reviews", delivery_id, "application/json", body)
    Worker(env.runtime(), worker_id="w", scheduler=False, share_writes=False).drain()


def outcome(env: Env, employee: str) -> str:
    with env.db.transaction() as s:
        person = s.scalars(
            select(PersonRow).where(PersonRow.email == f"{employee.lower()}@example.com")
        ).one()
        event = s.scalars(select(ReviewEventRow).where(ReviewEventRow.person_id == person.id)).one()
        return str(event.outcome["rules"][0]["result"])


def person_id(env: Env, email: str) -> int:
    with env.db.transaction() as s:
        return int(s.scalars(select(PersonRow.id).where(PersonRow.email == email)).one())


def test_the_first_rule_enrolls_the_eligible_guides_and_pairs(fresh: Env):
    program = fresh.config.programs["performance-coaching"]
    with fresh.db.transaction() as s:  # G1 said no to being a guide in this program
        opt_out(s, program, person_id(fresh, "g1@example.com"), "guide")
    deliver(fresh, "d1", "E1")
    assert outcome(fresh, "E1") == "paired"
    with fresh.db.transaction() as s:
        guides = {
            (row.person_id, row.opted_out, row.source)
            for row in s.scalars(select(EnrollmentRow).where(EnrollmentRow.role == "guide"))
        }
        pairing = s.scalars(select(PairingRow)).one()
    g1, g2 = person_id(fresh, "g1@example.com"), person_id(fresh, "g2@example.com")
    assert {out for p, out, _ in guides if p == g1} == {True}  # still opted out
    assert (g2, False, "eligibility") in guides
    assert pairing.guide_id == g2  # never the guide who opted out


def test_full_guides_and_no_new_people_read_the_people_once(
    fresh: Env, monkeypatch: pytest.MonkeyPatch
):
    scans: list[str] = []
    original = enrollment.enroll_eligible

    def counting(*args, **kwargs):
        scans.append("scan")
        return original(*args, **kwargs)

    monkeypatch.setattr(enrollment, "enroll_eligible", counting)
    deliver(fresh, "d1", "E1")  # no guide enrolled: the people are read, both guides join
    deliver(fresh, "d2", "E2")  # G2 has room: no look at all
    deliver(fresh, "d3", "E3")  # both full, the people as they were at the last look
    deliver(fresh, "d4", "E4")
    assert [outcome(fresh, e) for e in ("E1", "E2", "E3", "E4")] == [
        "paired",
        "paired",
        "no guide available",
        "no guide available",
    ]
    assert scans == ["scan"]


def test_a_look_rolled_back_is_not_remembered(fresh: Env):
    program = fresh.config.programs["performance-coaching"]
    now = datetime.now(UTC)
    with pytest.raises(RuntimeError), fresh.db.transaction() as s:
        assert automation._enroll_new_guides(s, program, now) == 2
        assert automation._enroll_new_guides(s, program, now) == 0  # a second rule, same event
        raise RuntimeError("the unit of work failed after the guides were enrolled")
    with fresh.db.transaction() as s:
        assert automation._enroll_new_guides(s, program, now) == 2  # looked for again
    with fresh.db.transaction() as s:
        assert automation._enroll_new_guides(s, program, now) == 0  # G1 and G2 have room now


def test_guides_with_room_who_do_not_fit_pull_nobody_else_in(fresh: Env):
    """Only a full pool grows: a learner that the guides with room do not suit (here the
    learner's own manager is the only one enrolled) leaves the hand-picked list as it is."""
    program = fresh.config.programs["performance-coaching"]
    g1 = person_id(fresh, "g1@example.com")
    e1 = person_id(fresh, "e1@example.com")
    with fresh.db.transaction() as s:
        s.get(PersonRow, e1).manager_id = g1
        enrollment.enroll_person(s, program, g1, "guide", source="manual")
    deliver(fresh, "d1", "E1")
    assert outcome(fresh, "E1") == "no guide available"
    with fresh.db.transaction() as s:
        guides = set(
            s.scalars(select(EnrollmentRow.person_id).where(EnrollmentRow.role == "guide"))
        )
    assert guides == {g1}


def test_a_guide_who_joins_later_takes_the_next_learner(fresh: Env, tmp_path: Path):
    deliver(fresh, "d1", "E1")
    deliver(fresh, "d2", "E2")
    deliver(fresh, "d3", "E3")
    assert outcome(fresh, "E3") == "no guide available"
    (tmp_path / "people.csv").write_text(people_csv(4, 3))  # G3 joins Engineering
    Syncer(fresh.db, fresh.runtime().connector("hr")).run(full=True)
    deliver(fresh, "d4", "E4")
    assert outcome(fresh, "E4") == "paired"
    with fresh.db.transaction() as s:
        guide = s.scalars(select(PairingRow).order_by(PairingRow.id.desc())).first()
        assert guide is not None and guide.guide_id == person_id(fresh, "g3@example.com")


MENTORING = """
[[programs]]
id = "mentoring"
name = "Mentoring"
kind = "mentoring"

[[rules]]
on = "review.completed"
when = [{ field = "rating", op = ">=", value = 0.9 }]
then = { enroll = "mentoring", role = "learner" }
"""


def test_check_warns_of_unnamed_rules_and_of_a_program_no_guide_can_join(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, run_cli
):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    env = make_env(tmp_path, sqlite_url, extra=MENTORING)
    result = run_cli("--config", str(env.path), "check")
    assert result.exit_code == 0, result.stdout + result.stderr
    out = result.stdout
    assert "rules: 2 ok, 3 warning(s)" in out
    assert "warn rules[0] has no name" in out and "warn rules[1] has no name" in out
    # performance-coaching has [programs.guides]; mentoring has neither guides nor a filter.
    assert "warn program 'mentoring': rules enroll learners, but it has no enrolled guide" in out
    assert "performance-coaching" not in out.split("rules:")[1]

    # Named rules and one enrolled mentor: nothing to warn about.
    text = env.path.read_text()
    text = text.replace("cooldown_days = 180", 'cooldown_days = 180\nname = "low"')
    text = text.replace(
        'then = { enroll = "mentoring", role = "learner" }',
        'then = { enroll = "mentoring", role = "learner" }\nname = "high"',
    )
    env.path.write_text(text)
    assert run_cli("--config", str(env.path), "sync", "hr").exit_code == 0
    enrolled = run_cli(
        "--config",
        str(env.path),
        "enroll",
        "mentoring",
        "--person",
        "g1@example.com",
        "--role",
        "guide",
    )
    assert enrolled.exit_code == 0, enrolled.stdout + enrolled.stderr
    result = run_cli("--config", str(env.path), "check")
    assert (
        result.exit_code == 0
        and "rules: 2 ok\n" in result.stdout
        and "  warn " not in result.stdout
    )
    env.db.dispose()
