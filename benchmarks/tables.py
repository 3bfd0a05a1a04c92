"""The README tables of a benchmark, built from its committed raw results (``<area>/raw/*.json``).

    .venv/bin/python benchmarks/tables.py webhooks     # or bamboohr, workday, reports, peer

Prints Markdown; each README says which command made its tables, so every figure there can be
traced to a raw file (named in the first column or under the table).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent


def _load(area: str) -> list[tuple[str, dict[str, Any]]]:
    files = sorted((BENCHMARKS / area / "raw").glob("*.json"))
    return [(f.name, json.loads(f.read_text(encoding="utf-8"))) for f in files]


def _load_avg(r: dict[str, Any]) -> str:
    return f"{r['load_average_before'][0]:.1f} / {r['load_average_after'][0]:.1f}"


def _n(x: float) -> str:
    return f"{x:,.0f}"


DATABASE = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
WORKER = {
    "in-process": "in-process, during the burst (the SQLite `serve` default)",
    "separate": "a separate `coachbridge worker`, during the burst",
    "none (worker --once after the burst)": "none during the burst; `worker --once` after it",
}


def webhooks() -> str:
    out = [
        "| raw file | database | worker | deliveries | load before / after |"
        " ceiling req/s | signed accepted/s | ratio | p50 ms | p99 ms | failed answers |"
        " accepted / stored | processed in | pairings, sessions, goals, messages | checks |",
        "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"
        " --- | --- |",
    ]
    for name, r in _load("webhooks"):
        e, i, s = r["effects"], r["intake"], r["signed"]
        checks = "all pass" if not r["problems"] else f"**{len(r['problems'])} failed**"
        out.append(
            f"| `{name}` | {DATABASE[r['config']['db']]} | {WORKER.get(r['worker'], r['worker'])} | {_n(r['config']['count'])} |"
            f" {_load_avg(r)} | {_n(r['bare']['accepted_per_second'])} |"
            f" {_n(s['accepted_per_second'])} | {r['ratio_to_ceiling']:.2f} | {s['p50_ms']:.1f} |"
            f" {s['p99_ms']:.1f} | {i['failed']} | {_n(i['accepted'])} / {_n(i['stored'])} |"
            f" {r['processing']['seconds']:.1f} s | {e['pairings']}, {e['sessions']},"
            f" {e['goals']}, {e['messages']} | {checks} |"
        )
    return "\n".join(out)


def bamboohr() -> str:
    out = []
    for name, r in _load("bamboohr"):
        out += [
            f"`{name}`: {_n(r['employees'])} employees, {r['changes']} changed, seed"
            f" {r['seed']}, commit {r['commit']}, load average {_load_avg(r)} (before / after);"
            f" peak RSS of the syncing process {r['peak_rss_mib']:.0f} MiB.",
            "",
            "| run | HTTP requests | people | wall time (s) | peak Python heap (MiB) |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for run in r["runs"]:
            heap = "-" if run["peak_heap_mib"] is None else f"{run['peak_heap_mib']:.1f}"
            out.append(
                f"| {run['run']} | {run['requests']} | {_n(run['people'])} |"
                f" {run['wall_s']:.2f} | {heap} |"
            )
        out.append("")
    return "\n".join(out).rstrip()


def workday() -> str:
    out = []
    for name, r in _load("workday"):
        n = _n(r["workers"])
        out += [
            f"`{name}`: {n} workers, seed {r['seed']}, commit {r['commit']},"
            f" load average {_load_avg(r)} (before / after).",
            "",
            f"| scenario ({n} workers) | requests | read | sync | peak RSS |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        scenarios = (
            ("raas_full", "RaaS full sync (first sync, all new)"),
            (
                "raas_incremental",
                f"RaaS incremental sync, {r['changed']} changed (`Updated_From` prompt)",
            ),
            ("rest_full", 'REST full sync (`people_source = "rest"`)'),
        )
        for key, label in scenarios:
            if key in r:
                x = r[key]
                out.append(
                    f"| {label} | {_n(x['requests'])} | {x['read_s']:.2f} s |"
                    f" {x['sync_wall_s']:.1f} s | {x['peak_rss_mib']:.0f} MiB |"
                )
        out += ["", "Requests per endpoint:", ""]
        present = [(k, label) for k, label in scenarios if k in r]
        endpoints = sorted({e for k, _ in present for e in r[k]["requests_per_endpoint"]})
        out.append("| endpoint | " + " | ".join(k.replace("_", " ") for k, _ in present) + " |")
        out.append("| --- |" + " ---: |" * len(present))
        for e in endpoints:
            cells = " | ".join(str(r[k]["requests_per_endpoint"].get(e, 0)) for k, _ in present)
            out.append(f"| {e} | {cells} |")
        out += [
            "",
            "Streaming the report through the row mapping, nothing kept:",
            "",
            "| rows | peak Python heap | time (under tracemalloc) |",
            "| ---: | ---: | ---: |",
        ]
        for _rows, x in sorted(r["stream_only"].items(), key=lambda kv: int(kv[0])):
            out.append(f"| {_n(x['rows'])} | {x['peak_mib']:.2f} MiB | {x['wall_s']:.1f} s |")
        out.append("")
    return "\n".join(out).rstrip()


def reports() -> str:
    out = []
    for name, r in _load("reports"):
        c = r["company"]
        out += [
            f"`{name}`: commit {r['commit']}, load average {_load_avg(r)} (before / after)."
            f" The store: {_n(c['people'])} people ({_n(c['leavers'])} leavers),"
            f" {_n(c['history_rows'])} history rows, {_n(c['review_events'])} review events,"
            f" {c['programs']} programs, {_n(c['pairings'])} pairings, {_n(c['sessions'])}"
            f" sessions, {_n(c['feedback'])} feedback answers. HTML page: {_n(r['html_kib'])} KiB.",
            "",
            "| step | wall time | peak memory (RSS) | messages |",
            "| --- | ---: | ---: | --- |",
        ]
        for step in r["steps"]:
            msgs = ""
            if "messages" in step:
                by = ", ".join(f"{v:,} {k}" for k, v in sorted(step["messages_by_status"].items()))
                msgs = f"{_n(step['messages'])}" + (f" ({by})" if by else "")
            out.append(
                f"| {step['step']} | {step['wall_s']:.1f} s | {step['peak_rss_mib']:.0f} MiB |"
                f" {msgs} |"
            )
        recorded = r["notifications_after_health_check"]
        out += [
            "",
            "Messages in the store after the health check: "
            + (", ".join(f"{v:,} {k}" for k, v in sorted(recorded.items())) or "none")
            + ("." if not r["problems"] else f". **Checks failed:** {'; '.join(r['problems'])}"),
            "",
        ]
    return "\n".join(out).rstrip()


def peer() -> str:
    out = [
        "| raw file | people | top_k | candidate pairs | pairs | unpaired | total | wall | CPU"
        " (candidates + solve) | peak RSS | load before / after |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, r in _load("peer"):
        for x in r["runs"]:
            ph = x["phases"]
            k = f"{x['top_k']:,}" + (" (every pair)" if x["complete"] else "")
            out.append(
                f"| `{name}` | {_n(x['people'])} | {k} | {_n(x['candidate_pairs'])} |"
                f" {_n(x['pairs'])} | {x['unpaired']} | {x['total']:.4f} | {x['wall_s']:.1f} s |"
                f" {x['cpu_s']:.1f} s ({ph.get('candidates_cpu', 0):.1f} + "
                f"{ph.get('solve_cpu', 0):.1f}) | {x['peak_rss_mib']:.0f} MiB | {_load_avg(r)} |"
            )
    return "\n".join(out)


AREAS: dict[str, Callable[[], str]] = {
    "peer": peer,
    "webhooks": webhooks,
    "bamboohr": bamboohr,
    "workday": workday,
    "reports": reports,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("area", choices=sorted(AREAS))
    print(AREAS[parser.parse_args().area]())


if __name__ == "__main__":
    main()
