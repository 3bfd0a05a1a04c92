"""Where connectors keep the secrets their vendor hands out (``coachbridge.connectors.TokenStore``).

Two places, chosen per connector:

- the database (default): table ``connector_tokens``, each value encrypted with Fernet
  (``cryptography``: AES-128-CBC with an HMAC-SHA256) under a key derived from
  ``[server] secret_key`` with HKDF-SHA256, so a copy of the database alone does not give the
  token away. The lock is a row lock (an ``UPDATE`` of the key's row, held until the transaction
  ends): PostgreSQL locks the row, SQLite the database file, and the other process waits.
- a token file (``[connectors.<name>] token_file``): JSON, mode 0600, written atomically (a
  temporary file renamed over it); the lock is ``flock`` on ``<file>.lock``.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coachbridge.config import Config
from coachbridge.connectors import (
    ConnectorConfig,
    ConnectorContext,
    StoredToken,
    TokenSlot,
    TokenStore,
)
from coachbridge.errors import ConnectorError
from coachbridge.store.db import Database
from coachbridge.store.tables import ConnectorTokenRow
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

log = logging.getLogger(__name__)

_HKDF_SALT = b"coachbridge connector tokens v1"


def fernet_for(secret_key: str, connector: str) -> Fernet:
    """The cipher of one connector's tokens: HKDF-SHA256 of the server secret, per connector."""
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=_HKDF_SALT,
        info=f"connector:{connector}".encode(),
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


class _Slot:
    def __init__(self, current: StoredToken | None, save: Callable[[str, str | None], None]):
        self._current = current
        self._save = save

    @property
    def current(self) -> StoredToken | None:
        return self._current

    def save(self, value: str, origin: str | None) -> None:
        self._save(value, origin)
        self._current = StoredToken(value, origin, datetime.now(UTC))


class DatabaseTokenStore:
    """One connector's tokens in ``connector_tokens``; the database is opened on first use."""

    def __init__(
        self, connector: str, database: Callable[[], Database], secret_key: str | None
    ) -> None:
        self.connector = connector
        self._database = database
        self._fernet = fernet_for(secret_key, connector) if secret_key else None

    def __repr__(self) -> str:
        return f"<DatabaseTokenStore {self.connector!r}>"

    @property
    def where(self) -> str:
        if self._fernet is None:
            return "nowhere ([server] secret_key is not set)"
        return "the database (encrypted)"

    def _decrypt(self, row: ConnectorTokenRow | None) -> StoredToken | None:
        if row is None or not row.ciphertext or self._fernet is None or row.updated_at is None:
            return None
        try:
            value = self._fernet.decrypt(row.ciphertext.encode()).decode()
        except InvalidToken:
            log.warning(
                "connector %s: the stored %s cannot be decrypted ([server] secret_key changed?); "
                "using the configured one",
                self.connector,
                row.key,
            )
            return None
        return StoredToken(value, row.origin, row.updated_at)

    def peek(self, key: str) -> StoredToken | None:
        if self._fernet is None:
            return None
        with self._database().transaction() as session:
            return self._decrypt(session.get(ConnectorTokenRow, (self.connector, key)))

    @contextlib.contextmanager
    def locked(self, key: str) -> Iterator[TokenSlot]:
        if self._fernet is None:  # nothing can be kept or read: no lock is worth the database

            def refuse(value: str, origin: str | None) -> None:
                raise ConnectorError(
                    f"connector {self.connector}: cannot keep the new {key}: set "
                    f"[server] secret_key (it encrypts it) or "
                    f"connectors.{self.connector}.token_file"
                )

            yield _Slot(None, refuse)
            return
        db = self._database()
        pk = (self.connector, key)
        with contextlib.suppress(IntegrityError), db.transaction() as session:
            if session.get(ConnectorTokenRow, pk) is None:
                session.add(ConnectorTokenRow(connector=self.connector, key=key))
        with db.transaction() as session:
            # The UPDATE takes the lock (PostgreSQL: the row; SQLite: the write lock) until the
            # transaction ends; only then is the row read, so a waiter sees the winner's token.
            session.execute(
                update(ConnectorTokenRow)
                .where(ConnectorTokenRow.connector == self.connector, ConnectorTokenRow.key == key)
                .values(locked_at=datetime.now(UTC))
            )
            row = session.execute(
                select(ConnectorTokenRow).where(
                    ConnectorTokenRow.connector == self.connector, ConnectorTokenRow.key == key
                )
            ).scalar_one()

            def save(value: str, origin: str | None) -> None:
                assert self._fernet is not None
                row.ciphertext = self._fernet.encrypt(value.encode()).decode()
                row.origin = origin
                row.updated_at = datetime.now(UTC)
                session.flush()

            yield _Slot(self._decrypt(row), save)


class FileTokenStore:
    """One connector's tokens in a JSON file of mode 0600 (``token_file``)."""

    def __init__(self, connector: str, path: Path) -> None:
        self.connector = connector
        self.path = path

    def __repr__(self) -> str:
        return f"<FileTokenStore {self.connector!r} {str(self.path)!r}>"

    @property
    def where(self) -> str:
        return f"token file {self.path}"

    def _fail(self, problem: str) -> ConnectorError:
        return ConnectorError(
            f"connector {self.connector}: token file {self.path}: {problem}; check "
            f"connectors.{self.connector}.token_file"
        )

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise self._fail(exc.strerror or type(exc).__name__) from None
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError:
            raise self._fail("not JSON") from None
        if not isinstance(data, dict):
            raise self._fail("not a JSON object")
        return data

    def _entry(self, data: dict[str, Any], key: str) -> StoredToken | None:
        entry = data.get(key)
        if not isinstance(entry, dict) or not isinstance(entry.get("value"), str):
            return None
        try:
            updated = datetime.fromisoformat(str(entry.get("updated_at")))
        except ValueError:
            updated = datetime.fromtimestamp(self.path.stat().st_mtime, UTC)
        origin = entry.get("origin")
        return StoredToken(entry["value"], origin if isinstance(origin, str) else None, updated)

    def peek(self, key: str) -> StoredToken | None:
        return self._entry(self._read(), key)

    def _write(self, data: dict[str, Any]) -> None:
        folder = self.path.parent
        try:
            fd, tmp = tempfile.mkstemp(prefix=".tokens-", dir=folder)  # created 0600
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)
            raise self._fail(exc.strerror or type(exc).__name__) from None

    @contextlib.contextmanager
    def locked(self, key: str) -> Iterator[TokenSlot]:
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise self._fail(f"cannot lock ({exc.strerror or type(exc).__name__})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = self._read()

            def save(value: str, origin: str | None) -> None:
                data[key] = {
                    "value": value,
                    "origin": origin,
                    "updated_at": datetime.now(UTC).isoformat(),
                }
                self._write(data)

            yield _Slot(self._entry(data, key), save)
        finally:
            os.close(fd)  # closing releases the flock


def token_store(
    name: str,
    config: ConnectorConfig,
    *,
    base_dir: Path,
    database: Callable[[], Database],
    secret_key: str | None,
) -> TokenStore:
    """The store of connector ``name``: its ``token_file`` if set, else the database."""
    if config.token_file is not None:
        path = config.token_file.expanduser()
        return FileTokenStore(name, path if path.is_absolute() else base_dir / path)
    return DatabaseTokenStore(name, database, secret_key)


def connector_context(
    config: Config, name: str, database: Callable[[], Database]
) -> ConnectorContext:
    """The context the core builds connector ``name`` with: its token store included."""
    secret = config.server.secret_key
    tokens = token_store(
        name,
        config.connector(name),
        base_dir=config.base_dir,
        database=database,
        secret_key=secret.get_secret_value() if secret is not None else None,
    )
    return ConnectorContext(name=name, base_dir=config.base_dir, tokens=tokens)
