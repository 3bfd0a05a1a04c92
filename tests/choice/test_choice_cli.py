"""``match --apply`` with a choice, ``offers``, ``offers accept`` and ``offers decline`` through
the real command line: listings in three formats, exit codes, nothing changed on bad input."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from coachbridge.store import Database
from coachbridge.store.tables import OfferRow, PairingRow
from sqlalchemy import select

from tests.matching.matching_factory import enroll, person, program

CONFIG = """
[server]
secret_key = "cli-test-secret"
public_url = "https://cb.example.com"

[[programs]]
id = "mentoring"
kind = "mentoring"
capacity = 1
choice = "{choice}"
offer_alternatives = 1
respond_within_days = 3
[programs.weights]
skills = 1.0
"""


def _store(sqlite_url: str, tmp_path: Path, choice: str) -> Database:
    (tmp_path / "coachbridge.toml").write_text(CONFIG.replace("{choice}", choice), encoding="utf-8")
    database = Database(sqlite_url)
    database.upgrade()
    prog = program(capacity=1)
    with database.transaction() as s:
        for pid, skills in ((2, ["python"]), (3, ["python", "sql"]), (4, ["sql"])):
            person(s, pid, level=6, skills=skills)
            enroll(s, prog, pid, "guide")
        person(s, 10, level=2, interests=["python", "sql"])
        enroll(s, prog, 10, "learner")
    return database


def cli(run_cli, sqlite_url, *args):
    return run_cli("--config", "coachbridge.toml", "--db", sqlite_url, *args)


def _rows(db: Database) -> list[OfferRow]:
    with db.transaction() as s:
        return list(s.scalars(select(OfferRow).order_by(OfferRow.id)))


def test_offers_listing_and_answers(run_cli, sqlite_url, tmp_path) -> None:
    db = _store(sqlite_url, tmp_path, "learner_picks")
    applied = cli(run_cli, sqlite_url, "match", "mentoring", "--apply")
    assert applied.exit_code == 0, applied.stderr
    assert "waiting for an answer (choice = learner_picks)" in applied.stdout
    listing = cli(run_cli, sqlite_url, "offers", "mentoring", "--format", "json")
    assert listing.exit_code == 0, listing.stderr
    data = json.loads(listing.stdout)
    assert [(r["kind"], r["rank"], r["status"]) for r in data] == [
        ("offer", 1, "open"),
        ("offer", 2, "open"),
    ]
    assert set(data[0]) == {
        "id",
        "kind",
        "program",
        "learner_id",
        "guide_id",
        "rank",
        "status",
        "expires_at",
        "url",
    }
    assert data[0]["url"].startswith("https://cb.example.com/offers/")
    assert data[0]["expires_at"].endswith("+00:00")
    table = cli(run_cli, sqlite_url, "offers")
    assert table.exit_code == 0 and "learner_id" in table.stdout
    as_csv = cli(run_cli, sqlite_url, "offers", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["rank"] for r in rows] == ["1", "2"]
    alt = data[1]["id"]
    done = cli(run_cli, sqlite_url, "offers", "accept", str(alt))
    assert done.exit_code == 0, done.stderr
    assert "accepted" in done.stdout
    # Answered: exit 2 naming the id; nothing changes.
    again = cli(run_cli, sqlite_url, "offers", "accept", str(alt))
    assert (
        again.exit_code == 2 and f"offer {alt}" in again.stderr and "Traceback" not in again.stderr
    )
    assert json.loads(cli(run_cli, sqlite_url, "offers", "--format", "json").stdout) == []
    closed = json.loads(cli(run_cli, sqlite_url, "offers", "--all", "--format", "json").stdout)
    assert sorted(r["status"] for r in closed) == ["accepted", "withdrawn"]
    with db.transaction() as s:
        statuses = sorted(p.status for p in s.scalars(select(PairingRow)))
    assert statuses == ["active", "withdrawn"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("offers", "accept", "999"), "unknown offer id 999"),
        (("offers", "accept", "abc"), "offer id must be a whole number"),
        (("offers", "decline", "0"), "unknown offer id 0"),
        (("offers", "nosuch"), "unknown program 'nosuch'"),
    ],
)
def test_bad_ids_exit_2(run_cli, sqlite_url, tmp_path, args, needle) -> None:
    db = _store(sqlite_url, tmp_path, "guide_accepts")
    assert cli(run_cli, sqlite_url, "match", "mentoring", "--apply").exit_code == 0
    before = [(o.id, o.status) for o in _rows(db)]
    result = cli(run_cli, sqlite_url, *args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert [(o.id, o.status) for o in _rows(db)] == before


def test_decline_with_reason_rematches(run_cli, sqlite_url, tmp_path) -> None:
    db = _store(sqlite_url, tmp_path, "guide_accepts")
    assert cli(run_cli, sqlite_url, "match", "mentoring", "--apply").exit_code == 0
    (req,) = _rows(db)
    too_long = cli(run_cli, sqlite_url, "offers", "decline", str(req.id), "--reason", "x" * 1001)
    assert too_long.exit_code == 2 and "reason" in too_long.stderr
    assert [o.status for o in _rows(db)] == ["open"]
    res = cli(run_cli, sqlite_url, "offers", "decline", str(req.id), "--reason", "no time")
    assert res.exit_code == 0, res.stderr
    assert "re-matched" in res.stdout
    rows = _rows(db)
    assert rows[0].status == "declined" and rows[1].kind == "request" and rows[1].status == "open"


def test_an_invalid_choice_names_the_key(run_cli, sqlite_url, tmp_path) -> None:
    _store(sqlite_url, tmp_path, "learner_picks")
    (tmp_path / "coachbridge.toml").write_text(
        CONFIG.replace("{choice}", "whoever"), encoding="utf-8"
    )
    result = cli(run_cli, sqlite_url, "offers")
    assert result.exit_code == 2
    assert "programs[0].choice" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "coachbridge.toml").write_text(
        CONFIG.replace("{choice}", "both").replace(
            "respond_within_days = 3", "respond_within_days = 0"
        ),
        encoding="utf-8",
    )
    result = cli(run_cli, sqlite_url, "offers")
    assert result.exit_code == 2 and "programs[0].respond_within_days" in result.stderr


def test_options_may_come_before_the_program(run_cli, sqlite_url, tmp_path) -> None:
    _store(sqlite_url, tmp_path, "learner_picks")
    assert cli(run_cli, sqlite_url, "match", "mentoring", "--apply").exit_code == 0
    expected = json.loads(
        cli(run_cli, sqlite_url, "offers", "mentoring", "--format", "json").stdout
    )
    assert len(expected) == 2
    for args in (
        ("offers", "--format", "json", "mentoring"),
        ("offers", "--format=json", "mentoring"),
        ("offers", "--all", "--format", "json", "mentoring"),
    ):
        res = cli(run_cli, sqlite_url, *args)
        assert res.exit_code == 0, (args, res.stderr)
        assert [r["id"] for r in json.loads(res.stdout)] == [r["id"] for r in expected], args
    res = cli(run_cli, sqlite_url, "offers", "--format", "json", "nosuch")
    assert res.exit_code == 2 and "unknown program 'nosuch'" in res.stderr
