"""The engine: top-K lists plus widening reach the matched count of the full candidate set."""

from __future__ import annotations

import numpy as np
import pytest
from coachbridge.matching import assign_with_limits
from coachbridge.matching.engine import match_rows
from coachbridge.matching.features import Side
from coachbridge.matching.scoring import BLOCK_CELLS, Scorer, top_k


def sides(rng: np.random.Generator, n_learners: int, n_guides: int) -> tuple[Side, Side]:
    def side(n: int, offset: int, learner: bool) -> Side:
        topics = (rng.random((n, 6)) < (0.5 if learner else 0.4)).astype(np.float32)
        return Side(
            ids=np.arange(n, dtype=np.int64) + offset,
            level=rng.integers(1, 8, n).astype(np.float64),
            department=rng.integers(0, 3, n).astype(np.int64),
            utc_offset=rng.choice([0.0, 1.0, 9.0], n),
            topics=topics,
            goals=topics,
            languages=np.ones((n, 1), dtype=np.float32),
            tin=np.full(n, -1, dtype=np.int64),
            tout=np.full(n, -1, dtype=np.int64),
        )

    return side(n_learners, 1000, True), side(n_guides, 0, False)


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("limit", [None, 1])
def test_widening_never_costs_a_match(seed: int, limit: int | None) -> None:
    rng = np.random.default_rng(seed)
    n_learners, n_guides = int(rng.integers(5, 40)), int(rng.integers(2, 12))
    learners, guides = sides(rng, n_learners, n_guides)
    scorer = Scorer(learners, guides, {"skills": 0.7, "seniority": 0.3})
    free = rng.integers(0, 4, n_guides).astype(np.int64)
    min_score = 0.3

    def group_of(row: int) -> int:
        return int(learners.department[row])

    result = match_rows(
        scorer, free, k=1, min_score=min_score, group_of=group_of, limit=limit, group_used={}
    )
    # The full candidate set, solved exactly, is the reference for the matched count.
    scores, ok = scorer.block(np.arange(n_learners))
    full = [
        (i, j, float(scores[i, j]))
        for i in range(n_learners)
        for j in range(n_guides)
        if ok[i, j] and scores[i, j] >= min_score
    ]
    best = assign_with_limits(
        full,
        {j: int(free[j]) for j in range(n_guides)},
        min_score=min_score,
        group_of={i: group_of(i) for i in range(n_learners)},
        per_guide_per_group=limit,
    )
    assert len(result.match) == len(best)
    load = np.bincount(list(result.match.values()), minlength=n_guides)
    assert (load <= free).all()
    if limit is not None:
        pairs = [(g, group_of(x)) for x, g in result.match.items()]
        assert max((pairs.count(p) for p in set(pairs)), default=0) <= limit


def test_blocks_cover_every_learner_once(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    learners, guides = sides(rng, 37, 5)
    scorer = Scorer(learners, guides, {"skills": 1.0})
    monkeypatch.setattr("coachbridge.matching.scoring.BLOCK_CELLS", 20)  # 4 learners a block
    seen = np.concatenate(list(scorer.blocks()))
    assert seen.tolist() == list(range(37))
    assert BLOCK_CELLS > 20


@pytest.mark.parametrize("seed", range(5))
def test_category_table_gives_the_same_scores(seed: int) -> None:
    rng = np.random.default_rng(seed)
    learners, guides = sides(rng, 50, 120)
    learners.level[::7] = np.nan  # unknown facts score a neutral half either way
    guides.utc_offset[::5] = np.nan
    guides.department[::9] = -1
    weights = {"skills": 0.3, "seniority": 0.3, "timezone": 0.2, "department_diversity": 0.2}
    fast = Scorer(learners, guides, weights)
    plain = Scorer(learners, guides, weights, category_table=False)
    assert fast._table is not None and plain._table is None
    rows = np.arange(50)
    a, ok_a = fast.block(rows)
    b, ok_b = plain.block(rows)
    assert (ok_a == ok_b).all()
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    # A breakdown still adds up to what the plain path computes.
    assert fast.pair_score(fast.breakdown(3, 17)) == b[3, 17]


def test_threaded_top_k_equals_the_serial_one(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(11)
    learners, guides = sides(rng, 90, 30)
    scorer = Scorer(learners, guides, {"skills": 0.6, "seniority": 0.4})
    monkeypatch.setattr("coachbridge.matching.scoring.BLOCK_CELLS", 200)  # 6 learners a block
    serial = top_k(scorer, 4, 0.1, workers=1)
    threaded = top_k(scorer, 4, 0.1, workers=3)
    for a, b in ((serial.learner, threaded.learner), (serial.guide, threaded.guide)):
        assert a.tolist() == b.tolist()
    assert serial.score.tolist() == threaded.score.tolist()
    assert serial.learner.size > 90  # several blocks, several guides each
