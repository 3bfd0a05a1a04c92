"""The domain models reject nonsense with a clear message."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from coachbridge.domain import (
    Condition,
    Enrollment,
    Feedback,
    Goal,
    Pairing,
    PersonRecord,
    Program,
    ReviewEvent,
    Role,
    Rule,
    Session,
    check_reporting_tree,
    normalize_rating,
    normalize_role,
)
from pydantic import ValidationError


def test_rating_normalized_with_default_min_of_one() -> None:
    assert normalize_rating(2, 5) == 0.25
    assert normalize_rating(1, 5) == 0.0
    assert normalize_rating(5, 5) == 1.0
    assert normalize_rating(3, 4, scale_min=0) == 0.75


@pytest.mark.parametrize("raw", [0, 6, float("nan")])
def test_rating_outside_scale_is_rejected(raw: float) -> None:
    with pytest.raises(ValueError):
        normalize_rating(raw, 5)


def test_review_event_normalizes_raw_rating() -> None:
    event = ReviewEvent(source="hr", source_event_id="E1:2026", raw_rating=2, scale_max=5)
    assert event.rating == 0.25
    with pytest.raises(ValidationError, match="outside its scale"):
        ReviewEvent(source="hr", source_event_id="x", raw_rating=7, scale_max=5)


def test_program_rejects_end_before_start_and_negative_capacity() -> None:
    with pytest.raises(ValidationError, match="before start"):
        Program(id="p", kind="coaching", start=date(2027, 2, 1), end=date(2027, 1, 1))
    with pytest.raises(ValidationError, match="capacity"):
        Program(id="p", kind="coaching", capacity=-1)
    with pytest.raises(ValidationError, match="kind"):
        Program(id="p", kind="therapy")


def test_program_sessions_planned_and_defaults() -> None:
    program = Program(id="p", kind="mentoring", duration_weeks=12, cadence_days=14)
    assert program.sessions_planned == 6
    assert program.name == "p"
    ranged = Program(id="q", kind="coaching", start=date(2027, 1, 4), end=date(2027, 3, 29))
    assert ranged.duration_weeks == 12


def test_eligibility_level_range_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="level range"):
        Program(id="p", kind="mentoring", learners={"level": [5, 2]})


def test_roles_and_aliases() -> None:
    assert normalize_role("Mentee") is Role.LEARNER
    assert normalize_role("coach") is Role.GUIDE
    assert Enrollment(program="p", person_id=1, role="mentor").role is Role.GUIDE
    with pytest.raises(ValueError, match="unknown role"):
        normalize_role("boss")
    with pytest.raises(ValidationError):
        Enrollment(program="p", person_id=1, role="learner", capacity=-2)


def test_pairing_rules() -> None:
    with pytest.raises(ValidationError, match="themselves"):
        Pairing(program="p", learner_id=1, guide_id=1)
    with pytest.raises(ValidationError, match="end_reason"):
        Pairing(program="p", learner_id=1, guide_id=2, status="ended")


def test_goal_progress_bounds_and_feedback_rating() -> None:
    with pytest.raises(ValidationError):
        Goal(owner_id=1, title="x", progress=120)
    with pytest.raises(ValidationError):
        Feedback(pairing_id=1, from_person_id=1, rating=6)


def test_session_private_notes_stay_out_of_repr_and_dumps() -> None:
    session = Session(
        pairing_id=1, start=datetime(2027, 1, 5, 10, tzinfo=UTC), minutes=45, private_notes="secret"
    )
    assert "secret" not in repr(session)
    assert "private_notes" not in session.model_dump()


def test_person_record_validation() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        PersonRecord(external_id="1", timezone="Mars/Base")
    with pytest.raises(ValidationError, match="email"):
        PersonRecord(external_id="1", email="nobody")
    assert PersonRecord(
        external_id="1", first_name="Ana", preferred_name="Annie", last_name="Díaz"
    ).name == ("Annie Díaz")


def test_manager_cycle_and_unknown_manager() -> None:
    check_reporting_tree({"a": None, "b": "a", "c": "b"})
    with pytest.raises(ValueError, match="reporting cycle: a -> c -> b -> a"):
        check_reporting_tree({"a": "c", "b": "a", "c": "b"})
    with pytest.raises(ValueError, match="does not exist"):
        check_reporting_tree({"a": "zz"})


def test_rule_conditions_are_data() -> None:
    rule = Rule.model_validate(
        {
            "on": "review.completed",
            "when": [
                {"field": "rating", "op": "<=", "value": 0.4},
                {"field": "person.level", "op": "in", "value": [2, 3]},
            ],
            "then": {"enroll": "coaching", "role": "coachee", "goal": "Plan after {cycle}"},
        }
    )
    assert rule.then.role is Role.LEARNER
    assert rule.matches({"type": "review.completed", "rating": 0.25, "person.level": 2})
    assert not rule.matches({"type": "review.completed", "rating": 0.5, "person.level": 2})
    assert not rule.matches({"type": "review.completed", "rating": None, "person.level": 2})
    with pytest.raises(ValidationError, match="unknown field"):
        Condition(field="__class__", op="==", value=1)
    with pytest.raises(ValidationError, match="unknown field"):
        Rule.model_validate({"on": "review.completed", "then": {"enroll": "x", "goal": "{salary}"}})
    with pytest.raises(ValidationError, match="unknown event type"):
        Rule.model_validate({"on": "payroll.run", "then": {"enroll": "x"}})


@pytest.mark.parametrize("text", ["{person_extra_x:.1f}", "Plan {}", "{cycle!r}", "{cycle:{x}}"])
def test_goal_placeholders_are_plain_names(text: str) -> None:
    from coachbridge.domain.rule import Rule

    with pytest.raises(ValidationError, match="placeholders are plain names"):
        Rule.model_validate({"on": "review.completed", "then": {"enroll": "p", "goal": text}})


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"weights": {"skills": float("nan")}}, "weights.skills must be a number"),
        ({"weights": {"skills": float("inf")}}, "weights.skills must be a number"),
        ({"start": "9999-12-31"}, "outside 1900-2199"),
        ({"capacity": 10**20}, "less than or equal to 1000"),
    ],
)
def test_program_rejects_impossible_numbers_and_dates(fields: dict, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        Program.model_validate({"id": "p", "kind": "mentoring", **fields})
