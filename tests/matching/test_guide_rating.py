"""The guide's received session rating: the ``guide_rating`` criterion and the
``min_guide_rating`` eligibility bound (at least ``min_ratings`` ratings), on SQLite and
PostgreSQL. Only the rating column is read: a guide's own feedback does not count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from coachbridge.domain import Eligibility
from coachbridge.matching.pool import load_pool
from coachbridge.matching.service import propose
from coachbridge.plugins import Registry, make_plugin_manager
from coachbridge.programs.enrollment import enroll_eligible
from coachbridge.store import Database
from coachbridge.store.eligibility import guide_ratings
from coachbridge.store.programs import ensure_program_row
from coachbridge.store.tables import EnrollmentRow, FeedbackRow, PairingRow, SessionRow
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.matching.matching_factory import enroll, person, program

NOW = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
OLD = program(id="earlier", weights={"skills": 1.0})


def _rated(s: Session, guide: int, learner: int, ratings: list[int], **extra: object) -> None:
    """A past pairing of ``guide`` and ``learner`` in another program, one held session per
    rating, each rated by the learner."""
    ensure_program_row(s, OLD)
    pairing = PairingRow(program_id=OLD.id, learner_id=learner, guide_id=guide, status="completed")
    s.add(pairing)
    s.flush()
    for seq, rating in enumerate(ratings, 1):
        session = SessionRow(
            pairing_id=pairing.id,
            seq=seq,
            start=NOW - timedelta(days=100 - seq),
            minutes=45,
            status="held",
        )
        s.add(session)
        s.flush()
        s.add(
            FeedbackRow(
                session_id=session.id,
                pairing_id=pairing.id,
                from_person_id=learner,
                rating=rating,
                **extra,
            )
        )
    s.flush()


def _company(s: Session) -> None:
    """1 at the top; guides 10 (rated 5, five times), 11 (rated 2, five times), 12 (two
    ratings of 1: too few), 13 (never rated); learners 20 and 21."""
    person(s, 1, level=9)
    for pid in (10, 11, 12, 13):
        person(s, pid, level=6, manager_id=1, department="Sales")
    for pid in (20, 21, 30, 31, 32):
        person(s, pid, level=2, manager_id=1)
    _rated(s, 10, 30, [5, 5, 5, 5, 5], comment="great", private_note="never read")
    # The guide's own feedback on those sessions is not a rating they received.
    for fb in list(s.scalars(select(FeedbackRow))):
        session = s.get(SessionRow, fb.session_id)
        assert session is not None
        s.add(
            FeedbackRow(
                session_id=session.id, pairing_id=fb.pairing_id, from_person_id=10, rating=1
            )
        )
    _rated(s, 11, 31, [2, 2, 2, 2, 2])
    _rated(s, 12, 32, [1, 1])
    s.flush()


def _registry() -> Registry:
    return Registry.build(make_plugin_manager(load_entry_points=False))


def test_received_ratings_are_averaged_from_learners_only(db: Database) -> None:
    with db.transaction() as s:
        _company(s)
        assert guide_ratings(s) == {10: (5.0, 5), 11: (2.0, 5), 12: (1.0, 2)}


def test_the_criterion_scores_the_average_and_unknown_as_half(db: Database) -> None:
    prog = program(weights={"guide_rating": 1.0}, capacity=1)
    with db.transaction() as s:
        _company(s)
        for pid in (20, 21):
            enroll(s, prog, pid, "learner")
        for pid in (10, 11, 12, 13):
            enroll(s, prog, pid, "guide")
        pool = load_pool(s, prog, {}, now=NOW)
        row = {g: pool.guide_row[g] for g in (10, 11, 12, 13)}
        scores = {g: pool.scorer.breakdown(0, j)["guide_rating"] for g, j in row.items()}
        # (avg - 1) / 4 once at least min_ratings (default 5); 12 has two ratings: unknown.
        assert scores == {10: 1.0, 11: 0.25, 12: 0.5, 13: 0.5}
        proposal = propose(s, prog, _registry(), now=NOW)
    # Two learners, one place per guide: the best rated guide, then an unknown one (0.5),
    # never the guide rated 2 (0.25).
    assert sorted(p.guide_id for p in proposal.pairs)[0] == 10
    assert {p.guide_id for p in proposal.pairs} & {11} == set()
    assert sum(p.score for p in proposal.pairs) == pytest.approx(1.5)


def test_min_ratings_moves_what_counts_as_known(db: Database) -> None:
    prog = program(
        weights={"guide_rating": 1.0}, guides=Eligibility(departments=["Sales"], min_ratings=2)
    )
    with db.transaction() as s:
        _company(s)
        enroll(s, prog, 20, "learner")
        for pid in (10, 11, 12):
            enroll(s, prog, pid, "guide")
        pool = load_pool(s, prog, {}, now=NOW)
        assert pool.scorer.breakdown(0, pool.guide_row[12])["guide_rating"] == 0.0


def test_min_guide_rating_bounds_enrollment_and_the_matching_pool(db: Database) -> None:
    prog = program(
        guides=Eligibility(departments=["Sales"], min_guide_rating=3.0),
        learners=Eligibility(level=(1, 3)),
    )
    with db.transaction() as s:
        _company(s)
        result = enroll_eligible(s, prog, today=NOW.date())
        guides = set(
            s.scalars(
                select(EnrollmentRow.person_id).where(
                    EnrollmentRow.program_id == prog.id, EnrollmentRow.role == "guide"
                )
            )
        )
        # 11's average (2) is below the bound; 12 (two ratings) and 13 (none) are not judged.
        assert guides == {10, 12, 13} and result.guide.eligible == 3
        # Enrolled by hand, 11 still guides nobody: the pool applies the bound too.
        enroll(s, prog, 11, "guide")
        pool = load_pool(s, prog, {}, now=NOW)
        assert set(pool.guide_ids) == {10, 12, 13}
    stricter = program(id="stricter", guides=Eligibility(min_guide_rating=3.0, min_ratings=2))
    with db.transaction() as s:
        for pid in (10, 11, 12):
            enroll(s, stricter, pid, "guide")
        enroll(s, stricter, 20, "learner")
        assert set(load_pool(s, stricter, {}, now=NOW).guide_ids) == {10}


def test_guide_only_keys_under_learners_are_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"learners\.min_guide_rating applies to guides only"):
        program(learners=Eligibility(min_guide_rating=3.0))
    with pytest.raises(ValueError, match="training_valid_days needs trained_in"):
        Eligibility(training_valid_days=30)
