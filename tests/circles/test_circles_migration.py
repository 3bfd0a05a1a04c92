"""Migration 0008 on a database holding pairings and sessions: down and up again, rows kept."""

from __future__ import annotations

from alembic import command
from coachbridge.store import Database
from sqlalchemy import text


def test_0008_down_and_up_keeps_rows(db_url: str) -> None:
    db = Database(db_url)
    try:
        cfg = db._alembic_config()
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0004")
        db.upgrade()  # 0008 on a database with rows in the tables it changes
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO people (id, first_name, last_name, status, skills, interests, languages, extra, forgotten, created_at, updated_at) VALUES (1, 'A', 'T', 'active', '[]', '[]', '[]', '{}', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP), (2, 'B', 'T', 'active', '[]', '[]', '[]', '{}', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO programs (id, name, kind, settings, updated_at) VALUES ('g', 'g', 'group', '{}', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO circles (id, program_id, guide_id, created_at) VALUES (1, 'g', 2, CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO pairings (id, program_id, learner_id, guide_id, score, breakdown, status, created_at, circle_id) VALUES (1, 'g', 1, 2, 0.5, '{}', 'active', CURRENT_TIMESTAMP, 1)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO sessions (id, pairing_id, seq, start, minutes, status, action_items, ics_sequence, created_at, updated_at, circle_id) VALUES (1, 1, 1, CURRENT_TIMESTAMP, 45, 'held', '[]', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO session_attendance (session_id, person_id, pairing_id, status) VALUES (1, 1, 1, 'held')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO feedback (id, session_id, pairing_id, from_person_id, rating, created_at, updated_at) VALUES (1, 1, 1, 1, 5, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
        # Down to just below 0008 (later migrations first, each step in its own transaction:
        # on SQLite 0008's downgrade must be its transaction's first write).
        for target in ("0008", "0006"):
            with db.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.downgrade(cfg, target)
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM pairings")).scalar() == 1
            assert conn.execute(text("SELECT count(*) FROM sessions")).scalar() == 1
            assert conn.execute(text("SELECT count(*) FROM feedback")).scalar() == 1
        db.upgrade()
        assert db.current_revision() == db.head_revision()
    finally:
        db.dispose()
