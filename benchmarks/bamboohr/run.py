"""Benchmark: full sync of N BambooHR employees and an incremental sync of K changes.

Runs the test tree's fake BambooHR in a child process on 127.0.0.1 (so its memory is not
counted), syncs into a fresh SQLite store, and prints HTTP requests, wall time and peak memory.
The raw results go to ``benchmarks/bamboohr/raw/<time>-sqlite.json``; ``benchmarks/tables.py
bamboohr`` turns them into the README's table.

    .venv/bin/python benchmarks/bamboohr/run.py [--employees 10000] [--changes 100] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import rawresults  # noqa: E402

DEPARTMENTS = ["Engineering", "Sales", "Support", "Finance", "People", "Marketing", "Legal"]
LOCATIONS = ["London", "New York", "Berlin", "Remote", "Singapore"]
TITLES = ["Engineer", "Senior Engineer", "Manager", "Analyst", "Specialist", "Director"]
SINCE = "2025-01-01T00:00:00+00:00"
CHANGED_AT = "2025-06-01T00:00:00+00:00"


def generate(n: int, seed: int) -> dict[str, dict[str, Any]]:
    """A seeded company: employee i reports to someone hired before them; ~8% have left."""
    rng = random.Random(seed)
    people: dict[str, dict[str, Any]] = {}
    for i in range(1, n + 1):
        emp = str(i)
        manager = str(rng.randint(max(1, i - 50), i - 1)) if i > 1 else None
        left = rng.random() < 0.08 and i > 1
        people[emp] = {
            "id": emp,
            "firstName": f"First{i}",
            "lastName": f"Last{i}",
            "workEmail": f"person{i}@example.test",
            "jobTitle": rng.choice(TITLES),
            "department": rng.choice(DEPARTMENTS),
            "division": "Company",
            "location": rng.choice(LOCATIONS),
            "status": "Inactive" if left else "Active",
            "hireDate": f"20{rng.randint(10, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "terminationDate": "2024-12-31" if left else "0000-00-00",
            "employeeNumber": f"E{i:06d}",
            "supervisorEId": manager,
            "supervisorId": None,
            "supervisorEmail": f"person{manager}@example.test" if manager else None,
            "performanceRating": str(rng.randint(1, 5)),
            "lastChanged": SINCE,
        }
    return people


def serve(n: int, seed: int, conn: Any) -> None:
    """Child process: the fake BambooHR with a small control channel over a pipe."""
    import logging

    from tests.bamboohr.fake_bamboohr import FakeBambooHR

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    fake = FakeBambooHR()
    fake.employees = generate(n, seed)
    fake.changes = {emp: ("Inserted", SINCE) for emp in fake.employees}
    url = fake.start()
    conn.send((url, fake.api_key))
    while True:
        command, arg = conn.recv()
        if command == "touch":  # change the job title of `arg` employees, seeded
            rng = random.Random(seed + 1)
            for emp in rng.sample(sorted(fake.employees), arg):
                fake.update_employee(emp, CHANGED_AT, jobTitle="Changed title")
            conn.send(None)
        elif command == "count":
            conn.send(len(fake.log))
            fake.log.clear()
        else:
            fake.stop()
            conn.send(None)
            return


def timed(run: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = run()
    return result, time.perf_counter() - started


def heap_peak(run: Any) -> float:
    """Peak Python heap (MiB) of a repeatable run; traced separately because tracing is slow."""
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    meta = rawresults.started()

    from coachbridge.connectors import ConnectorContext
    from coachbridge.hris.sync import Syncer
    from coachbridge.store import Database
    from coachbridge.store.tables import SyncStateRow
    from coachbridge_bamboohr import BambooHRConfig, BambooHRConnector

    parent, child = mp.Pipe()
    server = mp.Process(target=serve, args=(args.employees, args.seed, child), daemon=True)
    server.start()
    url, key = parent.recv()

    def connector() -> BambooHRConnector:
        config = BambooHRConfig(
            plugin="bamboohr",
            company_domain="acme",
            api_key=key,
            base_url=url,
            rating_field="performanceRating",
        )
        return BambooHRConnector(config, ConnectorContext(name="bamboo"))

    rows: list[tuple[str, int, int, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/bench.db")
        db.upgrade()

        c = connector()
        batch, wall = timed(lambda: c.read_people(None, full=True))
        peak = heap_peak(lambda: connector().read_people(None, full=True))
        rows.append(
            (
                "full read (connector only)",
                c.client.requests_made,
                len(batch.records),
                wall,
                f"{peak:.1f}",
            )
        )

        c = connector()
        report, wall = timed(lambda: Syncer(db, c).run(full=True))
        rows.append(
            (
                "full sync into SQLite (read + validate + write)",
                c.client.requests_made,
                len(report.new),
                wall,
                "-",
            )
        )

        parent.send(("touch", args.changes))
        parent.recv()
        with db.transaction() as s:
            cursor = s.get(SyncStateRow, ("bamboo", "people")).cursor

        c = connector()
        batch, wall = timed(lambda: c.read_people(cursor, full=False))
        peak = heap_peak(lambda: connector().read_people(cursor, full=False))
        rows.append(
            (
                f"incremental read, {args.changes} changed (connector only)",
                c.client.requests_made,
                len(batch.records),
                wall,
                f"{peak:.1f}",
            )
        )

        c = connector()
        report, wall = timed(lambda: Syncer(db, c).run())
        rows.append(
            (
                f"incremental sync into SQLite, {args.changes} changed",
                c.client.requests_made,
                len(report.changed),
                wall,
                "-",
            )
        )
        db.dispose()

    parent.send(("stop", None))
    parent.recv()
    server.join(timeout=5)

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results = {
        "employees": args.employees,
        "changes": args.changes,
        "seed": args.seed,
        "runs": [
            {
                "run": label,
                "requests": requests_made,
                "people": people,
                "wall_s": round(wall, 2),
                "peak_heap_mib": None if peak == "-" else float(peak),
            }
            for label, requests_made, people, wall, peak in rows
        ],
        "peak_rss_mib": round(rss, 1),
    }
    path = rawresults.save("bamboohr", "sqlite", meta, results)
    print(json.dumps(results, indent=1))
    print(f"raw results: {path.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
