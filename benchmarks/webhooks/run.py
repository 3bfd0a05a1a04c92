"""Webhook intake benchmark: ``coachbridge serve`` on SQLite and PostgreSQL vs its bare ceiling.

One command (from the repository root)::

    .venv/bin/python benchmarks/webhooks/run.py                 # both databases
    .venv/bin/python benchmarks/webhooks/run.py --db sqlite --count 10000 --concurrency 16

For each database it starts a real ``coachbridge serve`` (gunicorn) on a free loopback port
with the benchmark-only bare route switched on (``COACHBRIDGE_BENCH_BARE=1``), runs the load
generator as a separate process against ``/_bench/bare`` (no verification, no write: the
ceiling) and then against ``/webhooks/reviews`` (signed Standard Webhooks deliveries, verified
and stored), and finally counts the inbox: every accepted delivery must be there exactly once.
The SQLite server also runs its in-process worker, as the single-machine default does.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).with_name("coachbridge")
SECRET = "whsec_" + base64.b64encode(b"benchmark-secret-benchmark-32by").decode()
PG_ADMIN = os.environ.get(
    "COACHBRIDGE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

CONFIG = """
[database]
url = "{url}"

[server]
workers = {workers}

[connectors.hr]
plugin = "csv"
people = "people.csv"

[connectors.reviews]
plugin = "generic"
secret = "${{BENCH_SECRET}}"
people_from = "hr"

[[programs]]
id = "coaching"
kind = "coaching"
capacity = 50

[programs.guides]
departments = ["Engineering"]

[[rules]]
on = "review.completed"
when = [{{ field = "rating", op = "<=", value = 0.25 }}]
then = {{ enroll = "coaching", role = "learner", goal = "Plan after {{cycle}}" }}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def people_csv(n: int) -> str:
    rows = ["id,first_name,last_name,email,department,timezone,level"]
    rows += [f"G{i},G{i},Guide,g{i}@example.com,Engineering,Europe/Berlin,6" for i in range(1, 11)]
    rows += [f"E{i},E{i},Learner,e{i}@example.com,Sales,Europe/Berlin,2" for i in range(1, n + 1)]
    return "\n".join(rows) + "\n"


def wait_processed(url: str, timeout: float) -> dict:
    """Wait for the worker to settle every delivery; what it did, and how long after the burst."""
    engine = create_engine(url)
    began = time.monotonic()
    try:
        while True:
            with engine.connect() as conn:
                left = conn.execute(
                    text("SELECT count(*) FROM inbox WHERE status IN ('pending', 'processing')")
                ).scalar_one()
                if left == 0 or time.monotonic() - began > timeout:
                    counts = {
                        table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                        for table in ("pairings", "sessions", "goals")
                    }
                    statuses = dict(
                        conn.execute(
                            text("SELECT status, count(*) FROM inbox GROUP BY status")
                        ).all()
                    )
                    break
            time.sleep(0.2)
    finally:
        engine.dispose()
    return {
        "left_unprocessed": int(left),
        "seconds_after_burst": round(time.monotonic() - began, 1),
        "inbox": {str(k): int(v) for k, v in statuses.items()},
        **{k: int(v) for k, v in counts.items()},
    }


def run_once(db: str, args: argparse.Namespace, folder: Path) -> dict:
    pg_name = None
    if db == "sqlite":
        url = f"sqlite:///{folder / 'bench.db'}"
    else:
        pg_name = f"cb_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + pg_name
    env = {**os.environ, "BENCH_SECRET": SECRET, "COACHBRIDGE_BENCH_BARE": "1"}
    (folder / "people.csv").write_text(people_csv(args.people))
    cfg = folder / "coachbridge.toml"
    cfg.write_text(CONFIG.format(url=url, workers=args.processes))
    server = extra = None
    try:
        subprocess.run(
            [BIN, "--config", str(cfg), "db", "upgrade"], env=env, check=True, capture_output=True
        )
        subprocess.run(
            [BIN, "--config", str(cfg), "sync", "hr"], env=env, check=True, capture_output=True
        )
        # The ten guides join the program, so a low rating really is paired and scheduled.
        subprocess.run(
            [BIN, "--config", str(cfg), "enroll", "coaching"],
            env=env,
            check=True,
            capture_output=True,
        )
        port = free_port()
        server = subprocess.Popen(
            [BIN, "--config", str(cfg), "serve", "--port", str(port), *args.serve_args.split()],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if args.separate_worker:
            extra = subprocess.Popen(
                [BIN, "--config", str(cfg), "worker"],
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        results = {}
        for mode, path in (("bare", "/_bench/bare"), ("signed", "/webhooks/reviews")):
            out = subprocess.run(
                [
                    sys.executable,
                    str(HERE / "loadgen.py"),
                    "--url",
                    base + path,
                    "--count",
                    str(args.count),
                    "--concurrency",
                    str(args.concurrency),
                    "--mode",
                    mode,
                    "--seed",
                    str(args.seed),
                    "--secret",
                    SECRET,
                    "--people",
                    str(args.people),
                ],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            results[mode] = json.loads(out.stdout)
        engine = create_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT count(*), count(DISTINCT delivery_id) FROM inbox")
            ).one()
        engine.dispose()
        accepted = results["signed"]["statuses"].get("202", 0)
        results["inbox_rows"], results["inbox_distinct"] = int(rows[0]), int(rows[1])
        results["lost_or_doubled"] = accepted != rows[0] or rows[0] != rows[1]
        results["ratio_to_ceiling"] = round(
            results["signed"]["per_second"] / results["bare"]["per_second"], 3
        )
        with_worker = args.separate_worker or (
            db == "sqlite" and "--no-worker" not in args.serve_args
        )
        if with_worker:
            results["processing"] = wait_processed(url, args.drain_timeout)
        return results
    finally:
        for proc in (server, extra):
            if proc is not None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
        if pg_name:
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--count",
        type=int,
        default=10000,
        help="deliveries per measurement (3,000 took 1-2 s here: too short, noisy)",
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2, help="gunicorn processes on PostgreSQL")
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--serve-args", default="", help="extra `serve` options, e.g. --no-worker")
    parser.add_argument(
        "--separate-worker",
        action="store_true",
        help="also run one `coachbridge worker` process during the run (use with --no-worker)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=600.0,
        help="with a worker in the run: seconds to wait for it to process everything",
    )
    args = parser.parse_args()
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    for db in dbs:
        with tempfile.TemporaryDirectory() as tmp:
            result = run_once(db, args, Path(tmp))
        print(json.dumps({"db": db, **result}))


if __name__ == "__main__":
    main()
