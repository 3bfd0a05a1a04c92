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


def test_profile_import_a_quote_never_closed_swallows_nothing(
    setup: tuple[list[str], dict[str, int]], run_cli: Cli, db: Database, tmp_path: Path
) -> None:
    """A stray quote would make the rest of the file one cell: refused, naming its line."""
    base, ids = setup
    stray = tmp_path / "stray.csv"
    stray.write_text(
        "person,topics,goal\n"
        f"{ids['lea']},negotiation,ok\n"
        f'{ids["lou"]},negotiation,"Lead my team\n'
        f"{ids['gia']},career change,Grow\n",
        encoding="utf-8",
    )
    res = run_cli(*base, "profile", "import", str(stray), "--program", "mentoring")
    assert res.exit_code == 2, res.output
    assert f"{stray}:3: malformed CSV" in res.stderr and "never closed" in res.stderr
    assert "Traceback" not in res.output
    assert _answers(db) == []


def test_profile_import_lists_every_row_that_does_not_fit_in_file_order(
    setup: tuple[list[str], dict[str, int]], run_cli: Cli, db: Database, tmp_path: Path
) -> None:
    base, ids = setup
    multi = tmp_path / "multi.csv"
    multi.write_text(
        "person,topics\n"
        f"{ids['lea']},negotiation,extra\n"
        f"{ids['lou']},astrology\n"
        f"{ids['gia']},negotiation,x,y\n",
        encoding="utf-8",
    )
    res = run_cli(*base, "profile", "import", str(multi), "--program", "mentoring")
    assert res.exit_code == 2
    lines = [line.removeprefix("error: ") for line in res.stderr.splitlines() if line]
    assert lines == [
        f"{multi}:2: 3 cells, but the header names 2 columns",
        f"{multi}:3: column topics: 'astrology' is not one of this program's topics",
        f"{multi}:4: 4 cells, but the header names 2 columns",
    ]
    assert _answers(db) == []


def test_a_person_not_enrolled_is_told_the_command_that_enrolls(
    setup: tuple[list[str], dict[str, int]], run_cli: Cli, db: Database
) -> None:
    base, ids = setup
    res = run_cli(*base, "profile", "set", str(ids["out"]), "--program", "mentoring", "--goal", "x")
    assert res.exit_code == 2
    hint = res.stderr.split("enroll them first: ")[1].split(")")[0]
    assert hint == f"coachbridge enroll mentoring --person {ids['out']} --role learner|guide"
    # The hint is a real command: it enrolls the person.
    command = hint.removeprefix("coachbridge ").replace("learner|guide", "learner").split()
    assert run_cli(*base, *command).exit_code == 0
    res = run_cli(*base, "profile", "set", str(ids["out"]), "--program", "mentoring", "--goal", "x")
    assert res.exit_code == 0, res.output


def test_intake_send_exits_1_when_no_invitation_could_be_sent(
    setup: tuple[list[str], dict[str, int]], run_cli: Cli, db: Database, tmp_path: Path
) -> None:
    """A mail server that refuses: nothing counts as sent, exit 1, and a later run sends."""
    import socket

    base, _ids = setup
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = Path(base[1])
    good = cfg.read_text(encoding="utf-8")
    cfg.write_text(
        good + f'\n[notify.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        'from_address = "coach@example.com"\ntimeout = 2\n',
        encoding="utf-8",
    )
    res = run_cli(*base, "intake", "send", "mentoring")
    assert res.exit_code == 1, res.output
    assert "0 invitation(s) mailed, 4 failed" in res.stderr
    assert "could not be sent" in res.stderr and "Traceback" not in res.output
    with db.transaction() as s:
        assert all(r.invited_at is None for r in s.scalars(select(ProfileRow)))
    cfg.write_text(good, encoding="utf-8")  # mail works again (the default channel)
    res = run_cli(*base, "intake", "send", "mentoring")
    assert res.exit_code == 0 and "4 invitation(s) mailed" in res.stderr, res.output
