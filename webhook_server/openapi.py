"""The server's OpenAPI 3.1 document, served at ``/openapi.json``.

Built from the running app, so it describes this deployment exactly: every route, and for each
configured connector that receives webhooks its own ``/webhooks/<name>`` operation with the
headers and body its plugin describes (``Connector.webhook_openapi``). OpenAPI matches a
concrete path before a templated one, so ``/webhooks/{connector}`` stands for any other name
(404). tests/webhooks/test_webhooks_openapi.py keeps the document and Flask's routes in step
and fuzzes every operation with Schemathesis.
"""

from __future__ import annotations

import copy
from typing import Any

from coachbridge import __version__
from coachbridge_webhooks.logs import REQUEST_ID_HEADER
from coachbridge_webhooks.participant import HEADERS as PARTICIPANT_HEADERS
from coachbridge_webhooks.routes import MESSAGES
from coachbridge_webhooks.runtime import Runtime
from flask import Flask

#: What a connector name may look like (the config's rule for ``[connectors.<name>]``).
CONNECTOR_NAME = "^[A-Za-z0-9][A-Za-z0-9_-]*$"
#: A feedback token: URL-safe base64 and dots (itsdangerous), never "." or "..".
TOKEN = "^[A-Za-z0-9_-][A-Za-z0-9._-]*$"
#: The checks on a delivery, in the order the route runs them (docs/webhooks.md).
DELIVERY_ORDER = (404, 413, 415, 401, 400, 202, 200, 503)

_JSON = "application/json"
_HTML = "text/html"
_PROMETHEUS = "text/plain"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _headers(participant: bool = False) -> dict[str, Any]:
    headers: dict[str, Any] = {
        REQUEST_ID_HEADER: {
            "description": "the request's id: the client's X-Request-ID when it is plain "
            "(letters, digits, . _ : -; at most 128), else a new one; also in the log lines",
            "required": True,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
        }
    }
    if participant:
        for name, value in PARTICIPANT_HEADERS.items():
            headers[name] = {"required": True, "schema": {"const": value}}
        headers["Content-Security-Policy"] = {
            "required": True,
            "description": "nothing from elsewhere; the page's inline style by a nonce",
            "schema": {"type": "string", "pattern": "^default-src 'none'"},
        }
    return headers


def _json(description: str, schema: dict[str, Any], participant: bool = False) -> dict[str, Any]:
    return {
        "description": description,
        "headers": _headers(participant),
        "content": {_JSON: {"schema": schema}},
    }


def _error(status: int, description: str, participant: bool = False) -> dict[str, Any]:
    return _json(f"{description} (body: {MESSAGES[status]!r})", _ref("Error"), participant)


def _page(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": _headers(participant=True),
        "content": {_HTML: {"schema": {"type": "string"}}},
    }


def _delivery_responses(with_404: bool) -> dict[str, Any]:
    answers = {
        404: _error(404, "no connector of this name receives webhooks"),
        413: _error(413, "body larger than [server] max_body_bytes"),
        415: _error(415, "content type not one the connector accepts"),
        401: _error(401, "signature or credentials missing, invalid or stale"),
        400: _error(400, "the body is not a delivery the connector understands"),
        202: _json("stored: the worker processes it", _ref("Delivery")),
        200: _json("already stored under this delivery id: nothing new", _ref("Delivery")),
        503: _error(503, "could not be stored (database unavailable): send it again later"),
    }
    return {str(code): answers[code] for code in DELIVERY_ORDER if with_404 or code != 404}


def _delivery(
    summary: str,
    content_types: list[str],
    body: dict[str, Any],
    headers: list[dict[str, Any]],
    *,
    with_404: bool,
    security: list[dict[str, list[str]]] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "description": "Checks run in this order, the first failing one answers: 404, 413, "
        "415, 401, 400; then 202 (new) or 200 (duplicate). Error bodies are one generic line.",
        "tags": ["webhooks"],
        "parameters": headers,
        "requestBody": {
            "required": True,
            "content": {ctype: {"schema": body} for ctype in content_types},
        },
        "responses": _delivery_responses(with_404),
    }
    if security is not None:
        operation["security"] = security
    return operation


def _connector_param() -> dict[str, Any]:
    return {
        "name": "connector",
        "in": "path",
        "required": True,
        "description": "the connector's name in [connectors.<name>]",
        "schema": {"type": "string", "pattern": CONNECTOR_NAME},
    }


def _webhook_paths(rt: Runtime, components: dict[str, Any]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    all_types: set[str] = set()
    for name in sorted(rt.config.connectors):
        plugin = rt.config.connectors[name].plugin
        cls = rt.registry.connectors.get(plugin)
        if cls is None or not cls.supports_webhooks:
            continue
        all_types.update(cls.webhook_content_types)
        spec = copy.deepcopy(dict(cls.webhook_openapi or {}))
        security = None
        if "security" in spec:
            scheme = f"{name}_auth"
            components["securitySchemes"][scheme] = spec["security"]
            security = [{scheme: []}]
        paths[f"/webhooks/{name}"] = {
            "post": _delivery(
                f"A delivery for connector {name!r} (plugin {plugin!r})",
                list(cls.webhook_content_types),
                spec.get("body", {}),
                spec.get("headers", []),
                with_404=False,
                security=security,
            )
        }
    paths["/webhooks/{connector}"] = {
        "post": _delivery(
            "A delivery for a connector (any name not listed on its own: 404)",
            sorted(all_types or {_JSON}),
            {},
            [_connector_param()],
            with_404=True,
        )
    }
    return dict(sorted(paths.items()))


def _feedback() -> dict[str, Any]:
    token = {
        "name": "token",
        "in": "path",
        "required": True,
        "description": "the signed link from the invitation mail (a secret: not logged)",
        "schema": {"type": "string", "pattern": TOKEN},
    }
    pages = {
        "200": _page("the form (GET), or the thank-you page (POST)"),
        "400": _page("a post that did not come from the form, or an incomplete answer"),
        "404": _page("not a valid link"),
        "409": _page("the link was used already"),
        "410": _page("the link has expired (14 days)"),
        "503": _page("feedback is unavailable (no [server] secret_key, or no database)"),
    }
    form = {
        "type": "object",
        "properties": {
            "nonce": {"type": "string"},
            "outcome": {"enum": ["held", "missed", "rescheduled"]},
            "rating": {"enum": ["1", "2", "3", "4", "5"]},
            "comment": {"type": "string"},
            "private_note": {"type": "string"},
        },
    }
    post_pages = dict(pages)
    post_pages["413"] = _error(413, "form larger than 64 KiB", participant=True)
    return {
        "parameters": [token],
        "get": {
            "summary": "The session feedback form for a mailed link",
            "tags": ["participants"],
            "responses": pages,
        },
        "post": {
            "summary": "Answer the feedback form (the link works once)",
            "tags": ["participants"],
            "requestBody": {
                "required": True,
                "content": {"application/x-www-form-urlencoded": {"schema": form}},
            },
            "responses": dict(sorted(post_pages.items())),
        },
    }


def _intake() -> dict[str, Any]:
    token = {
        "name": "token",
        "in": "path",
        "required": True,
        "description": "the signed link from the intake mail (a secret: not logged)",
        "schema": {"type": "string", "pattern": TOKEN},
    }
    pages = {
        "200": _page(
            "the questionnaire, or the answers read-only once paired (GET); thanks (POST)"
        ),
        "404": _page("not a valid link, or the person is no longer enrolled"),
        "410": _page("the link has expired (the program's link_days)"),
        "503": _page("the questionnaire is unavailable (no [server] secret_key, or no database)"),
    }
    form = {
        "type": "object",
        "properties": {
            "nonce": {"type": "string"},
            "topic": {"type": "array", "items": {"type": "string"}},
            "goal": {"type": "string", "maxLength": 1000},
            "languages": {"type": "string"},
            "availability": {"type": "array", "items": {"type": "string"}},
        },
    }
    post_pages = dict(pages)
    post_pages["400"] = _page(
        "a post that did not come from the page, or an answer that does not fit (the question is named)"
    )
    post_pages["409"] = _page("the person is paired: the answers can no longer change")
    post_pages["413"] = _error(413, "form larger than 64 KiB", participant=True)
    return {
        "parameters": [token],
        "get": {
            "summary": "The intake questionnaire for a mailed link",
            "tags": ["participants"],
            "responses": pages,
        },
        "post": {
            "summary": "Answer the intake questionnaire (again, until paired)",
            "tags": ["participants"],
            "requestBody": {
                "required": True,
                "content": {"application/x-www-form-urlencoded": {"schema": form}},
            },
            "responses": dict(sorted(post_pages.items())),
        },
    }


def _choice(what: str, form: dict[str, Any]) -> dict[str, Any]:
    """``/offers/{token}`` (a learner picks a guide) or ``/requests/{token}`` (a guide answers)."""
    token = {
        "name": "token",
        "in": "path",
        "required": True,
        "description": "the signed link from the mail (a secret: not logged)",
        "schema": {"type": "string", "pattern": TOKEN},
    }
    pages = {
        "200": _page("the form (GET), or the thank-you page (POST)"),
        "400": _page("a post that did not come from the form, or a field named as wrong"),
        "404": _page("not a valid link"),
        "409": _page("already answered (another tab or person answered first)"),
        "410": _page("the time to answer is over"),
        "503": _page("unavailable (no [server] secret_key, or no database)"),
    }
    post_pages = dict(pages)
    post_pages["413"] = _error(413, "form larger than 64 KiB", participant=True)
    return {
        "parameters": [token],
        "get": {
            "summary": f"The {what} page for a mailed link",
            "tags": ["participants"],
            "responses": pages,
        },
        "post": {
            "summary": f"Answer the {what} page",
            "tags": ["participants"],
            "requestBody": {
                "required": True,
                "content": {"application/x-www-form-urlencoded": {"schema": form}},
            },
            "responses": dict(sorted(post_pages.items())),
        },
    }


def build(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of ``app`` (its runtime's config decides the connector paths)."""
    rt: Runtime = app.extensions["coachbridge"]
    components: dict[str, Any] = {
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
                "additionalProperties": False,
            },
            "Delivery": {
                "type": "object",
                "required": ["delivery_id", "status"],
                "properties": {
                    "delivery_id": {"type": "string"},
                    "status": {"enum": ["accepted", "duplicate"]},
                },
                "additionalProperties": False,
            },
        },
        "securitySchemes": {},
    }
    metrics_op: dict[str, Any] = {
        "summary": "Metrics in the Prometheus text format",
        "tags": ["operations"],
        "responses": {
            "200": {
                "description": "every metric, summed over all serving processes",
                "headers": _headers(),
                "content": {_PROMETHEUS: {"schema": {"type": "string"}}},
            }
        },
    }
    if rt.config.server.metrics_token is not None:
        components["securitySchemes"]["metrics_token"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "[server] metrics_token",
        }
        metrics_op["security"] = [{"metrics_token": []}]
        metrics_op["responses"]["401"] = _json("token missing or wrong", _ref("Error"))
    paths: dict[str, Any] = {
        "/healthz": {
            "get": {
                "summary": "The process is up",
                "tags": ["operations"],
                "responses": {
                    "200": _json(
                        "up",
                        {
                            "type": "object",
                            "required": ["status"],
                            "properties": {"status": {"const": "ok"}},
                        },
                    )
                },
            }
        },
        "/readyz": {
            "get": {
                "summary": "The database answers and its schema is at the latest migration",
                "tags": ["operations"],
                "responses": {
                    "200": _json("ready", _ready("ok", ["ok"])),
                    "503": _json(
                        "not ready",
                        _ready("unavailable", ["unreachable", "error", "migrations pending"]),
                    ),
                },
            }
        },
        "/metrics": {"get": metrics_op},
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "tags": ["operations"],
                "responses": {"200": _json("the OpenAPI 3.1 document", {"type": "object"})},
            }
        },
        "/feedback/{token}": _feedback(),
        "/intake/{token}": _intake(),
        "/offers/{token}": _choice(
            "offers",
            {
                "type": "object",
                "properties": {"nonce": {"type": "string"}, "offer": {"type": "string"}},
            },
        ),
        "/requests/{token}": _choice(
            "request",
            {
                "type": "object",
                "properties": {
                    "nonce": {"type": "string"},
                    "answer": {"enum": ["accept", "decline"]},
                    "reason": {"type": "string"},
                },
            },
        ),
        **_webhook_paths(rt, components),
    }
    if "webhooks.bare" in app.view_functions:
        paths["/_bench/bare"] = {
            "post": {
                "summary": "Benchmark ceiling: no check, no write (COACHBRIDGE_BENCH_BARE=1)",
                "tags": ["benchmark"],
                "responses": {
                    "202": _json(
                        "read and dropped",
                        {"type": "object", "properties": {"status": {"const": "accepted"}}},
                    )
                },
            }
        }
    if not components["securitySchemes"]:
        del components["securitySchemes"]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "coachbridge webhook server",
            "version": __version__,
            "description": "Webhook intake, participant pages and operations endpoints "
            "(docs/webhooks.md).",
        },
        "paths": paths,
        "components": components,
    }


def _ready(status: str, database: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["status", "database"],
        "properties": {"status": {"const": status}, "database": {"enum": database}},
    }
