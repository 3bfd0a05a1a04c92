"""The commands: exit codes, one clear line per problem, the store unchanged after bad input."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from coachbridge.store import Database
from coachbridge.store.tables import ProfileRow, SessionRow
from sqlalchemy import select

from tests.conftest import Cli
from tests.participants.participants_world import PUBLIC, company, pair, write_config


@pytest.fixture
def setup(db: Database, db_url: str, tmp_path: Path) -> tuple[list[str], dict[str, int]]:
    ids = company(db)
    cfg = write_config(tmp_path / "coachbridge.toml", db_url)
    return ["--config", str(cfg), "--db", db_url], ids


def _answers(db: Database) -> list[tuple[int, list[str], str | None]]:
    with db.transaction() as s:
        return [
            (r.person_id, r.topics, r.goal)
            for r in s.scalars(
                select(ProfileRow)
                .where(ProfileRow.answered_at.is_not(None))
                .order_by(ProfileRow.person_id)
            )
        ]


def test_intake_links_and_send(setup: tuple[list[str], dict[str, int]], run_cli: Cli) -> None:
    base, _ids = setup
    res = run_cli(*base, "intake", "links", "mentoring", "--format", "json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [sorted(r) for r in rows] == [["email", "person_id", "role", "status", "url"]] * 4
    assert all(r["url"].startswith(f"{PUBLIC}/intake/") and r["status"] == "pending" for r in rows)
    res = run_cli(*base, "intake", "links", "mentoring", "--format", "csv")
    reader = list(csv.DictReader(io.StringIO(res.stdout)))
    assert list(reader[0]) == ["person_id", "email", "role", "url", "status"] and len(reader) == 4
    res = run_cli(*base, "intake", "links", "mentoring")
    assert res.exit_code == 0 and "lea@example.com" in res.stdout
    # The table shows each link whole (a cut one is of no use): payload.signature, then status.
    assert len(re.findall(r"/intake/[\w-]+\.[\w-]{20,}\s+pending", res.stdout)) == 4

    res = run_cli(*base, "intake", "send", "mentoring", "--dry-run")
    assert res.exit_code == 0 and "4 invitation(s) would be mailed" in res.stderr
    assert "/intake/" not in res.stdout  # the links are secret: only in the mail
    res = run_cli(*base, "intake", "send", "mentoring")
    assert res.exit_code == 0 and "4 invitation(s) mailed" in res.stderr
    res = run_cli(*base, "intake", "send", "mentoring")
    assert res.exit_code == 0 and "nobody to invite" in res.stdout

    for args, needle in [
        (("intake", "send", "nope"), "unknown program 'nope'"),
        (("intake", "links", "plain"), "programs.plain.intake is not configured"),
        (("intake", "links", "mentoring", "--format", "xml"), "--format"),
    ]:
        res = run_cli(*base, *args)
        assert res.exit_code == 2 and needle in res.stderr, res.output
        assert "Traceback" not in res.output


def test_profile_set_and_show(
    setup: tuple[list[str], dict[str, int]], run_cli: Cli, db: Database
) -> None:
    base, ids = setup
    res = run_cli(
        *base, "profile", "set", "lea@example.com", "--program", "mentoring",
        "--topics", "negotiation,career change", "--goal", "Lead a negotiation",
        "--languages", "de,en", "--availability", "mon-am,tue-pm",
    )  # fmt: skip
    assert res.exit_code == 0 and f"answer recorded: person {ids['lea']} in mentoring" in res.stdout
    res = run_cli(*base, "profile", "show", str(ids["lea"]), "--format", "json")
    [row] = json.loads(res.stdout)
    assert list(row) == [
        "person_id",
        "program",
        "topics",
        "goal",
        "languages",
        "availability",
        "answered_at",
    ]
    assert row["topics"] == ["negotiation", "career change"] and row["languages"] == ["de", "en"]
    assert row["answered_at"].endswith("+00:00")
    res = run_cli(*base, "profile", "show", "lea@example.com", "--program", "mentoring")
    assert res.exit_code == 0 and "negotiation, career change" in res.stdout
    res = run_cli(*base, "profile", "show", "lea@example.com", "--format", "csv")
    assert "negotiation;career change" in res.stdout
    res = run_cli(*base, "profile", "show", str(ids["lou"]))
    assert res.exit_code == 0 and "(no answers)" in res.stdout
    before = _answers(db)
    for args, needle in [
        (("--topics", "astrology"), "--topics: 'astrology' is not one of this program's topics"),
        (("--goal", "x" * 1001), "--goal: goal is 1001 characters"),
        (("--availability", "sat-am"), "--availability"),
        (("--languages", "deutsch"), "--languages"),
        ((), "give at least one of"),
    ]:
        res = run_cli(*base, "profile", "set", str(ids["lea"]), "--program", "mentoring", *args)
        assert res.exit_code == 2 and needle in res.stderr, res.output
        assert "Traceback" not in res.output
    res = run_cli(
        *base, "profile", "set", "ghost@example.com", "--program", "mentoring", "--goal", "x"
    )
    assert res.exit_code == 2 and "unknown person 'ghost@example.com'" in res.stderr
    res = run_cli(*base, "profile", "set", str(ids["out"]), "--program", "mentoring", "--goal", "x")
    assert res.exit_code == 2 and "not enrolled in mentoring" in res.stderr
    res = run_cli(*base, "profile", "show", str(ids["lea"]), "--program", "nope")
    assert res.exit_code == 2 and "unknown program" in res.stderr
    assert _answers(db) == before


def test_profile_import_errors_name_line_and_column(
    setup: tuple[list[str], dict[str, int]], run_cli: Cli, db: Database, tmp_path: Path
) -> None:
    base, ids = setup
    good = tmp_path / "good.csv"
    good.write_text(
        "person,topics,goal,languages,availability\n"
        f"lea@example.com,negotiation;career change,Grow,de;en,mon-am\n"
        f"{ids['gus']},negotiation;public speaking,,,\n",
        encoding="utf-8",
    )
    res = run_cli(*base, "profile", "import", str(good), "--program", "mentoring")
    assert (
        res.exit_code == 0
        and "2 answer(s) imported into mentoring (2 new, 0 replaced)" in res.stdout
    )
    before = _answers(db)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "person,topics,goal,languages,availability\n"
        f"{ids['lou']},negotiation,,,\n"
        f"{ids['lea']},negotiation;astrology,,,\n"
        f"{ids['gia']},negotiation,,,fri-xx\n",
        encoding="utf-8",
    )
    res = run_cli(*base, "profile", "import", str(bad), "--program", "mentoring")
    assert res.exit_code == 2
    lines = [line for line in res.stderr.splitlines() if line]
    assert (
        lines[0]
        == f"error: {bad}:3: column topics: 'astrology' is not one of this program's topics"
    )
    assert lines[1].startswith(f"{bad}:4: column availability:")
    assert "Traceback" not in res.output
    assert _answers(db) == before  # Lou's good line 2 was not written either
    res = run_cli(
        *base, "profile", "import", str(tmp_path / "missing.csv"), "--program", "mentoring"
    )
    assert res.exit_code == 2 and "missing.csv" in res.stderr
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    res = run_cli(*base, "profile", "import", str(empty), "--program", "mentoring")
    assert res.exit_code == 2 and "empty file" in res.stderr


def test_feedback_link(setup: tuple[list[str], dict[str, int]], run_cli: Cli, db: Database) -> None:
    from datetime import UTC, datetime

    from coachbridge.pairings.feedback import read_token

    base, ids = setup
    pairing = pair(db, ids["lea"], ids["gus"])
    with db.transaction() as s:
        session = SessionRow(pairing_id=pairing, start=datetime.now(UTC), minutes=45, status="held")
        s.add(session)
        s.flush()
        sid = session.id
    res = run_cli(*base, "feedback", "link", str(sid), "--person", "lea@example.com")
    assert res.exit_code == 0, res.output
    link = res.stdout.strip()
    assert link.startswith(f"{PUBLIC}/feedback/")
    from tests.participants.participants_world import SECRET

    token = read_token(SECRET, link.rsplit("/", 1)[1])
    assert (token.session_id, token.person_id) == (sid, ids["lea"])
    res = run_cli(*base, "feedback", "link", str(sid), "--person", str(ids["gia"]))
    assert res.exit_code == 2 and "neither the learner nor the guide" in res.stderr
    res = run_cli(*base, "feedback", "link", "999999", "--person", str(ids["lea"]))
    assert res.exit_code == 2 and "unknown session id 999999" in res.stderr
