"""Seeded generator: a company of 100,000 people with two years of history, for the report benchmark.

Inserts straight into the store with SQLAlchemy Core bulk inserts (no ORM objects):
people, effective-dated history (level and department changes, leavers), two review cycles,
four programs with 25,000 pairings, 300,000 sessions and feedback on about half the held ones.

    .venv/bin/python benchmarks/reports/generate.py --db /tmp/bench_reports.db
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from coachbridge.store import Database
from coachbridge.store.db import normalize_url
from coachbridge.store.tables import (
    EnrollmentRow,
    FeedbackRow,
    PairingRow,
    PersonHistoryRow,
    PersonRow,
    ProgramRow,
    ReviewEventRow,
    SessionRow,
)
from sqlalchemy import insert

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DEPARTMENTS = [f"Dept {i:02d}" for i in range(40)]
LOCATIONS = ["Berlin", "London", "Lisbon", "New York", "Toronto", "Singapore"]
PROGRAMS = [
    ("mentoring-2025", "mentoring", date(2025, 1, 6), date(2025, 12, 19)),
    ("coaching-h1", "coaching", date(2025, 2, 3), date(2025, 7, 25)),
    ("leaders", "mentoring", date(2025, 4, 7), date(2026, 3, 27)),
    ("rolling", "coaching", None, None),
]
BATCH = 20_000


def _bulk(db: Database, table: type, rows: list[dict[str, object]]) -> None:
    with db.engine.begin() as conn:
        for i in range(0, len(rows), BATCH):
            conn.execute(insert(table.__table__), rows[i : i + BATCH])  # type: ignore[attr-defined]


def program_settings(
    pid: str, kind: str, start: date | None, end: date | None
) -> dict[str, object]:
    return {
        "id": pid,
        "name": pid.replace("-", " ").title(),
        "kind": kind,
        "owner": "owner@example.com",
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
        "cadence_days": 14,
        "duration_weeks": 24,
    }


def generate(url: str, people: int, pairings: int, sessions: int, seed: int) -> None:
    rng = random.Random(seed)
    db = Database(url)
    db.upgrade()
    t0 = time.perf_counter()
    start_history = date(2024, 6, 1)
    person_rows = []
    history = []
    reviews = []
    leavers = 0
    for pid in range(1, people + 1):
        hire = start_history - timedelta(days=rng.randint(0, 365 * 15))
        if rng.random() < 0.08:
            hire = start_history + timedelta(days=rng.randint(0, 600))
        dept = rng.choice(DEPARTMENTS)
        level = rng.choices(range(1, 9), weights=[5, 20, 25, 20, 12, 10, 5, 3])[0]
        first = max(hire, start_history)
        history.append((pid, "department", dept, first))
        history.append((pid, "level", str(level), first))
        history.append((pid, "status", "active", first))
        # Two years of change: promotions, moves, leavers.
        if rng.random() < 0.18:
            when = first + timedelta(days=rng.randint(30, 700))
            if when < NOW.date():
                level += 1
                history.append((pid, "level", str(level), when))
        if rng.random() < 0.10:
            when = first + timedelta(days=rng.randint(30, 700))
            if when < NOW.date():
                dept = rng.choice(DEPARTMENTS)
                history.append((pid, "department", dept, when))
        termination = None
        if rng.random() < 0.22:
            when = first + timedelta(days=rng.randint(20, 720))
            if when < NOW.date():
                termination = when
                history.append((pid, "status", "inactive", when))
                leavers += 1
        person_rows.append(
            {
                "id": pid,
                "first_name": f"First{pid}",
                "last_name": f"Last{pid}",
                "email": f"p{pid}@example.com",
                "email_key": f"p{pid}@example.com",
                "department": dept,
                "location": rng.choice(LOCATIONS),
                "level": level,
                "hire_date": hire,
                "status": "inactive" if termination else "active",
                "termination_date": termination,
                "job_title": f"Title {level}",
            }
        )
        base = rng.random()
        for cycle, completed in (
            ("2024", datetime(2024, 12, 10, tzinfo=UTC)),
            ("2025", datetime(2025, 12, 10, tzinfo=UTC)),
        ):
            if hire > completed.date() - timedelta(days=90):
                continue
            if termination is not None and termination < completed.date():
                continue
            raw = min(5, max(1, round(1 + 4 * base + rng.gauss(0, 0.6))))
            reviews.append(
                {
                    "person_id": pid,
                    "cycle": cycle,
                    "rating": (raw - 1) / 4,
                    "raw_rating": raw,
                    "scale_min": 1,
                    "scale_max": 5,
                    "completed_at": completed,
                    "source": "bench",
                    "source_event_id": f"{pid}:{cycle}",
                    "rules_status": "skipped",
                }
            )
    # Close history rows: each value is valid until the next one of the same field.
    history.sort(key=lambda h: (h[0], h[1], h[3]))
    hist_rows = []
    for i, (pid, name, value, since) in enumerate(history):
        nxt = history[i + 1] if i + 1 < len(history) else None
        until = nxt[3] if nxt and nxt[0] == pid and nxt[1] == name else None
        hist_rows.append(
            {
                "person_id": pid,
                "field": name,
                "value": value,
                "valid_from": since,
                "valid_to": until,
                "source": "bench",
            }
        )
    _bulk(db, PersonRow, person_rows)
    _bulk(db, PersonHistoryRow, hist_rows)
    _bulk(db, ReviewEventRow, reviews)
    _bulk(
        db,
        ProgramRow,
        [
            {"id": p, "name": p, "kind": k, "settings": program_settings(p, k, s, e)}
            for p, k, s, e in PROGRAMS
        ],
    )

    # Pairings: learners and guides drawn from people employed at the program's start.
    pairing_rows, enroll_rows, session_rows, feedback_rows = [], [], [], []
    per_program = pairings // len(PROGRAMS)
    sessions_per_pairing = sessions / pairings
    pairing_id = session_id = 0
    for prog, _kind, start, end in PROGRAMS:
        ref = start or date(2025, 3, 1)
        employed = [
            r
            for r in person_rows
            if r["hire_date"] <= ref
            and (r["termination_date"] is None or r["termination_date"] > ref)
        ]
        chosen = rng.sample(employed, per_program + per_program // 3)
        learners, guides = chosen[:per_program], chosen[per_program:]
        for person in learners:
            enroll_rows.append({"program_id": prog, "person_id": person["id"], "role": "learner"})
        for person in guides:
            enroll_rows.append({"program_id": prog, "person_id": person["id"], "role": "guide"})
        enroll_rows.extend(
            {"program_id": prog, "person_id": r["id"], "role": "learner", "opted_out": True}
            for r in rng.sample(employed, 300)
            if r not in chosen
        )
        for i, learner in enumerate(learners):
            pairing_id += 1
            guide = guides[i % len(guides)]
            made = (
                datetime.combine(start, datetime.min.time(), tzinfo=UTC)
                if start
                else (datetime(2024, 9, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 600)))
            )
            status = rng.choices(
                ["active", "completed", "ended", "paused"], weights=[35, 50, 10, 5]
            )[0]
            if start and end and NOW.date() > end and status == "active":
                status = "completed"
            pairing_rows.append(
                {
                    "id": pairing_id,
                    "program_id": prog,
                    "learner_id": learner["id"],
                    "guide_id": guide["id"],
                    "score": rng.random(),
                    "status": status,
                    "created_at": made,
                    "activated_at": made,
                    "end_reason": "ended early" if status == "ended" else None,
                }
            )
            n = int(sessions_per_pairing) + (1 if rng.random() < sessions_per_pairing % 1 else 0)
            first_gap = rng.randint(3, 40)
            for seq in range(n):
                when = made + timedelta(days=first_gap + 14 * seq, hours=rng.randint(9, 16))
                if when > NOW:
                    st = "scheduled"
                else:
                    st = rng.choices(["held", "missed", "cancelled"], weights=[78, 14, 8])[0]
                session_id += 1
                session_rows.append(
                    {
                        "id": session_id,
                        "pairing_id": pairing_id,
                        "seq": seq + 1,
                        "start": when,
                        "minutes": 45,
                        "status": st,
                        "private_notes": "private" if st == "held" else None,
                    }
                )
                if st == "held":
                    for who in (learner["id"], guide["id"]):
                        if rng.random() < 0.45:
                            feedback_rows.append(
                                {
                                    "session_id": session_id,
                                    "pairing_id": pairing_id,
                                    "from_person_id": who,
                                    "rating": rng.choices(
                                        [1, 2, 3, 4, 5], weights=[2, 5, 18, 40, 35]
                                    )[0],
                                    "outcome": "held",
                                    "comment": None,
                                }
                            )
    _bulk(db, EnrollmentRow, enroll_rows)
    _bulk(db, PairingRow, pairing_rows)
    _bulk(db, SessionRow, session_rows)
    _bulk(db, FeedbackRow, feedback_rows)
    db.dispose()
    print(
        f"generated {people} people ({leavers} leavers), {len(hist_rows)} history rows, "
        f"{len(reviews)} reviews, {len(pairing_rows)} pairings, {len(session_rows)} sessions, "
        f"{len(feedback_rows)} feedback in {time.perf_counter() - t0:.1f}s"
    )


def config_text(db_url: str) -> str:
    """The coachbridge.toml the benchmark uses for the generated programs."""
    lines = [f'[database]\nurl = "{db_url}"\n', '[server]\nsecret_key = "bench-secret"\n']
    for pid, kind, start, end in PROGRAMS:
        lines.append(f'[[programs]]\nid = "{pid}"\nkind = "{kind}"\nowner = "owner@example.com"')
        if start and end:
            lines.append(f"start = {start.isoformat()}\nend = {end.isoformat()}")
        lines.append("cadence_days = 14\nduration_weeks = 24\n")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="/tmp/coachbridge_bench_reports.db")
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--pairings", type=int, default=25_000)
    parser.add_argument("--sessions", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=20261127)
    args = parser.parse_args()
    url = normalize_url(args.db)
    path = Path(args.db)
    if "://" not in args.db and path.exists():
        path.unlink()
    generate(url, args.people, args.pairings, args.sessions, args.seed)
    cfg = path.with_suffix(".toml") if "://" not in args.db else Path("bench_reports.toml")
    cfg.write_text(config_text(url), encoding="utf-8")
    print(f"config: {cfg}")


if __name__ == "__main__":
    main()
