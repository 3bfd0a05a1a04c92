"""Webhook intake benchmark: ``coachbridge serve`` on SQLite and PostgreSQL vs its bare ceiling.

One command (from the repository root)::

    .venv/bin/python benchmarks/webhooks/run.py                 # both databases
    .venv/bin/python benchmarks/webhooks/run.py --db sqlite --count 10000 --concurrency 16

For each database it starts a real ``coachbridge serve`` (gunicorn) on a free loopback port
with the benchmark-only bare route switched on (``COACHBRIDGE_BENCH_BARE=1``), runs the load
generator as a separate process against ``/_bench/bare`` (no verification, no write: the
ceiling) and then against ``/webhooks/reviews`` (signed Standard Webhooks deliveries, verified
and stored). The SQLite server also runs its in-process worker, as the single-machine default
does; where no worker ran during the burst, ``coachbridge worker --once`` processes the inbox
afterwards.

Then it checks itself (``check_intake``, ``check_effects``): the set of delivery ids stored
equals the set answered 202/200, nothing stored was never sent, every other answer is a
failure; every stored delivery was processed into exactly its one review event, and each
low rating's learner has exactly one pairing (keyed ``rule:<event id>:0``), its sessions
1..N once each, one goal and one "paired" message per side. Any discrepancy is printed and the
run exits 1. Raw results go to ``benchmarks/webhooks/raw/<time>-<db>.json``;
``benchmarks/tables.py webhooks`` builds the README's tables from them.
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
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import rawresults  # noqa: E402
from benchmarks.dbwait import wait_for_zero  # noqa: E402
from benchmarks.webhooks.loadgen import ACCEPTED, make_requests  # noqa: E402

#: A rating at or below this (0..1) fires the benchmark's rule: 1 and 2 on the 1-5 scale.
LOW = 0.25
#: The rule's key in outcomes and goal keys (the config's one rule has no name).
RULE = "rules[0]"
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
capacity = {capacity}

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


def people_csv(n: int, guides: int = 10) -> str:
    rows = ["id,first_name,last_name,email,department,timezone,level"]
    rows += [
        f"G{i},G{i},Guide,g{i}@example.com,Engineering,Europe/Berlin,6"
        for i in range(1, guides + 1)
    ]
    rows += [f"E{i},E{i},Learner,e{i}@example.com,Sales,Europe/Berlin,2" for i in range(1, n + 1)]
    return "\n".join(rows) + "\n"


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a live process has used so far (Linux ``/proc``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 1)


def wait_processed(url: str, timeout: float) -> dict:
    """Wait for the worker to settle every delivery (``seconds``: every delivery ``done``, its
    effects committed and its messages queued), then for the messages to be sent
    (``messages_sent_seconds``); both counted from the end of the burst."""
    began = time.monotonic()
    left, processed = wait_for_zero(
        url, "SELECT count(*) FROM inbox WHERE status IN ('pending', 'processing')", timeout
    )
    # The messages a batch queues are sent after its commit: wait for those too, and say when.
    _unsent, sent = wait_for_zero(
        url,
        "SELECT count(*) FROM notifications WHERE status = 'pending'",
        timeout,
        began=began,
    )
    return {
        "left_unprocessed": left,
        "seconds": round(processed, 1),
        "messages_sent_seconds": round(sent, 1),
    }


def read_answers(path: Path) -> dict[str, int]:
    answers = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        delivery_id, status = line.split("\t")
        answers[delivery_id] = int(status)
    return answers


def sample(items: set | list, n: int = 5) -> list:
    return sorted(items)[:n]


def check_intake(answers: dict[str, int], stored: set[str]) -> tuple[dict, list[str]]:
    """Compare the SET of delivery ids answered 202/200 with the set stored in the inbox."""
    accepted = {d for d, status in answers.items() if status in ACCEPTED}
    failed = {d: status for d, status in answers.items() if status not in ACCEPTED}
    lost = accepted - stored
    never_sent = stored - set(answers)
    problems = []
    if len(answers) != len(set(answers)):
        problems.append("the load generator sent a delivery id twice")
    if failed:
        by_status: dict[int, int] = {}
        for status in failed.values():
            by_status[status] = by_status.get(status, 0) + 1
        problems.append(
            f"{len(failed)} deliveries answered neither 202 nor 200 (status: count {by_status};"
            f" 0 = no answer), e.g. {sample(set(failed))}"
        )
    if lost:
        problems.append(
            f"{len(lost)} deliveries answered 202/200 are not in the inbox: {sample(lost)}"
        )
    if never_sent:
        problems.append(f"{len(never_sent)} inbox rows were never sent: {sample(never_sent)}")
    figures = {
        "sent": len(answers),
        "accepted": len(accepted),
        "failed": len(failed),
        "stored": len(stored),
        "lost": len(lost),
        "stored_never_sent": len(never_sent),
        "stored_though_answered_failure": len(stored & set(failed)),
    }
    return figures, problems


def expected_events(args: argparse.Namespace, stored: set[str]) -> dict[str, tuple[str, bool]]:
    """For each stored delivery: the review event it must become (its source_event_id, as the
    generic connector builds it) and whether its rating fires the rule."""
    out = {}
    for body, headers in make_requests(args.count, "signed", args.seed, SECRET, args.people):
        if headers["webhook-id"] not in stored:
            continue
        payload = json.loads(body)
        data = payload["data"]
        rating = (data["rating"] - data["rating_scale_min"]) / (
            data["rating_scale_max"] - data["rating_scale_min"]
        )
        key = f"{payload['type']}:{data['cycle_id']}:{data['employee_id']}"
        out[key] = (data["employee_id"], rating <= LOW)
    return out


def check_effects(url: str, expected: dict[str, tuple[str, bool]]) -> tuple[dict, list[str]]:
    """Each processed delivery's effects exist exactly once: its review event; for a low rating,
    one pairing per learner (source_key ``rule:<event id>:0`` of the event that made it, the
    learner's later low ratings reusing it), its sessions 1..N, one goal (source_key
    ``rule:rules[0]:pairing:<id>:goal``) and the "paired" message to each side, sent."""
    problems: list[str] = []
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            inbox = dict(
                conn.execute(
                    text(
                        "SELECT status, count(*) FROM inbox WHERE connector = 'reviews' "
                        "GROUP BY status"
                    )
                ).all()
            )
            person_of = dict(
                conn.execute(
                    text(
                        "SELECT person_id, external_id FROM person_external_ids "
                        "WHERE connector = 'hr'"
                    )
                ).all()
            )
            events = conn.execute(
                text(
                    "SELECT id, source_event_id, person_id, rules_status, outcome "
                    "FROM review_events WHERE source = 'reviews'"
                )
            ).all()
            pairings = conn.execute(
                text(
                    "SELECT id, learner_id, source_key, status FROM pairings "
                    "WHERE program_id = 'coaching'"
                )
            ).all()
            sessions = conn.execute(text("SELECT pairing_id, seq FROM sessions")).all()
            goals = conn.execute(text("SELECT pairing_id, source_key, owner_id FROM goals")).all()
            messages = conn.execute(text("SELECT key, status FROM notifications")).all()
            learners_enrolled = conn.execute(
                text(
                    "SELECT count(*) FROM enrollments WHERE program_id = 'coaching' "
                    "AND role = 'learner'"
                )
            ).scalar_one()
    finally:
        engine.dispose()

    not_done = {str(k): int(v) for k, v in inbox.items() if k != "done"}
    if not_done:
        problems.append(f"inbox rows not processed: {not_done}")

    # Review events: exactly the expected ones, each once, each processed.
    seen: dict[str, int] = {}
    for row in events:
        seen[row.source_event_id] = seen.get(row.source_event_id, 0) + 1
    missing = set(expected) - set(seen)
    extra = set(seen) - set(expected)
    doubled = {k for k, n in seen.items() if n > 1}
    if missing:
        problems.append(f"{len(missing)} stored deliveries have no review event: {sample(missing)}")
    if extra:
        problems.append(f"{len(extra)} review events no delivery asked for: {sample(extra)}")
    if doubled:
        problems.append(f"{len(doubled)} review events stored more than once: {sample(doubled)}")
    unprocessed = [r.source_event_id for r in events if r.rules_status != "processed"]
    if unprocessed:
        problems.append(f"{len(unprocessed)} review events not processed: {sample(unprocessed)}")

    # Which event paired each learner, and which pairing each low rating points at.
    paired_by: dict[int, int] = {}  # pairing id -> event id whose rule made it
    points_at: dict[str, set[int]] = {}  # learner -> pairing ids their low ratings name
    wrong_person = []
    for row in events:
        if row.source_event_id not in expected:
            continue
        learner, low = expected[row.source_event_id]
        if person_of.get(row.person_id) != learner:
            wrong_person.append(row.source_event_id)
        outcome = row.outcome if isinstance(row.outcome, dict) else json.loads(row.outcome or "{}")
        fired = [r for r in outcome.get("rules", []) if isinstance(r, dict)]
        if not low:
            if fired:
                problems.append(f"a rule fired on the high rating {row.source_event_id}")
            continue
        if len(fired) != 1 or fired[0].get("result") not in ("paired", "already paired"):
            problems.append(f"low rating {row.source_event_id} was not paired: {fired}")
            continue
        points_at.setdefault(learner, set()).add(fired[0]["pairing_id"])
        if fired[0]["result"] == "paired":
            if fired[0]["pairing_id"] in paired_by:
                problems.append(f"pairing {fired[0]['pairing_id']} made by two events")
            paired_by[fired[0]["pairing_id"]] = row.id
    if wrong_person:
        problems.append(
            f"{len(wrong_person)} events resolved to the wrong person: {sample(wrong_person)}"
        )

    low_learners = {learner for learner, low in expected.values() if low}
    by_learner: dict[str, list] = {}
    for p in pairings:
        by_learner.setdefault(person_of.get(p.learner_id, f"person {p.learner_id}"), []).append(p)
    if set(by_learner) != low_learners:
        problems.append(
            f"learners with a pairing differ from learners with a low rating: "
            f"without {sample(low_learners - set(by_learner))}, "
            f"unexpected {sample(set(by_learner) - low_learners)}"
        )
    more = {k: len(v) for k, v in by_learner.items() if len(v) > 1}
    if more:
        problems.append(f"{len(more)} learners have more than one pairing: {sample(set(more))}")
    if learners_enrolled != len(low_learners):
        problems.append(
            f"{learners_enrolled} learner enrollments for {len(low_learners)} "
            "learners with a low rating"
        )
    for learner, ids in points_at.items():
        if len(ids) != 1:
            problems.append(f"{learner}'s low ratings point at pairings {sorted(ids)}")
    for p in pairings:
        if paired_by.get(p.id) is None:
            problems.append(f"pairing {p.id} was made by no event's rule")
        elif p.source_key != f"rule:{paired_by[p.id]}:0":
            problems.append(
                f"pairing {p.id} has source_key {p.source_key!r}, made by event {paired_by[p.id]}"
            )

    # Sessions: 1..N once each per pairing, the same N for all (one program, one plan).
    seqs: dict[int, list[int]] = {}
    for row in sessions:
        seqs.setdefault(row.pairing_id, []).append(row.seq)
    lengths = {len(v) for v in seqs.values()}
    bad = [pid for pid, v in seqs.items() if sorted(v) != list(range(1, len(v) + 1))]
    if bad:
        problems.append(f"{len(bad)} pairings whose sessions are not 1..N once each: {bad[:5]}")
    if set(seqs) != {p.id for p in pairings} or len(lengths) > 1 or 0 in lengths:
        problems.append(
            f"sessions per pairing: {sorted(lengths)} for {len(seqs)} of {len(pairings)} pairings"
        )

    # Goals: one per pairing, keyed by the rule and the pairing, owned by the learner.
    goal_keys = {g.source_key for g in goals}
    want_goals = {f"rule:{RULE}:pairing:{p.id}:goal" for p in pairings}
    if len(goals) != len(pairings) or goal_keys != want_goals:
        problems.append(
            f"{len(goals)} goals for {len(pairings)} pairings; missing "
            f"{sample(want_goals - goal_keys)}, unexpected "
            f"{sample(goal_keys - want_goals)}"
        )
    owners = {p.id: p.learner_id for p in pairings}
    if any(owners.get(g.pairing_id) != g.owner_id for g in goals):
        problems.append("a goal is not owned by its pairing's learner")

    # Messages: the "paired" message to each side over the one channel (log), sent.
    want_keys = {f"pairing:{p.id}:{side}:log" for p in pairings for side in ("learner", "guide")}
    keys = [m.key for m in messages]
    if set(keys) != want_keys or len(keys) != len(want_keys):
        problems.append(
            f"{len(keys)} messages for {len(want_keys)} expected; missing "
            f"{sample(want_keys - set(keys))}, unexpected "
            f"{sample(set(keys) - want_keys)}"
        )
    unsent: dict[str, int] = {}
    for m in messages:
        if m.status != "sent":
            unsent[m.status] = unsent.get(m.status, 0) + 1
    if unsent:
        problems.append(f"messages not sent: {unsent}")

    figures = {
        "inbox": {str(k): int(v) for k, v in inbox.items()},
        "review_events": len(events),
        "low_ratings": sum(1 for _, low in expected.values() if low),
        "learners_with_low_rating": len(low_learners),
        "pairings": len(pairings),
        "sessions": len(sessions),
        "sessions_per_pairing": sorted(lengths),
        "goals": len(goals),
        "messages": len(messages),
    }
    return figures, problems


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
    (folder / "people.csv").write_text(people_csv(args.people, args.guides))
    cfg = folder / "coachbridge.toml"
    cfg.write_text(CONFIG.format(url=url, workers=args.processes, capacity=args.capacity))
    server = None
    extra: list[subprocess.Popen] = []
    try:
        subprocess.run(
            [BIN, "--config", str(cfg), "db", "upgrade"], env=env, check=True, capture_output=True
        )
        subprocess.run(
            [BIN, "--config", str(cfg), "sync", "hr"], env=env, check=True, capture_output=True
        )
        # The guides join the program, so a low rating really is paired and scheduled.
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
        for _ in range(args.workers if args.separate_worker else 0):
            extra.append(
                subprocess.Popen(
                    [BIN, "--config", str(cfg), "worker"],
                    env=env,
                    start_new_session=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        results: dict = {}
        problems: list[str] = []
        answers_file = folder / "answers.tsv"
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
                    *(["--answers", str(answers_file)] if mode == "signed" else []),
                ],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            results[mode] = json.loads(out.stdout)
        if results["bare"]["failed"]:
            problems.append(
                f"the bare route failed {results['bare']['failed']} requests: "
                f"{results['bare']['statuses']}"
            )
        engine = create_engine(url)
        with engine.connect() as conn:
            stored = set(
                conn.execute(
                    text("SELECT delivery_id FROM inbox WHERE connector = 'reviews'")
                ).scalars()
            )
        engine.dispose()
        results["intake"], found = check_intake(read_answers(answers_file), stored)
        problems += found
        results["ratio_to_ceiling"] = round(
            results["signed"]["accepted_per_second"] / results["bare"]["accepted_per_second"], 3
        )
        during = args.separate_worker or (db == "sqlite" and "--no-worker" not in args.serve_args)
        if during:
            results["worker"] = "separate" if args.separate_worker else "in-process"
            if args.separate_worker and args.workers > 1:
                results["worker"] = (
                    f"{args.workers} separate `coachbridge worker`s, during the burst"
                )
            results["processing"] = wait_processed(url, args.drain_timeout)
            if extra:
                # On a shared machine the wall time says little; the workers' own CPU seconds
                # (from the burst to the last message) compare across runs.
                results["processing"]["worker_cpu_seconds"] = [cpu_seconds(p.pid) for p in extra]
        else:
            # No worker ran during the burst: one processes the inbox now, so that the effects
            # of every delivery are checked in every configuration.
            results["worker"] = "none (worker --once after the burst)"
            began = time.monotonic()
            subprocess.run(
                [BIN, "--config", str(cfg), "worker", "--once"],
                env=env,
                check=True,
                capture_output=True,
            )
            results["processing"] = {
                "left_unprocessed": 0,
                "seconds": round(time.monotonic() - began, 1),
            }
        results["effects"], found = check_effects(url, expected_events(args, stored))
        problems += found
        results["problems"] = problems
        return results
    finally:
        for proc in (server, *extra):
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
    parser.add_argument(
        "--guides", type=int, default=10, help="guides (Engineering), besides --people"
    )
    parser.add_argument("--capacity", type=int, default=50, help="learners per guide")
    parser.add_argument("--serve-args", default="", help="extra `serve` options, e.g. --no-worker")
    parser.add_argument(
        "--separate-worker",
        action="store_true",
        help="also run one `coachbridge worker` process during the run (use with --no-worker)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="with --separate-worker: how many worker processes"
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=600.0,
        help="with a worker in the run: seconds to wait for it to process everything",
    )
    args = parser.parse_args()
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    failed = False
    for db in dbs:
        meta = rawresults.started()
        with tempfile.TemporaryDirectory() as tmp:
            result = run_once(db, args, Path(tmp))
        config = {
            "db": db,
            "count": args.count,
            "concurrency": args.concurrency,
            "processes": args.processes,
            "people": args.people,
            "seed": args.seed,
            "guides": args.guides,
            "capacity": args.capacity,
            "serve_args": args.serve_args,
            "separate_worker": args.separate_worker,
            "workers": args.workers if args.separate_worker else 0,
        }
        label = db + ("-no-worker" if "--no-worker" in args.serve_args else "")
        if args.separate_worker:
            label += "-separate-worker" if args.workers == 1 else f"-{args.workers}-workers"
        path = rawresults.save("webhooks", label, meta, {"config": config, **result})
        print(json.dumps({"db": db, **result}))
        print(f"raw results: {path.relative_to(ROOT)}", file=sys.stderr)
        for problem in result["problems"]:
            print(f"FAILED ({db}): {problem}", file=sys.stderr)
        failed = failed or bool(result["problems"])
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
