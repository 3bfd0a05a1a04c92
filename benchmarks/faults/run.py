"""Faults under load: a steady stream of signed deliveries while the store, a worker and the
mail server fail, and whether every accepted delivery was processed exactly once.

One command (from the repository root)::

    .venv/bin/python benchmarks/faults/run.py
    .venv/bin/python benchmarks/faults/run.py --rate 50 --seconds 30 --outage 5

On a fresh PostgreSQL database (on ``COACHBRIDGE_BENCH_PG``'s server) it sets up the webhook
benchmark's deployment (``benchmarks/webhooks/run.py``: its config, people and signed
deliveries), with mail going to an aiosmtpd server on loopback, and starts ``coachbridge serve``
(gunicorn, 2 processes) and two ``coachbridge worker`` processes, kept running as a supervisor
would. Then a sender (``harness.Stream``) posts ``--rate`` deliveries a second for ``--seconds``,
retrying each one not answered 202/200, while:

* every connection of the database is terminated (``pg_terminate_backend``), at 1/6 and 5/6 of
  the run;
* a worker holding claimed deliveries is SIGKILLed (at 1/3; the supervisor starts another);
* the database refuses connections for ``--outage`` seconds (at 1/2), its connections
  terminated;
* once mail flows, the SMTP server drops connections in the middle of each mail for
  ``--smtp-drop`` seconds, then refuses them for as long.

Then ``serve`` gets SIGTERM while 8 requests are in flight, the inbox is drained, the workers
retry the mail that failed (after its real backoff), and ``harness.check`` reads the store.
The raw results go to ``benchmarks/faults/raw/<UTC time>-postgresql[-no-faults].json`` (the
README's figures are taken from them); any problem is printed and the run exits 1.
``--no-faults`` runs the same stream without faults: the baseline for the recovery figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from benchmarks.faults import harness  # noqa: E402
from benchmarks.webhooks.loadgen import make_requests  # noqa: E402
from benchmarks.webhooks.run import CONFIG, PG_ADMIN, SECRET, people_csv  # noqa: E402

#: The webhook benchmark's one rule: ratings at or below this (1 and 2 of 5) get coaching.
LOW = 0.25
IN_FLIGHT = 8


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version()}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    name = f"cb_faults_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    smtp = harness.FlakySmtp()
    env = {**os.environ, "BENCH_SECRET": SECRET}
    (folder / "people.csv").write_text(people_csv(args.people))
    cfg = folder / "coachbridge.toml"
    cfg.write_text(CONFIG.format(url=url, workers=2) + harness.smtp_section(smtp.port))
    logs = folder / "logs"
    logs.mkdir()
    deployment = harness.Deployment(
        config=cfg,
        folder=logs,
        env=env,
        worker_args=["--lease", str(args.lease), "--poll", "0.2"],
    )
    try:
        for step in (["db", "upgrade"], ["sync", "hr"], ["enroll", "coaching"]):
            subprocess.run(
                [harness.BIN, "--config", str(cfg), *step], env=env, check=True, capture_output=True
            )
        count = int(args.rate * args.seconds * 2) + IN_FLIGHT  # more than the stream can send
        items = harness.deliveries(make_requests(count, "signed", args.seed, SECRET, args.people))
        streamed, in_flight = items[:-IN_FLIGHT], items[-IN_FLIGHT:]
        deployment.start_serve()
        deployment.wait_started([deployment.start_worker(), deployment.start_worker()])
        deployment.supervise(workers=2)
        serving = deployment.serving_processes()

        stream = harness.Stream(deployment.base + "/webhooks/reviews", streamed, rate=args.rate)
        timeline = harness.Timeline(stream)
        progress = harness.Progress(url, stream, every=0.5)
        stream.start()
        progress.start()
        mail = None
        part = args.seconds / 6
        try:
            if not args.no_faults:
                mail = smtp.faults(drop_seconds=args.smtp_drop, refuse_seconds=args.smtp_drop)
                timeline.at(part, "terminate", lambda: harness.terminate_backends(url))
                timeline.at(
                    2 * part,
                    "worker killed",
                    lambda: deployment.kill_worker_at_work(url, "coaching"),
                )
                timeline.at(3 * part, "outage", lambda: harness.refuse_database(url, PG_ADMIN))
                timeline.after(
                    args.outage, "outage ends", lambda: harness.allow_database(url, PG_ADMIN)
                )
                timeline.at(5 * part, "terminate again", lambda: harness.terminate_backends(url))
            timeline.at(args.seconds, "stream ends", stream.finish)
        finally:
            harness.allow_database(url, PG_ADMIN)
        stream.join(timeout=600)
        if mail is not None:
            mail.join(timeout=600)
        serve_up = (
            deployment.serve is not None
            and deployment.serve.poll() is None
            and deployment.serving_processes() == serving
            and deployment.healthy()
        )
        stopped = harness.sigterm_in_flight(deployment, in_flight)
        sent_at_end = time.monotonic()
        drained = harness.wait_drained(url, timeout=args.drain_timeout)
        drained["seconds_after_stream"] = round(time.monotonic() - sent_at_end, 2)
        mailed = harness.wait_notifications(url, timeout=args.mail_timeout)
        mailed["seconds_after_stream"] = round(time.monotonic() - sent_at_end, 2)
        progress.stop()
        stopped.update(deployment.serve_exit())
        figures, problems = harness.check(
            url,
            [*stream.sent(), *in_flight],
            {**stream.final(), **stopped["answers"]},
            connector="reviews",
            people_from="hr",
            program="coaching",
            rule_key="rules[0]",
            low=LOW,
            channels=["smtp"],
            mail_ids=smtp.handler.message_ids,
        )
        sent = stream.figures()
        if sent["given_up"]:
            problems.append(f"{sent['given_up']} deliveries never accepted")
        if not set(sent["answers_by_status"]) <= {"200", "202", "503"}:
            problems.append(f"answers other than 202/200/503: {sent['answers_by_status']}")
        if not serve_up:
            problems.append("serve did not stay up with the same serving processes")
        if set(stopped["answers"].values()) != {202} or stopped["serve_exit_code"] != 0:
            problems.append(f"SIGTERM with requests in flight: {stopped}")
        if deployment.killed_serving_processes():
            problems.append(f"gunicorn killed: {deployment.killed_serving_processes()}")
        smtp_marks = {what: round(at - stream.t0, 3) for what, at in smtp.marks}
        faults: dict[str, Any] = {}
        if not args.no_faults:
            outage, ended = timeline.when("outage"), timeline.when("outage ends")
            terminate, again = timeline.when("terminate"), timeline.when("terminate again")
            killed = timeline.when("worker killed")
            faults = {
                "answers": {
                    "before_the_faults": stream.answers_between(0, part),
                    "outage": stream.answers_between(outage, ended),
                    "second_after_terminate": stream.answers_between(terminate, terminate + 1),
                    "second_after_terminate_again": stream.answers_between(again, again + 1),
                },
                "outage_seconds": round(ended - outage, 3),
                "intake_recovery_seconds": {
                    "after_terminate": stream.first_accepted_after(terminate),
                    "after_outage": stream.first_accepted_after(ended),
                    "after_terminate_again": stream.first_accepted_after(again),
                },
                "processing_resumed_seconds": {
                    "after_terminate": progress.processing_resumed_after(terminate),
                    "after_worker_killed": progress.processing_resumed_after(killed),
                    "after_outage": progress.processing_resumed_after(ended),
                    "after_terminate_again": progress.processing_resumed_after(again),
                },
                "smtp": {"marks": smtp_marks, "dropped_mid_mail": smtp.handler.dropped},
            }
        return {
            "sender": sent,
            **faults,
            "timeline": timeline.marks,
            "worker_restarts": [
                {**r, "at": round(r["at"] - stream.t0, 3)} for r in deployment.restarts
            ],
            "serve_stayed_up": serve_up,
            "sigterm": stopped,
            "drained": drained,
            "notifications": mailed,
            "inbox_samples": progress.samples,
            "store": figures,
            "problems": problems,
        }
    finally:
        deployment.stop()
        smtp.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rate", type=float, default=50.0, help="deliveries per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the stream")
    parser.add_argument("--outage", type=float, default=5.0, help="seconds the database refuses")
    parser.add_argument("--smtp-drop", type=float, default=5.0, help="seconds of each SMTP fault")
    parser.add_argument("--lease", type=float, default=5.0, help="the workers' --lease")
    parser.add_argument(
        "--no-faults", action="store_true", help="the same stream without faults (a baseline)"
    )
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument(
        "--mail-timeout",
        type=float,
        default=600.0,
        help="seconds to wait for the workers to retry failed mail (backoff: 1, 2, 4 ... min)",
    )
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    meta = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit or "unknown",
        "machine": machine(),
        "load_average_before": load(),
        "config": vars(args),
    }
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args, Path(tmp))
    record = {**meta, "load_average_after": load(), **result}
    folder = HERE / "raw"
    folder.mkdir(exist_ok=True)
    stamp = meta["started_at"].replace(":", "").replace("+0000", "Z")[:17]
    path = folder / f"{stamp}-postgresql{'-no-faults' if args.no_faults else ''}.json"
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps(record["store"]))
    print(f"raw results: {path.relative_to(ROOT)}", file=sys.stderr)
    for problem in result["problems"]:
        print(f"FAILED: {problem}", file=sys.stderr)
    if result["problems"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
