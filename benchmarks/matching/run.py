"""Matching benchmark: coachbridge vs greedy vs OR-tools SimpleMinCostFlow on the same graph.

    .venv/bin/python benchmarks/matching/run.py              # all three sizes + the cut cost
    .venv/bin/python benchmarks/matching/run.py --sizes small,medium
    .venv/bin/python benchmarks/matching/run.py --sizes "" --no-cut --full-set  # ~10 GB
    .venv/bin/python benchmarks/matching/run.py --sizes "" --no-cut --profiles  # intake answers


Each size runs in its own process so that its peak memory (max RSS) is its own. Instances are
seeded: 32-dimensional skill vectors, levels, time zones, languages, departments and a random
org tree deep enough that about 0.1% of (learner, guide) pairs are forbidden (the guide is
above the learner). Candidate generation and the exact solve are coachbridge's own code
(``coachbridge.matching.engine``); greedy and OR-tools solve the very same candidate arcs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np
from coachbridge.matching import assign
from coachbridge.matching.engine import match_rows, solve_candidates
from coachbridge.matching.features import Side, euler_intervals
from coachbridge.matching.scoring import CandidateArrays, Scorer, top_k
from ortools.graph.python import min_cost_flow

SIZES = {
    "small": (1_000, 300, 4),
    "medium": (20_000, 5_000, 5),
    "large": (100_000, 25_000, 5),
}
WEIGHTS = {
    "skills": 0.4,
    "seniority": 0.2,
    "timezone": 0.15,
    "language": 0.1,
    "department_diversity": 0.15,
}
DIM = 32
K = 50
PHASES = ("estimate", "candidates", "widen", "solve", "certify")  # the engine's clock


def make_instance(n_learners: int, n_guides: int, seed: int) -> tuple[Side, Side, float]:
    """Seeded sides; returns them and the share of forbidden (reporting-chain) pairs."""
    rng = np.random.default_rng(seed)
    # Org tree: guides on D levels (each reports to a guide one level up), every learner
    # reports to a guide on the deepest level, so each learner has D guides above them and
    # D / n_guides of the pairs (about 0.1%) are forbidden.
    depth = max(1, round(0.001 * n_guides))
    level_of = np.sort(rng.integers(0, depth, n_guides))
    level_of[:depth] = np.arange(depth)  # every level populated
    level_of.sort()
    managers: dict[int, int | None] = {}
    by_level = [np.flatnonzero(level_of == d) for d in range(depth)]
    for d in range(depth):
        for g in by_level[d].tolist():
            managers[g] = None if d == 0 else int(rng.choice(by_level[d - 1]))
    deepest = by_level[-1]
    learner_pid = np.arange(n_learners) + n_guides
    for x in learner_pid.tolist():
        managers[x] = int(rng.choice(deepest))
    tour = euler_intervals(managers)

    def side(ids: np.ndarray, learner: bool) -> Side:
        n = ids.size
        if learner:
            topics = (rng.random((n, DIM)) < 0.12).astype(np.float32)
            level = rng.integers(1, 5, n).astype(np.float64)
        else:
            topics = rng.random((n, DIM)).astype(np.float32) ** 3
            level = rng.integers(4, 10, n).astype(np.float64)
        langs = (rng.random((n, 5)) < 0.35).astype(np.float32)
        langs[np.arange(n), rng.integers(0, 5, n)] = 1.0
        return Side(
            ids=ids.astype(np.int64),
            level=level,
            department=rng.integers(0, 12, n).astype(np.int64),
            utc_offset=rng.choice([-8.0, -5.0, 0.0, 1.0, 2.0, 5.5, 8.0, 9.0], n),
            topics=topics,
            goals=topics,
            languages=langs,
            tin=np.array([tour[i][0] for i in ids.tolist()], dtype=np.int64),
            tout=np.array([tour[i][1] for i in ids.tolist()], dtype=np.int64),
        )

    guides = side(np.arange(n_guides), learner=False)
    learners = side(learner_pid, learner=True)
    return learners, guides, depth / n_guides


def greedy(cands: CandidateArrays, free: np.ndarray) -> dict[int, int]:
    """Greedy ranking: best arcs first, take one when both sides still have room."""
    order = np.argsort(-cands.score, kind="stable")
    load = np.zeros_like(free)
    taken: dict[int, int] = {}
    for k in order.tolist():
        x, g = int(cands.learner[k]), int(cands.guide[k])
        if x not in taken and load[g] < free[g]:
            taken[x] = g
            load[g] += 1
    return taken


def ortools_reference(cands: CandidateArrays, free: np.ndarray, n_learners: int) -> dict[int, int]:
    """An independent OR-tools model: source -> learner -> guide -> sink, with an explicit
    "unmatched" arc per learner costing more than any path through a guide, then ``solve``."""
    n_guides = free.size
    source, sink = 0, 1
    lnode = 2 + np.arange(n_learners)
    gnode = 2 + n_learners + np.arange(n_guides)
    scale = 1e9 / max(1e-12, float(np.abs(cands.score).max()))
    cost = -np.rint(cands.score * scale).astype(np.int64)
    penalty = int(-cost.min()) * 4 * n_learners + 1  # any matching beats leaving one out
    penalty = min(penalty, 2**62 // (n_learners + n_guides + 2) // 4)
    smcf = min_cost_flow.SimpleMinCostFlow()
    smcf.add_arcs_with_capacity_and_unit_cost(
        np.full(n_learners, source),
        lnode,
        np.ones(n_learners, np.int64),
        np.zeros(n_learners, np.int64),
    )
    first = n_learners
    smcf.add_arcs_with_capacity_and_unit_cost(
        lnode[cands.learner], gnode[cands.guide], np.ones(cands.score.size, np.int64), cost
    )
    smcf.add_arcs_with_capacity_and_unit_cost(
        gnode, np.full(n_guides, sink), free.astype(np.int64), np.zeros(n_guides, np.int64)
    )
    smcf.add_arcs_with_capacity_and_unit_cost(
        lnode,
        np.full(n_learners, sink),
        np.ones(n_learners, np.int64),
        np.full(n_learners, penalty, np.int64),
    )
    smcf.set_node_supply(source, n_learners)
    smcf.set_node_supply(sink, -n_learners)
    status = smcf.solve()
    assert status == smcf.OPTIMAL, status
    flows = smcf.flows(np.arange(first, first + cands.score.size))
    used = np.flatnonzero(flows > 0)
    return {int(cands.learner[k]): int(cands.guide[k]) for k in used.tolist()}


def total(match: dict[int, int], cands: CandidateArrays) -> float:
    """The total score of a matching, looked up in the candidate arrays (no per-arc dict)."""
    if not match:
        return 0.0
    width = int(cands.guide.max()) + 1
    keys = cands.learner * width + cands.guide
    order = np.argsort(keys, kind="stable")
    x = np.fromiter(match.keys(), dtype=np.int64, count=len(match))
    g = np.fromiter(match.values(), dtype=np.int64, count=len(match))
    pos = order[np.searchsorted(keys[order], x * width + g)]
    return math.fsum(cands.score[pos].tolist())


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_size(name: str, seed: int, certify: bool = True) -> dict[str, Any]:
    load_before = list(os.getloadavg())
    n_learners, n_guides, cap = SIZES[name]
    t0 = time.perf_counter()
    learners, guides, forbidden = make_instance(n_learners, n_guides, seed)
    gen = time.perf_counter() - t0
    scorer = Scorer(learners, guides, WEIGHTS)
    free = np.full(n_guides, cap, dtype=np.int64)
    t_call, c_call = time.perf_counter(), time.process_time()
    res = match_rows(scorer, free, k=K, min_score=0.0, certify=certify)
    call = (time.perf_counter() - t_call, time.process_time() - c_call)
    cands = res.candidates
    coachbridge_peak = peak_mib()  # before the comparison solvers add their own graphs
    out: dict[str, Any] = {
        "size": name,
        "certify": certify,
        "peak_mib_coachbridge": coachbridge_peak,
        "learners": n_learners,
        "guides": n_guides,
        "capacity": cap,
        "forbidden_share": forbidden,
        "instance_seconds": gen,
        "candidate_seconds": res.seconds["candidates"],
        "candidate_cpu_seconds": res.seconds["candidates_cpu"],
        "arcs": int(cands.score.size),
        # The whole ``match_rows`` call, as the process saw it (wall, CPU of all its threads).
        "match_rows_seconds": call[0],
        "match_rows_cpu_seconds": call[1],
        "coachbridge": {
            "solve_seconds": res.seconds["solve"],
            "solve_cpu_seconds": res.seconds["solve_cpu"],
            "widen_seconds": res.seconds["widen"],
            "widen_cpu_seconds": res.seconds["widen_cpu"],
            "end_to_end_seconds": sum(
                res.seconds[p] for p in ("estimate", "candidates", "widen", "solve")
            ),
            "end_to_end_cpu_seconds": sum(
                res.seconds[f"{p}_cpu"] for p in ("estimate", "candidates", "widen", "solve")
            ),
            "certify_seconds": res.seconds["certify"],
            "certify_cpu_seconds": res.seconds["certify_cpu"],
            "estimate_seconds": res.seconds["estimate"],
            "estimate_cpu_seconds": res.seconds["estimate_cpu"],
            "end_to_end_seconds_all": sum(res.seconds[p] for p in PHASES),
            "end_to_end_cpu_seconds_all": sum(res.seconds[f"{p}_cpu"] for p in PHASES),
            "widened_arcs": res.widened,
            "certified": res.certified,
            "allowed_pairs": res.allowed_pairs,
            "priced_arcs": res.priced,
            "pricing_rounds": res.pricing_rounds,
            "priced_rows": res.priced_rows,
            "solves": res.solves,
            "matched": len(res.match),
            "total": total(res.match, cands),
        },
    }
    t, c = time.perf_counter(), time.process_time()
    g = greedy(cands, free)
    out["greedy"] = {
        "solve_seconds": time.perf_counter() - t,
        "solve_cpu_seconds": time.process_time() - c,
        "matched": len(g),
        "total": total(g, cands),
    }
    t, c = time.perf_counter(), time.process_time()
    o = ortools_reference(cands, free, n_learners)
    out["ortools"] = {
        "solve_seconds": time.perf_counter() - t,
        "solve_cpu_seconds": time.process_time() - c,
        "matched": len(o),
        "total": total(o, cands),
    }
    out["peak_mib"] = peak_mib()
    out["load_average"] = list(os.getloadavg())
    out["load_average_before"] = load_before
    return out


def cut_cost(seed: int, ks: tuple[int, ...] = (10, 50, 200, 1000)) -> dict[str, Any]:
    """At 20,000 learners: the optimum on top-K lists for growing K.

    The largest K is the reference here, and the sum of every learner's single best score is
    an upper bound on the full optimum. The full candidate set itself (100 million arcs, about
    8 GiB) is solved by ``full_set`` (``--full-set``), which is not part of the default run.
    """
    n_learners, n_guides, cap = SIZES["medium"]
    learners, guides, _ = make_instance(n_learners, n_guides, seed)
    scorer = Scorer(learners, guides, WEIGHTS)
    free = np.full(n_guides, cap, dtype=np.int64)
    best = top_k(scorer, 1, 0.0)
    upper = math.fsum(best.score.tolist())
    rows = []
    for k in ks:
        t = time.perf_counter()
        cands = top_k(scorer, k, 0.0)
        match = solve_candidates(cands, free, n_learners, 0.0)
        rows.append(
            {
                "k": k,
                "arcs": int(cands.score.size),
                "matched": len(match),
                "total": total(match, cands),
                "seconds": time.perf_counter() - t,
            }
        )
        del cands
    ref = rows[-1]["total"]
    for r in rows:
        r["cost_vs_largest_k"] = ref - r["total"]
        r["relative"] = (ref - r["total"]) / ref
        r["gap_to_upper_bound"] = (upper - r["total"]) / upper
    return {"cut": rows, "upper_bound": upper, "peak_mib": peak_mib()}


def plain_ortools(
    triples: list[tuple[int, int, float]], capacity: dict[int, int]
) -> list[tuple[int, int, float]]:
    """The plain OR-tools baseline ``assign`` is held to: ids to indices, arcs, one
    ``solve_max_flow_with_min_cost``, the result list (no validation, no sorting)."""
    lindex: dict[int, int] = {}
    gindex: dict[int, int] = {}
    tails: list[int] = []
    heads: list[int] = []
    scores: list[float] = []
    for learner, guide, score in triples:
        tails.append(lindex.setdefault(learner, len(lindex)))
        heads.append(gindex.setdefault(guide, len(gindex)))
        scores.append(score)
    nl, ng = len(lindex), len(gindex)
    t, h, sc = np.array(tails), np.array(heads), np.array(scores)
    source, sink = nl + ng, nl + ng + 1
    smcf = min_cost_flow.SimpleMinCostFlow()
    smcf.add_arcs_with_capacity_and_unit_cost(
        np.full(nl, source), np.arange(nl), np.ones(nl, np.int64), np.zeros(nl, np.int64)
    )
    first = nl
    smcf.add_arcs_with_capacity_and_unit_cost(
        t, h + nl, np.ones(t.size, np.int64), np.rint((1.0 - sc) * 1e9).astype(np.int64)
    )
    guides = list(gindex)
    smcf.add_arcs_with_capacity_and_unit_cost(
        np.arange(ng) + nl,
        np.full(ng, sink),
        np.array([capacity[g] for g in guides], np.int64),
        np.zeros(ng, np.int64),
    )
    smcf.set_node_supply(source, nl)
    smcf.set_node_supply(sink, -nl)
    status = smcf.solve_max_flow_with_min_cost()
    assert status == smcf.OPTIMAL, status
    used = np.flatnonzero(smcf.flows(np.arange(first, first + t.size)) > 0)
    learners = list(lindex)
    return [(learners[t[k]], guides[h[k]], float(sc[k])) for k in used.tolist()]


def assign_speed(seed: int, repeats: int = 3) -> dict[str, Any]:
    """``assign`` against the plain OR-tools baseline on the same 20,000 x 5,000 top-50 arcs.

    Both run in this one process, alternately, ``repeats`` times each; the figures are each
    one's best wall and CPU time, and the ratio of those.
    """
    n_learners, n_guides, cap = SIZES["medium"]
    learners, guides, _ = make_instance(n_learners, n_guides, seed)
    cands = top_k(Scorer(learners, guides, WEIGHTS), K, 0.0)
    triples = list(
        zip(
            learners.ids[cands.learner].tolist(),
            guides.ids[cands.guide].tolist(),
            cands.score.tolist(),
            strict=True,
        )
    )
    capacity = {int(g): cap for g in guides.ids.tolist()}
    times: dict[str, list[tuple[float, float]]] = {"assign": [], "ortools": []}
    results: dict[str, list[tuple[int, int, float]]] = {}
    for _ in range(repeats):
        for name, fn in (("assign", assign), ("ortools", plain_ortools)):
            t, c = time.perf_counter(), time.process_time()
            results[name] = fn(triples, capacity)
            times[name].append((time.perf_counter() - t, time.process_time() - c))
    out: dict[str, Any] = {"assign_speed": {"arcs": len(triples), "repeats": repeats}}
    for name in times:
        out["assign_speed"][name] = {
            "wall": min(w for w, _ in times[name]),
            "cpu": min(c for _, c in times[name]),
            "walls": [w for w, _ in times[name]],
            "cpus": [c for _, c in times[name]],
            "matched": len(results[name]),
            "total": math.fsum(r[2] for r in results[name]),
        }
    a, o = out["assign_speed"]["assign"], out["assign_speed"]["ortools"]
    out["assign_speed"]["ratio_wall"] = a["wall"] / o["wall"]
    out["assign_speed"]["ratio_cpu"] = a["cpu"] / o["cpu"]
    out["load_average"] = list(os.getloadavg())
    print(
        f"assign {a['wall']:.2f} s ({a['cpu']:.2f} cpu) vs plain OR-tools {o['wall']:.2f} s "
        f"({o['cpu']:.2f} cpu): ratio {out['assign_speed']['ratio_wall']:.2f} wall, "
        f"{out['assign_speed']['ratio_cpu']:.2f} cpu",
        file=sys.stderr,
    )
    return out


def _tz_features(profiles: list[Any]) -> np.ndarray:
    return np.array([p.utc_offset_hours for p in profiles], dtype=np.float64)


def _tz_block(learners: np.ndarray, guides: np.ndarray) -> np.ndarray:
    # Overlap of 9-17 working days on a 24-hour circle: the built-in timezone criterion's maths,
    # written in place as the built-in is.
    shift = np.subtract.outer(learners, guides)
    shift += 12.0
    np.mod(shift, 24.0, out=shift)
    shift -= 12.0
    np.abs(shift, out=shift)
    np.subtract(8.0, shift, out=shift)
    np.clip(shift, 0.0, 8.0, out=shift)
    shift /= 8.0
    return shift


def _tz_pair(learner: Any, guide: Any) -> float:
    shift = abs((learner.utc_offset_hours - guide.utc_offset_hours + 12.0) % 24.0 - 12.0)
    return min(8.0, max(0.0, 8.0 - shift)) / 8.0


def plugin_speed(seed: int, sample_rows: int = 200) -> dict[str, Any]:
    """Scoring (top-K) at 20,000 x 5,000 with the time-zone criterion built in, as a vectorised
    plugin criterion, and as a per-pair plugin (timed on ``sample_rows`` learners, scaled up:
    the whole instance would take minutes). Same weights, same maths."""
    from coachbridge.matching.criteria import Criterion, Profile

    n_learners, n_guides, _ = SIZES["medium"]
    learners, guides, _ = make_instance(n_learners, n_guides, seed)
    for side in (learners, guides):
        side.profiles = [
            Profile(int(pid), utc_offset_hours=float(off))
            for pid, off in zip(side.ids.tolist(), side.utc_offset.tolist(), strict=True)
        ]
    plugin_weights = {("tz" if n == "timezone" else n): w for n, w in WEIGHTS.items()}
    forms = {
        "built-in": (WEIGHTS, {}),
        "vectorised plugin": (
            plugin_weights,
            {"tz": Criterion("tz", features=_tz_features, score_block=_tz_block)},
        ),
        "per-pair plugin": (plugin_weights, {"tz": Criterion("tz", _tz_pair)}),
    }
    out: dict[str, Any] = {"plugin_speed": {"learners": n_learners, "guides": n_guides}}
    for name, (weights, plugins) in forms.items():
        scorer = Scorer(learners, guides, weights, plugins=plugins)
        sample = name == "per-pair plugin"
        rows = np.arange(sample_rows if sample else n_learners, dtype=np.int64)
        factor = n_learners / rows.size
        # The criterion alone, over every block (the cost a plugin adds to scoring) ...
        criterion = "timezone" if name == "built-in" else "tz"
        t, c = time.perf_counter(), time.process_time()
        values = 0.0
        for block in scorer.blocks(rows):
            values += float(scorer.criterion(criterion, block).sum())
        alone = (time.perf_counter() - t) * factor, (time.process_time() - c) * factor
        # ... and the whole scoring with top-K selection.
        t, c = time.perf_counter(), time.process_time()
        cands = top_k(scorer, K, 0.0, rows=rows if sample else None)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        out["plugin_speed"][name] = {
            "criterion_wall": alone[0],
            "criterion_cpu": alone[1],
            "criterion_sum": values,
            "wall": wall * factor,
            "cpu": cpu * factor,
            "measured_rows": int(rows.size),
            "total_of_scores": math.fsum(cands.score.tolist()),
        }
    base = out["plugin_speed"]["built-in"]
    for name in forms:
        f = out["plugin_speed"][name]
        f["cpu_vs_built_in"] = f["cpu"] / base["cpu"]
        f["criterion_cpu_vs_built_in"] = f["criterion_cpu"] / base["criterion_cpu"]
    out["load_average"] = list(os.getloadavg())
    return out


PROFILE_WEIGHTS = {"topics": 0.3, "goal_text": 0.2, "availability": 0.2}
N_TOPICS, GOAL_WORDS, GOAL_VOCABULARY = 40, 40, 3000


def with_answers(learners: Side, guides: Side, seed: int) -> tuple[Side, Side, float, float]:
    """The same sides with seeded intake answers; returns them and the build's wall/CPU s.

    Answers: learners pick 1-3 of 40 topics in order, guides tick 3-8; 40-word goals, each
    word an English stop word ("I", "to", "my", ...) with probability 0.45 (about their share
    in English text; TF-IDF drops them), else drawn from a 3,000-word vocabulary with Zipf
    frequencies (word r about 1/r as common, so a few words are in most texts, as in real
    ones); 1-3 of 5 languages, replacing the HRIS's; each
    of the 10 half-day slots ticked with probability 0.4, in the person's own time zone (the
    instance's UTC offsets, half-hour ones included).
    """
    from coachbridge.matching.answers import SLOTS, answer_sides
    from coachbridge.matching.criteria import Profile
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    rng = np.random.default_rng(seed + 1)
    topics = [f"topic {i}" for i in range(N_TOPICS)]
    vocabulary = [f"word{i:04d}" for i in range(GOAL_VOCABULARY)]
    stop = sorted(ENGLISH_STOP_WORDS)
    zipf = 1.0 / np.arange(1, GOAL_VOCABULARY + 1)
    zipf /= zipf.sum()

    def answered(side: Side, learner: bool) -> tuple[list[Profile], np.ndarray]:
        n = len(side)
        picks = rng.integers(1, 4, n) if learner else rng.integers(3, 9, n)
        words = rng.choice(GOAL_VOCABULARY, size=(n, GOAL_WORDS), p=zipf)
        stops = rng.integers(0, len(stop), size=(n, GOAL_WORDS))
        is_stop = rng.random((n, GOAL_WORDS)) < 0.45
        langs = rng.random((n, 5)) < 0.3
        langs[np.arange(n), rng.integers(0, 5, n)] = True
        slots = rng.random((n, len(SLOTS))) < 0.4
        profiles = [
            Profile(
                int(side.ids[i]),
                utc_offset_hours=float(side.utc_offset[i]),
                topics=tuple(rng.choice(topics, int(picks[i]), replace=False).tolist()),
                goal=" ".join(
                    stop[t] if st else vocabulary[w]
                    for w, t, st in zip(
                        words[i].tolist(), stops[i].tolist(), is_stop[i].tolist(), strict=True
                    )
                ),
                availability=frozenset(s for s, on in zip(SLOTS, slots[i], strict=True) if on),
            )
            for i in range(n)
        ]
        return profiles, langs.astype(np.float32)

    lprof, llang = answered(learners, True)
    gprof, glang = answered(guides, False)
    t, c = time.perf_counter(), time.process_time()
    la, ga = answer_sides(lprof, gprof, frozenset(PROFILE_WEIGHTS))
    build = (time.perf_counter() - t, time.process_time() - c)
    out = []
    for side, answers, langs in ((learners, la, llang), (guides, ga, glang)):
        copy = side.take(np.arange(len(side), dtype=np.int64))
        copy.languages, copy.answers = langs, answers  # the answers' languages replace the HRIS's
        out.append(copy)
    return out[0], out[1], build[0], build[1]


def profile_speed(seed: int, repeats: int = 5) -> dict[str, Any]:
    """Scoring (top-2K, as the certified engine's first pass) at 20,000 x 5,000: today's
    criteria alone against the same instance with answers and the answer criteria weighted.

    Both scorers run in this one process, alternately, ``repeats`` times each, so that the
    shared machine's load falls on both alike; the figures are each one's best wall and CPU
    time (and all of them), and the ratios of those. A third variant adds the two answer
    constraints (``require_common_language``, ``require_availability_overlap``).
    """
    n_learners, n_guides, _ = SIZES["medium"]
    learners, guides, _ = make_instance(n_learners, n_guides, seed)
    plearners, pguides, build_wall, build_cpu = with_answers(learners, guides, seed)
    weights = WEIGHTS | PROFILE_WEIGHTS
    scorers = {
        "today": Scorer(learners, guides, WEIGHTS),
        "answers": Scorer(plearners, pguides, weights),
        "answers + constraints": Scorer(
            plearners,
            pguides,
            weights,
            require_common_language=True,
            require_availability_overlap=True,
        ),
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in scorers}
    sums: dict[str, float] = {}
    for _ in range(repeats):
        for name, scorer in scorers.items():
            t, c = time.perf_counter(), time.process_time()
            cands = top_k(scorer, 2 * K, 0.0)
            times[name].append((time.perf_counter() - t, time.process_time() - c))
            sums[name] = math.fsum(cands.score.tolist())
            del cands
    out: dict[str, Any] = {
        "profile_speed": {
            "learners": n_learners,
            "guides": n_guides,
            "k": 2 * K,
            "repeats": repeats,
            "answer_build_seconds": build_wall,
            "answer_build_cpu_seconds": build_cpu,
            "goal_vocabulary": GOAL_VOCABULARY,
            "dense_goal_terms": int(pguides.answers.goal_dense.shape[1]),  # type: ignore[union-attr]
        }
    }
    for name in scorers:
        out["profile_speed"][name] = {
            "wall": min(w for w, _ in times[name]),
            "cpu": min(c for _, c in times[name]),
            "walls": [w for w, _ in times[name]],
            "cpus": [c for _, c in times[name]],
            "total_of_scores": sums[name],
        }
    base = out["profile_speed"]["today"]
    for name in scorers:
        f = out["profile_speed"][name]
        f["ratio_wall"] = f["wall"] / base["wall"]
        f["ratio_cpu"] = f["cpu"] / base["cpu"]
    out["load_average"] = list(os.getloadavg())
    return out


FULL_SCALE = 1e9  # integer cost units per score point (scores are at most the weight sum, 1.0)
FULL_ARC_CHUNK = 5_000_000  # arcs per ``flows``/``tail``/``head`` read-back


def full_set(seed: int, ks: tuple[int, ...] = (10, 50, 200, 1000)) -> dict[str, Any]:
    """At 20,000 learners: the exact optimum on the FULL candidate set, and top-K against it.

    Every allowed pair (not the same person, guide not above the learner in the reporting
    chain, score >= ``min_score``) becomes an arc, about 100 million of them. Scores are computed
    block-wise and each block's arcs go straight into OR-tools ``SimpleMinCostFlow`` as arrays,
    so nothing learners x guides is ever held outside the solver. The top-50 lists already
    match every learner, so the lexicographic optimum (most matched, then highest total) of
    the full set matches all of them too: each learner supplies exactly one unit and
    ``solve()`` minimises cost (minus the score, scaled to integers). The parent process
    watches this process's memory and stops it above ``--max-rss-gib``.
    """
    n_learners, n_guides, cap = SIZES["medium"]
    learners, guides, _ = make_instance(n_learners, n_guides, seed)
    scorer = Scorer(learners, guides, WEIGHTS)
    min_score = 0.0
    scale = FULL_SCALE / math.fsum(WEIGHTS.values())
    t0, c0 = time.perf_counter(), time.process_time()
    smcf = min_cost_flow.SimpleMinCostFlow()
    sink = n_learners + n_guides
    # Arcs 0 .. n_guides - 1: guide -> sink, with the guide's capacity.
    smcf.add_arcs_with_capacity_and_unit_cost(
        np.arange(n_learners, sink, dtype=np.int32),
        np.full(n_guides, sink, dtype=np.int32),
        np.full(n_guides, cap, dtype=np.int64),
        np.zeros(n_guides, dtype=np.int64),
    )
    first_pair_arc = n_guides
    arcs = excluded = 0
    for block in scorer.blocks():
        scores = scorer.scores(block)
        ok = scorer.allowed(block)
        excluded += int(ok.size - np.count_nonzero(ok))
        ok &= scores >= min_score
        r, c = np.nonzero(ok)
        cost = -np.rint(scores[r, c] * scale).astype(np.int64)
        del scores, ok
        smcf.add_arcs_with_capacity_and_unit_cost(
            block[r].astype(np.int32),
            (c + n_learners).astype(np.int32),
            np.ones(r.size, dtype=np.int64),
            cost,
        )
        arcs += int(r.size)
    smcf.set_nodes_supplies(
        np.arange(sink + 1, dtype=np.int32),
        np.concatenate([np.ones(n_learners), np.zeros(n_guides), [-n_learners]]).astype(np.int64),
    )
    build = (time.perf_counter() - t0, time.process_time() - c0)
    peak_built = peak_mib()
    t1, c1 = time.perf_counter(), time.process_time()
    status = smcf.solve()
    solve = (time.perf_counter() - t1, time.process_time() - c1)
    if status != smcf.OPTIMAL:
        raise SystemExit(f"full-set solve: status {status}, not OPTIMAL")
    guide_of = np.full(n_learners, -1, dtype=np.int64)
    for start in range(first_pair_arc, first_pair_arc + arcs, FULL_ARC_CHUNK):
        idx = np.arange(start, min(start + FULL_ARC_CHUNK, first_pair_arc + arcs))
        for a in idx[smcf.flows(idx) > 0].tolist():  # one per learner: scalar reads are cheap
            guide_of[smcf.tail(a)] = smcf.head(a) - n_learners
    integer_cost = -smcf.optimal_cost()
    del smcf
    matched = int(np.count_nonzero(guide_of >= 0))
    # The total in the benchmark's own float scores (recomputed, not the rounded integers).
    parts: list[float] = []
    for block in scorer.blocks():
        g = guide_of[block]
        has = g >= 0
        parts.extend(scorer.scores(block)[np.flatnonzero(has), g[has]].tolist())
    full_total = math.fsum(parts)
    # coachbridge's certified match on the same instance, checked against that optimum.
    t2, c2 = time.perf_counter(), time.process_time()
    res = match_rows(scorer, np.full(n_guides, cap, dtype=np.int64), k=K, min_score=min_score)
    certified = {
        "certified": res.certified,
        "allowed_pairs": res.allowed_pairs,
        "matched": len(res.match),
        "total": total(res.match, res.candidates),
        "seconds": time.perf_counter() - t2,
        "cpu_seconds": time.process_time() - c2,
        "solves": res.solves,
        "priced_arcs": res.priced,
    }
    certified["gap_to_full"] = full_total - certified["total"]
    out: dict[str, Any] = {
        "full_set": {
            "learners": n_learners,
            "guides": n_guides,
            "capacity": cap,
            "arcs": arcs,
            "excluded_pairs": excluded,
            "matched": matched,
            "total": full_total,
            "integer_total": integer_cost / scale,
            "build_seconds": build[0],
            "build_cpu_seconds": build[1],
            "solve_seconds": solve[0],
            "solve_cpu_seconds": solve[1],
            "peak_mib_after_build": peak_built,
            "peak_mib_after_solve": peak_mib(),
        },
        "certified": certified,
    }
    rows = []
    for k in ks:
        t = time.perf_counter()
        cands = top_k(scorer, k, min_score)
        match = solve_candidates(cands, np.full(n_guides, cap, dtype=np.int64), n_learners, 0.0)
        value = total(match, cands)
        rows.append(
            {
                "k": k,
                "arcs": int(cands.score.size),
                "matched": len(match),
                "total": value,
                "cost_vs_full": full_total - value,
                "relative_vs_full": (full_total - value) / full_total,
                "seconds": time.perf_counter() - t,
            }
        )
        del cands, match
    out["full_cut"] = rows
    out["peak_mib"] = peak_mib()
    out["load_average"] = list(os.getloadavg())
    return out


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` now, from /proc (Linux), in MiB."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def run_child(job: str, seed: int, max_rss_gib: float) -> tuple[int, str, str, float]:
    """Run one job in a child process; stop it (only it) if its RSS passes ``max_rss_gib``."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", job, "--seed", str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = 0.0
    stopped = False
    while True:
        try:
            stdout, stderr = proc.communicate(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            seen = max(seen, rss_mib(proc.pid))
            if not stopped and seen > max_rss_gib * 1024.0:
                proc.kill()  # this child only, by its own handle
                stopped = True
    if stopped:
        stderr += f"\nstopped: resident memory {seen:.0f} MiB passed {max_rss_gib} GiB"
    return proc.returncode, stdout, stderr, seen


def markdown(results: list[dict[str, Any]]) -> str:
    """The README tables from the JSON results."""
    lines: list[str] = []
    if any("size" in r for r in results):
        lines += [
            "| instance | method | candidates s (cpu) | solve s (cpu) | matched | total score "
            "| gap to OR-tools | peak MiB (coachbridge / whole run) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
    for r in results:
        if "size" not in r:
            continue
        label = f"{r['learners']:,} x {r['guides']:,} cap {r['capacity']}"
        exact = r["ortools"]["total"]
        for method in ("coachbridge", "greedy", "ortools"):
            m = r[method]
            cand = f"{r['candidate_seconds']:.1f} ({r['candidate_cpu_seconds']:.1f})"
            gap = (exact - m["total"]) / exact if exact else 0.0
            lines.append(
                f"| {label} | {method} | {cand} | {m['solve_seconds']:.2f} "
                f"({m['solve_cpu_seconds']:.2f}) | {m['matched']:,} | {m['total']:.4f} | "
                f"{gap:.2e} | {r.get('peak_mib_coachbridge', 0):.0f} / {r['peak_mib']:.0f} |"
            )
    phases = [
        r for r in results if "size" in r and "end_to_end_seconds" in r.get("coachbridge", {})
    ]
    if phases:
        lines += [
            "",
            "coachbridge end to end (scoring + widening + solves + certification), wall s (cpu):",
            "",
            "| instance | mode | price estimate | candidates | widening | solves | certification "
            "| end to end | solves run | priced arcs | rows scored again | peak MiB | load | guarantee |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in phases:
            c = r["coachbridge"]
            label = f"{r['learners']:,} x {r['guides']:,} cap {r['capacity']}"
            certified = c.get("certified", False)
            guarantee = (
                f"certified over {c['allowed_pairs']:,} pairs" if certified else f"top-{K} lists"
            )
            load = r.get("load_average_before", r["load_average"])[0]
            lines.append(
                f"| {label} | {'certify' if r.get('certify', False) else 'top-K'} | "
                f"{c.get('estimate_seconds', 0):.1f} ({c.get('estimate_cpu_seconds', 0):.1f}) | "
                f"{r['candidate_seconds']:.1f} ({r['candidate_cpu_seconds']:.1f}) | "
                f"{c['widen_seconds']:.1f} ({c['widen_cpu_seconds']:.1f}) | "
                f"{c['solve_seconds']:.1f} ({c['solve_cpu_seconds']:.1f}) | "
                f"{c.get('certify_seconds', 0):.1f} ({c.get('certify_cpu_seconds', 0):.1f}) | "
                f"**{c.get('end_to_end_seconds_all', c['end_to_end_seconds']):.1f}** "
                f"({c.get('end_to_end_cpu_seconds_all', c['end_to_end_cpu_seconds']):.1f}) | "
                f"{c.get('solves', '')} | {c.get('priced_arcs', 0):,} | "
                f"{c.get('priced_rows', 0):,} | {r.get('peak_mib_coachbridge', 0):,.0f} | "
                f"{load:.1f}–{r['load_average'][0]:.1f} | {guarantee} |"
            )
    for r in results:
        if "assign_speed" in r:
            a = r["assign_speed"]
            lines += [
                "",
                f"assign vs plain OR-tools on the same {a['arcs']:,} arcs (best of "
                f"{a['repeats']}, one process): assign {a['assign']['wall']:.2f} s "
                f"({a['assign']['cpu']:.2f} cpu), OR-tools {a['ortools']['wall']:.2f} s "
                f"({a['ortools']['cpu']:.2f} cpu): ratio **{a['ratio_wall']:.2f}** wall, "
                f"{a['ratio_cpu']:.2f} cpu; matched {a['assign']['matched']:,} / "
                f"{a['ortools']['matched']:,}, totals {a['assign']['total']:.6f} / "
                f"{a['ortools']['total']:.6f}",
            ]
        if "plugin_speed" in r:
            ps = r["plugin_speed"]
            lines += [
                "",
                f"Scoring (top-{K}) at {ps['learners']:,} x {ps['guides']:,}, the time-zone "
                "criterion in three forms, wall s (cpu):",
                "",
                "| form | the criterion alone | CPU vs built-in | whole scoring | CPU vs built-in "
                "| rows timed |",
                "| --- | --- | --- | --- | --- | --- |",
            ]
            for name in ("built-in", "vectorised plugin", "per-pair plugin"):
                f = ps[name]
                lines.append(
                    f"| {name} | {f['criterion_wall']:.1f} ({f['criterion_cpu']:.1f}) | "
                    f"{f['criterion_cpu_vs_built_in']:.2f}x | "
                    f"{f['wall']:.1f} ({f['cpu']:.1f}) | {f['cpu_vs_built_in']:.2f}x | "
                    f"{f['measured_rows']:,}{'' if f['measured_rows'] == ps['learners'] else ' (scaled up)'} |"
                )
        if "profile_speed" in r:
            ps = r["profile_speed"]
            lines += [
                "",
                f"Scoring (top-{ps['k']}) at {ps['learners']:,} x {ps['guides']:,} with intake "
                f"answers, best of {ps['repeats']} alternating runs in one process, wall s (cpu); "
                f"building the answer arrays (TF-IDF fit included) took "
                f"{ps['answer_build_seconds']:.1f} s ({ps['answer_build_cpu_seconds']:.1f}):",
                "",
                "| variant | scoring | ratio to today (wall) | ratio to today (CPU) |",
                "| --- | --- | --- | --- |",
            ]
            for name in ("today", "answers", "answers + constraints"):
                f = ps[name]
                lines.append(
                    f"| {name} | {f['wall']:.2f} ({f['cpu']:.2f}) | {f['ratio_wall']:.2f}x | "
                    f"**{f['ratio_cpu']:.2f}x** |"
                )
        if "certified" in r and "full_set" in r:
            c = r["certified"]
            lines += [
                "",
                f"Certified coachbridge match on the same instance: {c['matched']:,} matched, "
                f"total {c['total']:.10f} ({'certified' if c['certified'] else 'NOT certified'} "
                f"over {c['allowed_pairs']:,} pairs, {c['solves']} solves), gap to the "
                f"full-set optimum {c['gap_to_full']:.3e}",
            ]
    for r in results:
        if "cut" in r:
            lines += ["", f"Top-K cut at 20,000 x 5,000 (upper bound {r['upper_bound']:.4f}):", ""]
            lines += ["| K | arcs | matched | total | cost vs largest K | gap to upper bound |"]
            lines += ["| --- | --- | --- | --- | --- | --- |"]
            for c in r["cut"]:
                lines.append(
                    f"| {c['k']} | {c['arcs']:,} | {c['matched']:,} | {c['total']:.4f} | "
                    f"{c['cost_vs_largest_k']:.4f} ({c['relative']:.2e}) | "
                    f"{c['gap_to_upper_bound']:.2e} |"
                )
        if "full_set" in r:
            f = r["full_set"]
            lines += [
                "",
                f"Full candidate set at 20,000 x 5,000 cap 5: {f['arcs']:,} arcs "
                f"({f['excluded_pairs']:,} pairs excluded), {f['matched']:,} matched, total "
                f"{f['total']:.4f}; build {f['build_seconds']:.1f} s ({f['build_cpu_seconds']:.1f}), "
                f"solve {f['solve_seconds']:.1f} s ({f['solve_cpu_seconds']:.1f}), peak "
                f"{f['peak_mib_after_solve']:.0f} MiB (child), "
                f"{r.get('watched_peak_mib', 0):.0f} MiB (watched by the parent)",
                "",
                "| K | arcs | matched | total | cost vs full set (relative) |",
                "| --- | --- | --- | --- | --- |",
            ]
            for c in r["full_cut"]:
                lines.append(
                    f"| {c['k']} | {c['arcs']:,} | {c['matched']:,} | {c['total']:.4f} | "
                    f"{c['cost_vs_full']:.4f} ({c['relative_vs_full']:.2e}) |"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,medium,large")
    parser.add_argument("--seed", type=int, default=20270111)
    parser.add_argument("--no-cut", action="store_true", help="skip the top-K cut study")
    parser.add_argument(
        "--full-set",
        action="store_true",
        help="also solve the 20,000-learner instance on every allowed pair (about 10 GB)",
    )
    parser.add_argument(
        "--max-rss-gib",
        type=float,
        default=15.0,
        help="stop a job whose resident memory passes this (default 15)",
    )
    parser.add_argument(
        "--assign", action="store_true", help="also time assign against plain OR-tools"
    )
    parser.add_argument(
        "--plugins", action="store_true", help="also time a plugin criterion's two forms"
    )
    parser.add_argument(
        "--profiles",
        action="store_true",
        help="also time scoring with intake answers (topics, goal_text, availability) vs today",
    )
    parser.add_argument(
        "--top-k-only",
        action="store_true",
        help="run the sizes without certification (certify = false), as before",
    )
    parser.add_argument("--out", metavar="FILE", help="also write the JSON lines and tables here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--markdown", metavar="JSONL", help="print the tables of a saved run")
    args = parser.parse_args()
    if args.markdown:
        with open(args.markdown, encoding="utf-8") as fh:
            saved = [json.loads(line) for line in fh if line.startswith("{")]
        print(markdown(saved))
        return
    if args.child == "cut":
        print(json.dumps(cut_cost(args.seed)))
        return
    if args.child == "full":
        print(json.dumps(full_set(args.seed)))
        return
    if args.child == "assign":
        print(json.dumps(assign_speed(args.seed)))
        return
    if args.child == "plugins":
        print(json.dumps(plugin_speed(args.seed)))
        return
    if args.child == "profiles":
        print(json.dumps(profile_speed(args.seed)))
        return
    if args.child:
        size, _, mode = args.child.partition(":")
        print(json.dumps(run_size(size, args.seed, certify=mode != "top-k")))
        return
    results = []
    jobs = [s + (":top-k" if args.top_k_only else "") for s in args.sizes.split(",") if s]
    if args.assign:
        jobs.insert(0, "assign")
    if args.plugins:
        jobs.insert(0, "plugins")
    if args.profiles:
        jobs.insert(0, "profiles")
    if not args.no_cut:
        jobs.append("cut")
    if args.full_set:
        jobs.append("full")
    for job in jobs:
        code, stdout, stderr, seen = run_child(job, args.seed, args.max_rss_gib)
        if code != 0:
            print(f"{job}: failed (peak RSS seen {seen:.0f} MiB)\n{stderr}", file=sys.stderr)
            continue
        data = json.loads(stdout)
        data["watched_peak_mib"] = seen
        results.append(data)
        print(json.dumps(data), flush=True)
    tables = markdown(results)
    print(tables)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(
                f"# {' '.join(sys.argv)}  ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n"
            )
            fh.writelines(json.dumps(r) + "\n" for r in results)
            fh.write(tables + "\n")


if __name__ == "__main__":
    main()
