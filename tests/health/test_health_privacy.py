"""``people forget``: personal data erased, anonymous counts kept, the erasure audited."""

from __future__ import annotations

import json
from pathlib import Path

from coachbridge.hris.privacy import forget_person
from coachbridge.store import Database
from coachbridge.store.tables import (
    AuditRow,
    ExternalIdRow,
    FeedbackRow,
    InboxRow,
    PairingRow,
    PersonRow,
    SessionRow,
)
from sqlalchemy import select

from tests.health.health_world import NOW, World, program, write_config


def _setup(db: Database) -> dict[str, int]:
    with db.transaction() as s:
        w = World(s, program())
        learner, guide = w.person("Lea"), w.person("Gus")
        s.add(ExternalIdRow(connector="hris", external_id="E-1001", person_id=learner.id))
        pairing = w.pair(learner, guide)
        held = w.session(pairing, 10, "held", seq=1)
        w.feedback(held, learner, 4)
        w.feedback(held, guide, 5)
        s.add_all(
            [
                InboxRow(
                    connector="hris",
                    delivery_id="a",
                    status="done",
                    body=json.dumps({"email": learner.email}).encode(),
                ),
                InboxRow(
                    connector="hris",
                    delivery_id="b",
                    status="pending",
                    body=b'{"employeeId": "E-1001"}',
                ),
                InboxRow(
                    connector="hris",
                    delivery_id="c",
                    status="done",
                    body=json.dumps({"email": guide.email}).encode(),
                ),
            ]
        )
        return {"learner": learner.id, "guide": guide.id, "pairing": pairing.id}


def test_forget_person(db: Database) -> None:
    ids = _setup(db)
    with db.transaction() as s:
        result = forget_person(s, s.get(PersonRow, ids["learner"]), actor="hr@example.com", now=NOW)
    assert result.inbox_deliveries == 2 and result.external_ids == 1 and result.feedback == 2
    with db.transaction() as s:
        p = s.get(PersonRow, ids["learner"])
        assert p.forgotten and p.first_name == "" and p.last_name == "" and p.email is None
        assert p.department == "Engineering"  # kept for anonymous counts
        # The external id is gone; only a hashed tombstone stays, so a sync will not re-import.
        (link,) = s.scalars(select(ExternalIdRow)).all()
        assert link.external_id.startswith("forgotten:") and "1001" not in link.external_id
        inbox = {r.delivery_id: r for r in s.scalars(select(InboxRow))}
        assert inbox["a"].body is None and inbox["a"].status == "purged"
        assert inbox["b"].body is None
        assert inbox["c"].body is not None  # the guide's delivery is not theirs to erase
        fb = list(s.scalars(select(FeedbackRow)))
        assert len(fb) == 2 and all(f.comment is None and f.private_note is None for f in fb)
        assert sorted(f.rating for f in fb) == [4, 5]  # anonymous counts stay
        assert all(x.private_notes is None for x in s.scalars(select(SessionRow)))
        assert s.get(PairingRow, ids["pairing"]) is not None
        audit = s.scalars(select(AuditRow).where(AuditRow.action == "forget_person")).one()
        assert audit.actor == "hr@example.com" and audit.object_id == str(ids["learner"])
        assert "Lea" not in json.dumps(audit.details)
    with db.transaction() as s:
        again = forget_person(s, s.get(PersonRow, ids["learner"]), actor="x", now=NOW)
    assert again.already


def test_forget_and_audit_cli(run_cli, db_url: str, tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path / "coachbridge.toml"))
    db = Database(db_url)
    db.upgrade()
    ids = _setup(db)
    base = ("--config", cfg, "--db", db_url)
    blank = run_cli(*base, "people", "forget", "hris:E-1001", "--yes", "--actor", "  ")
    assert blank.exit_code == 2 and "--actor" in blank.stderr
    with db.transaction() as s:
        w = World(s, program())
        ahead = w.session(s.get(PairingRow, ids["pairing"]), -7, "scheduled", seq=2)
        ahead_id = ahead.id
    res = run_cli(*base, "people", "forget", "hris:E-1001", "--yes", "--actor", "dpo")
    assert res.exit_code == 0, res.stderr
    assert f"person {ids['learner']} erased" in res.stdout
    missing = run_cli(*base, "people", "forget", "nobody@example.com", "--yes")
    assert missing.exit_code == 2 and "unknown person" in missing.stderr
    audit = run_cli(*base, "audit", "--format", "json", "--action", "forget_person")
    assert audit.exit_code == 0, audit.stderr
    rows = json.loads(audit.stdout)
    assert [(r["actor"], r["object_id"]) for r in rows] == [("dpo", str(ids["learner"]))]
    listing = run_cli(*base, "people", "--format", "json")
    assert "Lea" not in listing.stdout
    with db.transaction() as s:  # they take part in nothing more
        assert s.get(PairingRow, ids["pairing"]).status == "ended"
        assert s.get(SessionRow, ahead_id).status == "cancelled"
    goal = run_cli(*base, "goals", "add", "--person", str(ids["learner"]), "--title", "x")
    assert goal.exit_code == 2 and "was erased" in goal.stderr
    db.dispose()


def test_forget_erases_why_their_pairings_paused_or_ended(db: Database) -> None:
    from coachbridge.pairings.lifecycle import end_pairing, pause_pairing

    ids = _setup(db)
    with db.transaction() as s:
        w = World(s, program())
        other = w.pair(s.get(PersonRow, ids["learner"]), w.person("Ola"))
        pause_pairing(s, s.get(PairingRow, ids["pairing"]), "parental leave", NOW, actor="hr")
        end_pairing(s, other, "no chemistry with Ola", NOW, actor="hr")
        other_id = other.id
    with db.transaction() as s:
        result = forget_person(s, s.get(PersonRow, ids["learner"]), actor="dpo", now=NOW)
    assert result.pairing_reasons == 2 and result.pairings_ended == 1
    with db.transaction() as s:
        paused, ended = s.get(PairingRow, ids["pairing"]), s.get(PairingRow, other_id)
        # Open pairings end with the erasure; what they were paused or ended for is gone.
        assert (paused.status, paused.end_reason) == ("ended", "(erased)")
        assert (ended.status, ended.end_reason) == ("ended", "(erased)")
        details = [a.details for a in s.scalars(select(AuditRow))]
        text = json.dumps(details)
        assert "parental leave" not in text and "no chemistry" not in text
        pause = next(d for d in details if "sessions_cancelled" in d)
        assert pause["reason"] == "(erased)"
