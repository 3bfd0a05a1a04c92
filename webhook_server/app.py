"""The Flask application factory."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from coachbridge.config import Config
from coachbridge.plugins import Registry
from coachbridge.store import Database
from coachbridge_webhooks import logs, openapi
from coachbridge_webhooks.inbox import GroupCommitter
from coachbridge_webhooks.metrics_bp import observability
from coachbridge_webhooks.routes import MESSAGES, bare, error, health, webhooks
from coachbridge_webhooks.runtime import Runtime
from flask import Flask, Response, g, request
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
    app = Flask("coachbridge_webhooks", static_folder=None)  # no static files to serve
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
    from coachbridge_webhooks.intake_bp import intake  # the intake questionnaire

    app.register_blueprint(intake)

    from coachbridge_webhooks.choice_bp import choice  # the offers and requests pages

    app.register_blueprint(choice)
    app.register_blueprint(observability)
    if os.environ.get(BENCH_ENV) == "1":
        app.add_url_rule("/_bench/bare", "webhooks.bare", bare, methods=["POST"])
    _request_ids(app)

    @app.get("/openapi.json")
    def openapi_document() -> Response:
        document = app.extensions.get("coachbridge_openapi")
        if document is None:  # built once: the routes and the config do not change
            document = app.extensions["coachbridge_openapi"] = openapi.build(app)
        # Not jsonify: it sorts keys, and the statuses' order is the order of the checks.
        return Response(json.dumps(document), 200, mimetype="application/json")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        body, code = error(status if status in MESSAGES else 400)
        allow = dict(exc.get_headers()).get("Allow") if code == 405 else None
        if allow:  # RFC 9110: a 405 names the methods the address does take
            body.headers["Allow"] = allow
        return body, code

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        app.logger.exception("unexpected error")
        return error(500)

    return app


def _request_ids(app: Flask) -> None:
    """Every request gets an id (the client's ``X-Request-ID`` when plain, else a new one):
    on every log line written while it is handled, and in the answer's header."""

    @app.before_request
    def _bind() -> None:
        rid = logs.request_id(request.headers.get(logs.REQUEST_ID_HEADER))
        g.request_id = rid
        g.log_token = logs.bind(request_id=rid)

    @app.after_request
    def _echo(response: Response) -> Response:
        rid = g.get("request_id")
        if rid is not None:
            response.headers[logs.REQUEST_ID_HEADER] = rid
        return response

    @app.teardown_request
    def _unbind(_exc: BaseException | None) -> None:
        token = g.pop("log_token", None)
        if token is not None:
            logs.unbind(token)
