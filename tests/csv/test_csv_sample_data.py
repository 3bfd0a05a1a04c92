"""The bundled sample company: reproducible, realistic, and it syncs cleanly."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from coachbridge.demo.sample_data import sample_dir
from coachbridge.demo.sample_data.generate import generate

from .csv_helpers import write_config


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_csv_sample_files_are_exactly_what_the_seeded_generator_writes(tmp_path: Path) -> None:
    people, reviews = generate(tmp_path)
    shipped = sample_dir()
    assert people.read_bytes() == (shipped / "people.csv").read_bytes()
    assert reviews.read_bytes() == (shipped / "reviews.csv").read_bytes()
    other, _ = generate(tmp_path / "other", seed=7)
    assert other.read_bytes() != people.read_bytes()  # the seed matters


def test_csv_sample_trainings_are_what_their_generator_writes_and_name_known_people(
    tmp_path: Path,
) -> None:
    from coachbridge.demo.sample_data.trainings import generate as generate_trainings

    shipped = sample_dir()
    path = generate_trainings(shipped / "people.csv", tmp_path)
    assert path.read_bytes() == (shipped / "trainings.csv").read_bytes()
    ids = {p["id"] for p in _rows(shipped / "people.csv")}
    rows = _rows(path)
    assert rows and {r["employee_id"] for r in rows} <= ids
    assert {r["training"] for r in rows} == {"Coaching fundamentals", "First aid"}


def test_csv_sample_company_is_realistic() -> None:
    people = _rows(sample_dir() / "people.csv")
    assert len(people) >= 300
    by_id = {p["id"]: p for p in people}

    def chain(p: dict[str, str]) -> list[dict[str, str]]:
        out = []
        while p["manager_id"]:
            p = by_id[p["manager_id"]]
            out.append(p)
        return out

    assert max(len(chain(p)) + 1 for p in people) >= 5
    assert sum(not p["manager_id"] for p in people) == 1
    for p in people:
        manager = by_id.get(p["manager_id"])
        if manager:
            assert int(manager["level"]) > int(p["level"]), p["id"]
        assert 1 <= int(p["level"]) <= 9
        ZoneInfo(p["timezone"])
    assert len({p["department"] for p in people}) >= 5
    assert len({p["division"] for p in people}) >= 3
    assert len({p["location"] for p in people}) >= 5
    assert {
        "Europe/Berlin",
        "America/New_York",
        "Asia/Kolkata",
        "Europe/London",
        "America/Los_Angeles",
    } <= {p["timezone"] for p in people}
    assert sum(not (p["first_name"] + p["last_name"]).isascii() for p in people) >= 20
    assert len({p["email"].lower() for p in people}) == len(people)
    leavers = [p for p in people if p["status"] in ("Terminated", "Resigned")]
    assert 3 <= len(leavers) <= 20 and all(p["termination_date"] for p in leavers)
    assert all(p["hire_date"] and p["job_title"] and p["skills"] and p["languages"] for p in people)

    # mentoring matches mean something: what juniors want, seniors offer
    offered = {s for p in people if int(p["level"]) >= 5 for s in p["skills"].split(";")}
    wanted = [s for p in people if int(p["level"]) <= 4 for s in p["interests"].split(";") if s]
    assert len(wanted) >= 300
    assert sum(w in offered for w in wanted) / len(wanted) >= 0.9


def test_csv_sample_reviews_three_cycles() -> None:
    people = {p["id"]: p for p in _rows(sample_dir() / "people.csv")}
    reviews = _rows(sample_dir() / "reviews.csv")
    cycles = Counter(r["cycle"] for r in reviews)
    assert set(cycles) == {"2025-H1", "2025-H2", "2026-H1"} and min(cycles.values()) >= 200
    for review in reviews:
        assert review["employee_id"] in people
        assert 1 <= int(review["rating"]) <= 5 and review["rating_scale_max"] == "5"
        month = {"2025-H1": "2025-07", "2025-H2": "2026-01", "2026-H1": "2026-07"}[review["cycle"]]
        assert review["completed_at"].startswith(month)
    assert sum(int(r["rating"]) <= 2 for r in reviews) >= 20
    assert len({(r["employee_id"], r["cycle"]) for r in reviews}) == len(reviews)


def test_csv_sample_company_syncs(tmp_path: Path, sqlite_url: str, run_cli: Any) -> None:
    folder = sample_dir()
    config = write_config(
        tmp_path, people=str(folder / "people.csv"), reviews=str(folder / "reviews.csv")
    )
    result = run_cli("--config", str(config), "--db", sqlite_url, "sync", "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    people = _rows(folder / "people.csv")
    assert report["new"] == len(people) and report["reviews_new"] == len(
        _rows(folder / "reviews.csv")
    )
    listing = json.loads(run_cli("--db", sqlite_url, "people", "--format", "json").stdout)
    inactive = [p for p in listing if p["status"] == "inactive"]
    assert len(inactive) == sum(p["status"] in ("Terminated", "Resigned") for p in people)
    assert all(p["termination_date"] for p in inactive)
