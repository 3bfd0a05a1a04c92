"""The demo's intake round on a small company: the real services, deterministic, robust to a
matching engine with or without a ``topics`` criterion."""

from __future__ import annotations

from coachbridge.demo.intake import TOPICS, _weighted, intake_round, topics_known
from coachbridge.domain.program import Program
from coachbridge.store import Database
from coachbridge.store.tables import ProfileRow
from sqlalchemy import select

from tests.participants.participants_world import NOW, Capture, Hooks, app_for, company


def test_the_round_invites_reminds_at_most_twice_and_compares(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.upgrade()
    ids = company(db)
    app = app_for(db)
    lines: list[str] = []
    figures = intake_round(app, Hooks(), lines.append, program_id="mentoring", now=NOW)  # type: ignore[arg-type]
    assert figures["invited"] == 4 and figures["answered"] + figures["never"] == 4
    assert figures["reminders"][2] == 0  # never a third
    assert len(Capture.sent) == 4 + sum(figures["reminders"])
    assert any("4 people invited by mail (2 learners, 2 guides)" in line for line in lines)
    # ``topics`` is a built-in criterion (docs/matching.md): the answers are weighed.
    assert not any("no `topics` matching criterion is installed" in line for line in lines)
    assert figures["topic_hits"][0] >= figures["topic_hits"][1]
    with db.transaction() as s:
        rows = list(s.scalars(select(ProfileRow).where(ProfileRow.answered_at.is_not(None))))
    assert len(rows) == figures["answered"]
    assert all(set(r.topics) <= set(TOPICS) and r.answered_by == "self" for r in rows)
    assert {r.person_id for r in rows} <= {ids["lea"], ids["lou"], ids["gus"], ids["gia"]}
    db.dispose()


def test_the_topics_weight_is_named_only_when_a_criterion_takes_it() -> None:
    program = Program.model_validate({"id": "m", "kind": "mentoring"})
    assert "topics" not in _weighted(program, 0.0).weights
    assert _weighted(program, 0.4).weights["topics"] == 0.4
    assert _weighted(program, 0.4).weights["skills"] == program.weights["skills"]
    assert topics_known(Hooks())  # type: ignore[arg-type]  # built in
    assert topics_known(Hooks(criteria={"topics": object()}))  # type: ignore[arg-type]
