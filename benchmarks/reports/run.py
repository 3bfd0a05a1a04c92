"""Times the report and the daily health check over the generated company (time and peak memory).

    .venv/bin/python benchmarks/reports/generate.py --db /tmp/coachbridge_bench_reports.db
    .venv/bin/python benchmarks/reports/run.py --db /tmp/coachbridge_bench_reports.db

Each step runs the real ``coachbridge`` command in a fresh process; peak memory is that
process's maximum resident set size (``wait4``). The health check runs on a copy of the
database, once as a dry run, once for real (it records and sends its messages through the log
channel) and once more, which must find nothing new. What the company holds, how many messages
each health check named and how many the store then records as sent are counted, not assumed.
The raw results go to ``benchmarks/reports/raw/<time>-sqlite.json``; ``benchmarks/tables.py
reports`` turns them into the README's table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import rawresults  # noqa: E402

BIN = Path(sys.executable).with_name("coachbridge")


def run(args: list[str], label: str) -> dict[str, Any]:
    # Output goes to files, not pipes: os.wait4 (for this child's own peak RSS) must reap the
    # process, and a large JSON report would fill a pipe that nobody reads meanwhile.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([str(BIN), *args], stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{label} failed: {stderr}")
    peak_mib = usage.ru_maxrss / 1024
    print(f"| {label} | {elapsed:.1f} s | {peak_mib:.0f} MiB |", file=sys.stderr)
    return {
        "step": label,
        "wall_s": round(elapsed, 2),
        "peak_rss_mib": round(peak_mib, 1),
        "stdout": stdout,
    }


def counts(db: Path) -> dict[str, int]:
    """What the generated company holds (read from the store, not taken from the generator)."""
    queries = {
        "people": "SELECT count(*) FROM people",
        "leavers": "SELECT count(*) FROM people WHERE termination_date IS NOT NULL",
        "history_rows": "SELECT count(*) FROM person_history",
        "review_events": "SELECT count(*) FROM review_events",
        "programs": "SELECT count(*) FROM programs",
        "pairings": "SELECT count(*) FROM pairings",
        "sessions": "SELECT count(*) FROM sessions",
        "feedback": "SELECT count(*) FROM feedback",
    }
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {name: int(conn.execute(q).fetchone()[0]) for name, q in queries.items()}


def notifications(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {
            str(status): int(n)
            for status, n in conn.execute(
                "SELECT status, count(*) FROM notifications GROUP BY status"
            )
        }


def health_step(args: list[str], label: str) -> dict[str, Any]:
    step = run(args, label)
    rows = json.loads(step.pop("stdout") or "[]")
    by_status: dict[str, int] = {}
    for row in rows:
        by_status[str(row.get("status"))] = by_status.get(str(row.get("status")), 0) + 1
    step["messages"] = len(rows)
    step["messages_by_status"] = by_status
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="/tmp/coachbridge_bench_reports.db")
    parser.add_argument("--as-of", default="2026-06-01T00:00:00+00:00")
    args = parser.parse_args()
    meta = rawresults.started()
    db = Path(args.db)
    cfg = db.with_suffix(".toml")
    out = db.with_suffix(".html")
    copy = db.with_name(db.stem + "-health.db")
    shutil.copyfile(db, copy)
    company = counts(db)
    base = ["--config", str(cfg), "--db", str(db)]
    steps = []
    for label, extra in (
        ("report, 4 programs, JSON", ["report", "--format", "json"]),
        ("report, 4 programs, HTML", ["report", "--html", str(out)]),
        ("report, 1 program, JSON", ["report", "mentoring-2025", "--format", "json"]),
    ):
        step = run([*base, *extra, "--as-of", args.as_of], label)
        stdout = step.pop("stdout")
        if "JSON" in label:
            reports = json.loads(stdout)
            step["programs_reported"] = len(reports) if isinstance(reports, list) else 1
        steps.append(step)
    html_kib = round(out.stat().st_size / 1024)
    health = ["--config", str(cfg), "--db", str(copy)]
    nudge = ["nudge", "--as-of", args.as_of, "--format", "json"]
    steps.append(health_step([*health, *nudge, "--dry-run"], "daily health check, dry run"))
    steps.append(health_step([*health, *nudge], "daily health check (records and sends)"))
    recorded = notifications(copy)
    steps.append(health_step([*health, *nudge], "daily health check, second run"))
    copy.unlink()
    problems = []
    if steps[-1]["messages"]:
        problems.append(f"the second health check named {steps[-1]['messages']} messages again")
    if sum(recorded.values()) != steps[-2]["messages"]:
        problems.append(
            f"the health check named {steps[-2]['messages']} messages, the store holds "
            f"{sum(recorded.values())} ({recorded})"
        )
    results = {
        "as_of": args.as_of,
        "company": company,
        "steps": steps,
        "html_kib": html_kib,
        "notifications_after_health_check": recorded,
        "problems": problems,
    }
    path = rawresults.save("reports", "sqlite", meta, results)
    print(json.dumps(results, indent=1))
    print(f"raw results: {path.relative_to(ROOT)}", file=sys.stderr)
    if problems:
        sys.exit("FAILED: " + "; ".join(problems))


if __name__ == "__main__":
    main()
