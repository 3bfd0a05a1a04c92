"""Reverse mentoring: the guide is junior, seniority mirrored, the reporting chain both ways."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np
import pytest
from coachbridge.domain.program import Program
from coachbridge.matching.certify import allowed_pair_count
from coachbridge.matching.pool import load_pool
from coachbridge.matching.service import propose
from coachbridge.plugins import Registry, make_plugin_manager
from coachbridge.store import Database
from coachbridge.store.people import chain_above

from tests.matching.matching_factory import enroll, person

NOW = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


def prog(kind: str, **fields) -> Program:
    data = {"id": "rev", "kind": kind, "capacity": 1, "weights": {"seniority": 1.0}}
    data.update(fields)
    return Program.model_validate(data)


def registry() -> Registry:
    return Registry.build(make_plugin_manager(load_entry_points=False))


def test_seniority_is_mirrored(db: Database) -> None:
    """A guide two levels below the learner scores as today's guide two levels above."""
    with db.transaction() as s:
        person(s, 1, level=7)  # learner (senior)
        for pid, level in ((2, 5), (3, 9), (4, 6), (5, 7)):
            person(s, pid, level=level)
        reverse, mentoring = prog("reverse"), prog("mentoring", id="men")
        for p in (reverse, mentoring):
            enroll(s, p, 1, "learner")
            for pid in (2, 3, 4, 5):
                enroll(s, p, pid, "guide")
        rpool = load_pool(s, reverse, {}, now=NOW)
        mpool = load_pool(s, mentoring, {}, now=NOW)
        r = rpool.scorer.criterion("seniority", np.array([0]))[0]
        m = mpool.scorer.criterion("seniority", np.array([0]))[0]
        by_guide = dict(zip(rpool.guide_ids, r.tolist(), strict=True))
        # Guides 2 (5: two below), 3 (9: two above), 4 (6: one below), 5 (7: same level).
        assert by_guide == {2: 1.0, 3: 0.0, 4: pytest.approx(2 / 3), 5: 0.0}
        mirrored = dict(zip(mpool.guide_ids, m.tolist(), strict=True))
        assert mirrored[3] == by_guide[2] == 1.0 and mirrored[2] == by_guide[3] == 0.0
        best = propose(s, reverse, registry(), now=NOW)
    assert [(p.learner_id, p.guide_id) for p in best.pairs] == [(1, 2)]


def test_learner_above_the_guide_is_refused(db: Database) -> None:
    """The reverse pair with the learner in the guide's chain above is now refused.

    Mentoring only excludes guides above the learner: the same pool there pairs them.
    """
    with db.transaction() as s:
        person(s, 1, level=8)  # the senior learner ...
        person(s, 2, level=6, manager_id=1)
        person(s, 3, level=2, manager_id=2)  # ... is above this junior guide's manager
        for kind, pid in (("reverse", "rev"), ("mentoring", "men")):
            p = prog(kind, id=pid)
            enroll(s, p, 1, "learner")
            enroll(s, p, 3, "guide")
        mentoring = propose(s, prog("mentoring", id="men"), registry(), now=NOW)
        reverse = propose(s, prog("reverse"), registry(), now=NOW)
    assert [(p.learner_id, p.guide_id) for p in mentoring.pairs] == [(1, 3)]
    assert reverse.pairs == []
    assert [(u.learner_id, u.reason) for u in reverse.unmatched] == [(1, "excluded_by_constraint")]


@pytest.mark.parametrize("seed", range(4))
def test_allowed_pairs_counted_both_ways(sdb_url_seed, seed: int) -> None:
    db = sdb_url_seed
    rng = random.Random(seed)
    p = prog("reverse", weights={"seniority": 1.0})
    with db.transaction() as s:
        managers: dict[int, int | None] = {}
        for pid in range(1, 25):
            managers[pid] = rng.randint(1, pid - 1) if pid > 1 and rng.random() < 0.8 else None
            person(s, pid, level=rng.randint(1, 9), manager_id=managers[pid])
        for pid in range(1, 25):
            enroll(s, p, pid, rng.choice(["learner", "guide", "guide"]))
        pool = load_pool(s, p, {}, now=NOW)
        proposal = propose(s, p, registry(), now=NOW)
    expected = sum(
        1
        for lid in pool.learner_ids
        for gid in pool.guide_ids
        if lid != gid
        and gid not in chain_above(managers, lid)
        and lid not in chain_above(managers, gid)
    )
    rows = np.arange(len(pool.learner_ids), dtype=np.int64)
    count = allowed_pair_count(pool.scorer, rows, np.ones(len(pool.guide_ids), dtype=np.int64))
    assert count == expected
    for pair in proposal.pairs:
        assert pair.guide_id not in chain_above(managers, pair.learner_id)
        assert pair.learner_id not in chain_above(managers, pair.guide_id)
    assert proposal.certified


@pytest.fixture
def sdb_url_seed(sqlite_url: str):
    database = Database(sqlite_url)
    database.upgrade()
    yield database
    database.dispose()


def test_sync_flags_a_reverse_pair_whose_learner_now_manages_the_guide(db: Database) -> None:
    from coachbridge.pairings.lifecycle import REPORTING_FLAG, flag_reporting_conflicts
    from coachbridge.store.programs import ensure_program_row
    from coachbridge.store.tables import PairingRow, PersonRow

    with db.transaction() as s:
        person(s, 1, level=8)
        person(s, 2, level=2)
        for kind, pid in (("reverse", "rev"), ("mentoring", "men")):
            ensure_program_row(s, prog(kind, id=pid))
            s.add(PairingRow(program_id=pid, learner_id=1, guide_id=2, status="active"))
        s.flush()
        s.get(PersonRow, 2).manager_id = 1  # the senior learner becomes the guide's manager
        s.flush()
        assert flag_reporting_conflicts(s, [2]) == 1
        flags = {p.program_id: p.flag for p in s.query(PairingRow)}
    assert flags == {"rev": REPORTING_FLAG, "men": None}
