"""Enrollment: eligibility filters, idempotency, opt-outs, roles and their aliases."""

from __future__ import annotations

from datetime import date

import pytest
from coachbridge.domain import Program
from coachbridge.errors import NotFoundError, UserError
from coachbridge.programs.enrollment import enroll_eligible, enroll_person, opt_out
from coachbridge.store import Database
from coachbridge.store.programs import ensure_program_row
from coachbridge.store.tables import EnrollmentRow, ProgramRow
from sqlalchemy import select

from .scheduling_factories import Factory, program

TODAY = date(2027, 1, 1)


def eligible_program(**extra) -> Program:
    return program(
        learners={"level": [2, 4], "departments": ["Engineering", "Sales"]},
        guides={"level": [5, 9]},
        **extra,
    )


def enrolled(db: Database, prog: str = "mentoring") -> set[tuple[int, str, bool]]:
    with db.transaction() as s:
        return {
            (e.person_id, e.role, e.opted_out)
            for e in s.scalars(select(EnrollmentRow).where(EnrollmentRow.program_id == prog))
        }


def test_eligibility_level_range_inclusive_and_departments(db: Database, factory: Factory) -> None:
    low = factory.person(level=2, department="Engineering")
    high = factory.person(level=4, department="sales")  # case-insensitive
    factory.person(level=1, department="Engineering")  # below the range
    factory.person(level=3, department="Finance")  # wrong department
    factory.person(level=3, department="Engineering", status="inactive")
    factory.person(level=None, department="Engineering")  # unknown level
    guide = factory.person(level=7, department="Finance")
    prog = eligible_program()
    with db.transaction() as s:
        result = enroll_eligible(s, prog, today=TODAY)
    assert (result.learner.eligible, result.learner.added) == (2, 2)
    assert (result.guide.eligible, result.guide.added) == (1, 1)
    assert result.problems() == []
    assert enrolled(db) == {
        (low, "learner", False),
        (high, "learner", False),
        (guide, "guide", False),
    }


def test_enroll_eligible_is_idempotent(db: Database, factory: Factory) -> None:
    factory.person(level=3, department="Sales")
    factory.person(level=6)
    prog = eligible_program()
    with db.transaction() as s:
        enroll_eligible(s, prog, today=TODAY)
    before = enrolled(db)
    with db.transaction() as s:
        again = enroll_eligible(s, prog, today=TODAY)
    assert again.added == 0 and (again.learner.already, again.guide.already) == (1, 1)
    assert enrolled(db) == before


def test_opted_out_person_is_never_re_enrolled(db: Database, factory: Factory) -> None:
    learner = factory.person(level=3, department="Sales")
    prog = eligible_program()
    with db.transaction() as s:
        opt_out(s, prog, learner)  # before any enrollment: both roles recorded as opted out
    with db.transaction() as s:
        result = enroll_eligible(s, prog, today=TODAY)
    assert result.learner.opted_out == 1 and result.learner.added == 0
    assert enrolled(db) == {(learner, "learner", True), (learner, "guide", True)}
    # Rules (automatic sources) respect the opt-out; only a manual enrollment reverses it.
    with db.transaction() as s:
        row = enroll_person(s, prog, learner, "mentee", source="rule")
        assert row.opted_out
    with db.transaction() as s:
        assert not enroll_person(s, prog, learner, "learner").opted_out


def test_tenure_and_location_filters(db: Database, factory: Factory) -> None:
    new = factory.person(hire_date=date(2026, 11, 1), location="Berlin")
    old = factory.person(hire_date=date(2019, 1, 1), location="Berlin")
    factory.person(hire_date=None, location="Berlin")
    factory.person(hire_date=date(2026, 11, 1), location="Lisbon")
    prog = program(
        learners={"locations": ["berlin"], "max_tenure_days": 90},
        guides={"locations": ["Berlin"], "min_tenure_days": 365},
    )
    with db.transaction() as s:
        enroll_eligible(s, prog, today=TODAY)
    assert enrolled(db) == {(new, "learner", False), (old, "guide", False)}


def test_eligibility_matching_nobody_says_so(db: Database, factory: Factory) -> None:
    factory.person(level=3, department="Sales")
    prog = program(learners={"level": [2, 4]}, guides={"level": [10, 12]})
    with db.transaction() as s:
        result = enroll_eligible(s, prog, today=TODAY)
    assert result.matches_nobody() == [
        "program 'mentoring': the [programs.guides] eligibility matches nobody in the store; "
        "check its filters (or run a sync first)"
    ]
    no_learner_rules = program(id="open", guides={"level": [1, 9]})
    with db.transaction() as s:
        result = enroll_eligible(s, no_learner_rules, today=TODAY)
    assert not result.learner.configured and result.learner.added == 0
    assert any("no [programs.learners] eligibility" in p for p in result.problems())


def test_enroll_person_roles_aliases_and_capacity(db: Database, factory: Factory) -> None:
    prog = program()
    person = factory.person()
    with db.transaction() as s:
        row = enroll_person(s, prog, person, "Mentor", capacity=2)
        assert (row.role, row.capacity) == ("guide", 2)
        assert enroll_person(s, prog, person, "coach").id == row.id  # idempotent
        assert enroll_person(s, prog, person, "coachee").role == "learner"
    with db.transaction() as s, pytest.raises(UserError, match="unknown role 'boss'"):
        enroll_person(s, prog, person, "boss")
    with db.transaction() as s, pytest.raises(UserError, match="capacity applies to guides"):
        enroll_person(s, prog, person, "learner", capacity=3)
    with db.transaction() as s, pytest.raises(NotFoundError, match="unknown person id 999"):
        enroll_person(s, prog, 999, "learner")
    gone = factory.person(status="inactive")
    with db.transaction() as s, pytest.raises(UserError, match="inactive"):
        enroll_person(s, prog, gone, "learner")


def test_opt_out_of_one_role(db: Database, factory: Factory) -> None:
    prog = program()
    person = factory.person()
    with db.transaction() as s:
        enroll_person(s, prog, person, "learner")
        enroll_person(s, prog, person, "guide")
        opt_out(s, prog, person, "guide")
    assert enrolled(db) == {(person, "learner", False), (person, "guide", True)}


def test_ensure_program_row_follows_the_config(db: Database) -> None:
    with db.transaction() as s:
        ensure_program_row(s, program(name="Old name"))
    with db.transaction() as s:
        ensure_program_row(s, program(name="New name", cadence_days=7))
    with db.transaction() as s:
        row = s.get(ProgramRow, "mentoring")
        assert row is not None
        assert (row.name, row.kind, row.settings["cadence_days"]) == ("New name", "mentoring", 7)
