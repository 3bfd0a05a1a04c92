"""Running the app: gunicorn in production, Flask's own server with ``--dev``.

gunicorn runs ``[server] workers`` processes (threads inside each). With SQLite (the
single-machine default) the inbox worker also runs in-process, as a thread of whichever serving
process holds the lock file ``<db>.worker.lock``, so exactly one worker drains a SQLite inbox and
nothing else must be started. With PostgreSQL the inbox is drained by ``coachbridge worker``
processes (``--worker`` adds one in-process worker per serving process, which is safe there
thanks to row locks).

Metrics count across every serving process (prometheus_client's multiprocess mode): before
gunicorn forks, ``serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a directory (the one in the
environment, else a new temporary one, removed at exit), clears the files of processes that are
gone, and tells prometheus_client when a worker process ends (``child_exit``).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from coachbridge import metrics
from coachbridge.config import Config
from coachbridge.plugins import Registry
from coachbridge.store import Database
from coachbridge_webhooks import lockfile, logs
from coachbridge_webhooks.app import create_app
from coachbridge_webhooks.worker import Worker, run_in_thread
from gunicorn.app.base import BaseApplication

log = logging.getLogger("coachbridge.server")


def _build(config: Config, db_url: str, with_worker: bool, registry: Registry | None = None) -> Any:
    database = Database(db_url)
    database.ensure_current()
    wake = threading.Event() if with_worker else None
    app = create_app(config, database=database, registry=registry, wake=wake)
    if with_worker:
        worker = Worker(app.extensions["coachbridge"])
        worker.wake = wake  # type: ignore[assignment]
        run_in_thread(worker, lock=lockfile.for_database(database, "worker"))
        app.extensions["coachbridge_worker"] = worker
    return app


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any], loader: Any) -> None:
        self.options = options
        self.loader = loader
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self) -> Any:
        # Called in each worker process after the fork: engines and threads are made there.
        return self.loader()


def serve(
    config: Config,
    db_url: str,
    *,
    host: str,
    port: int,
    dev: bool = False,
    with_worker: bool | None = None,
    processes: int | None = None,
    threads: int = 32,
    log_format: str | None = None,
) -> None:
    """Serve until interrupted. ``log_format`` ("text" or "json") overrides
    ``[server] log_format``."""
    logs.configure_logging(log_format or config.server.log_format)
    is_sqlite = db_url.startswith("sqlite")
    if with_worker is None:
        with_worker = is_sqlite
    if dev:
        app = _build(config, db_url, with_worker)
        app.run(host=host, port=port, threaded=True, use_reloader=False)
        return
    workers = processes or config.server.workers
    _count_across_processes()
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "timeout": 60,
        "graceful_timeout": 10,
        "logger_class": logs.GunicornLogger,
        "child_exit": _child_exit,
    }
    _Gunicorn(options, lambda: _build(config, db_url, with_worker)).run()


def _count_across_processes() -> None:
    """Multiprocess metrics for the processes gunicorn is about to fork (see the docstring)."""
    given = metrics.multiprocess_dir()
    if given is not None:
        path = Path(given)
    else:
        path = Path(tempfile.mkdtemp(prefix="coachbridge-metrics-"))
        atexit.register(_remove_dir, path, os.getpid())
    metrics.enable_multiprocess(path)


def _remove_dir(path: Path, owner: int) -> None:
    if os.getpid() == owner:  # a forked worker runs atexit too: only the master removes it
        shutil.rmtree(path, ignore_errors=True)


def _child_exit(_server: Any, worker: Any) -> None:
    metrics.process_exited(worker.pid)
