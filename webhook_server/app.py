"""The Flask application factory."""

from __future__ import annotations

import os
import threading
from typing import Any

from coachbridge.config import Config
from coachbridge.plugins import Registry
from coachbridge.store import Database
from coachbridge_webhooks.inbox import GroupCommitter
from coachbridge_webhooks.routes import MESSAGES, error, health, webhooks
from coachbridge_webhooks.runtime import Runtime
from flask import Flask
from werkzeug.exceptions import HTTPException

#: Set to 1 to expose ``POST /_bench/bare`` (the benchmark's ceiling endpoint). Never in production.
BENCH_ENV = "COACHBRIDGE_BENCH_BARE"


def create_app(
    config: Config,
    *,
    database: Database | None = None,
    registry: Registry | None = None,
    wake: threading.Event | None = None,
) -> Flask:
    """Build the app for ``config`` (database and plugins from the config unless given).

    ``wake`` (optional) is set after each new delivery so an in-process worker starts at once.
    """
    app = Flask("coachbridge_webhooks")
    app.config["MAX_CONTENT_LENGTH"] = None  # the route enforces [server] max_body_bytes itself
    if config.server.secret_key is not None:
        app.config["SECRET_KEY"] = config.server.secret_key.get_secret_value()
    rt = Runtime.build(config, database=database, registry=registry)
    app.extensions["coachbridge"] = rt
    app.extensions["coachbridge_inbox"] = GroupCommitter(rt.db)
    if wake is not None:
        app.extensions["coachbridge_wake"] = wake
    app.register_blueprint(health)
    app.register_blueprint(webhooks)
    from coachbridge_webhooks.feedback_bp import feedback  # the session feedback form

    app.register_blueprint(feedback)
    if os.environ.get(BENCH_ENV) != "1":
        # The bare route is registered by the blueprint; without the switch it answers 404.
        app.view_functions["webhooks.bare"] = lambda: error(404)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        return error(status if status in MESSAGES else 400)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        app.logger.exception("unexpected error")
        return error(500)

    return app
