"""The sample company's training records (``trainings.csv``), derived from ``people.csv``.

``python -m coachbridge.demo.sample_data.trainings`` writes the file next to ``people.csv``.
Each person's records follow from a hash of their id, so the same people give the same bytes:
most senior people (level 5 and up) completed "Coaching fundamentals", some of them long
enough ago that a two-year validity has lapsed, a few renewed it; a share of everyone holds a
"First aid" certificate that expires two years after completion.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

HEADER = ("employee_id", "training", "completed_at", "expires_at")
COACHING = "Coaching fundamentals"
FIRST_AID = "First aid"
# The latest day a record may carry: the demo's "today" is 2 November 2026.
LAST_DAY = date(2026, 10, 30)


def _roll(*parts: object) -> int:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _day(*parts: object, start: date, days: int) -> date:
    return start + timedelta(days=_roll(*parts) % days)


def records(people: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for person in people:
        pid, level = person["id"], int(person["level"] or 0)
        hired = date.fromisoformat(person["hire_date"])
        start = max(hired, date(2019, 1, 1))
        if start >= LAST_DAY:
            continue
        span = (LAST_DAY - start).days
        coached = (level >= 5 and _roll("coach", pid) % 10 < 7) or (
            level in (3, 4) and _roll("coach", pid) % 10 == 0
        )
        if coached:
            done = _day("coach-day", pid, start=start, days=span)
            if _roll("renewed", pid) % 5 == 0 and (LAST_DAY - done).days > 400:
                # Renewed: the older record stays in the HRIS; the latest counts.
                rows.append(_row(pid, COACHING, done, None))
                done = done + timedelta(days=365 + _roll("renew-day", pid) % 200)
            rows.append(_row(pid, COACHING, min(done, LAST_DAY), None))
        if _roll("aid", pid) % 4 == 0:
            done = _day("aid-day", pid, start=start, days=span)
            rows.append(_row(pid, FIRST_AID, done, done + timedelta(days=730)))
    return rows


def _row(pid: str, training: str, done: date, expires: date | None) -> dict[str, str]:
    return {
        "employee_id": pid,
        "training": training,
        "completed_at": done.isoformat(),
        "expires_at": expires.isoformat() if expires else "",
    }


def generate(people_csv: Path, out: Path) -> Path:
    """Write ``trainings.csv`` for the people in ``people_csv`` into folder ``out``."""
    with people_csv.open(encoding="utf-8", newline="") as handle:
        people = list(csv.DictReader(handle))
    path = out / "trainings.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records(people))
    return path


def main(argv: Sequence[str] | None = None) -> None:
    here = Path(__file__).parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=Path, default=here / "people.csv")
    parser.add_argument("--out", type=Path, default=here, help="target folder")
    args = parser.parse_args(argv)
    print(generate(args.people, args.out))


if __name__ == "__main__":
    main()
