"""Print the README's tables from the committed raw results of ``benchmarks/faults/run.py``.

.venv/bin/python benchmarks/faults/table.py            # every file in benchmarks/faults/raw
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RAW = Path(__file__).resolve().parent / "raw"


def _n(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"


def rows(paths: list[Path]) -> list[str]:
    out = [
        "| run | load avg before/after | sent | accepted (202/200) | 503 answers | deliveries"
        " retried | no answer | processed once | lost | problems (lost, doubled ...) | drained after the"
        " stream | all mail sent after the stream |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for path in paths:
        r = json.loads(path.read_text())
        sent, store = r["sender"], r["store"]
        in_flight = len(r["sigterm"]["answers"])
        statuses = sent["answers_by_status"]
        out.append(
            f"| `{path.name}` | {r['load_average_before'][0]} / {r['load_average_after'][0]}"
            f" | {_n(sent['deliveries'] + in_flight)} | {_n(store['accepted'])}"
            f" | {_n(statuses.get('503', 0))} | {_n(sent['accepted_after_retry'])}"
            f" | {_n(statuses.get('0', 0))} | {_n(store['processed'])} | {_n(store['lost'])}"
            f" | {len(r['problems'])} | {_n(r['drained']['seconds_after_stream'])} s"
            f" | {_n(r['notifications']['seconds_after_stream'])} s |"
        )
    return out


def recovery(paths: list[Path]) -> list[str]:
    out = [
        "| run | outage | answers during the outage | first 202 after it | processing resumed"
        " after: terminate / worker killed / outage / terminate again | claims of the killed"
        " worker | worker restarts (exit status) | mail dropped mid-send | messages sent after a failure | SIGTERM: in flight"
        " answered, serve exited after |",
        "| --- | ---: | --- | ---: | --- | ---: | --- | ---: | ---: | --- |",
    ]
    for path in paths:
        r = json.loads(path.read_text())
        if "outage_seconds" not in r:
            continue
        resumed = r["processing_resumed_seconds"]
        restarts = ", ".join(f"{x['at']} s ({x['status']})" for x in r["worker_restarts"])
        answers = ", ".join(f"{k}: {v}" for k, v in r["answers"]["outage"].items())
        term = r["sigterm"]
        kill = next(m["result"] for m in r["timeline"] if m["what"] == "worker killed")
        # Earlier runs counted the claims seen before the kill, later ones those it stranded.
        claims = kill.get("claims_stranded", kill.get("claims_held"))
        claims_label = f"{claims} stranded" if "claims_stranded" in kill else f"{claims} held"
        answered = sum(1 for s in term["answers"].values() if s == 202)
        out.append(
            f"| `{path.name}` | {r['outage_seconds']} s | {answers}"
            f" | {r['intake_recovery_seconds']['after_outage']} s"
            f" | {resumed['after_terminate']} / {resumed['after_worker_killed']} /"
            f" {resumed['after_outage']} / {resumed['after_terminate_again']} s"
            f" | {claims_label} | {restarts} | {r['smtp']['dropped_mid_mail']}"
            f" | {r['store']['notifications_sent_after_a_failure']}"
            f" | {answered} of {len(term['answers'])} with 202, exit {term['serve_exit_code']}"
            f" after {term['serve_exit_seconds']} s |"
        )
    return out


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or sorted(RAW.glob("*.json"))
    print("\n".join(rows(paths)))
    print()
    print("\n".join(recovery(paths)))


if __name__ == "__main__":
    main()
