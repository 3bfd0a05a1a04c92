"""Raw results of a benchmark run: one small JSON file per run, committed beside the benchmark.

Each ``run.py`` calls :func:`save` with what it measured; ``benchmarks/tables.py`` builds the
README tables from these files, so every figure in a README can be traced to one of them.
The machine is often shared, so every file records the load average before and after the run.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BENCHMARKS,
            capture_output=True,
            text=True,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "core", "plugins", "webhook_server"],
            cwd=BENCHMARKS.parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def machine() -> dict[str, Any]:
    cpu = "unknown"
    mem_kib = 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "mem_total_kib": mem_kib,
        "python": platform.python_version(),
    }


def started() -> dict[str, Any]:
    """What to record before the run: when, on which code and machine, and the load."""
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": machine(),
        "load_average_before": load_average(),
    }


def save(area: str, label: str, meta: dict[str, Any], results: dict[str, Any]) -> Path:
    """Write ``benchmarks/<area>/raw/<UTC time>-<label>.json`` and return its path."""
    record = {**meta, "load_average_after": load_average(), **results}
    stamp = meta["started_at"].replace(":", "").replace("+0000", "Z")[:17]
    folder = BENCHMARKS / area / "raw"
    folder.mkdir(exist_ok=True)
    path = folder / f"{stamp}-{label}.json"
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path
