"""HTTP endpoints: health (``/healthz``, ``/readyz``) and deliveries (``/webhooks/<connector>``).

Delivery checks run in the documented order (docs/webhooks.md): 404 unknown connector, 413 body
too large, 415 wrong content type, 401 signature, 400 malformed, then 202 new / 200 duplicate.
Error bodies are one generic line; the reason goes to the log, never to the sender.
"""

from __future__ import annotations

import json
import logging
from typing import IO, Any

from coachbridge import metrics
from coachbridge.connectors import Connector, WebhookRejected
from coachbridge.errors import CoachbridgeError, DatabaseUnavailable, NotFoundError
from coachbridge_webhooks import inbox, logs
from coachbridge_webhooks.runtime import Runtime
from flask import Blueprint, Response, current_app, jsonify, request

log = logging.getLogger("coachbridge.server")

health = Blueprint("health", __name__)
webhooks = Blueprint("webhooks", __name__)

MESSAGES = {
    400: "malformed delivery",
    401: "signature missing, invalid or stale",
    404: "not found",
    405: "method not allowed",
    413: "body too large",
    415: "unsupported content type",
    500: "internal error",
    503: "service unavailable",
}


#: What attacker-controlled input can make parsing code raise (huge numbers, deep nesting):
#: answered as a rejection and logged in one line, without a traceback.
BAD_INPUT = (ValueError, OverflowError, RecursionError)


def error(status: int) -> tuple[Response, int]:
    """The generic JSON error body for ``status``."""
    return jsonify(error=MESSAGES.get(status, "error")), status


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["coachbridge"]
    return rt


@health.get("/healthz")
def healthz() -> tuple[Response, int]:
    """The process is up."""
    return jsonify(status="ok"), 200


@health.get("/readyz")
def readyz() -> tuple[Response, int]:
    """The database answers and its schema is at the latest migration."""
    db = runtime().db
    try:
        current, head = db.current_revision(), db.head_revision()
    except CoachbridgeError:
        return jsonify(status="unavailable", database="unreachable"), 503
    except Exception:
        log.exception("readiness check failed")
        return jsonify(status="unavailable", database="error"), 503
    if current != head:
        return jsonify(status="unavailable", database="migrations pending"), 503
    return jsonify(status="ok", database="ok"), 200


def _connector(name: str) -> Connector | None:
    try:
        connector = runtime().intake_connector(name)
    except NotFoundError:
        return None
    return connector if connector.supports_webhooks else None


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    """The request's headers, names lower-cased, read straight from the WSGI environ.

    A plain dict costs a fraction of walking werkzeug's header view, and every delivery pays
    for it while the sender waits.
    """
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if key in environ:
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


def _read_body(stream: IO[bytes], limit: int) -> bytes | None:
    """The raw body, or None when it is larger than ``limit`` (read at most ``limit + 1``)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(min(65536, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return None if size > limit else b"".join(chunks)


def _answer(status: str, delivery_id: str, code: int) -> Response:
    body = json.dumps({"delivery_id": delivery_id, "status": status})
    return Response(body, code, mimetype="application/json")


@webhooks.post("/webhooks/<name>")
def receive(name: str) -> Response | tuple[Response, int]:
    """Verify, then store the delivery in the inbox; the worker does the rest."""
    connector = _connector(name)
    if connector is None:
        # The name comes from the sender: never a label value (or a log field) of its own.
        metrics.delivery_received(metrics.UNKNOWN_CONNECTOR, 404)
        return error(404)
    status = 500
    try:
        with logs.bound(connector=name):
            answer = _receive(name, connector)
        status = answer[1] if isinstance(answer, tuple) else answer.status_code
        return answer
    finally:
        metrics.delivery_received(name, status)


def _receive(name: str, connector: Connector) -> Response | tuple[Response, int]:
    rt = runtime()
    req = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
    limit = rt.config.server.max_body_bytes
    if req.content_length is not None and req.content_length > limit:
        return error(413)
    body = _read_body(req.stream, limit)
    if body is None:
        return error(413)
    mimetype = req.mimetype
    if mimetype not in connector.webhook_content_types:
        return error(415)
    headers = _headers(req.environ)
    try:
        delivery_id = connector.verify_webhook(headers, body)
    except WebhookRejected as exc:
        log.warning("webhook %s rejected (%s): %s", name, exc.status, exc.reason)
        return error(exc.status if exc.status in MESSAGES else 401)
    except BAD_INPUT as exc:  # hostile input a connector did not catch: a plain rejection
        log.warning("webhook %s rejected (401): %s", name, type(exc).__name__)
        return error(401)
    except Exception:  # a connector bug must not turn bad input into a 500
        log.exception("webhook %s: verification raised", name)
        return error(401)
    delivery_id = delivery_id or inbox.body_digest(body)
    logs.annotate(delivery_id=delivery_id)  # verified: the id is the sender's, not made up
    try:
        # Shape only: parse_webhook never calls the sender back (the worker fetches later).
        connector.parse_webhook(headers, body)
    except WebhookRejected as exc:
        log.warning("webhook %s rejected (%s): %s", name, exc.status, exc.reason)
        return error(exc.status if exc.status in MESSAGES else 400)
    except BAD_INPUT as exc:
        log.warning("webhook %s rejected (400): %s", name, type(exc).__name__)
        return error(400)
    except Exception:
        log.exception("webhook %s: parsing raised", name)
        return error(400)
    extensions = current_app.extensions
    try:
        new = extensions["coachbridge_inbox"].submit(name, delivery_id, mimetype, body)
    except DatabaseUnavailable as exc:
        log.error("webhook %s: %s", name, exc)
        return error(503)
    except Exception:  # the delivery was not stored: the sender must retry
        log.exception("webhook %s: storing the delivery failed", name)
        return error(503)
    if new:
        wake = extensions.get("coachbridge_wake")
        # is_set() reads a flag; set() takes the event's lock, which every request thread of
        # a burst would otherwise queue on (it stays set until the worker next goes idle).
        if wake is not None and not wake.is_set():
            wake.set()
        return _answer("accepted", delivery_id, 202)
    return _answer("duplicate", delivery_id, 200)


def bare() -> tuple[Response, int]:
    """Benchmark ceiling: no verification, no write (``POST /_bench/bare``, registered by the
    app only when enabled)."""
    request.get_data()
    return jsonify(status="accepted"), 202
