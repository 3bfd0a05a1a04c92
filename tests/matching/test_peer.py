"""Peer programs: symmetric scores, both-way constraints, exact pairs, the odd person out."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime

import numpy as np
import pytest
from coachbridge.domain.program import Program
from coachbridge.matching.peer import load_peer_pool
from coachbridge.matching.service import allowed_pairs, apply, match_one, propose
from coachbridge.plugins import Registry, make_plugin_manager
from coachbridge.store import Database
from coachbridge.store.tables import PairingRow, PairRuleRow
from sqlalchemy import select

from tests.matching.matching_factory import enroll, person

NOW = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
TAGS = ["python", "sql", "sales", "design", "leadership"]
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", None]


def peer(**fields) -> Program:
    data = {
        "id": "peers",
        "kind": "peer",
        "weights": {"skills": 0.4, "seniority": 0.2, "timezone": 0.2, "department_diversity": 0.2},
    }
    data.update(fields)
    return Program.model_validate(data)


def registry() -> Registry:
    return Registry.build(make_plugin_manager(load_entry_points=False))


@pytest.fixture
def sdb(sqlite_url: str):
    database = Database(sqlite_url)
    database.upgrade()
    yield database
    database.dispose()


def both(s, prog: Program, pid: int, **prefs) -> None:
    """Enrolled as [programs.participants] does it: in both roles."""
    enroll(s, prog, pid, "learner", **prefs)
    enroll(s, prog, pid, "guide", **prefs)


def random_pool(s, prog: Program, rng: random.Random, n: int, *, chain: bool = True) -> None:
    for pid in range(1, n + 1):
        manager = rng.randint(1, pid - 1) if chain and pid > 1 and rng.random() < 0.4 else None
        person(
            s,
            pid,
            level=rng.choice([None, 1, 2, 3, 4, 5, 6]),
            department=rng.choice(["A", "B", "C"]),
            timezone=rng.choice(ZONES),
            manager_id=manager,
            skills=rng.sample(TAGS, rng.randint(0, 3)),
            interests=rng.sample(TAGS, rng.randint(0, 3)),
        )
        both(s, prog, pid)


def brute_force(n: int, score, allowed) -> tuple[int, float]:
    """The lexicographic best (pairs, total) over every matching of rows 0..n-1."""
    best = (0, 0.0)

    def walk(free: list[int], count: int, total: float) -> None:
        nonlocal best
        if (count, total) > (best[0], best[1] + 1e-9):
            best = (count, total)
        if len(free) < 2:
            return
        first, rest = free[0], free[1:]
        walk(rest, count, total)  # ``first`` stays unpaired
        for i, other in enumerate(rest):
            if allowed(first, other):
                walk(rest[:i] + rest[i + 1 :], count + 1, total + score(first, other))

    walk(list(range(n)), 0, 0.0)
    return best


def test_scores_are_symmetric_for_every_criterion(sdb: Database) -> None:
    prog = peer(weights={"skills": 1, "goals": 1, "seniority": 1, "timezone": 1, "language": 1})
    rng = random.Random(3)
    with sdb.transaction() as s:
        random_pool(s, prog, rng, 12)
        pool = load_peer_pool(s, prog, {}, now=NOW)
    scorer = pool.scorer
    scores, _ = scorer.block(np.arange(12, dtype=np.int64))
    assert np.allclose(scores, scores.T, rtol=0, atol=1e-12)
    # The directional scores are not symmetric (levels and skills differ), the pair's score is.
    there = scorer.forward.scores(np.arange(12, dtype=np.int64))
    assert not np.allclose(there, there.T)
    for a, b in itertools.combinations(range(12), 2):
        assert scorer.breakdown(a, b) == scorer.breakdown(b, a)


@pytest.mark.parametrize("seed", range(12))
def test_pairs_are_exact_against_brute_force(sdb: Database, seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(2, 9)
    prog = peer(min_score=rng.choice([0.0, 0.3, 0.5]))
    with sdb.transaction() as s:
        random_pool(s, prog, rng, n)
        for _ in range(rng.randint(0, 2)):
            a, b = rng.sample(range(1, n + 1), 2)
            s.add(PairRuleRow(program_id="peers", learner_id=a, guide_id=b, kind="forbid"))
        s.flush()
        pool = load_peer_pool(s, prog, {}, now=NOW)
        proposal = propose(s, prog, registry(), now=NOW)
    sc = pool.scorer
    full, ok = sc.block(np.arange(n, dtype=np.int64))

    def allowed(a: int, b: int) -> bool:
        return bool(ok[a, b]) and full[a, b] >= prog.min_score

    count, total = brute_force(n, lambda a, b: full[a, b], allowed)
    assert len(proposal.pairs) == count
    assert sum(p.score for p in proposal.pairs) == pytest.approx(total, abs=1e-9)
    paired = [x for p in proposal.pairs for x in (p.learner_id, p.guide_id)]
    assert len(paired) == len(set(paired))  # each person in at most one pair
    for p in proposal.pairs:
        assert p.learner_id < p.guide_id
        assert allowed(pool.row[p.learner_id], pool.row[p.guide_id])
        assert sum(p.breakdown.values()) == pytest.approx(p.score, abs=1e-12)
    assert sorted(u.learner_id for u in proposal.unmatched) == sorted(
        set(range(1, n + 1)) - set(paired)
    )
    assert proposal.guarantee.startswith("optimal over all ")


@pytest.mark.parametrize("seed", range(6))
def test_top_k_is_exact_over_its_candidates(sdb: Database, seed: int) -> None:
    """With few candidates per person the result is the best matching of those candidates."""
    rng = random.Random(100 + seed)
    n = 10
    prog = peer(top_k=2)
    with sdb.transaction() as s:
        random_pool(s, prog, rng, n, chain=False)
        proposal = propose(s, prog, registry(), now=NOW)
    lids, gids, scores = proposal.arcs
    assert all(a < b for a, b in zip(lids.tolist(), gids.tolist(), strict=True))
    arcs = {(a - 1, b - 1): float(x) for a, b, x in zip(lids, gids, scores, strict=True)}
    assert len(arcs) == len(lids)  # each unordered pair once

    def allowed(a: int, b: int) -> bool:
        return (min(a, b), max(a, b)) in arcs

    count, total = brute_force(n, lambda a, b: arcs[(min(a, b), max(a, b))], allowed)
    assert len(proposal.pairs) == count
    assert sum(p.score for p in proposal.pairs) == pytest.approx(total, abs=1e-9)
    assert "within each person's 2 best partners" in proposal.guarantee


def test_reporting_chain_forbid_and_earlier_pairs_hold_both_ways(db: Database) -> None:
    prog = peer()
    with db.transaction() as s:
        person(s, 1, level=5)
        person(s, 2, level=3, manager_id=1)  # 1 manages 2
        person(s, 3, level=3)
        person(s, 4, level=2, manager_id=2)  # 1 > 2 > 4
        for pid in (1, 2, 3, 4):
            both(s, prog, pid)
        # Forbid 3 with 4 (given as learner 4, guide 3): 3-4 is refused in both orders.
        s.add(PairRuleRow(program_id="peers", learner_id=4, guide_id=3, kind="forbid"))
        s.flush()
        proposal = propose(s, prog, registry(), now=NOW)
        # Allowed: 1-3, 2-3 only (1-2, 1-4, 2-4 chain; 3-4 forbidden): one pair at most.
        assert len(proposal.pairs) == 1
        pair = proposal.pairs[0]
        assert (pair.learner_id, pair.guide_id) in {(1, 3), (2, 3)}
        reasons = {u.learner_id: u.reason for u in proposal.unmatched}
        assert reasons[4] == "excluded_by_constraint"
        count, blocks = allowed_pairs(s, prog, registry(), now=NOW)
        listed = {(a, b) for ids_a, ids_b, _ in blocks for a, b in zip(ids_a, ids_b, strict=True)}
        assert listed == {(1, 3), (2, 3)} and count == 2
        # An earlier pairing of 1 and 3 (stored as learner 3, guide 1) is never proposed again.
        s.add(PairingRow(program_id="peers", learner_id=3, guide_id=1, status="completed"))
        s.flush()
        again = propose(s, prog, registry(), now=NOW)
        assert [(p.learner_id, p.guide_id) for p in again.pairs] == [(2, 3)]


def test_opted_out_people_are_never_paired(sdb: Database) -> None:
    prog = peer()
    with sdb.transaction() as s:
        for pid in (1, 2, 3):
            person(s, pid)
        both(s, prog, 1)
        both(s, prog, 2)
        enroll(s, prog, 3, "learner")
        enroll(s, prog, 3, "guide", opted_out=True)  # out of the program in any role
        proposal = propose(s, prog, registry(), now=NOW)
    assert [(p.learner_id, p.guide_id) for p in proposal.pairs] == [(1, 2)]
    assert proposal.unmatched == []


def test_odd_pool_reports_the_person_left_out(sdb: Database) -> None:
    prog = peer(weights={"skills": 1.0})
    with sdb.transaction() as s:
        person(s, 1, skills=["python"], interests=["python"])
        person(s, 2, skills=["python"], interests=["python"])
        person(s, 3, skills=["sales"], interests=["design"])
        for pid in (1, 2, 3):
            both(s, prog, pid)
        proposal = propose(s, prog, registry(), now=NOW)
    assert [(p.learner_id, p.guide_id) for p in proposal.pairs] == [(1, 2)]
    assert [(u.learner_id, u.reason) for u in proposal.unmatched] == [(3, "odd_one_out")]


def test_one_person_alone_and_empty_pools_never_fail(sdb: Database) -> None:
    prog = peer()
    with sdb.transaction() as s:
        empty = propose(s, prog, registry(), now=NOW)
        assert empty.pairs == [] and empty.unmatched == []
        person(s, 1)
        both(s, prog, 1)
        alone = propose(s, prog, registry(), now=NOW)
    assert [(u.learner_id, u.reason) for u in alone.unmatched] == [(1, "no_eligible_partner")]


def test_apply_stores_each_pair_once_lower_id_first(db: Database) -> None:
    prog = peer()
    with db.transaction() as s:
        for pid in (7, 3, 5, 1, 9):
            person(s, pid, level=pid % 4)
            both(s, prog, pid)
        proposal = propose(s, prog, registry(), now=NOW)
        rows = apply(s, prog, proposal, status="active", now=NOW)
        assert len(rows) == 2
    with db.transaction() as s:
        stored = list(s.scalars(select(PairingRow).order_by(PairingRow.learner_id)))
        assert all(r.learner_id < r.guide_id for r in stored)
        people = [x for r in stored for x in (r.learner_id, r.guide_id)]
        assert len(people) == len(set(people)) == 4
        # The one left over has nobody left: a second match pairs nobody and fails nothing.
        again = propose(s, prog, registry(), now=NOW)
        assert again.pairs == []
        assert [u.reason for u in again.unmatched] == ["no_eligible_partner"]
        assert apply(s, prog, proposal, status="active", now=NOW) == []  # all taken now
        assert match_one(s, prog, again.unmatched[0].learner_id, registry(), now=NOW) is None


def test_pins_come_first_and_must_be_allowed(sdb: Database) -> None:
    prog = peer(weights={"skills": 1.0})
    with sdb.transaction() as s:
        person(s, 1, skills=["python"], interests=["python"])
        person(s, 2, skills=["python"], interests=["python"])
        person(s, 3, skills=["sales"], interests=["sales"])
        person(s, 4, skills=["sales"], interests=["sales"], manager_id=3)
        for pid in (1, 2, 3, 4):
            both(s, prog, pid)
        s.add(PairRuleRow(program_id="peers", learner_id=3, guide_id=1, kind="pin"))
        s.add(PairRuleRow(program_id="peers", learner_id=4, guide_id=3, kind="pin"))
        s.flush()
        proposal = propose(s, prog, registry(), now=NOW)
    pairs = {(p.learner_id, p.guide_id): p.pinned for p in proposal.pairs}
    assert pairs == {(1, 3): True, (2, 4): False}
    assert any(w.startswith("pin 4-3") for w in proposal.warnings)  # 3 manages 4


def test_people_left_out_beyond_parity_get_every_partner(sdb: Database) -> None:
    """Everyone's single best partner is the star 1: the lists alone pair two people only."""
    prog = peer(weights={"skills": 1.0}, top_k=1)
    with sdb.transaction() as s:
        person(s, 1, skills=["python", "sql", "design"], interests=["leadership"])
        person(s, 2, skills=["leadership"], interests=["python"])
        person(s, 3, skills=["sales"], interests=["python", "sql"])
        person(s, 4, skills=[], interests=["python", "design"])
        for pid in (1, 2, 3, 4):
            both(s, prog, pid)
        proposal = propose(s, prog, registry(), now=NOW)
    assert [(p.learner_id, p.guide_id) for p in proposal.pairs] == [(1, 2), (3, 4)]
    assert proposal.widened > 0 and proposal.unmatched == []
    assert proposal.guarantee == "optimal within each person's 1 best partners"


def test_a_cohort_of_review_events_never_pairs_a_peer_pool(sdb: Database) -> None:
    """Rules pair their learners one cohort at a time; a peer pool is matched as a whole."""
    prog = peer()
    with sdb.transaction() as s:
        for pid in (1, 2, 3, 4):
            person(s, pid)
            both(s, prog, pid)
        cohort = propose(s, prog, registry(), now=NOW, only_learners={1})
        assert cohort.pairs == [] and apply(s, prog, cohort, now=NOW) == []
        assert len(propose(s, prog, registry(), now=NOW).pairs) == 2


def test_rematch_of_a_peer_pair_returns_both_to_the_pool(sdb: Database) -> None:
    from coachbridge.pairings.service import rematch

    prog = peer(weights={"skills": 1.0})
    with sdb.transaction() as s:
        for pid in (1, 2, 3, 4):
            person(s, pid, skills=["python"], interests=["python"])
            both(s, prog, pid)
        rows = apply(s, prog, propose(s, prog, registry(), now=NOW), status="active", now=NOW)
        first = {(r.learner_id, r.guide_id) for r in rows}
        target = min(rows, key=lambda r: r.learner_id)
        old, new = rematch(s, {"peers": prog}, target.id, registry(), reason="no fit", now=NOW)
        assert old.status != "active" and new is None
        again = propose(s, prog, registry(), now=NOW)
    # The two are back in the pool, never proposed together again: nobody else is free.
    assert again.pairs == []
    assert sorted(u.learner_id for u in again.unmatched) == [target.learner_id, target.guide_id]
    assert {u.reason for u in again.unmatched} == {"excluded_by_constraint"}
    assert len(first) == 2
