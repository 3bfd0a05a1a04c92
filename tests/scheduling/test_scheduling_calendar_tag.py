"""Each database tags its sessions' calendar UIDs, so two databases' invitations never collide;
a database whose invitations went out before the tag existed keeps its UIDs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from coachbridge.notify.messages import pairing_key, pairing_message
from coachbridge.pairings.calendar import calendar_domain, write_calendars
from coachbridge.pairings.scheduling import schedule_pairings
from coachbridge.store import Database
from coachbridge.store.tables import (
    InstallationRow,
    PairingRow,
    PersonRow,
    ProgramRow,
    SessionRow,
)
from icalendar import Calendar
from sqlalchemy import select

from .scheduling_factories import Factory, program

PROG = program()
NOW = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)


def _plan(db: Database) -> int:
    factory = Factory(db)
    pid = factory.pairing(PROG, factory.person(), factory.person(level=6))
    with db.transaction() as s:
        assert schedule_pairings(s, PROG, [pid], now=NOW)
    return pid


def _exported_uids(db: Database, folder: Path) -> set[str]:
    with db.transaction() as s:
        found = list(
            (row, pairing)
            for row, pairing in s.execute(select(SessionRow, PairingRow).join(PairingRow))
        )
        write_calendars(s, found, folder, lambda _pid: PROG)
    return {
        str(event["UID"])
        for path in folder.iterdir()
        for event in Calendar.from_ical(path.read_bytes()).walk("VEVENT")
    }


def test_new_databases_tag_their_uids_and_mail_matches_the_export(
    db: Database, tmp_path: Path
) -> None:
    with db.transaction() as s:
        domain = calendar_domain(s)
        tag = s.get(InstallationRow, 1).calendar_tag
    assert tag and len(tag) == 8 and domain == f"{tag}.coachbridge"
    pid = _plan(db)
    uids = _exported_uids(db, tmp_path / "cal")
    assert len(uids) == 6 and all(
        u.startswith("session-") and u.endswith(f"@{domain}") for u in uids
    )
    # The invitation attached to the pairing mail names the same events as the export, so a
    # calendar that has both updates one event instead of showing two.
    with db.transaction() as s:
        message = pairing_message(s, pairing_key(pid, "learner", "log"))
        assert message is not None
        attached = Calendar.from_ical(message.attachments[0].data)
        assert {str(e["UID"]) for e in attached.walk("VEVENT")} == uids

    other = Database(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        other.upgrade()
        with other.transaction() as s:
            assert calendar_domain(s) != domain  # another database, other events
    finally:
        other.dispose()


def test_a_database_with_sessions_before_the_tag_keeps_its_uids(
    db_url: str, tmp_path: Path
) -> None:
    db = Database(db_url)
    try:
        cfg = db._alembic_config()
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0001")  # as it was before the installation table
        with db.engine.begin() as conn:
            _create_rows_at_0001(conn)
        db.upgrade()
        with db.transaction() as s:
            assert s.get(InstallationRow, 1).calendar_tag is None
            assert calendar_domain(s) == "coachbridge"
        assert _exported_uids(db, tmp_path / "cal") == {"session-1@coachbridge"}
    finally:
        db.dispose()


def _create_rows_at_0001(conn) -> None:  # type: ignore[no-untyped-def]
    """One pairing with one session. Core inserts (with the tables' defaults): these tables are
    the same at 0001 as now, the ORM session would expect the installation table."""
    conn.execute(
        PersonRow.__table__.insert(),
        [
            {"id": 1, "first_name": "Ana", "last_name": "T", "email": "ana@example.com"},
            {"id": 2, "first_name": "Ben", "last_name": "T", "email": "ben@example.com"},
        ],
    )
    conn.execute(
        ProgramRow.__table__.insert(), [{"id": "mentoring", "name": "M", "kind": "mentoring"}]
    )
    conn.execute(
        PairingRow.__table__.insert(),
        [{"id": 1, "program_id": "mentoring", "learner_id": 1, "guide_id": 2, "status": "active"}],
    )
    conn.execute(
        SessionRow.__table__.insert(),
        [{"id": 1, "pairing_id": 1, "seq": 1, "start": NOW, "minutes": 45, "status": "scheduled"}],
    )
