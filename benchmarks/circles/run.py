"""Group circles: the exact circle solve at a realistic group-program size.

    .venv/bin/python benchmarks/circles/run.py [--learners 2000] [--guides 400] [--seed 7]

Seeded people from the matching benchmark's generator (skills, levels, departments, time
zones, a reporting tree), each learner's top-50 guides scored by the real engine, then
``coachbridge.matching.circles.solve_circles`` with ``circle_size = [3, 6]`` (a guide takes no
learner or 3 to 6) with HiGHS (scipy.optimize.milp). For reference, the same arcs without the minimum are
solved by the one-to-one min-cost flow (``solve_candidates``): its matched count and total are
upper bounds of the circle solve's. The raw result goes to ``benchmarks/circles/raw/``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "matching"))

import rawresults  # noqa: E402
from coachbridge.matching.circles import solve_circles  # noqa: E402
from coachbridge.matching.engine import solve_candidates  # noqa: E402
from coachbridge.matching.scoring import Scorer, top_k  # noqa: E402
from run import WEIGHTS, make_instance  # noqa: E402  (benchmarks/matching/run.py)

K = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=2000)
    parser.add_argument("--guides", type=int, default=400)
    parser.add_argument("--min", dest="minimum", type=int, default=3)
    parser.add_argument("--max", dest="maximum", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    meta = rawresults.started()
    learners, guides, _ = make_instance(args.learners, args.guides, args.seed)
    scorer = Scorer(learners, guides, WEIGHTS)
    clock = time.perf_counter()
    cands = top_k(scorer, K, 0.0)
    scoring = time.perf_counter() - clock
    free = np.full(args.guides, args.maximum, dtype=np.int64)
    minimum = np.full(args.guides, args.minimum, dtype=np.int64)
    cpu = time.process_time()
    clock = time.perf_counter()
    sol = solve_circles(cands.learner, cands.guide, cands.score, free, minimum)
    wall = time.perf_counter() - clock
    cpu = time.process_time() - cpu
    flow = solve_candidates(cands, free, args.learners, 0.0)
    flow_total = float(
        sum(cands.score[(cands.learner == x) & (cands.guide == g)][0] for x, g in flow.items())
    )
    sizes = np.bincount(np.array(list(sol.match.values()), dtype=np.int64), minlength=args.guides)
    opened = sizes[sizes > 0]
    results = {
        "instance": {
            "learners": args.learners,
            "guides": args.guides,
            "circle_size": [args.minimum, args.maximum],
            "top_k": K,
            "seed": args.seed,
            "arcs": int(cands.score.size),
        },
        "scoring_seconds": round(scoring, 3),
        "solve_wall_seconds": round(wall, 3),
        "solve_cpu_seconds": round(cpu, 3),
        "optimal": sol.optimal,
        "method": sol.method,
        "placed": len(sol.match),
        "total": round(sum(sol.scores.values()), 4),
        "error_bound": sol.error_bound,
        "circles": int(opened.size),
        "smallest_circle": int(opened.min()) if opened.size else 0,
        "largest_circle": int(opened.max()) if opened.size else 0,
        "flow_without_minimum": {"matched": len(flow), "total": round(flow_total, 4)},
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    path = rawresults.save("circles", f"{args.learners}x{args.guides}", meta, results)
    print(f"{args.learners} x {args.guides}, circle_size [{args.minimum}, {args.maximum}]")
    for key, value in results.items():
        print(f"  {key}: {value}")
    print(f"raw result: {path.relative_to(HERE.parent.parent)}")


if __name__ == "__main__":
    main()
