"""The engine: top-K lists plus widening reach the matched count of the full candidate set."""

from __future__ import annotations

import numpy as np
import pytest
from coachbridge.matching import assign_with_limits, scoring
from coachbridge.matching.engine import match_rows
from coachbridge.matching.features import Side
from coachbridge.matching.scoring import BLOCK_CELLS, CandidateArrays, Scorer, top_k
from coachbridge.matching.solver import max_matching_arrays, solve_arrays


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
@pytest.mark.parametrize("direct", [500, 0])  # one-arc paths first, or a max-flow at once
def test_widening_never_costs_a_match(
    seed: int, limit: int | None, direct: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("coachbridge.matching.engine.DIRECT_ROWS", direct)
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


@pytest.mark.parametrize("seed", range(6))
def test_sampled_top_k_equals_a_full_selection(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sampled cut-off path picks exactly the guides a full selection picks.

    Continuous skill weights keep scores distinct (no ties at the K-th place). The 30 best
    guides are above every learner in the reporting chain, so the cut-off alone finds too few
    allowed guides and rows fall back to the full selection; forbid rules and a minimum score
    leave some rows with fewer than K guides at all.
    """
    rng = np.random.default_rng(100 + seed)
    n_learners, n_guides = 60, 160
    learners, guides = sides(rng, n_learners, n_guides)
    learners.topics = rng.random((n_learners, 6)).astype(np.float32)
    guides.topics = rng.random((n_guides, 6)).astype(np.float32)
    guides.topics[:30] = 1.0
    guides.tin[:30] = np.arange(30)  # a chain: guide i manages guide i + 1 ... and everyone
    guides.tout[:30] = 1000 - np.arange(30)
    learners.tin[:] = 100 + 2 * np.arange(n_learners)
    learners.tout[:] = learners.tin + 1
    forbid = rng.random((n_learners, n_guides)) < 0.05
    forbid[:5, 33:] = True  # three allowed guides left for these learners

    def excluded(rows: np.ndarray) -> np.ndarray:
        return forbid[rows]

    scorer = Scorer(learners, guides, {"skills": 0.7, "seniority": 0.3}, excluded=excluded)
    k, min_score = 5, [0.0, 0.35][seed % 2]
    fallbacks: list[int] = []
    dense = scoring._dense_top_k

    def counted(scorer: Scorer, block: np.ndarray, *args: object) -> object:
        fallbacks.append(block.size)
        return dense(scorer, block, *args)

    monkeypatch.setattr(scoring, "_dense_top_k", counted)
    monkeypatch.setattr(scoring, "SAMPLE_STRIDE", 4)
    sampled = top_k(scorer, k, min_score, workers=1)
    assert sum(fallbacks) > 0  # the fallback really ran
    monkeypatch.setattr(scoring, "SAMPLE_STRIDE", 10**6)
    full = top_k(scorer, k, min_score, workers=1)

    def triples(c: CandidateArrays) -> set[tuple[int, int, float]]:
        return set(zip(c.learner.tolist(), c.guide.tolist(), c.score.tolist(), strict=True))

    assert triples(sampled) == triples(full)
    _, ok = scorer.block(np.arange(n_learners))
    assert all(ok[x, g] and s >= min_score for x, g, s in triples(sampled))
    assert (np.bincount(sampled.learner, minlength=n_learners)[5:] == k).all()
    assert np.bincount(sampled.learner, minlength=n_learners)[:5].max() <= 3


@pytest.mark.parametrize("seed", range(20))
def test_max_matching_count_equals_the_exact_solve(seed: int) -> None:
    """The max-flow used while widening matches as many learners as the min-cost solve."""
    rng = np.random.default_rng(500 + seed)
    n_learners, n_guides = int(rng.integers(3, 40)), int(rng.integers(1, 10))
    pairs = {(int(x), int(g)) for x, g in rng.integers(0, (n_learners, n_guides), (60, 2))}
    learner = np.array([x for x, _ in sorted(pairs)], dtype=np.int64)
    guide = np.array([g for _, g in sorted(pairs)], dtype=np.int64)
    score = rng.random(learner.size)
    free = rng.integers(0, 4, n_guides).astype(np.int64)
    groups = rng.integers(0, 3, n_learners).astype(np.int64)
    limit = [None, 1][seed % 2]
    kwargs = {
        "n_learners": n_learners,
        "min_score": 0.2,
        "learner_group": groups if limit else None,
        "per_guide_per_group": limit,
    }
    chosen = max_matching_arrays(learner, guide, score, free, **kwargs)
    exact = solve_arrays(learner, guide, score, free, **kwargs)
    assert chosen.size == exact.chosen.size
    assert len(set(learner[chosen].tolist())) == chosen.size  # one guide per learner
    assert (np.bincount(guide[chosen], minlength=n_guides) <= free).all()
    assert (score[chosen] >= 0.2).all()
    if limit:
        keys = list(zip(guide[chosen].tolist(), groups[learner[chosen]].tolist(), strict=True))
        assert max((keys.count(key) for key in set(keys)), default=0) <= limit


def test_extend_keeps_each_pair_once_and_the_existing_score() -> None:
    old = CandidateArrays(
        np.array([0, 0, 1, 2]), np.array([1, 2, 1, 0]), np.array([0.1, 0.2, 0.3, 0.4])
    )
    new = CandidateArrays(
        np.array([1, 1, 3, 3]), np.array([1, 2, 0, 0]), np.array([9.0, 0.5, 0.6, 0.7])
    )
    both = old.extend(new)
    triples = list(
        zip(both.learner.tolist(), both.guide.tolist(), both.score.tolist(), strict=True)
    )
    assert triples == [(0, 1, 0.1), (0, 2, 0.2), (1, 1, 0.3), (2, 0, 0.4), (1, 2, 0.5), (3, 0, 0.6)]
    assert CandidateArrays.empty().extend(new).score.tolist() == [9.0, 0.5, 0.6]


def test_language_table_equals_the_matrix_form() -> None:
    rng = np.random.default_rng(8)
    learners, guides = sides(rng, 30, 40)
    learners.languages = (rng.random((30, 4)) < 0.4).astype(np.float32)
    guides.languages = (rng.random((40, 4)) < 0.4).astype(np.float32)
    learners.languages[0] = 0.0  # no language known: neutral half
    guides.languages[0] = 0.0
    scorer = Scorer(learners, guides, {"language": 1.0, "skills": 0.5})
    assert scorer._lang is not None
    got = scorer.criterion("language", np.arange(30))
    shared = (learners.languages @ guides.languages.T > 0).astype(np.float64)
    unknown = (learners.languages.sum(1) == 0)[:, None] | (guides.languages.sum(1) == 0)[None, :]
    shared[unknown] = 0.5
    assert got.tolist() == shared.tolist()
    assert got[0].tolist() == [0.5] * 40 and got[:, 0].tolist() == [0.5] * 30
