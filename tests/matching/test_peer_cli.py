"""Peer and reverse programs through the command line: config keys, enroll, match, candidates."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from coachbridge.store import Database
from coachbridge.store.tables import EnrollmentRow, PairingRow
from sqlalchemy import func, select

from tests.matching.matching_factory import person

CONFIG = """
[[programs]]
id = "peers"
kind = "peer"
min_score = 0.0
[programs.participants]
departments = ["Engineering"]
[programs.weights]
skills = 0.5
seniority = 0.2
department_diversity = 0.3
"""


@pytest.fixture
def store(db_url: str, tmp_path: Path):
    (tmp_path / "coachbridge.toml").write_text(CONFIG, encoding="utf-8")
    database = Database(db_url)
    database.upgrade()
    with database.transaction() as s:
        person(s, 1, level=8, skills=["python"], interests=["leadership"])
        person(s, 2, level=5, manager_id=1, skills=["sql"], interests=["python"])
        person(s, 3, level=5, skills=["leadership"], interests=["sql"])
        person(s, 4, level=3, manager_id=3, skills=["python"], interests=["python"])
        person(s, 5, level=3, skills=["design"], interests=["python"])
        person(s, 6, level=3, department="Sales")  # not admitted by [programs.participants]
    yield database
    database.dispose()


def cli(run_cli, url, *args):
    return run_cli("--config", "coachbridge.toml", "--db", url, *args)


def test_enroll_match_apply_and_list_each_pair_once(run_cli, db_url, store) -> None:
    enrolled = cli(run_cli, db_url, "enroll", "peers")
    assert enrolled.exit_code == 0, enrolled.stderr
    with store.transaction() as s:
        roles = s.execute(
            select(EnrollmentRow.role, func.count()).group_by(EnrollmentRow.role)
        ).all()
    assert dict(roles) == {"learner": 5, "guide": 5}  # everyone admitted is both
    shown = cli(run_cli, db_url, "match", "peers")
    assert shown.exit_code == 0, shown.stderr
    assert "Unpaired participants:" in shown.stdout and "odd_one_out" in shown.stdout
    assert "optimal over all 8 allowed pairs (every one solved)" in shown.stdout
    result = cli(run_cli, db_url, "match", "peers", "--apply", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["pairs"]) == 2 and len(data["created"]) == 2
    assert [u["reason"] for u in data["unmatched"]] == ["odd_one_out"]
    listed = json.loads(cli(run_cli, db_url, "pairings", "--format", "json").stdout)
    assert len(listed) == 2
    people = [x for p in listed for x in (p["learner_id"], p["guide_id"])]
    assert len(set(people)) == 4 and all(p["learner_id"] < p["guide_id"] for p in listed)
    # Chains both ways: 1 manages 2, 3 manages 4: never together.
    assert {(p["learner_id"], p["guide_id"]) for p in listed}.isdisjoint({(1, 2), (3, 4)})
    with store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(PairingRow)) == 2


def test_candidates_and_all_pairs_list_each_unordered_pair_once(
    run_cli, db_url, store, tmp_path
) -> None:
    assert cli(run_cli, db_url, "enroll", "peers").exit_code == 0
    out = tmp_path / "cands.csv"
    result = cli(run_cli, db_url, "match", "peers", "--candidates", str(out))
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    pairs = [(int(r["learner_id"]), int(r["guide_id"])) for r in rows]
    assert all(a < b for a, b in pairs) and len(pairs) == len(set(pairs))
    # Five people: 10 pairs less 1-2 and 3-4 (a manager and their report).
    assert set(pairs) == {(a, b) for a in range(1, 6) for b in range(a + 1, 6)} - {(1, 2), (3, 4)}
    every = tmp_path / "all.csv"
    result = cli(run_cli, db_url, "match", "peers", "--candidates", str(every), "--all-pairs")
    assert result.exit_code == 0, result.stderr
    assert "8 allowed pair(s) written" in result.stderr
    all_rows = list(csv.DictReader(io.StringIO(every.read_text())))
    assert sorted((int(r["learner_id"]), int(r["guide_id"])) for r in all_rows) == sorted(pairs)
    for r in all_rows:  # the symmetric score, as in the candidates
        match = next(
            x for x in rows if x["learner_id"] == r["learner_id"] and x["guide_id"] == r["guide_id"]
        )
        assert float(r["score"]) == pytest.approx(float(match["score"]), abs=1e-12)


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ('kind = "peer"\n[programs.learners]\nlevel = [1, 3]', "programs[0].learners"),
        ('kind = "peer"\ncapacity = 2', "programs[0].capacity"),
        ('kind = "peer"\ncertify = false', "programs[0].certify"),
        ('kind = "mentoring"\n[programs.participants]\nlevel = [1, 3]', "programs[0].participants"),
        ('kind = "reverse"\n[programs.participants]\nlevel = [1, 3]', "programs[0].participants"),
    ],
)
def test_keys_that_do_not_apply_name_the_key(run_cli, sqlite_url, tmp_path, section, key) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f'[[programs]]\nid = "p"\n{section}\n', encoding="utf-8")
    result = run_cli("--config", str(path), "--db", sqlite_url, "match", "p")
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"{path}: {key}: " in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_reverse_program_config_is_accepted(run_cli, sqlite_url, tmp_path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(
        '[[programs]]\nid = "rev"\nkind = "reverse"\n[programs.learners]\nlevel = [7, 9]\n'
        "[programs.guides]\nlevel = [1, 4]\n",
        encoding="utf-8",
    )
    result = run_cli("--config", str(path), "--db", sqlite_url, "match", "rev", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["pairs"] == []


def test_explain_lists_best_partners_by_the_symmetric_score(run_cli, db_url, store) -> None:
    assert cli(run_cli, db_url, "enroll", "peers").exit_code == 0
    shown = json.loads(cli(run_cli, db_url, "match", "peers", "--format", "json").stdout)
    partner = {p["learner_id"]: p["guide_id"] for p in shown["pairs"]}
    partner |= {b: a for a, b in partner.items()}
    result = cli(run_cli, db_url, "match", "peers", "--explain", "1", "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {r["guide_id"] for r in rows} == {2, 3, 4, 5}  # everyone else, never 1 itself
    outcome = {r["guide_id"]: r["outcome"] for r in rows}
    assert outcome[2].startswith("excluded")  # 1 manages 2
    if 1 in partner:
        assert outcome[partner[1]] == "chosen"
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    # The same score whichever of the two is explained.
    back = json.loads(
        cli(run_cli, db_url, "match", "peers", "--explain", "3", "--format", "json").stdout
    )
    one_three = next(r["score"] for r in rows if r["guide_id"] == 3)
    three_one = next(r["score"] for r in back if r["guide_id"] == 1)
    assert one_three == three_one
    missing = cli(run_cli, db_url, "match", "peers", "--explain", "6")
    assert missing.exit_code == 2 and "not in the pool" in missing.stderr


def test_reverse_all_pairs_leave_out_the_chain_both_ways(run_cli, db_url, tmp_path) -> None:
    path = tmp_path / "rev.toml"
    path.write_text(
        '[[programs]]\nid = "rev"\nkind = "reverse"\ncapacity = 1\n'
        "[programs.learners]\nlevel = [7, 9]\n[programs.guides]\nlevel = [1, 4]\n",
        encoding="utf-8",
    )
    database = Database(db_url)
    database.upgrade()
    with database.transaction() as s:
        person(s, 1, level=9)  # learner, above 3 (through 2)
        person(s, 2, level=6, manager_id=1)
        person(s, 3, level=2, manager_id=2)  # guide
        person(s, 4, level=8)  # learner
        person(s, 5, level=3, manager_id=4)  # guide, below learner 4
        person(s, 6, level=1)  # guide
    database.dispose()
    base = ("--config", str(path), "--db", db_url)
    assert run_cli(*base, "enroll", "rev").exit_code == 0
    out = tmp_path / "all.csv"
    result = run_cli(*base, "match", "rev", "--candidates", str(out), "--all-pairs")
    assert result.exit_code == 0, result.stderr
    pairs = {(int(r["learner_id"]), int(r["guide_id"])) for r in csv.DictReader(out.open())}
    # 2 learners x 3 guides less 1-3 and 4-5 (the learner above the guide).
    assert pairs == {(1, 5), (1, 6), (4, 3), (4, 6)}
    shown = json.loads(run_cli(*base, "match", "rev", "--format", "json").stdout)
    assert {(p["learner_id"], p["guide_id"]) for p in shown["pairs"]} <= pairs
    assert shown["certified"] and shown["allowed_pairs"] == 4
