"""``match``, ``pairings`` and ``rematch`` through the real command line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from coachbridge.store import Database
from coachbridge.store.tables import AuditRow, PairingRow, PairRuleRow
from sqlalchemy import select

from tests.matching.matching_factory import enroll, person, program

CONFIG = """
[[programs]]
id = "mentoring"
kind = "mentoring"
capacity = 1
min_score = 0.1
[programs.weights]
skills = 0.6
seniority = 0.2
department_diversity = 0.2
"""


@pytest.fixture
def store(sqlite_url: str, tmp_path: Path):
    (tmp_path / "coachbridge.toml").write_text(CONFIG, encoding="utf-8")
    database = Database(sqlite_url)
    database.upgrade()
    prog = program(capacity=1)
    with database.transaction() as s:
        person(s, 1, level=9, skills=["python", "leadership"])
        person(s, 2, level=6, manager_id=1, skills=["python"], department="Sales")
        person(s, 3, level=6, manager_id=1, skills=["leadership"], department="HR")
        person(s, 4, level=6, manager_id=1, skills=["python", "sql"], department="Ops")
        person(s, 10, level=2, manager_id=2, interests=["python"])
        person(s, 11, level=2, manager_id=3, interests=["leadership"])
        for pid in (10, 11):
            enroll(s, prog, pid, "learner")
        for pid in (2, 3, 4):
            enroll(s, prog, pid, "guide")
    yield database
    database.dispose()


def cli(run_cli, sqlite_url, *args):
    return run_cli("--config", "coachbridge.toml", "--db", sqlite_url, *args)


def test_match_shows_a_proposal_and_stores_nothing(run_cli, sqlite_url, store) -> None:
    result = cli(run_cli, sqlite_url, "match", "mentoring", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"pairs", "unmatched"}
    pairs = {p["learner_id"]: p for p in data["pairs"]}
    # 10 reports to 2, 11 to 3: never their own managers.
    assert pairs[10]["guide_id"] != 2 and pairs[11]["guide_id"] != 3
    for p in data["pairs"]:
        assert sum(p["breakdown"].values()) == pytest.approx(p["score"], abs=1e-12)
    assert data["unmatched"] == []
    with store.transaction() as s:
        assert list(s.scalars(select(PairingRow))) == []
    table = cli(run_cli, sqlite_url, "match", "mentoring")
    assert table.exit_code == 0 and "nothing stored" in table.stdout


def test_propose_list_approve(run_cli, sqlite_url, store) -> None:
    assert cli(run_cli, sqlite_url, "match", "mentoring", "--propose").exit_code == 0
    listed = json.loads(
        cli(run_cli, sqlite_url, "pairings", "--status", "proposed", "--format", "json").stdout
    )
    assert len(listed) == 2
    assert set(listed[0]) >= {
        "id",
        "program",
        "learner_id",
        "guide_id",
        "score",
        "breakdown",
        "status",
        "end_reason",
    }
    # Proposed pairings hold their places: matching again proposes nothing new.
    again = json.loads(cli(run_cli, sqlite_url, "match", "mentoring", "--format", "json").stdout)
    assert again["pairs"] == []
    one = cli(run_cli, sqlite_url, "pairings", "approve", str(listed[0]["id"]))
    assert one.exit_code == 0, one.stderr
    rest = cli(run_cli, sqlite_url, "pairings", "approve", "--all", "--program", "mentoring")
    assert rest.exit_code == 0 and "1 pairing(s) approved" in rest.stdout
    with store.transaction() as s:
        assert {p.status for p in s.scalars(select(PairingRow))} == {"active"}
        assert sum(a.action == "approve_pairing" for a in s.scalars(select(AuditRow))) == 2


def test_edited_proposal_round_trips_through_a_spreadsheet(run_cli, sqlite_url, store, tmp_path):
    assert cli(run_cli, sqlite_url, "match", "mentoring", "--propose").exit_code == 0
    exported = cli(run_cli, sqlite_url, "pairings", "--status", "proposed", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    by_learner = {int(r["learner_id"]): r for r in rows}
    # A bad edit first: learner 10's guide becomes their own manager (2): rejected, nothing changes.
    bad = dict(by_learner[10], guide_id="2")
    path = tmp_path / "edited.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerow(bad)
        writer.writerow(by_learner[11])
    result = cli(run_cli, sqlite_url, "pairings", "import", str(path))
    assert result.exit_code == 2
    assert f"{path}:2: rejected: guide 2 is learner 10's manager" in result.stderr
    assert "Traceback" not in result.stderr
    with store.transaction() as s:
        assert len(list(s.scalars(select(PairingRow)))) == 2
    # The good edit: learner 11's row removed, learner 10 moved to the free guide.
    taken = {int(by_learner[10]["guide_id"]), int(by_learner[11]["guide_id"])}
    free_guide = ({3, 4} - taken).pop() if ({3, 4} - taken) else int(by_learner[11]["guide_id"])
    good = dict(by_learner[10], guide_id=str(free_guide))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerow(good)
    result = cli(run_cli, sqlite_url, "pairings", "import", str(path))
    assert result.exit_code == 0, result.stderr
    with store.transaction() as s:
        stored = [(p.learner_id, p.guide_id, p.status) for p in s.scalars(select(PairingRow))]
        assert stored == [(10, free_guide, "proposed")]
        pairing = s.scalars(select(PairingRow)).one()
        assert sum(pairing.breakdown.values()) == pytest.approx(pairing.score, abs=1e-12)


def test_import_reports_every_bad_row_with_its_line(run_cli, sqlite_url, store, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "program,learner_id,guide_id\n"
        "mentoring,10,10\n"
        "mentoring,999,3\n"
        "nope,10,3\n"
        "mentoring,11,'=1+1\n",
        encoding="utf-8",
    )
    result = cli(run_cli, sqlite_url, "pairings", "import", str(path))
    assert result.exit_code == 2
    err = result.stderr
    assert f"{path}:2: rejected: a person cannot be their own guide" in err
    assert f"{path}:3: unknown learner '999'" in err
    assert f"{path}:4: unknown program 'nope'" in err
    assert f"{path}:5: unknown guide '=1+1'" in err  # the spreadsheet escape was stripped


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # A quote never closed would make the rows below it one cell of this one.
        (
            'program,learner_id,guide_id,note\nmentoring,10,3,"keeps\nmentoring,11,4,x\n',
            ":2: malformed CSV: unexpected end of data",
        ),
        # A cell more than the header names: the row is not what it seems.
        ("program,learner_id,guide_id\nmentoring,10,3,4\n", ":2: 4 cells, but the header"),
        # A cell beyond the csv module's limit.
        ("program,learner_id,guide_id\nmentoring,10," + "9" * 200_000 + "\n", ":2: malformed CSV"),
    ],
)
def test_import_refuses_a_file_that_is_not_what_it_seems(
    run_cli, sqlite_url, store, tmp_path, text, message
):
    path = tmp_path / "broken.csv"
    path.write_text(text, encoding="utf-8")
    result = cli(run_cli, sqlite_url, "pairings", "import", str(path))
    assert result.exit_code == 2, result.output
    assert f"{path}{message}" in result.stderr and "Traceback" not in result.output


def test_explain_pin_forbid_end_and_rematch(run_cli, sqlite_url, store) -> None:
    explained = cli(
        run_cli, sqlite_url, "match", "mentoring", "--explain", "10", "--format", "json"
    )
    assert explained.exit_code == 0, explained.stderr
    outcomes = {a["guide_id"]: a["outcome"] for a in json.loads(explained.stdout)}
    assert outcomes[2].startswith("excluded") and "chosen" in outcomes.values()

    assert (
        cli(
            run_cli,
            sqlite_url,
            "pairings",
            "forbid",
            "--program",
            "mentoring",
            "--learner",
            "10",
            "--guide",
            "4",
        ).exit_code
        == 0
    )
    assert (
        cli(
            run_cli,
            sqlite_url,
            "pairings",
            "pin",
            "--program",
            "mentoring",
            "--learner",
            "p11@example.com",
            "--guide",
            "4",
        ).exit_code
        == 0
    )
    with store.transaction() as s:
        rules = {(r.learner_id, r.guide_id): r.kind for r in s.scalars(select(PairRuleRow))}
    assert rules == {(10, 4): "forbid", (11, 4): "pin"}
    applied = json.loads(
        cli(run_cli, sqlite_url, "match", "mentoring", "--apply", "--format", "json").stdout
    )
    pairs = {p["learner_id"]: p for p in applied["pairs"]}
    assert pairs[11]["guide_id"] == 4 and pairs[11]["pinned"] is True
    assert pairs[10]["guide_id"] == 3

    ended = cli(
        run_cli, sqlite_url, "pairings", "end", str(applied["created"][0]), "--reason", "moved team"
    )
    assert ended.exit_code == 0, ended.stderr
    listed = json.loads(
        cli(run_cli, sqlite_url, "pairings", "--person", "10", "--format", "json").stdout
    )
    assert [(p["status"], p["end_reason"]) for p in listed] == [("ended", "moved team")]

    # Re-match 11: ends 11-4 and finds a guide without touching anyone else.
    pid = pairs[11]
    with store.transaction() as s:
        row = s.scalars(select(PairingRow).where(PairingRow.learner_id == 11)).one()
        pid = row.id
    out = cli(
        run_cli, sqlite_url, "rematch", str(pid), "--reason", "no chemistry", "--format", "json"
    )
    assert out.exit_code == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["ended"]["end_reason"] == "no chemistry"
    assert data["new"] is not None and data["new"]["guide_id"] not in (4, 3)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("match", "nope"), "unknown program 'nope'"),
        (("match", "mentoring", "--explain", "nobody@example.com"), "nobody@example.com"),
        (("rematch", "424242"), "unknown pairing '424242'"),
        (("pairings", "end", "77", "--reason", "x"), "unknown pairing '77'"),
        (("pairings", "approve", "abc"), "unknown pairing 'abc'"),
        (("pairings", "pin", "--program", "mentoring", "--learner", "555", "--guide", "2"), "555"),
        (("pairings", "--person", "888"), "888"),
    ],
)
def test_unknown_ids_exit_2_naming_them(run_cli, sqlite_url, store, args, needle) -> None:
    result = cli(run_cli, sqlite_url, *args)
    assert result.exit_code == 2
    assert needle in result.stderr and "Traceback" not in result.stderr


def test_match_says_what_is_guaranteed(run_cli, sqlite_url, store, tmp_path) -> None:
    # 10 reports to 2 and 11 to 3: of 2 learners x 3 guides, 4 pairs are allowed.
    data = json.loads(cli(run_cli, sqlite_url, "match", "mentoring", "--format", "json").stdout)
    assert data["guarantee"] == "certified optimal over 4 allowed pairs"
    assert data["certified"] is True and data["allowed_pairs"] == 4
    table = cli(run_cli, sqlite_url, "match", "mentoring")
    assert "certified optimal over 4 allowed pairs" in table.stdout
    assert "exact" not in table.stdout
    (tmp_path / "coachbridge.toml").write_text(
        CONFIG.replace("min_score = 0.1", "min_score = 0.1\ncertify = false\ntop_k = 2"),
        encoding="utf-8",
    )
    data = json.loads(cli(run_cli, sqlite_url, "match", "mentoring", "--format", "json").stdout)
    assert data["guarantee"] == "optimal within each learner's 2 best guides"
    assert data["certified"] is False and data["allowed_pairs"] is None
    table = cli(run_cli, sqlite_url, "match", "mentoring")
    assert "optimal within each learner's 2 best guides" in table.stdout


@pytest.mark.parametrize("value", ['"yes"', "1", '"false"'])
def test_certify_must_be_a_boolean(run_cli, sqlite_url, store, tmp_path, value) -> None:
    (tmp_path / "coachbridge.toml").write_text(
        CONFIG.replace("min_score = 0.1", f"min_score = 0.1\ncertify = {value}"),
        encoding="utf-8",
    )
    result = cli(run_cli, sqlite_url, "match", "mentoring")
    assert result.exit_code == 2
    assert "certify" in result.stderr and "Traceback" not in result.stderr


def _read_pairs(path: Path) -> dict[tuple[int, int], float]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        assert next(reader) == ["learner_id", "guide_id", "score"]
        return {(int(a), int(b)): float(c) for a, b, c in reader}


def test_candidates_and_all_pairs_files(run_cli, sqlite_url, store, tmp_path) -> None:
    path = tmp_path / "cands.csv"
    result = cli(
        run_cli, sqlite_url, "match", "mentoring", "--candidates", str(path), "--format", "json"
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)  # the file's note goes to stderr: stdout stays JSON
    cands = _read_pairs(path)
    # Every allowed pair scores above min_score here, and K = 50 keeps them all.
    assert set(cands) == {(10, 3), (10, 4), (11, 2), (11, 4)}
    for pair in data["pairs"]:
        # The exact float the solver optimised, written at full precision.
        assert cands[(pair["learner_id"], pair["guide_id"])] == pair["score"]
    everything = tmp_path / "all.csv"
    result = cli(
        run_cli, sqlite_url, "match", "mentoring", "--candidates", str(everything), "--all-pairs"
    )
    assert result.exit_code == 0, result.stderr
    assert "4 allowed pair(s) written" in result.stderr
    assert _read_pairs(everything) == cands
    # Once paired (and with guides now full), learners no longer wait: nothing is allowed.
    assert cli(run_cli, sqlite_url, "match", "mentoring", "--apply").exit_code == 0
    result = cli(
        run_cli, sqlite_url, "match", "mentoring", "--candidates", str(everything), "--all-pairs"
    )
    assert result.exit_code == 0, result.stderr
    assert _read_pairs(everything) == {}


def test_all_pairs_refused_above_the_limit(run_cli, sqlite_url, store, tmp_path, monkeypatch):
    monkeypatch.setattr("coachbridge.matching.service.MAX_ALL_PAIRS", 3)
    path = tmp_path / "all.csv"
    result = cli(
        run_cli, sqlite_url, "match", "mentoring", "--candidates", str(path), "--all-pairs"
    )
    assert result.exit_code == 2
    assert "has 4 allowed pairs" in result.stderr and "more than 3" in result.stderr
    assert not path.exists() and "Traceback" not in result.stderr
    result = cli(run_cli, sqlite_url, "match", "mentoring", "--all-pairs")
    assert result.exit_code == 2 and "--all-pairs needs --candidates" in result.stderr
    missing = tmp_path / "nope" / "x.csv"
    result = cli(run_cli, sqlite_url, "match", "mentoring", "--candidates", str(missing))
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_pairings_json_carries_the_score_optimised(run_cli, sqlite_url, store) -> None:
    proposed = json.loads(
        cli(run_cli, sqlite_url, "match", "mentoring", "--apply", "--format", "json").stdout
    )
    listed = json.loads(cli(run_cli, sqlite_url, "pairings", "--format", "json").stdout)
    optimised = {(p["learner_id"], p["guide_id"]): p["score"] for p in proposed["pairs"]}
    assert {(p["learner_id"], p["guide_id"]): p["score"] for p in listed} == optimised
