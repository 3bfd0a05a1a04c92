"""Workday connector benchmark: full RaaS and REST syncs of N workers, then an incremental sync.

The fake tenant (tests/workday/fake_workday.py, seeded generator) runs in a child process so
that memory figures are this process's alone. Run from the repository root:

    .venv/bin/python benchmarks/workday/run.py            # 20,000 workers
    .venv/bin/python benchmarks/workday/run.py --workers 5000 --skip-rest

Figures: HTTP requests made by the connector (in all, and per endpoint), wall time of
``Syncer.run`` into a fresh SQLite store, peak RSS of the syncing process, and peak Python heap
(tracemalloc) of streaming the report through the mapping without keeping records, which must
stay flat in head count. The raw results go to ``benchmarks/workday/raw/<time>-sqlite.json``;
``benchmarks/tables.py workday`` turns them into the README's tables.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import resource
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import rawresults  # noqa: E402

#: Which endpoint a request went to, by its path (and ``?xsds`` for the report's schema).
ENDPOINTS = [
    ("token", re.compile(r"/ccx/oauth2/[^/]+/token$")),
    ("report schema (?xsds)", re.compile(r"/ccx/service/customreport2/.+[?&]xsds?(&|$)")),
    ("report", re.compile(r"/ccx/service/customreport2/")),
    ("org chart", re.compile(r"/supervisoryOrganizations/[^/?]+/orgChart")),
    ("supervisory organization pages", re.compile(r"/supervisoryOrganizations(\?|$)")),
    (
        "worker pages, terminated included",
        re.compile(r"/workers\?.*includeTerminatedWorkers=(true|1)"),
    ),
    ("worker pages", re.compile(r"/workers(\?|$)")),
]


def endpoint(url: str) -> str:
    for name, pattern in ENDPOINTS:
        if pattern.search(url):
            return name
    return "other"


def _serve(workers: int, seed: int, queue: Any) -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from tests.workday.fake_workday import FakeWorkday, make_workers

    fake = FakeWorkday(make_workers(workers, seed=seed)).start()
    queue.put(fake.url)
    while True:
        time.sleep(3600)


def _connector(url: str, **extra: Any) -> Any:
    from coachbridge.connectors import ConnectorContext
    from coachbridge_workday.config import WorkdayConfig
    from coachbridge_workday.connector import WorkdayConnector

    settings = {
        "plugin": "workday",
        "base_url": url,
        "tenant": "acme",
        "client_id": "cb-client",
        "client_secret": "s3cret-client",
        "refresh_token": "refresh-abc",
        "people_report": "isu_coaching/Coaching_Workers",
        "updated_since_prompt": "Updated_From",
        "max_deactivate": "100%",
        **extra,
    }
    settings = {k: v for k, v in settings.items() if v is not None}
    return WorkdayConnector(WorkdayConfig.model_validate(settings), ConnectorContext(name="wd"))


def _sync(url: str, db_path: str, extra: dict[str, Any]) -> dict[str, Any]:
    """One ``Syncer.run`` in this (fresh) process: requests, wall time, peak RSS."""
    from coachbridge.hris.sync import Syncer
    from coachbridge.store import Database

    db = Database(f"sqlite:///{db_path}")
    db.upgrade()
    connector = _connector(url, **extra)
    # Time the connector's read alone too: the rest is the core's store work.
    read = connector.read_people
    timing: dict[str, float] = {}

    def timed_read(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return read(*args, **kwargs)
        finally:
            timing["read_s"] = time.perf_counter() - t0

    connector.read_people = timed_read  # type: ignore[method-assign]
    # Count each request by endpoint where it leaves the client (retries included, like
    # ``requests_made``), so the breakdown below adds up to the total.
    per_endpoint: dict[str, int] = {}
    session = connector.client.session
    send = session.request

    def counted(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        full = url
        if kwargs.get("params"):
            from urllib.parse import urlencode

            full += "?" + urlencode(kwargs["params"])
        name = endpoint(full)
        per_endpoint[name] = per_endpoint.get(name, 0) + 1
        return send(method, url, *args, **kwargs)

    session.request = counted  # type: ignore[method-assign]
    started = time.perf_counter()
    report = Syncer(db, connector).run()
    wall = time.perf_counter() - started
    db.dispose()
    return {
        "requests": connector.client.requests_made,
        "requests_per_endpoint": dict(sorted(per_endpoint.items())),
        "read_s": round(timing["read_s"], 2),
        "sync_wall_s": round(wall, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "records": len(report.new) + len(report.changed) + report.unchanged + len(report.leaving),
        "new": len(report.new),
        "changed": len(report.changed),
        "full": report.full,
    }


def _stream_only(url: str) -> dict[str, Any]:
    """Stream the report through the mapping, keeping nothing: the parser's own footprint."""
    connector = _connector(url)
    tracemalloc.start()
    started = time.perf_counter()
    records, _, _ = connector.iter_people()
    count = sum(1 for _ in records)
    wall = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"rows": count, "wall_s": round(wall, 2), "peak_mib": round(peak / 2**20, 2)}


def _in_child(func: Any, *args: Any) -> Any:
    """Run ``func(*args)`` in a fresh process so that its peak RSS is its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as ex:
        return ex.submit(func, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument("--skip-rest", action="store_true")
    parser.add_argument("--skip-raas", action="store_true")
    parser.add_argument("--flatness", default="5000,10000,20000", help="head counts for (a)")
    args = parser.parse_args()

    meta = rawresults.started()
    results: dict[str, Any] = {"workers": args.workers, "seed": args.seed, "changed": args.changed}
    ctx = multiprocessing.get_context("spawn")

    def start(n: int) -> tuple[Any, str]:
        queue = ctx.Queue()
        proc = ctx.Process(target=_serve, args=(n, args.seed, queue), daemon=True)
        proc.start()
        return proc, queue.get(timeout=300)

    flat = {}
    for n in [int(x) for x in args.flatness.split(",") if x]:
        proc, url = start(n)
        flat[n] = _in_child(_stream_only, url)
        proc.terminate()
    results["stream_only"] = {str(n): figures for n, figures in flat.items()}

    proc, url = start(args.workers)
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "raas.db")
        if not args.skip_raas:
            results["raas_full"] = _in_child(_sync, url, store, {})
            urllib.request.urlopen(
                urllib.request.Request(f"{url}/_fake/touch?count={args.changed}", method="POST")
            ).read()
            # Incremental: the second sync of the same store passes its cursor as the prompt.
            results["raas_incremental"] = _in_child(_sync, url, store, {})
        if not args.skip_rest:
            results["rest_full"] = _in_child(
                _sync,
                url,
                str(Path(tmp) / "rest.db"),
                {"people_source": "rest", "people_report": None},
            )
    proc.terminate()
    for name in ("raas_full", "raas_incremental", "rest_full"):
        if (
            name in results
            and sum(results[name]["requests_per_endpoint"].values()) != (results[name]["requests"])
        ):
            sys.exit(f"{name}: the per-endpoint counts do not add up to the requests made")
    path = rawresults.save("workday", "sqlite", meta, results)
    print(json.dumps(results, indent=2))
    print(f"raw results: {path.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
