"""Peer matching at company scale: one pool, symmetric scores, exact blossom matching.

    .venv/bin/python benchmarks/peer/run.py                  # 5,000 people, top_k 50 (the goal)
    .venv/bin/python benchmarks/peer/run.py --sizes 1000 --complete   # also every allowed pair

Seeded: the same seed gives the same pool. Each size is timed end to end (candidates, solve,
widening) in wall-clock and CPU seconds; the machine is shared, so the load average is recorded
before and after, and the raw result goes to ``benchmarks/peer/raw/``. ``--complete`` solves the
same pool again on every allowed pair (``top_k = n - 1``) to show what the top-K lists cost.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from coachbridge.matching.features import Side, euler_intervals
from coachbridge.matching.peer import PeerScorer, solve_peer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rawresults import save, started

WEIGHTS = {
    "skills": 0.4,
    "seniority": 0.2,
    "timezone": 0.15,
    "language": 0.1,
    "department_diversity": 0.15,
}
DIM = 32


def make_pool(n: int, seed: int) -> PeerScorer:
    """``n`` people with wants and offers, levels 1-9, 12 departments and an org tree.

    The tree: a root, then each person reports to a random earlier person of a lower index
    within a window, so chains are a few levels deep and about 1% of pairs are in one chain.
    """
    rng = np.random.default_rng(seed)
    managers: dict[int, int | None] = {0: None}
    for i in range(1, n):
        managers[i] = int(rng.integers(max(0, i - 50), i)) if i > 5 else 0
    tour = euler_intervals(managers)
    ids = np.arange(n, dtype=np.int64)
    wants = (rng.random((n, DIM)) < 0.12).astype(np.float32)
    offers = (rng.random((n, DIM)).astype(np.float32)) ** 3
    langs = (rng.random((n, 5)) < 0.35).astype(np.float32)
    langs[np.arange(n), rng.integers(0, 5, n)] = 1.0
    common = {
        "ids": ids,
        "level": rng.integers(1, 10, n).astype(np.float64),
        "department": rng.integers(0, 12, n).astype(np.int64),
        "utc_offset": rng.choice([-8.0, -5.0, 0.0, 1.0, 2.0, 5.5, 8.0, 9.0], n),
        "languages": langs,
        "tin": np.array([tour[i][0] for i in range(n)], dtype=np.int64),
        "tout": np.array([tour[i][1] for i in range(n)], dtype=np.int64),
    }
    learners = Side(topics=wants, goals=wants, **common)
    guides = Side(topics=offers, goals=offers, **common)
    return PeerScorer(learners, guides, WEIGHTS)


def run(n: int, k: int, seed: int) -> dict[str, Any]:
    scorer = make_pool(n, seed)
    wall, cpu = time.perf_counter(), time.process_time()
    solution = solve_peer(scorer, k=k, min_score=0.0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    paired = 2 * len(solution.pairs)
    return {
        "people": n,
        "top_k": k,
        "complete": solution.candidates.complete,
        "candidate_pairs": int(solution.candidates.score.size),
        "widened": solution.widened,
        "pairs": len(solution.pairs),
        "unpaired": n - paired,
        "total": round(sum(s for _, _, s in solution.pairs), 6),
        "error_bound": solution.error_bound,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "phases": {key: round(v, 2) for key, v in solution.seconds.items()},
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000", help="comma-separated pool sizes")
    parser.add_argument("--k", type=int, default=50, help="top_k (the program default: 50)")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--complete", action="store_true", help="also solve on every pair")
    args = parser.parse_args()
    meta = started()
    results = []
    for n in [int(x) for x in args.sizes.split(",") if x]:
        for k in [args.k, n - 1] if args.complete else [args.k]:
            row = run(n, k, args.seed)
            results.append(row)
            print(
                f"{n:>6} people, top_k {k:>5}: {row['pairs']:,} pairs, {row['unpaired']} "
                f"unpaired, total {row['total']:.4f}, {row['candidate_pairs']:,} candidate "
                f"pairs; {row['wall_s']} s wall, {row['cpu_s']} s CPU "
                f"(candidates {row['phases'].get('candidates_cpu')} s, "
                f"solve {row['phases'].get('solve_cpu')} s CPU); {row['peak_rss_mib']} MiB",
                flush=True,
            )
    path = save(
        "peer", f"n{args.sizes.replace(',', '-')}", meta, {"seed": args.seed, "runs": results}
    )
    print(f"raw results: {path}")


if __name__ == "__main__":
    main()
