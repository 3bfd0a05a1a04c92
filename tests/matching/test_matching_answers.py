"""Matching on intake answers: topics, goal_text, language, availability; their constraints."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import numpy as np
import pytest
from coachbridge.matching import assign
from coachbridge.matching.answers import answer_sides
from coachbridge.matching.criteria import Profile
from coachbridge.matching.engine import match_rows
from coachbridge.matching.features import Side
from coachbridge.matching.pool import load_pool
from coachbridge.matching.scoring import Scorer
from coachbridge.matching.service import allowed_pairs, explain, match_one, propose
from coachbridge.plugins import Registry, make_plugin_manager
from coachbridge.store.tables import ProfileRow

from tests.matching.matching_factory import enroll, person, program

NOW = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)  # a Monday in January: Berlin UTC+1, NY UTC-5
ALL = frozenset({"topics", "goal_text", "availability"})


def registry() -> Registry:
    return Registry.build(make_plugin_manager(load_entry_points=False))


def answer(s, prog, pid: int, **fields) -> None:
    s.add(ProfileRow(program_id=prog.id, person_id=pid, answered_at=NOW, **fields))
    s.flush()


def _side(profiles: list[Profile], base: int, langs: list[str]) -> Side:
    n = len(profiles)
    return Side(
        ids=np.arange(n, dtype=np.int64) + base,
        level=np.full(n, np.nan),
        department=np.full(n, -1, dtype=np.int64),
        utc_offset=np.array(
            [np.nan if p.utc_offset_hours is None else p.utc_offset_hours for p in profiles]
        ),
        topics=np.zeros((n, 1), dtype=np.float32),
        goals=np.zeros((n, 1), dtype=np.float32),
        languages=np.array(
            [[1.0 if lang in p.languages else 0.0 for lang in langs] for p in profiles],
            dtype=np.float32,
        ).reshape(n, len(langs)),
        tin=np.full(n, -1, dtype=np.int64),
        tout=np.full(n, -1, dtype=np.int64),
        profiles=profiles,
    )


def scorer_for(
    learners: list[Profile], guides: list[Profile], weights: dict[str, float], **kw
) -> Scorer:
    langs = sorted({lang for p in [*learners, *guides] for lang in p.languages}) or ["en"]
    lside, gside = _side(learners, 1000, langs), _side(guides, 0, langs)
    lside.answers, gside.answers = answer_sides(learners, guides, ALL)
    return Scorer(lside, gside, weights, **kw)


def values(scorer: Scorer, name: str) -> np.ndarray:
    return scorer.criterion(name, np.arange(len(scorer.learners), dtype=np.int64))


# -- each criterion on hand-made cases ---------------------------------------------------------


def test_topics_weigh_earlier_picks_more_and_default_to_half() -> None:
    learners = [Profile(1, topics=("negotiation", "public speaking", "data literacy")), Profile(2)]
    guides = [
        Profile(10, topics=("Negotiation",)),  # the first pick: weight 3 of 3 + 2 + 1
        Profile(11, topics=("data literacy",)),  # the last pick: 1 of 6
        Profile(12, topics=("data literacy", "public speaking", "negotiation", "career change")),
        Profile(13, topics=("career change",)),
        Profile(14),  # did not answer
    ]
    v = values(scorer_for(learners, guides, {"topics": 1.0}), "topics")
    # Values are float32, a hair below the exact ones (never above the weight).
    assert v[0].tolist() == pytest.approx([3 / 6, 1 / 6, 1.0, 0.0, 0.5], abs=1e-6)
    assert (v <= 1.0).all() and v[0, 3] == 0.0
    assert v[1].tolist() == [0.5] * 5  # the learner did not answer


def test_goal_text_is_tfidf_cosine_and_sensible() -> None:
    learners = [
        Profile(1, goal="Negotiate better contracts with our suppliers"),
        Profile(2, goal="the and of"),  # only stop words: no text that counts
        Profile(3),
    ]
    guides = [
        Profile(10, goal="I coach negotiation of supplier contracts: I negotiate contracts daily"),
        Profile(11, goal="Python data pipelines and machine learning"),
        Profile(12, goal="Negotiate better contracts with our suppliers"),
        Profile(13),
    ]
    v = values(scorer_for(learners, guides, {"goal_text": 1.0}), "goal_text")
    assert 0.0 < v[0, 0] < 1.0 and v[0, 1] == 0.0
    assert v[0, 2] == pytest.approx(1.0, abs=5e-3)  # same text (weights quantised to 2^-11)
    assert v[0, 2] <= 1.0
    assert v[0, 3] == 0.5 and v[1].tolist() == [0.5] * 4 and v[2].tolist() == [0.5] * 4
    assert ((v >= 0) & (v <= 1)).all()


def test_availability_in_utc_across_time_zones_and_day_boundaries() -> None:
    berlin, new_york, tokyo, los_angeles = 1.0, -5.0, 9.0, -8.0  # offsets on 4 Jan 2027
    learners = [
        Profile(1, utc_offset_hours=berlin, availability=frozenset({"mon-pm"})),  # 12-16 UTC
        Profile(2, utc_offset_hours=los_angeles, availability=frozenset({"mon-pm"})),
        Profile(3, utc_offset_hours=None, availability=frozenset({"mon-pm"})),  # no zone
        Profile(4, utc_offset_hours=berlin),  # no answer
    ]
    guides = [
        Profile(10, utc_offset_hours=new_york, availability=frozenset({"mon-am"})),  # 13-17 UTC
        Profile(11, utc_offset_hours=new_york, availability=frozenset({"mon-pm"})),  # 18-22 UTC
        Profile(12, utc_offset_hours=tokyo, availability=frozenset({"tue-am"})),  # Mon 23-Tue 03
        Profile(13, utc_offset_hours=berlin, availability=frozenset({"mon-pm", "tue-pm"})),
    ]
    v = values(scorer_for(learners, guides, {"availability": 1.0}), "availability")
    # Berlin Monday afternoon and New York Monday morning share 13:00-16:00 UTC: 3 of 4 hours.
    assert v[0].tolist() == pytest.approx([0.75, 0.0, 0.0, 1.0], abs=1e-6)
    # Los Angeles Monday 13-17 is 21:00-01:00 UTC: one hour with New York's afternoon
    # (18-22 UTC), and two with Tokyo's Tuesday morning, which starts Monday 23:00 UTC.
    assert v[1].tolist() == pytest.approx([0.0, 0.25, 0.5, 0.0], abs=1e-6)
    assert v[2].tolist() == [0.5] * 4 and v[3].tolist() == [0.5] * 4


def test_answer_criteria_are_in_range_symmetric_and_the_same_in_any_block() -> None:
    rng = np.random.default_rng(7)
    topics = [f"t{i}" for i in range(8)]
    words = [
        "lead",
        "team",
        "negotiate",
        "budget",
        "coach",
        "speak",
        "data",
        "career",
        "change",
        "product",
    ]
    slots = [f"{d}-{h}" for d in ("mon", "tue", "wed", "thu", "fri") for h in ("am", "pm")]

    def people(n: int, base: int) -> list[Profile]:
        return [
            Profile(
                base + i,
                utc_offset_hours=float(rng.choice([-8, -5, 0, 1, 5.5, 9])),
                topics=tuple(rng.choice(topics, int(rng.integers(0, 4)), replace=False)),
                goal=" ".join(rng.choice(words, 6)) if rng.random() < 0.8 else None,
                availability=frozenset(rng.choice(slots, int(rng.integers(0, 5)), replace=False)),
            )
            for i in range(n)
        ]

    group = people(30, 0)
    forward = scorer_for(group, group, {"goal_text": 1.0, "availability": 1.0})
    for name in ("goal_text", "availability"):  # symmetric measures on the same people
        v = values(forward, name)
        assert ((v >= 0) & (v <= 1)).all()
        assert np.array_equal(v, v.T)
    learners, guides = people(40, 100), people(25, 500)
    scorer = scorer_for(learners, guides, {"topics": 0.3, "goal_text": 0.4, "availability": 0.3})
    whole = scorer.scores(np.arange(40, dtype=np.int64))
    for row in (0, 17, 39):  # one learner alone scores bit for bit as inside the block
        alone = scorer.scores(np.array([row], dtype=np.int64))[0]
        assert np.array_equal(alone, whole[row])
        for g in (0, 24):
            assert scorer.pair_score(scorer.breakdown(row, g)) == whole[row, g]


def test_every_product_path_scores_a_pair_the_same_in_any_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A low DENSE_SHARE sends the rarer goal words to the sparse product, as at company scale
    # (on a few people every word is common); rows out of order and a subset of the guides
    # (certification's pricing) take the other paths through the products.
    monkeypatch.setattr("coachbridge.matching.answers.DENSE_SHARE", 0.05)
    rng = np.random.default_rng(11)
    words = [f"word{i}" for i in range(40)]
    slots = [f"{d}-{h}" for d in ("mon", "tue", "wed", "thu", "fri") for h in ("am", "pm")]

    def people(n: int, base: int) -> list[Profile]:
        return [
            Profile(
                base + i,
                utc_offset_hours=None if i % 9 == 4 else float(rng.choice([-8, -5, 1, 5.5, 9])),
                topics=tuple(rng.choice(words[:12], int(rng.integers(0, 4)), replace=False)),
                goal=" ".join(rng.choice(words, 8, p=_zipf(40))) if i % 7 else None,
                availability=frozenset(rng.choice(slots, int(rng.integers(0, 6)), replace=False)),
            )
            for i in range(n)
        ]

    learners, guides = people(60, 100), people(30, 500)
    weights = {"availability": 0.2, "topics": 0.3, "goal_text": 0.4, "language": 0.1}
    scorer = scorer_for(learners, guides, weights)
    la, ga = scorer.learners.answers, scorer.guides.answers
    assert la is not None and ga is not None and ga.goal_sparse.nnz > 0
    dots = la.goal_dense @ ga.goal_dense.T + (la.goal_sparse @ ga.goal_sparse.T).toarray()
    cosine = np.where(la.has_goal[:, None] & ga.has_goal[None, :], dots / 2.0**22, 0.5)
    assert np.allclose(values(scorer, "goal_text"), cosine, atol=1e-6)  # both parts counted
    whole = scorer.scores(np.arange(60, dtype=np.int64))
    shuffled = np.array([41, 3, 59, 0, 17, 18], dtype=np.int64)
    assert np.array_equal(scorer.scores(shuffled), whole[shuffled])
    for row in (0, 4, 31, 59):
        for g in (0, 4, 13, 29):
            assert scorer.pair_score(scorer.breakdown(row, g)) == whole[row, g]
    hot = np.array([29, 2, 13, 4], dtype=np.int64)  # certification scores column subsets
    some = Scorer(scorer.learners, scorer.guides.take(hot), weights)
    assert np.array_equal(some.scores(np.arange(60, dtype=np.int64)), whole[:, hot])


def _zipf(n: int) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1)
    return p / p.sum()


# -- hard constraints and certification ---------------------------------------------------------


def _brute(scorer: Scorer, free: np.ndarray) -> tuple[int, float]:
    n = len(scorer.learners)
    scores, ok = scorer.block(np.arange(n, dtype=np.int64))
    triples = [
        (i, j, float(scores[i, j]))
        for i in range(n)
        for j in range(len(scorer.guides))
        if ok[i, j] and free[j] > 0
    ]
    best = assign(triples, {j: int(free[j]) for j in range(free.size)})
    return len(best), math.fsum(s for _, _, s in best)


@pytest.mark.parametrize("seed", range(8))
def test_constraints_refuse_pairs_and_certification_still_certifies(seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    slots = [f"{d}-{h}" for d in ("mon", "tue", "wed") for h in ("am", "pm")]

    def people(n: int, base: int) -> list[Profile]:
        return [
            Profile(
                base + i,
                utc_offset_hours=float(rng.choice([-5, 1, 9])),
                languages=frozenset(rng.choice(["de", "en", "fr"], int(rng.integers(0, 3)))),
                topics=tuple(rng.choice(["a", "b", "c", "d"], int(rng.integers(1, 3)), False)),
                availability=frozenset(rng.choice(slots, int(rng.integers(0, 3)), False)),
            )
            for i in range(n)
        ]

    learners, guides = people(int(rng.integers(8, 40)), 100), people(int(rng.integers(3, 12)), 0)
    weights = {"topics": 0.5, "availability": 0.3, "language": 0.2}
    scorer = scorer_for(
        learners,
        guides,
        weights,
        require_common_language=True,
        require_availability_overlap=True,
    )
    n = len(learners)
    _, ok = scorer.block(np.arange(n, dtype=np.int64))
    lang, avail = values(scorer, "language"), values(scorer, "availability")
    assert np.array_equal(ok, (lang != 0) & (avail != 0))  # exactly the refused pairs
    free = rng.integers(1, 3, len(guides)).astype(np.int64)
    result = match_rows(scorer, free, k=1, min_score=0.0)
    assert result.certified
    assert all(ok[x, g] for x, g in result.match.items())
    matched, total = _brute(scorer, free)
    assert len(result.match) == matched
    assert math.fsum(result.scores.values()) == pytest.approx(total, abs=1e-9)
    assert result.allowed_pairs == int((ok & (free > 0)[None, :]).sum())
    # The scores the solve used are the ones the scorer gives, bit for bit.
    scores = scorer.scores(np.arange(n, dtype=np.int64))
    assert all(result.scores[x] == scores[x, g] for x, g in result.match.items())


# -- in the store: answers replace the HRIS's languages, explain, match_one, --all-pairs ------------


def _people(s, prog) -> None:
    person(s, 1, level=2, languages=["en"], timezone="Europe/Berlin")  # learner
    person(s, 2, level=2, languages=["en"], timezone="Europe/Berlin")  # learner, no answer
    person(s, 10, level=5, languages=["en"], timezone="America/New_York")
    person(s, 11, level=5, languages=["en"], timezone="Europe/Berlin")
    for pid in (1, 2):
        enroll(s, prog, pid, "learner")
    for pid in (10, 11):
        enroll(s, prog, pid, "guide")
    # The learner meets only in German (the answer replaces the HRIS's "en").
    answer(
        s,
        prog,
        1,
        topics=["negotiation", "data literacy"],
        goal="Negotiate supplier contracts",
        languages=["de"],
        availability=["mon-pm"],
    )
    answer(
        s,
        prog,
        10,
        topics=["negotiation"],
        goal="I coach contract negotiation",
        languages=["de", "en"],
        availability=["mon-am"],
    )
    answer(s, prog, 11, topics=["data literacy"], goal="Dashboards", availability=["tue-am"])


WEIGHTS = {"topics": 0.4, "goal_text": 0.2, "language": 0.2, "availability": 0.2}


def test_store_answers_drive_scores_and_explain_shares(db) -> None:
    prog = program(weights=WEIGHTS, min_score=0.0)
    with db.transaction() as s:
        _people(s, prog)
        pool = load_pool(s, prog, {}, now=NOW)
        lrow, g10, g11 = pool.learner_row[1], pool.guide_row[10], pool.guide_row[11]
        b = pool.scorer.breakdown(lrow, g10)
        assert b["topics"] == pytest.approx(0.4 * 2 / 3)
        assert b["language"] == 0.2  # "de" from the answer, shared with guide 10's answer
        assert b["availability"] == pytest.approx(0.2 * 0.75)  # Berlin pm / New York am
        assert pool.scorer.breakdown(lrow, g11)["language"] == 0.0  # HRIS "en" no longer counts
        alternatives = explain(s, prog, 2, registry(), now=NOW)
    for alt in alternatives:  # learner 2 never answered: every answer criterion says so
        shares = {c["criterion"]: c for c in alt.criteria}
        assert set(shares) == set(WEIGHTS)
        assert math.fsum(c["contribution"] for c in alt.criteria) == pytest.approx(alt.score)
        assert math.fsum(c["share"] for c in alt.criteria) == pytest.approx(1.0)
        for name in ("topics", "goal_text", "availability"):
            assert shares[name]["value"] == 0.5
            assert shares[name]["note"].startswith("no answer: 0.5")
        assert shares["language"]["note"] == ""


def test_require_common_language_in_propose_all_pairs_and_match_one(db) -> None:
    prog = program(weights=WEIGHTS, min_score=0.0, require_common_language=True, capacity=1)
    with db.transaction() as s:
        _people(s, prog)
        proposal = propose(s, prog, registry(), now=NOW)
        count, blocks = allowed_pairs(s, prog, registry(), now=NOW)
        pairs = {(a, b) for lids, gids, _ in blocks for a, b in zip(lids, gids, strict=True)}
        why = {a.guide_id: a.why_not for a in explain(s, prog, 1, registry(), now=NOW)}
    assert {(p.learner_id, p.guide_id) for p in proposal.pairs} == {(1, 10), (2, 11)}
    assert proposal.certified and proposal.allowed_pairs == 3  # 1-11 is refused
    assert count == 3 and (1, 11) not in pairs and len(pairs) == 3
    assert "share no language" in why[11]
    prog2 = program(
        id="other", weights=WEIGHTS, min_score=0.0, require_common_language=True, capacity=1
    )
    with db.transaction() as s:
        for pid in (1, 11):
            enroll(s, prog2, pid, "learner" if pid == 1 else "guide")
        answer(s, prog2, 1, languages=["de"])
        assert match_one(s, prog2, 1, registry(), now=NOW) is None  # the only guide: no "de"


def test_require_availability_overlap(db) -> None:
    prog = program(
        weights={"topics": 1.0}, min_score=0.0, require_availability_overlap=True, capacity=2
    )
    with db.transaction() as s:
        _people(s, prog)
        proposal = propose(s, prog, registry(), now=NOW)
    # Learner 1 (Berlin Monday afternoon) shares nothing with guide 11 (Berlin Tuesday
    # morning) although 11 offers a topic they picked; learner 2 did not answer: not refused.
    got = {(p.learner_id, p.guide_id) for p in proposal.pairs}
    assert (1, 10) in got and (1, 11) not in got and len(got) == 2


def test_spreadsheet_import_refuses_a_pair_the_answers_constrain(db, tmp_path) -> None:
    from coachbridge.errors import InputDataError
    from coachbridge.matching.importing import import_proposal

    prog = program(weights=WEIGHTS, min_score=0.0, require_common_language=True)
    path = tmp_path / "proposal.csv"
    path.write_text("program,learner_id,guide_id\nmentoring,1,11\n", encoding="utf-8")
    with db.transaction() as s:
        _people(s, prog)
        with pytest.raises(InputDataError, match=r"proposal.csv:2: .*share no language"):
            import_proposal(s, path, {prog.id: prog}, {}, default_program=None, now=NOW)


ANSWER_CONFIG = """
[[programs]]
id = "mentoring"
kind = "mentoring"
capacity = 1
min_score = 0.0
require_common_language = true
[programs.weights]
topics = 0.4
goal_text = 0.2
language = 0.2
availability = 0.2
"""


def test_cli_explain_prints_every_share_and_the_no_answer_default(
    run_cli, sqlite_url, tmp_path
) -> None:
    from coachbridge.store import Database

    (tmp_path / "coachbridge.toml").write_text(ANSWER_CONFIG, encoding="utf-8")
    database = Database(sqlite_url)
    database.upgrade()
    prog = program(weights=WEIGHTS, min_score=0.0, require_common_language=True, capacity=1)
    with database.transaction() as s:
        _people(s, prog)
    database.dispose()
    args = ("--config", "coachbridge.toml", "--db", sqlite_url, "match", "mentoring")
    table = run_cli(*args, "--explain", "2")
    assert table.exit_code == 0, table.stderr
    assert "weight x value = contribution (share of the score)" in table.stdout
    assert table.stdout.count("no answer: 0.5 (learner)") >= 3  # topics, goal_text, availability
    for name in WEIGHTS:
        assert f"    {name}" in table.stdout
    data = json.loads(run_cli(*args, "--explain", "1", "--format", "json").stdout)
    for alt in data:
        assert math.fsum(c["share"] for c in alt["criteria"]) == pytest.approx(1.0)
        assert math.fsum(c["contribution"] for c in alt["criteria"]) == pytest.approx(alt["score"])
    outcomes = {alt["guide_id"]: alt["outcome"] for alt in data}
    assert "share no language (require_common_language)" in outcomes[11]


def test_an_answered_code_and_an_hris_language_name_are_one_language(db) -> None:
    """Answers are ISO 639-1 codes; HRIS exports often name languages ("German"): the two
    are compared as codes, for the criterion and for the common-language rule."""
    prog = program(
        weights={"language": 1.0}, min_score=0.0, require_common_language=True, capacity=1
    )
    with db.transaction() as s:
        person(s, 1, level=2, languages=["English"])
        person(s, 10, level=5, languages=["German", "Klingon"])  # no ISO 639-1 code: kept
        person(s, 11, level=5, languages=["French"])
        enroll(s, prog, 1, "learner")
        enroll(s, prog, 10, "guide")
        enroll(s, prog, 11, "guide")
        answer(s, prog, 1, languages=["de"])
        pool = load_pool(s, prog, {}, now=NOW)
        lrow = pool.learner_row[1]
        assert pool.scorer.breakdown(lrow, pool.guide_row[10])["language"] == 1.0
        assert pool.scorer.breakdown(lrow, pool.guide_row[11])["language"] == 0.0
        proposal = propose(s, prog, registry(), now=NOW)
    assert [(p.learner_id, p.guide_id) for p in proposal.pairs] == [(1, 10)]
    assert proposal.allowed_pairs == 1  # 1-11 shares no language: refused
