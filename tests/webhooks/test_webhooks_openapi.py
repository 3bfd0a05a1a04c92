"""The OpenAPI document at /openapi.json: in step with Flask's routes, and fuzzed by Schemathesis.

Schemathesis generates requests from the document for every operation and runs them against the
WSGI app in this process (no network): no answer may be a 5xx, and each answer's status,
content type, headers and body must be the ones the document gives for that operation.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from coachbridge_bamboohr.webhooks import sign as bamboo_sign
from coachbridge_webhooks import create_app, standard_webhooks
from coachbridge_webhooks.routes import MESSAGES
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from tests.webhooks.conftest import CONFIG, ENV, SECRET, load, people_csv, shared_registry

# Flask adds HEAD to every GET rule and OPTIONS to every rule by itself; the document lists the
# methods the routes are written for.
AUTOMATIC = {"HEAD", "OPTIONS"}
EXTRA_ENV = {
    "BAMBOO_KEY": "bamboo-api-key-0123456789",
    "BAMBOO_HOOK": "bamboo-webhook-private-key",
    "WD_ID": "wd-client",
    "WD_SECRET": "wd-client-secret",
    "WD_REFRESH": "wd-refresh-token",
    "WD_HOOK_PASSWORD": "wd-hook-password",
    "METRICS_TOKEN": "metrics-token-for-the-scraper",
}

CONNECTORS = """
[connectors.bamboo]
plugin = "bamboohr"
company_domain = "acme"
api_key = "${BAMBOO_KEY}"
webhook_secret = "${BAMBOO_HOOK}"

[connectors.wd]
plugin = "workday"
base_url = "http://127.0.0.1:9"
tenant = "acme"
client_id = "${WD_ID}"
client_secret = "${WD_SECRET}"
refresh_token = "${WD_REFRESH}"
people_report = "isu/Workers"
reviews_report = "isu/Reviews"
webhook_username = "workday"
webhook_password = "${WD_HOOK_PASSWORD}"
"""


def write_full_config(folder: Path, db_url: str, *, token: bool) -> Path:
    """The webhook tests' config plus BambooHR and Workday connectors and a server secret."""
    (folder / "people.csv").write_text(people_csv(4, 2))
    server = '[server]\nsecret_key = "a-server-secret-key-of-32-chars!!"\n'
    if token:
        server += 'metrics_token = "${METRICS_TOKEN}"\n'
    text = CONFIG.format(db_url=db_url, capacity=2, extra=CONNECTORS).replace("[server]\n", server)
    path = folder / "coachbridge.toml"
    path.write_text(text)
    return path


def full_app(folder: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, *, token: bool) -> Flask:
    from coachbridge.store import Database

    for key, value in {**ENV, **EXTRA_ENV}.items():
        monkeypatch.setenv(key, value)
    registry = shared_registry()
    config = load(write_full_config(folder, db_url, token=token), registry)
    db = Database(db_url)
    db.upgrade()
    return create_app(config, database=db, registry=registry)


@pytest.fixture
def app(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    application = full_app(tmp_path, sqlite_url, monkeypatch, token=True)
    yield application
    application.extensions["coachbridge"].db.dispose()


def _document(app: Flask) -> dict[str, Any]:
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return dict(response.get_json())


def _shape(path: str) -> str:
    """A path with its parameters blanked: /webhooks/<name> and /webhooks/{connector} alike."""
    import re

    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def test_every_route_is_in_the_document_with_its_methods_and_nothing_else(app: Flask):
    doc = _document(app)
    documented = {
        (_shape(path), method.upper())
        for path, item in doc["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    routes = {
        (_shape(rule.rule), method)
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) - AUTOMATIC
    }
    concrete = {(p, m) for p, m in documented if "{}" not in p}
    # Every rule (templated as Flask writes it) is documented with exactly its methods ...
    assert routes <= documented
    # ... and every documented operation is a route: templated ones as rules, concrete ones
    # (a configured connector's own /webhooks/<name>) answered by a rule for that method.
    assert documented - concrete == routes - concrete
    adapter = app.url_map.bind("localhost")
    for path, method in concrete:
        try:
            endpoint, _ = adapter.match(path, method=method)
        except (NotFound, MethodNotAllowed, RequestRedirect) as exc:
            raise AssertionError(f"{method} {path} is documented but no route answers it") from exc
        assert endpoint in app.view_functions


def test_each_webhook_connector_has_its_own_headers_body_and_statuses_in_order(app: Flask):
    doc = _document(app)
    paths = doc["paths"]
    assert {p for p in paths if p.startswith("/webhooks/")} == {
        "/webhooks/{connector}",
        "/webhooks/bamboo",
        "/webhooks/reviews",
        "/webhooks/wd",
    }  # "hr" is a CSV connector: it receives no webhooks, so it has no path of its own
    order = ["404", "413", "415", "401", "400", "202", "200", "503"]
    assert list(paths["/webhooks/{connector}"]["post"]["responses"]) == order
    for name in ("bamboo", "reviews", "wd"):
        assert list(paths[f"/webhooks/{name}"]["post"]["responses"]) == order[1:]

    def header_names(name: str) -> set[str]:
        return {p["name"] for p in paths[f"/webhooks/{name}"]["post"]["parameters"]}

    assert header_names("bamboo") == {"X-BambooHR-Signature", "X-BambooHR-Timestamp"}
    assert header_names("reviews") == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    wd = paths["/webhooks/wd"]["post"]
    assert doc["components"]["securitySchemes"][wd["security"][0].popitem()[0]] == {
        "type": "http",
        "scheme": "basic",
        "description": "webhook_username and webhook_password of the connector",
    }
    assert set(wd["requestBody"]["content"]) == {"application/json", "text/json"}
    bamboo_body = paths["/webhooks/bamboo"]["post"]["requestBody"]["content"]["application/json"]
    assert [s["title"] for s in bamboo_body["schema"]["oneOf"]] == [
        "event-based",
        "field-based (legacy)",
    ]
    # The generic error line of each status is the one the route sends.
    for code in order:
        if code not in {"202", "200"}:
            assert (
                repr(MESSAGES[int(code)])
                in paths["/webhooks/{connector}"]["post"]["responses"][code]["description"]
            )


def test_metrics_is_described_with_its_token_only_when_one_is_configured(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, app: Flask
):
    with_token = _document(app)["paths"]["/metrics"]["get"]
    assert set(with_token["responses"]) == {"200", "401"}
    assert with_token["security"] == [{"metrics_token": []}]
    (tmp_path / "open").mkdir()
    plain_app = full_app(tmp_path / "open", sqlite_url, monkeypatch, token=False)
    plain = _document(plain_app)["paths"]["/metrics"]["get"]
    assert set(plain["responses"]) == {"200"} and "security" not in plain
    plain_app.extensions["coachbridge"].db.dispose()


def test_the_bench_route_is_a_route_and_documented_only_when_switched_on(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COACHBRIDGE_BENCH_BARE", "1")
    bench = full_app(tmp_path, sqlite_url, monkeypatch, token=False)
    assert "/_bench/bare" in _document(bench)["paths"]
    assert bench.test_client().post("/_bench/bare", data=b"{}").status_code == 202
    bench.extensions["coachbridge"].db.dispose()


# -- Schemathesis --------------------------------------------------------------------------
# (Its pytest integration, ``from_fixture(...).parametrize()``, does not run on pytest 9; each
# operation's strategy is driven by Hypothesis here instead.)
OPERATIONS = [
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/feedback/{token}"),
    ("POST", "/feedback/{token}"),
    ("GET", "/intake/{token}"),
    ("POST", "/intake/{token}"),
    ("GET", "/offers/{token}"),
    ("POST", "/offers/{token}"),
    ("GET", "/requests/{token}"),
    ("POST", "/requests/{token}"),
    ("POST", "/webhooks/{connector}"),
    ("POST", "/webhooks/bamboo"),
    ("POST", "/webhooks/reviews"),
    ("POST", "/webhooks/wd"),
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
#: Per operation: bounded so the whole run stays within seconds.
EXAMPLES = int(os.environ.get("COACHBRIDGE_FUZZ_EXAMPLES", "30"))


@pytest.fixture(scope="module", autouse=True)
def _no_gc_callback_left() -> Iterator[None]:
    """Hypothesis leaves a garbage-collector callback behind; when pytest-xdist ends its worker
    by interrupting the main thread, the interrupt can land in it and print a warning."""
    import gc

    before = list(gc.callbacks)
    yield
    gc.callbacks[:] = before


@pytest.fixture
def api_schema(app: Flask) -> Any:
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


def test_schemathesis_sees_every_operation(api_schema: Any) -> None:
    seen = {(r.ok().method.upper(), r.ok().path) for r in api_schema.get_all_operations()}
    # Its listing leaves out the address it loaded the document from (fuzzed below all the same).
    assert seen == set(OPERATIONS) - {("GET", "/openapi.json")}


def _sign(path: str, case: Any) -> None:
    """Sign the generated delivery as its sender would, so the checks after the signature
    (400, 202, 200) are reached too, not only the 401 a random signature gets."""
    raw = json.dumps(case.body).encode()
    case.body = raw  # sent as it is: the signature covers these very bytes
    headers = dict(case.headers or {})
    if path == "/webhooks/reviews":
        msg_id = headers.get("webhook-id") or "fuzz"
        signed = standard_webhooks.signed_headers(SECRET, msg_id, raw)
        headers.update({k: v for k, v in signed.items() if k != "content-type"})
    elif path == "/webhooks/bamboo":
        stamp = str(int(time.time()))
        headers["X-BambooHR-Timestamp"] = stamp
        headers["X-BambooHR-Signature"] = bamboo_sign(EXTRA_ENV["BAMBOO_HOOK"], raw, stamp)
    else:
        pair = f"workday:{EXTRA_ENV['WD_HOOK_PASSWORD']}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    case.headers = headers


#: The connectors' own paths, where the fuzzer signs three deliveries out of four.
SIGNED = {"/webhooks/reviews", "/webhooks/bamboo", "/webhooks/wd"}


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_answer_is_as_documented(api_schema: Any, method: str, path: str) -> None:
    operation = api_schema[path][method]
    statuses: set[int] = set()
    calls = [0]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def run(case: Any) -> None:
        calls[0] += 1
        if path in SIGNED and calls[0] % 4:
            _sign(path, case)
        response = case.call_and_validate(checks=CHECKS)
        statuses.add(response.status_code)

    run()
    assert statuses  # the operation was really called
    if path in SIGNED:  # signed deliveries got through to the inbox, and unsigned ones not
        assert {202, 401} <= statuses, statuses
