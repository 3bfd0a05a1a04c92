"""Matching a program in the store: constraints, reasons, breakdowns, apply, match_one, rematch."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from coachbridge import hookimpl
from coachbridge.errors import ConfigError, UserError
from coachbridge.matching.criteria import Criterion
from coachbridge.matching.features import euler_intervals
from coachbridge.matching.service import apply, explain, match_one, propose
from coachbridge.pairings.service import rematch
from coachbridge.plugins import Registry, make_plugin_manager
from coachbridge.store import Database
from coachbridge.store.people import chain_above
from coachbridge.store.tables import AuditRow, PairingRow, PairRuleRow, PersonRow
from sqlalchemy import select

from tests.matching.matching_factory import enroll, person, program

NOW = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def sdb(sqlite_url: str):
    database = Database(sqlite_url)
    database.upgrade()
    yield database
    database.dispose()


def registry() -> Registry:
    return Registry.build(make_plugin_manager(load_entry_points=False))


def org(s) -> None:
    """1 (CEO) > 2 (VP) > 3 (manager) > 4, 5 (engineers); 6, 7 elsewhere."""
    person(s, 1, level=9, skills=["strategy", "python"])
    person(s, 2, level=7, manager_id=1, skills=["python", "leadership"])
    person(s, 3, level=5, manager_id=2, skills=["python"])
    person(s, 4, level=2, manager_id=3, interests=["python", "leadership"])
    person(s, 5, level=2, manager_id=3, interests=["python"])
    person(s, 6, level=6, department="Sales", skills=["leadership", "python"], manager_id=1)
    person(s, 7, level=6, department="Sales", skills=["negotiation"], manager_id=1)


def test_propose_respects_constraints_and_breakdowns_add_up(db: Database) -> None:
    prog = program(min_score=0.0)
    with db.transaction() as s:
        org(s)
        for pid in (4, 5):
            enroll(s, prog, pid, "learner")
        for pid in (1, 2, 3, 6, 7):
            enroll(s, prog, pid, "guide")
        proposal = propose(s, prog, registry(), now=NOW)
    pairs = {p.learner_id: p for p in proposal.pairs}
    assert set(pairs) == {4, 5} and not proposal.unmatched
    for p in proposal.pairs:
        # Never the manager or anyone above (1, 2, 3 are all above 4 and 5).
        assert p.guide_id in (6, 7)
        assert sum(p.breakdown.values()) == p.score
        assert set(p.breakdown) == {"skills", "seniority", "language"}
    assert pairs[4].guide_id == 6  # python + leadership offered; the better fit


def test_unmatched_reasons(db: Database) -> None:
    prog = program(min_score=0.6, capacity=1)
    with db.transaction() as s:
        org(s)
        person(s, 8, level=2, interests=["python"], department="Sales", manager_id=7)
        person(s, 9, level=2, interests=["cooking"], manager_id=6, languages=["fr"])
        person(s, 10, level=2, interests=["python"], manager_id=6)
        for pid in (4, 8, 9, 10):
            enroll(s, prog, pid, "learner")
        for pid in (3, 6):
            enroll(s, prog, pid, "guide")
        proposal = propose(s, prog, registry(), now=NOW)
    reasons = {u.learner_id: u.reason for u in proposal.unmatched}
    matched = {p.learner_id for p in proposal.pairs}
    # 4: guide 3 is their manager, guide 6 fits; 8 and 10 compete for guide 3 / 6;
    # 9: wants cooking, nobody offers it and no shared language: below min_score.
    assert reasons[9] == "below_min_score"
    assert len(matched) == 2
    assert all(r in ("guides_full", "below_min_score") for r in reasons.values())
    assert "guides_full" in reasons.values()


def test_no_eligible_guide_and_excluded_by_constraint(sdb: Database) -> None:
    prog = program()
    with sdb.transaction() as s:
        org(s)
        enroll(s, prog, 4, "learner")
        proposal = propose(s, prog, registry(), now=NOW)
        assert [u.as_dict() for u in proposal.unmatched] == [
            {"learner_id": 4, "reason": "no_eligible_guide"}
        ]
        enroll(s, prog, 3, "guide")  # their own manager
        enroll(s, prog, 1, "guide")  # the CEO above them
        proposal = propose(s, prog, registry(), now=NOW)
        assert proposal.unmatched[0].reason == "excluded_by_constraint"
        assert proposal.pairs == []


def test_opt_outs_inactive_people_and_capacity_override(sdb: Database) -> None:
    prog = program(capacity=5)
    with sdb.transaction() as s:
        org(s)
        person(s, 11, level=2, interests=["python"], status="inactive")
        for pid in (4, 5, 11):
            enroll(s, prog, pid, "learner")
        enroll(s, prog, 6, "guide", capacity=1)
        enroll(s, prog, 7, "guide", opted_out=True)
        proposal = propose(s, prog, registry(), now=NOW)
    assert [p.guide_id for p in proposal.pairs] == [6]
    assert [(u.learner_id, u.reason) for u in proposal.unmatched] == [(5, "guides_full")] or [
        (u.learner_id, u.reason) for u in proposal.unmatched
    ] == [(4, "guides_full")]


def test_apply_fills_only_free_capacity_and_leaves_existing_pairings(db: Database) -> None:
    prog = program(capacity=1)
    with db.transaction() as s:
        org(s)
        for pid in (4, 5):
            enroll(s, prog, pid, "learner")
        for pid in (6, 7):
            enroll(s, prog, pid, "guide")
        existing = PairingRow(program_id=prog.id, learner_id=5, guide_id=6, status="active")
        s.add(existing)
        s.flush()
        proposal = propose(s, prog, registry(), now=NOW)
        assert [(p.learner_id, p.guide_id) for p in proposal.pairs] == [(4, 7)]
        rows = apply(s, prog, proposal, status="proposed", actor="test", now=NOW)
        assert [(r.learner_id, r.guide_id, r.status) for r in rows] == [(4, 7, "proposed")]
        # Re-applying the same proposal creates nothing: the learner is paired now.
        assert apply(s, prog, proposal, status="active", actor="test", now=NOW) == []
    with db.transaction() as s:
        statuses = sorted((p.learner_id, p.status) for p in s.scalars(select(PairingRow)))
        assert statuses == [(4, "proposed"), (5, "active")]


def test_match_one_announces_after_commit_only(sdb: Database) -> None:
    prog = program()
    seen: list = []
    reg = registry()
    reg.pairing_created = seen.append  # type: ignore[method-assign]
    with sdb.transaction() as s:
        org(s)
        enroll(s, prog, 4, "learner")
        enroll(s, prog, 3, "guide")
        enroll(s, prog, 6, "guide")
        enroll(s, prog, 7, "guide")
    with pytest.raises(RuntimeError), sdb.transaction() as s:
        assert match_one(s, prog, 4, reg, now=NOW) is not None
        raise RuntimeError("rolled back")
    assert seen == []
    with sdb.transaction() as s:
        row = match_one(s, prog, 4, reg, now=NOW)
        assert row is not None and row.guide_id == 6 and row.status == "active"
        assert seen == []
    assert [p.guide_id for p in seen] == [6]
    with sdb.transaction() as s:  # idempotent: the active pairing comes back
        again = match_one(s, prog, 4, reg, now=NOW)
        assert again is not None and again.id == row.id
        assert match_one(s, prog, 5, reg, now=NOW) is None  # 5 is not enrolled
        assert len(list(s.scalars(select(PairingRow)))) == 1


def test_match_one_returns_none_and_writes_nothing_without_a_guide(sdb: Database) -> None:
    prog = program()
    with sdb.transaction() as s:
        org(s)
        enroll(s, prog, 4, "learner")
        enroll(s, prog, 3, "guide")  # their manager
        assert match_one(s, prog, 4, registry(), now=NOW) is None
        assert list(s.scalars(select(PairingRow))) == []
        assert list(s.scalars(select(AuditRow))) == []


def test_match_one_sees_open_pairings_of_others_and_past_pairings_of_its_learner(
    sdb: Database,
) -> None:
    """match_one reads only what one learner's match needs (guides, that learner, open
    pairings): a guide filled by another learner is full, and a guide this learner had
    before is never offered again, however many other learners and old pairings exist."""
    prog = program(capacity=1, min_score=0.0)
    with sdb.transaction() as s:
        org(s)
        person(s, 8, level=6, department="Support", skills=["python"], manager_id=1)
        for pid in range(20, 40):  # other learners, some with closed pairings of their own
            person(s, pid, level=2, department="Sales", interests=["python"])
            enroll(s, prog, pid, "learner")
        for pid in (4, 5):
            enroll(s, prog, pid, "learner")
        for pid in (6, 7, 8):
            enroll(s, prog, pid, "guide")
        s.add(PairingRow(program_id=prog.id, learner_id=4, guide_id=6, status="ended"))
        s.add(PairingRow(program_id=prog.id, learner_id=5, guide_id=7, status="active"))
        for pid in range(20, 30):
            s.add(PairingRow(program_id=prog.id, learner_id=pid, guide_id=8, status="completed"))
    with sdb.transaction() as s:
        row = match_one(s, prog, 4, registry(), now=NOW)
        # 6 was 4's guide before, 7 is full (capacity 1, held by 5): 8 is the one left.
        assert row is not None and row.guide_id == 8
    with sdb.transaction() as s:
        # For learner 20, 6 is free (4's pairing with 6 ended) and 7 and 8 are full.
        row = match_one(s, prog, 20, registry(), now=NOW)
        assert row is not None and row.guide_id == 6
    with sdb.transaction() as s:  # every guide is full now: completed pairings held nothing
        assert match_one(s, prog, 21, registry(), now=NOW) is None


def test_plugin_criterion_shows_up_in_the_breakdown(sdb: Database) -> None:
    def same_location(learner, guide) -> float:
        return 1.0 if learner.location and learner.location == guide.location else 0.0

    plugin = SimpleNamespace(
        coachbridge_register_score_criteria=hookimpl(
            lambda register: register(Criterion("same_office", same_location, "same office"))
        )
    )
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(plugin, name="test-criteria")
    reg = Registry.build(pm)
    prog = program(weights={"skills": 0.5, "same_office": 0.6})
    with sdb.transaction() as s:
        org(s)
        enroll(s, prog, 4, "learner")
        enroll(s, prog, 6, "guide")
        enroll(s, prog, 7, "guide")
        s.get(PersonRow, 4).location = "Berlin"
        s.get(PersonRow, 7).location = "Berlin"
        proposal = propose(s, prog, reg, now=NOW)
    pair = proposal.pairs[0]
    # 6 offers both wanted skills (0.5); 7 offers none but shares the office (0.6): 7 wins.
    assert (pair.guide_id, pair.breakdown) == (7, {"skills": 0.0, "same_office": 0.6})
    assert pair.score == sum(pair.breakdown.values())
    with sdb.transaction() as s, pytest.raises(ConfigError) as info:
        propose(s, prog, registry(), now=NOW)  # without the plugin
    assert "weights.same_office" in str(info.value)


def test_fairness_limit_in_the_service(sdb: Database) -> None:
    prog = program(capacity=3, limits={"per_guide_per_department": 1})
    with sdb.transaction() as s:
        org(s)
        person(s, 12, level=2, interests=["python"], manager_id=7)
        for pid in (4, 5, 12):
            enroll(s, prog, pid, "learner")
        enroll(s, prog, 6, "guide")
        proposal = propose(s, prog, registry(), now=NOW)
    # 4, 5, 12 are all Engineering: guide 6 may take only one of them.
    assert len(proposal.pairs) == 1
    assert {u.reason for u in proposal.unmatched} == {"guides_full"}


def test_pins_forbids_and_no_repeat_of_an_earlier_pairing(sdb: Database) -> None:
    prog = program(capacity=1)
    with sdb.transaction() as s:
        org(s)
        for pid in (4, 5):
            enroll(s, prog, pid, "learner")
        for pid in (6, 7):
            enroll(s, prog, pid, "guide")
        s.add(PairRuleRow(program_id=prog.id, learner_id=5, guide_id=6, kind="pin"))
        s.add(PairRuleRow(program_id=prog.id, learner_id=4, guide_id=7, kind="forbid"))
        s.flush()
        proposal = propose(s, prog, registry(), now=NOW)
        assert [(p.learner_id, p.guide_id, p.pinned) for p in proposal.pairs] == [(5, 6, True)]
        assert [(u.learner_id, u.reason) for u in proposal.unmatched] == [(4, "guides_full")]
        s.execute(PairRuleRow.__table__.delete())
        s.add(
            PairingRow(program_id=prog.id, learner_id=4, guide_id=6, status="ended", end_reason="x")
        )
        s.flush()
        proposal = propose(s, prog, registry(), now=NOW)
        assert dict((p.learner_id, p.guide_id) for p in proposal.pairs)[4] == 7


def test_rematch_moves_only_that_learner(sdb: Database) -> None:
    prog = program(capacity=1)
    with sdb.transaction() as s:
        org(s)
        for pid in (4, 5):
            enroll(s, prog, pid, "learner")
        for pid in (2, 6, 7):
            enroll(s, prog, pid, "guide")
        person(s, 13, level=8, skills=["python"], department="HR")
        enroll(s, prog, 13, "guide")
        rows = apply(s, prog, propose(s, prog, registry(), now=NOW), actor="t", now=NOW)
        by_learner = {r.learner_id: r for r in rows}
        other = by_learner[5]
        old, new = rematch(
            s, {prog.id: prog}, by_learner[4].id, registry(), reason="no chemistry", now=NOW
        )
        assert old.status == "ended" and old.end_reason == "no chemistry"
        assert new is not None and new.guide_id not in (old.guide_id, other.guide_id, 2)
        assert other.status == "active"
        actions = [a.action for a in s.scalars(select(AuditRow))]
        assert "rematch" in actions and "end_pairing" in actions
        with pytest.raises(UserError):
            rematch(s, {prog.id: prog}, old.id, registry(), reason="again", now=NOW)


@pytest.mark.parametrize("fill", [0, 2])
def test_top_k_cut_is_widened_so_it_never_costs_a_match(
    sdb: Database, fill: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ``fill``: certification's first lists give each guide its best pairs too (then 21 and
    # 22 are there from the start); without that only widening finds them.
    monkeypatch.setattr("coachbridge.matching.certify.GUIDE_FILL", fill)
    prog = program(capacity=1, top_k=1, weights={"skills": 1.0})
    with sdb.transaction() as s:
        person(s, 20, skills=["a", "b"], level=6)
        person(s, 21, skills=["a"], level=6)
        person(s, 22, skills=["z"], level=6)
        person(s, 30, interests=["a", "b"])
        person(s, 31, interests=["a", "b"])
        person(s, 32, interests=["a"])
        for pid in (30, 31, 32):
            enroll(s, prog, pid, "learner")
        for pid in (20, 21, 22):
            enroll(s, prog, pid, "guide")
        proposal = propose(s, prog, registry(), now=NOW)
    # Every learner's single best guide is 20; only widening finds 21 and 22 for the others.
    assert len(proposal.pairs) == 3 and (proposal.widened > 0 or fill)


def test_explain_lists_alternatives_with_reasons(sdb: Database) -> None:
    prog = program(capacity=1)
    with sdb.transaction() as s:
        org(s)
        for pid in (4, 5):
            enroll(s, prog, pid, "learner")
        for pid in (3, 6, 7):
            enroll(s, prog, pid, "guide")
        alts = explain(s, prog, 4, registry(), now=NOW)
    assert {a.guide_id for a in alts} == {3, 6, 7}
    by_guide = {a.guide_id: a for a in alts}
    assert by_guide[3].why_not.startswith("excluded")
    assert sum(1 for a in alts if a.why_not == "chosen") == 1


@pytest.mark.parametrize("seed", range(5))
def test_euler_intervals_answer_the_reporting_chain(seed: int) -> None:
    rng = random.Random(seed)
    managers: dict[int, int | None] = {0: None}
    for pid in range(1, 300):
        managers[pid] = rng.randrange(pid) if rng.random() > 0.02 else None
    tour = euler_intervals(managers)
    for _ in range(3000):
        a, b = rng.randrange(300), rng.randrange(300)
        above = a != b and tour[a][0] < tour[b][0] and tour[b][1] <= tour[a][1]
        assert above == (a in chain_above(managers, b))
    assert math.isfinite(len(tour))


def test_existing_pairings_count_toward_the_department_limit(db: Database) -> None:
    prog = program(capacity=3, limits={"per_guide_per_department": 1})
    with db.transaction() as s:
        org(s)
        person(s, 12, level=2, interests=["python"], manager_id=7, department="Sales")
        for pid in (4, 5, 12):
            enroll(s, prog, pid, "learner")
        enroll(s, prog, 6, "guide")
        s.add(PairingRow(program_id=prog.id, learner_id=5, guide_id=6, status="active"))
        s.flush()
        proposal = propose(s, prog, registry(), now=NOW)
    # 5 (Engineering) already has guide 6: 4 (Engineering) may not join; 12 (Sales) may.
    assert [(p.learner_id, p.guide_id) for p in proposal.pairs] == [(12, 6)]
    assert [(u.learner_id, u.reason) for u in proposal.unmatched] == [(4, "guides_full")]


def test_a_criterion_without_a_scoring_form_is_refused_at_registration() -> None:
    plugin = SimpleNamespace(
        coachbridge_register_score_criteria=hookimpl(
            lambda register: register(Criterion("half", features=lambda profiles: profiles))
        )
    )
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(plugin, name="test-criteria")
    with pytest.raises(ConfigError, match="'half': give both features and score_block"):
        Registry.build(pm)
