"""The Alembic migrations create exactly the schema ``tables.py`` declares, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from coachbridge.store import Database
from coachbridge.store.tables import Base


def test_migrations_match_models(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"tables.py and the migrations disagree: {diff}"


def test_new_database_starts_at_head(db: Database) -> None:
    assert db.current_revision() == db.head_revision()
