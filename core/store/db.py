"""The database handle: URL resolution, engine set-up, schema version checks and upgrades."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from coachbridge.errors import ConfigError, DatabaseBehindError, DatabaseUnavailable
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = str(Path(__file__).with_name("migrations"))


def resolve_database_url(cli_value: str | None, config_value: str | None) -> str:
    """``--db``, else ``[database] url``, else ``COACHBRIDGE_DATABASE_URL``, else ``./coachbridge.db``.

    A value without ``://`` is a path to a SQLite file.
    """
    value = cli_value or config_value or os.environ.get("COACHBRIDGE_DATABASE_URL")
    if not value:
        value = "coachbridge.db"
    return normalize_url(value)


def normalize_url(value: str) -> str:
    if "://" not in value:
        return "sqlite:///" + str(Path(value).expanduser().resolve())
    try:
        url = make_url(value)
        port = url.port  # a port that is no number fails here (ValueError)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"database url is not a valid SQLAlchemy URL (is the port a number?): {_safe(value)}"
        ) from None
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"database url: port {port} is not 1..65535: {_safe(value)}")
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


#: Query parameters of a database URL that may hold a secret (``?password=...``).
_SECRET_PARAMS = ("pass", "secret", "token", "key")


def shown(url: URL) -> str:
    """``url`` as it may be printed: its password and any secret-looking query value as
    ``***``."""
    query = {
        k: ("***" if any(word in k.lower() for word in _SECRET_PARAMS) else v)
        for k, v in url.query.items()
    }
    return url.set(query=query).render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def _safe(value: str) -> str:
    try:
        return shown(make_url(value))
    except (ArgumentError, ValueError):
        return "<unparseable url>"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


class Database:
    """One database: an engine, a session factory and the migration state."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url: URL = make_url(url)
        self.safe_url = shown(self.url)
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
            kwargs["connect_args"] = {"connect_timeout": 10}
        try:
            self.engine: Engine = create_engine(self.url, **kwargs)
        except (ArgumentError, ImportError) as exc:
            raise ConfigError(f"database url {self.safe_url}: {exc}") from None
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"<Database {self.safe_url}>"

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite or not self.url.database or self.url.database == ":memory:":
            return None
        return Path(self.url.database)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back on any exception."""
        session = self._sessions()
        try:
            with session.begin():
                yield session
        except OperationalError as exc:
            raise DatabaseUnavailable(f"database {self.safe_url}: {_short(exc)}") from None
        finally:
            session.close()

    def session(self) -> Session:
        return self._sessions()

    # -- migrations ------------------------------------------------------------------------
    def _alembic_config(self) -> AlembicConfig:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", MIGRATIONS)
        # Alembic's config is ConfigParser-based: a literal "%" (a URL-encoded password) must be
        # doubled or it is read as interpolation syntax.
        url = self.url.render_as_string(hide_password=False).replace("%", "%%")
        cfg.set_main_option("sqlalchemy.url", url)
        return cfg

    def head_revision(self) -> str | None:
        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def current_revision(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                return MigrationContext.configure(conn).get_current_revision()
        except OperationalError as exc:
            raise DatabaseUnavailable(
                f"database {self.safe_url} is not reachable: {_short(exc)}"
            ) from None

    def has_tables(self) -> bool:
        try:
            with self.engine.connect() as conn:
                return bool(inspect(conn).get_table_names())
        except OperationalError as exc:
            raise DatabaseUnavailable(
                f"database {self.safe_url} is not reachable: {_short(exc)}"
            ) from None

    def upgrade(self) -> tuple[str | None, str | None]:
        """Apply pending migrations; returns (before, after) revisions.

        A database that holds tables but no coachbridge schema version belongs to something
        else: refused (``DatabaseBehindError``), never filled with our tables beside its own.
        """
        before = self.current_revision()
        if before is None and self.has_tables():
            raise DatabaseBehindError(
                f"database {self.safe_url} has tables but no coachbridge schema version; "
                "point --db at a coachbridge database or an empty one"
            )
        path = self.sqlite_path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.engine.begin() as conn:
                cfg = self._alembic_config()
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise DatabaseUnavailable(f"database {self.safe_url}: {_short(exc)}") from None
        return before, self.current_revision()

    def ensure_current(self) -> None:
        """Fail with a clear message unless the schema is at the latest migration.

        A new (empty) database is created at the latest version, so the default SQLite file
        needs no set-up.
        """
        path = self.sqlite_path
        if path is not None and not path.exists():
            if not path.parent.exists():
                raise ConfigError(f"database {self.safe_url}: folder {path.parent} does not exist")
            self.upgrade()
            return
        current = self.current_revision()
        head = self.head_revision()
        if current == head:
            return
        if current is None and not self.has_tables():
            self.upgrade()
            return
        if current is None:
            raise DatabaseBehindError(
                f"database {self.safe_url} has tables but no coachbridge schema version; "
                "point --db at a coachbridge database"
            )
        raise DatabaseBehindError(
            f"database {self.safe_url} is at schema {current}, this coachbridge needs {head}: "
            "run `coachbridge db upgrade`"
        )

    def dispose(self) -> None:
        self.engine.dispose()


def _short(exc: SQLAlchemyError) -> str:
    text = str(getattr(exc, "orig", exc) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
