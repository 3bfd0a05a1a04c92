"""What a push writes back: coachbridge's goals (by hand or by rules), never imported ones."""

from __future__ import annotations

from datetime import UTC, datetime

from coachbridge.hris.push import build_push_items
from coachbridge.store import Database
from coachbridge.store.tables import (
    ExternalIdRow,
    GoalRow,
    PairingRow,
    PersonRow,
    ProgramRow,
)


def test_rule_and_manual_goals_are_pushed_imported_ones_are_not(db: Database) -> None:
    with db.transaction() as s:
        learner, guide = PersonRow(first_name="Ana"), PersonRow(first_name="Ben")
        s.add_all(
            [
                learner,
                guide,
                ProgramRow(
                    id="c", name="Coaching", kind="coaching", settings={"duration_weeks": 12}
                ),
            ]
        )
        s.flush()
        s.add_all(
            [
                ExternalIdRow(connector="bamboo", external_id="7", person_id=learner.id),
                ExternalIdRow(connector="bamboo", external_id="8", person_id=guide.id),
            ]
        )
        pairing = PairingRow(
            program_id="c",
            learner_id=learner.id,
            guide_id=guide.id,
            status="active",
            activated_at=datetime(2027, 1, 4, tzinfo=UTC),
        )
        s.add(pairing)
        s.flush()
        s.add_all(
            [
                GoalRow(owner_id=learner.id, pairing_id=pairing.id, title="By hand"),
                GoalRow(
                    owner_id=learner.id,
                    pairing_id=pairing.id,
                    title="From the rule",
                    source_key=f"rule:rules[0]:pairing:{pairing.id}:goal",
                ),
                GoalRow(owner_id=learner.id, title="In the HRIS", source_key="import:bamboo:99"),
            ]
        )
    with db.transaction() as s:
        items = build_push_items(s, "bamboo", ["goal", "pairing"])
    goals = sorted(i.fields["title"] for i in items if i.kind == "goal")
    assert goals == ["By hand", "From the rule"]
    (pairing_item,) = [i for i in items if i.kind == "pairing"]
    assert pairing_item.people["learner"] == "7" and pairing_item.people["guide"] == "8"
    # An open pairing of a rolling program is due to end after the program's duration.
    assert pairing_item.fields["end"] == "2027-03-29"
