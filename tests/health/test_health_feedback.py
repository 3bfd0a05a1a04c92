"""Feedback: signed single-use links, the rules on who may answer, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from coachbridge.errors import NotFoundError, UserError
from coachbridge.links import LinkExpired, LinkForged, LinkUsed
from coachbridge.pairings.feedback import (
    answer_link,
    check_form_nonce,
    form_nonce,
    make_token,
    own_private_note,
    read_token,
    record_feedback,
)
from coachbridge.store import Database
from coachbridge.store.tables import AuditRow, FeedbackLinkRow, FeedbackRow, PersonRow, SessionRow
from sqlalchemy import func, select

from tests.health.health_world import NOW, SECRET, World, program, write_config


def _setup(db: Database) -> dict[str, int]:
    with db.transaction() as s:
        w = World(s, program())
        learner, guide, other = w.person("Lea"), w.person("Gus"), w.person("Otto")
        pairing = w.pair(learner, guide)
        held = w.session(pairing, 10, "held", seq=1)
        planned = w.session(pairing, 3, "scheduled", seq=2)
        future = w.session(pairing, -5, "scheduled", seq=3)
        return {
            "learner": learner.id,
            "guide": guide.id,
            "other": other.id,
            "held": held.id,
            "planned": planned.id,
            "future": future.id,
        }


def test_token_round_trip_and_tampering() -> None:
    token = make_token(SECRET, 7, 9)
    link = read_token(SECRET, token)
    assert (link.session_id, link.person_id) == (7, 9)
    assert "nonce" not in repr(link) and link.nonce not in repr(link)
    with pytest.raises(LinkForged):
        read_token("another-secret", token)
    with pytest.raises(LinkForged):
        read_token(SECRET, token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])
    with pytest.raises(LinkExpired):
        read_token(SECRET, token, max_age=-1)
    assert make_token(SECRET, 7, 9) != token  # a fresh nonce each time
    assert check_form_nonce(SECRET, token, form_nonce(SECRET, token))
    assert not check_form_nonce(SECRET, token, form_nonce(SECRET, make_token(SECRET, 7, 9)))
    assert not check_form_nonce(SECRET, token, None)


def test_feedback_rules(db: Database) -> None:
    ids = _setup(db)
    with db.transaction() as s:
        learner = s.get(
            __import__("coachbridge.store.tables").store.tables.PersonRow, ids["learner"]
        )
        other = s.get(PersonRow, ids["other"])
        with pytest.raises(NotFoundError):
            record_feedback(s, 999_999, learner, 4)
        with pytest.raises(UserError, match="neither the learner nor the guide"):
            record_feedback(s, ids["held"], other, 4)
        with pytest.raises(UserError, match="held sessions only"):
            record_feedback(s, ids["planned"], learner, 4)
        for bad in (0, 6, "x", "4.5"):
            with pytest.raises(UserError, match="rating"):
                record_feedback(s, ids["held"], learner, bad)
        row, replaced = record_feedback(
            s, ids["held"], learner, 2, comment="meh", private_note="n1"
        )
        assert not replaced
        row2, replaced = record_feedback(s, ids["held"], learner, 5, comment="better")
        assert replaced and row2.id == row.id
    with db.transaction() as s:
        rows = list(s.scalars(select(FeedbackRow)))
        assert [(r.rating, r.comment, r.private_note) for r in rows] == [(5, "better", None)]
        details = [a.details for a in s.scalars(select(AuditRow))]
        assert all("meh" not in json.dumps(d) and "n1" not in json.dumps(d) for d in details)


def test_link_answer_is_single_use(db: Database) -> None:
    ids = _setup(db)
    link = read_token(SECRET, make_token(SECRET, ids["planned"], ids["guide"]))
    with db.transaction() as s, pytest.raises(UserError, match="rating"):
        answer_link(s, link, outcome="held", rating="9", now=NOW)
    with db.transaction() as s:  # the bad rating recorded nothing and changed nothing
        assert s.scalar(select(func.count()).select_from(FeedbackLinkRow)) == 0
        assert s.get(SessionRow, ids["planned"]).status == "scheduled"
    with db.transaction() as s:
        answer = answer_link(s, link, outcome="held", rating="4", private_note="mine", now=NOW)
        assert answer.session_status == "held"
    with db.transaction() as s, pytest.raises(LinkUsed):
        answer_link(s, link, outcome="held", rating="5", now=NOW)
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(FeedbackRow)) == 1
        assert s.get(SessionRow, ids["planned"]).status == "held"
        assert own_private_note(s, link) == "mine"
    # A stranger's link (person not in the session) is not valid.
    stranger = read_token(SECRET, make_token(SECRET, ids["held"], ids["other"]))
    with db.transaction() as s, pytest.raises(LinkForged):
        answer_link(s, stranger, outcome="held", rating="4", now=NOW)


def test_link_missed_marks_session(db: Database) -> None:
    ids = _setup(db)
    link = read_token(SECRET, make_token(SECRET, ids["planned"], ids["learner"]))
    with db.transaction() as s:
        answer_link(s, link, outcome="missed", now=NOW)
    with db.transaction() as s:
        assert s.get(SessionRow, ids["planned"]).status == "missed"
        assert s.scalar(select(func.count()).select_from(FeedbackRow)) == 0
    future = read_token(SECRET, make_token(SECRET, ids["future"], ids["learner"]))
    with db.transaction() as s, pytest.raises(UserError, match="only once it has started"):
        answer_link(s, future, outcome="held", rating=4, now=NOW)


def test_cli_feedback_add_and_list(run_cli, db_url: str, tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path / "coachbridge.toml"))
    db = Database(db_url)
    db.upgrade()
    ids = _setup(db)
    base = ("--config", cfg, "--db", db_url)
    ok = run_cli(
        *base,
        "feedback",
        "add",
        str(ids["held"]),
        "--from",
        str(ids["learner"]),
        "--rating",
        "4",
        "--comment",
        "useful",
        "--private-note",
        "SECRET-NOTE",
    )
    assert ok.exit_code == 0, ok.stderr
    again = run_cli(
        *base, "feedback", "add", str(ids["held"]), "--from", str(ids["learner"]), "--rating", "3"
    )
    assert again.exit_code == 0 and "replaced" in again.stdout
    for args, needle in (
        (("999", "--from", str(ids["learner"]), "--rating", "4"), "unknown session"),
        ((str(ids["held"]), "--from", str(ids["other"]), "--rating", "4"), "neither"),
        ((str(ids["held"]), "--from", str(ids["learner"]), "--rating", "6"), "1 to 5"),
        ((str(ids["planned"]), "--from", str(ids["learner"]), "--rating", "4"), "held sessions"),
        ((str(ids["held"]), "--from", "nobody@example.com", "--rating", "4"), "unknown person"),
    ):
        bad = run_cli(*base, "feedback", "add", *args)
        assert bad.exit_code == 2, (args, bad.stdout, bad.stderr)
        assert needle in bad.stderr and "Traceback" not in bad.stderr
    listed = run_cli(*base, "feedback", "list", "--format", "json")
    assert listed.exit_code == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["rating"], r["side"]) for r in rows] == [(3, "learner")]
    assert "private" not in listed.stdout and "SECRET-NOTE" not in listed.stdout
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(FeedbackRow)) == 1
    db.dispose()


def test_same_link_posted_twice_at_once(db: Database) -> None:
    """Two simultaneous answers to one link: one is recorded, the other is told it is used."""
    import threading

    ids = _setup(db)
    link = read_token(SECRET, make_token(SECRET, ids["planned"], ids["learner"]))
    barrier = threading.Barrier(2)
    results: list[str] = []

    def answer(rating: str) -> None:
        barrier.wait()
        try:
            with db.transaction() as s:
                answer_link(s, link, outcome="held", rating=rating, now=NOW)
            results.append("ok")
        except LinkUsed:
            results.append("used")

    threads = [threading.Thread(target=answer, args=(r,)) for r in ("3", "5")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["ok", "used"]
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(FeedbackRow)) == 1
        assert s.scalar(select(func.count()).select_from(FeedbackLinkRow)) == 1
