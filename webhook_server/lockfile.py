"""Advisory lock files (``flock``) that serialize SQLite writers across serving processes.

SQLite lets one writer in at a time and makes the others wait in its busy handler, which
polls: it sleeps 1, 2, 5, 10, ... up to 100 ms between tries. Under a burst of deliveries the
serving processes' intake writers then spend most of their time asleep while the lock is free.
A writer that first queues on a lock file instead is woken by the kernel the moment the
previous one releases it. The lock is released when its file is closed, so a killed process
never leaves it held.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coachbridge.store import Database


class LockFile:
    """An exclusive ``flock`` on ``path`` (created if missing). Not reentrant.

    One instance is one open file description: two instances exclude each other even inside
    one process, so each writer (or worker) keeps its own.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._guard = threading.Lock()  # opening the file once, whichever thread comes first

    def __repr__(self) -> str:
        return f"<LockFile {self.path}>"

    def _file(self) -> int:
        with self._guard:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            return self._fd

    def acquire(self, *, blocking: bool = True) -> bool:
        """Take the lock (waiting for it unless ``blocking`` is false); True when held."""
        flags = fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
        try:
            fcntl.flock(self._file(), flags)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Release the lock and close the file."""
        with self._guard:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> LockFile:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def beside(database_path: Path, purpose: str) -> Path:
    """The lock file for ``purpose`` next to a SQLite database file (``<db>.<purpose>.lock``)."""
    return database_path.with_name(f"{database_path.name}.{purpose}.lock")


def for_database(db: Database, purpose: str) -> LockFile | None:
    """The ``purpose`` lock file of a SQLite database file; None for other databases (and an
    in-memory SQLite, which no other process can open)."""
    path = db.sqlite_path
    return LockFile(beside(path, purpose)) if path is not None else None
