"""The store: SQLAlchemy 2 tables, Alembic migrations, and the database handle."""

from coachbridge.store.db import Database, resolve_database_url

__all__ = ["Database", "resolve_database_url"]
