"""Times the report and the daily health check over the generated company (time and peak memory).

    .venv/bin/python benchmarks/reports/generate.py --db /tmp/coachbridge_bench_reports.db
    .venv/bin/python benchmarks/reports/run.py --db /tmp/coachbridge_bench_reports.db

Each step runs the real ``coachbridge`` command in a fresh process; peak memory is that
process's maximum resident set size (``wait4``). The health check runs on a copy of the
database, once for real (it records and sends its nudges through the log channel) and once
more to show that a second run finds nothing new.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).with_name("coachbridge")


def run(args: list[str], label: str) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    stderr = proc.stderr.read() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{label} failed: {stderr}")
    peak_mib = usage.ru_maxrss / 1024
    print(f"| {label} | {elapsed:.1f} s | {peak_mib:.0f} MiB |")
    return elapsed, peak_mib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="/tmp/coachbridge_bench_reports.db")
    parser.add_argument("--as-of", default="2026-06-01T00:00:00+00:00")
    args = parser.parse_args()
    db = Path(args.db)
    cfg = db.with_suffix(".toml")
    out = db.with_suffix(".html")
    copy = db.with_name(db.stem + "-health.db")
    shutil.copyfile(db, copy)
    print("| step | wall time | peak memory (RSS) |")
    print("| --- | --- | --- |")
    base = ["--config", str(cfg), "--db", str(db)]
    run([*base, "report", "--format", "json", "--as-of", args.as_of], "report, 4 programs, JSON")
    run([*base, "report", "--html", str(out), "--as-of", args.as_of], "report, 4 programs, HTML")
    run(
        [*base, "report", "mentoring-2025", "--format", "json", "--as-of", args.as_of],
        "report, 1 program, JSON",
    )
    health = ["--config", str(cfg), "--db", str(copy)]
    run(
        [*health, "nudge", "--dry-run", "--as-of", args.as_of, "--format", "json"],
        "daily health check, dry run",
    )
    run(
        [*health, "nudge", "--as-of", args.as_of, "--format", "json"],
        "daily health check (records and sends)",
    )
    run(
        [*health, "nudge", "--as-of", args.as_of, "--format", "json"],
        "daily health check, second run (nothing new)",
    )
    copy.unlink()
    print(f"\nHTML report: {out} ({out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
