"""The intake answer's validation: every bad value is refused with its field named."""

from __future__ import annotations

import pytest
from coachbridge.domain import Intake, ProfileAnswer, Program
from pydantic import ValidationError

INTAKE = Intake(topics=["Negotiation", "Public speaking", "Career change", "Data literacy"])


def test_an_answer_is_normalised_and_fits_the_program():
    answer = ProfileAnswer(
        topics=["negotiation", "career change"],
        goal="  Lead my first team well  ",
        languages=["DE", "en", "de"],
        availability=["Tue-PM", "mon-am"],
    )
    answer.check_against(INTAKE, role="learner")
    assert answer.topics == ["Negotiation", "Career change"]  # spelt as the program lists them
    assert answer.goal == "Lead my first team well"
    assert answer.languages == ["de", "en"]
    assert answer.availability == ["tue-pm", "mon-am"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"goal": "x" * 1001}, "at most 1000"),
        ({"languages": ["english"]}, "ISO 639-1"),
        ({"availability": ["sat-am"]}, "not a slot"),
        ({"topics": ["a", "A"]}, "picked twice"),
        ({"languages": ["zz"]}, "ISO 639-1"),  # two letters, but no language
        ({"goal": "lead\x00a team"}, "control character"),
    ],
)
def test_bad_values_are_refused(fields, message):
    with pytest.raises(ValidationError, match=message):
        ProfileAnswer(**fields)


def test_topics_outside_the_list_or_over_the_cap_are_refused_for_learners_only():
    with pytest.raises(ValueError, match="'Cooking' is not one of"):
        ProfileAnswer(topics=["Cooking"]).check_against(INTAKE, role="guide")
    too_many = ["Negotiation", "Public speaking", "Career change", "Data literacy"]
    with pytest.raises(ValueError, match="at most 3"):
        ProfileAnswer(topics=too_many).check_against(INTAKE, role="learner")
    ProfileAnswer(topics=too_many).check_against(INTAKE, role="guide")  # a guide ticks any number


def test_an_unanswered_language_list_is_none_not_empty():
    assert ProfileAnswer().languages is None
    assert ProfileAnswer(languages=[]).languages == []


def test_a_program_carries_its_intake_and_the_two_hard_constraints():
    program = Program(
        id="m",
        kind="mentoring",
        intake={"topics": ["a", "b"], "max_topics": 1},
        require_common_language=True,
    )
    assert program.intake is not None and program.intake.max_topics == 1
    assert program.require_common_language and not program.require_availability_overlap
    with pytest.raises(ValidationError, match="listed twice"):
        Program(id="m", kind="mentoring", intake={"topics": ["a", "A"]})
    with pytest.raises(ValidationError, match="require_common_language"):
        Program(id="m", kind="mentoring", require_common_language="yes")


def test_a_goal_keeps_line_breaks_and_tabs_as_typed():
    assert ProfileAnswer(goal="one\r\ntwo\tthree").goal == "one\ntwo\tthree"


@pytest.mark.parametrize(
    ("intake", "message"),
    [
        ({}, "topics"),  # the one key without a default
        ({"topics": []}, "at least 1"),
        ({"topics": ["sales, marketing"]}, "contains ',' or ';'"),
        ({"topics": ["a;b"]}, "contains ',' or ';'"),
        ({"topics": ["a"], "max_topics": True}, "valid integer"),
        ({"topics": ["a"], "link_days": "21"}, "valid integer"),
    ],
)
def test_an_intake_the_commands_could_not_answer_is_refused(intake, message):
    with pytest.raises(ValidationError, match=message):
        Intake(**intake)


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"respond_within_days": True}, "respond_within_days"),
        ({"offer_alternatives": True}, "offer_alternatives"),
        ({"respond_within_days": "5"}, "respond_within_days"),
        ({"max_requests": False}, "max_requests"),
        ({"capacity": "3"}, "capacity"),
    ],
)
def test_whole_numbers_are_whole_numbers_not_booleans_or_text(fields, key):
    with pytest.raises(ValidationError, match=rf"{key}\n  Input should be a valid integer"):
        Program(id="m", kind="mentoring", **fields)


def test_a_manager_program_takes_no_choice():
    with pytest.raises(ValidationError, match="choice"):
        Program(id="m", kind="manager", choice="learner_picks")
    assert Program(id="m", kind="manager", choice="none").choice.value == "none"
