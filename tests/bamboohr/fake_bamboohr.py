"""A local fake BambooHR: a threaded HTTP server on 127.0.0.1 with an ephemeral port.

It reproduces the documented quirks a connector must survive (see BambooHR's API documentation
and its OpenAPI spec in tests/bamboohr/spec/): both base URL forms, Basic auth
with the key as username, JSON only for ``Accept: application/json`` (XML otherwise), the custom
report's exact Content-Type / ``format`` rules and silently dropped fields, ``changed`` keyed by
id, training record lists that are ``[]`` when empty, goal ids as strings, and throttling with
``Retry-After``. Every request is logged with the spec path template it matched.

Every answer a handler gives is held to the spec (``spec_check``: its status documented for
the operation, its JSON body valid against the documented schema); a violation fails the test
when the fake stops. Injected faults are failures on purpose and are not checked.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.bamboohr import spec_check


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


@dataclass
class Logged:
    method: str
    template: str  # the spec path it matched, e.g. /api/v1/employees/changed
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class FakeBambooHR:
    company: str = "acme"
    api_key: str = "0123456789abcdef0123456789abcdef01234567"
    employees: dict[str, dict[str, Any]] = field(default_factory=dict)
    hidden_fields: set[str] = field(default_factory=set)
    changes: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (action, when)
    goals: dict[str, dict[str, Any]] = field(default_factory=dict)
    training_types: dict[str, dict[str, Any]] = field(default_factory=dict)
    training_records: dict[str, dict[str, Any]] = field(default_factory=dict)
    throttle: list[tuple[int, str | None]] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)  # "html" | "xml" | "truncated" | "500"
    # Statuses answered to writes AFTER they were applied: a gateway that gave up on a request
    # BambooHR still processed (502/504).
    lost_answers: list[int] = field(default_factory=list)
    forbidden: bool = False
    # The key's user may not see training settings: training types answer 403.
    training_forbidden: bool = False
    # How the custom report names fields in its answer: "alias" (as asked) or "id" (the numeric
    # field id of GET /api/v1/meta/fields; the spec only says "the field ID").
    report_keys: str = "alias"
    _field_numbers: dict[str, int] = field(default_factory=dict)
    log: list[Logged] = field(default_factory=list)
    # Answers BambooHR's OpenAPI document does not allow (see spec_check); stop() fails on any.
    violations: list[str] = field(default_factory=list)
    check_spec: bool = True
    _next_id: int = 100
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- data helpers ---------------------------------------------------------------------
    def add_employee(self, emp: str, when: str | None = None, **fields: Any) -> None:
        when = when or now_iso()
        fields.setdefault("status", "Active")
        fields["lastChanged"] = when
        existing = emp in self.employees
        self.employees[emp] = {"id": emp, **fields}
        self.changes[emp] = ("Updated" if existing else "Inserted", when)

    def update_employee(self, emp: str, when: str | None = None, **fields: Any) -> None:
        when = when or now_iso()
        self.employees[emp].update(fields, lastChanged=when)
        self.changes[emp] = ("Updated", when)

    def add_training(
        self,
        emp: str,
        name: str,
        completed: str,
        *,
        renewable: bool = False,
        frequency: int | None = None,
    ) -> int:
        """A training record of ``emp`` (the training type is made on first use); its id."""
        type_id = next(
            (int(k) for k, t in self.training_types.items() if t.get("name") == name), None
        )
        if type_id is None:
            type_id = self.new_id()
            kind: dict[str, Any] = {"id": type_id, "name": name, "renewable": renewable}
            if frequency is not None:
                kind["frequency"] = frequency
            self.training_types[str(type_id)] = kind
        record_id = self.new_id()
        self.training_records[str(record_id)] = {
            "id": record_id,
            "employeeId": emp,
            "completed": completed,
            "type": type_id,
            "notes": None,
        }
        return record_id

    def field_number(self, name: str) -> int:
        """The field's numeric id, as GET /api/v1/meta/fields lists it (stable per fake)."""
        if name not in self._field_numbers:
            self._field_numbers[name] = 4000 + len(self._field_numbers)
        return self._field_numbers[name]

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def calls(self, template: str | None = None, method: str | None = None) -> list[Logged]:
        return [
            c
            for c in self.log
            if (template is None or c.template == template)
            and (method is None or c.method == method)
        ]

    # -- server ---------------------------------------------------------------------------
    def start(self) -> str:
        self._server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self.violations:
            raise AssertionError(spec_check.describe(self.violations))

    @property
    def host_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def gateway_url(self) -> str:
        return f"{self.host_url}/api/gateway.php/{self.company}"

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        with self._lock:
            response = self.handle(request)
        return response(environ, start_response)

    # -- dispatch -------------------------------------------------------------------------
    ROUTES: tuple[tuple[str, str, str], ...] = (
        ("POST", "/v1/reports/custom", "report"),
        ("GET", "/v1/employees/changed", "changed"),
        ("GET", "/v1/meta/fields", "meta_fields"),
        ("GET", "/v1/meta/lists", "meta_lists"),
        ("GET", "/v1/performance/employees/{employeeId}/goals", "list_goals"),
        ("POST", "/v1/performance/employees/{employeeId}/goals", "create_goal"),
        ("PUT", "/v1_1/performance/employees/{employeeId}/goals/{goalId}", "update_goal"),
        ("POST", "/v1/performance/employees/{employeeId}/goals/{goalId}/close", "close_goal"),
        ("GET", "/v1/training/type", "list_types"),
        ("POST", "/v1/training/type", "create_type"),
        ("GET", "/v1/training/record/employee/{employeeId}", "list_records"),
        ("POST", "/v1/training/record/employee/{employeeId}", "create_record"),
        ("PUT", "/v1/training/record/{employeeTrainingRecordId}", "update_record"),
    )

    def handle(self, request: Request) -> Response:
        path = request.path
        gateway = re.match(r"^/api/gateway\.php/([^/]+)(/v.*)$", path)
        if gateway:
            if gateway.group(1) != self.company:
                return Response("Company not found", 404, mimetype="text/html")
            rest = gateway.group(2)
        elif path.startswith("/api/v"):
            rest = path[len("/api") :]
        else:
            return Response("<html><body>Not found</body></html>", 404, mimetype="text/html")
        auth = request.authorization
        if auth is None or auth.type != "basic":
            return Response(
                "",
                401,
                headers={"WWW-Authenticate": 'Basic realm="BambooHR"'},
                mimetype="text/plain",
            )
        if auth.username != self.api_key:
            return Response("", 401, headers={"X-BambooHR-Error-Message": "Invalid API key"})
        if self.forbidden:
            return Response("", 403, headers={"X-BambooHR-Error-Message": "API access is off"})
        for method, template, handler in self.ROUTES:
            pattern = "^" + re.sub(r"\{[^}]+\}", r"([^/]+)", template) + "$"
            match = re.match(pattern, rest)
            if match and request.method == method:
                body = None
                if request.data:
                    try:
                        body = json.loads(request.data)
                    except ValueError:
                        body = request.data
                self.log.append(
                    Logged(
                        method,
                        "/api" + template,
                        rest,
                        dict(request.args),
                        body,
                        dict(request.headers),
                    )
                )
                if self.throttle:
                    status, after = self.throttle.pop(0)
                    headers = {"Retry-After": after} if after is not None else {}
                    headers["X-BambooHR-Error-Message"] = "Too many requests"
                    return Response("", status, headers=headers)
                if self.faults:
                    fault = self.faults.pop(0)
                    return self._fault(fault)
                response = getattr(self, "h_" + handler)(request, body, *match.groups())
                if self.check_spec and not getattr(response, "injected", False):
                    problem = spec_check.violation(request, "/api" + rest, response)
                    if problem:
                        self.violations.append(problem)
                if method != "GET" and self.lost_answers:
                    return Response("", self.lost_answers.pop(0))
                return response
        return Response("", 404, headers={"X-BambooHR-Error-Message": "Unknown path"})

    @staticmethod
    def _fault(kind: str) -> Response:
        """A failure on purpose (a login page, XML, a cut-off body, a 500): never spec-checked."""
        if kind == "html":
            response = Response(
                "<!DOCTYPE html><html><body>Log in</body></html>", 200, mimetype="text/html"
            )
        elif kind == "xml":
            response = Response('<?xml version="1.0"?><report/>', 200, mimetype="text/xml")
        elif kind == "truncated":
            response = Response(
                '{"employees": [{"id": "1", "firstN', 200, mimetype="application/json"
            )
        else:
            response = Response("", 500, headers={"X-BambooHR-Error-Message": "Internal error"})
        response.injected = True  # type: ignore[attr-defined]
        return response

    @staticmethod
    def _json(request: Request, data: Any, status: int = 200) -> Response:
        if request.headers.get("Accept") != "application/json":
            return Response('<?xml version="1.0"?><response/>', status, mimetype="application/xml")
        return Response(json.dumps(data), status, mimetype="application/json")

    @staticmethod
    def _refused(status: int, message: str) -> Response:
        """An error the spec documents with a JSON body (of no given shape) and the message
        in BambooHR's header."""
        return Response(
            "{}", status, mimetype="application/json", headers={"X-BambooHR-Error-Message": message}
        )

    # -- handlers -------------------------------------------------------------------------
    def h_report(self, request: Request, body: Any) -> Response:
        fmt = request.args.get("format")
        if fmt is None:
            if request.headers.get("Accept") not in ("application/json", "text/xml"):
                return Response("", 404)
            fmt = "json" if request.headers.get("Accept") == "application/json" else "xml"
        if fmt.lower() != "json":
            return Response("", 404) if fmt.lower() not in ("xml", "csv") else Response("<x/>", 200)
        if request.headers.get("Content-Type") != "application/json" or not isinstance(body, dict):
            return Response("", 400, headers={"X-BambooHR-Error-Message": "Malformed XML"})
        fields = body.get("fields") or []
        if len(fields) > 400:
            return Response("", 400, headers={"X-BambooHR-Error-Message": "Too many fields"})
        visible = [f for f in fields if f not in self.hidden_fields]
        filters = body.get("filters") or {}
        ids = filters.get("employeeIds")
        wanted = None if ids is None else {str(i) for i in ids}
        rows = []
        for emp, data in self.employees.items():
            if wanted is not None and emp not in wanted:
                continue
            row: dict[str, Any] = {"id": emp}
            for name in visible:
                value = data.get(name)
                # The spec types every value a string: an empty field is "", never null.
                row[self._answer_key(name)] = "" if value is None else str(value)
            rows.append(row)
        out = {
            "title": body.get("title", ""),
            "fields": [{"id": self._answer_key(f), "type": "text", "name": f} for f in visible],
            "employees": rows,
        }
        return Response(json.dumps(out), 200, mimetype="application/json")

    def _answer_key(self, name: str) -> str:
        if self.report_keys == "id" and any(name in e for e in self.employees.values()):
            return str(self.field_number(name))
        return name

    def h_changed(self, request: Request, body: Any) -> Response:
        since = request.args.get("since")
        try:
            since_at = datetime.fromisoformat((since or "").replace("Z", "+00:00"))
        except ValueError:
            return Response("", 400, headers={"X-BambooHR-Error-Message": "Invalid since"})
        out: dict[str, Any] = {}
        latest = since
        for emp, (action, when) in self.changes.items():
            if datetime.fromisoformat(when) > since_at:
                out[emp] = {"id": emp, "action": action, "lastChanged": when}
                latest = max(latest or when, when)
        return self._json(request, {"latest": latest, "employees": out})

    def h_meta_fields(self, request: Request, body: Any) -> Response:
        names = sorted({k for e in self.employees.values() for k in e} - {"id"})
        data = [{"id": self.field_number(n), "name": n, "type": "text", "alias": n} for n in names]
        return self._json(request, data)

    def h_meta_lists(self, request: Request, body: Any) -> Response:
        """Department, division and location are list fields: their options are the values the
        employees hold."""
        data = []
        for name in ("department", "division", "location"):
            values = sorted({str(e[name]) for e in self.employees.values() if e.get(name)})
            data.append(
                {
                    "fieldId": str(self.field_number(name)),
                    "name": name.capitalize(),
                    "alias": name,
                    "manageable": "yes",
                    "multiple": "no",
                    "options": [
                        {"id": i, "name": v, "archived": "no"} for i, v in enumerate(values, 1)
                    ],
                }
            )
        return self._json(request, data)

    def _goal_body_ok(self, emp: str, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "body is not an object"
        for key in ("title", "dueDate", "sharedWithEmployeeIds"):
            if key not in body:
                return f"{key} is required"
        if int(emp) not in body["sharedWithEmployeeIds"]:
            return "sharedWithEmployeeIds must include the owner"
        if body.get("percentComplete") == 100 and not body.get("completionDate"):
            return "completionDate is required at 100"
        if "completionDate" in body and body.get("percentComplete") != 100:
            return "completionDate is only valid when percentComplete is 100"
        return None

    def h_list_goals(self, request: Request, body: Any, emp: str) -> Response:
        goals = [g for g in self.goals.values() if g["employeeId"] == emp]
        return self._json(request, {"goals": goals})

    def h_create_goal(self, request: Request, body: Any, emp: str) -> Response:
        if emp not in self.employees:
            return Response("", 403)
        problem = self._goal_body_ok(emp, body)
        if problem:
            return Response("", 400, headers={"X-BambooHR-Error-Message": problem})
        goal_id = str(self.new_id())
        goal = {"id": goal_id, "employeeId": emp, "status": "in_progress", **body}
        self.goals[goal_id] = goal
        return self._json(
            request, {"goal": {k: v for k, v in goal.items() if k != "employeeId"}}, 201
        )

    def h_update_goal(self, request: Request, body: Any, emp: str, goal_id: str) -> Response:
        goal = self.goals.get(goal_id)
        if goal is None or goal["employeeId"] != emp:
            return self._refused(404, "Goal not found")
        problem = self._goal_body_ok(emp, body)
        if problem:
            return Response("", 400, headers={"X-BambooHR-Error-Message": problem})
        goal.update(body)
        return self._json(request, {"goal": goal})

    def h_close_goal(self, request: Request, body: Any, emp: str, goal_id: str) -> Response:
        goal = self.goals.get(goal_id)
        if goal is None or goal["employeeId"] != emp:
            return Response("", 404)
        goal["status"] = "closed"
        return self._json(request, {"goal": goal}, 201)

    def h_list_types(self, request: Request, body: Any) -> Response:
        if self.training_forbidden:
            return self._refused(403, "Permission denied")
        return self._json(request, self.training_types)

    def h_create_type(self, request: Request, body: Any) -> Response:
        if self.training_forbidden:
            return self._refused(403, "Permission denied")
        if not isinstance(body, dict) or not body.get("name"):
            return Response("", 400)
        type_id = self.new_id()
        self.training_types[str(type_id)] = {"id": type_id, **body}
        return self._json(request, {"id": type_id, **body}, 201)

    def h_list_records(self, request: Request, body: Any, emp: str) -> Response:
        if emp not in self.employees:
            return self._refused(404, "Employee not found")
        wanted = request.args.get("type")
        if wanted is not None and not wanted.isdigit():
            return self._refused(400, "type must be a training type id")
        records = {
            k: {**self._record_answer(r), "type": str(r["type"])}  # a string on list answers
            for k, r in self.training_records.items()
            if r["employeeId"] == emp and (wanted is None or str(r["type"]) == wanted)
        }
        return self._json(request, records or [])  # [] when empty: the documented quirk

    def h_create_record(self, request: Request, body: Any, emp: str) -> Response:
        if not isinstance(body, dict) or "completed" not in body or "type" not in body:
            return Response("", 400, headers={"X-BambooHR-Error-Message": "completed and type"})
        if str(body["type"]) not in self.training_types:
            return Response("", 400, headers={"X-BambooHR-Error-Message": "unknown type"})
        record_id = self.new_id()
        record = {"id": record_id, "employeeId": emp, **body}
        self.training_records[str(record_id)] = record
        return self._json(request, self._record_answer(record), 201)

    @staticmethod
    def _record_answer(record: dict[str, Any]) -> dict[str, Any]:
        """A training record as BambooHR answers it: hours and credits are strings."""
        out = dict(record)
        for key in ("hours", "credits"):
            if out.get(key) is not None:
                out[key] = f"{out[key]:g}" if isinstance(out[key], float) else str(out[key])
        return out

    def h_update_record(self, request: Request, body: Any, record_id: str) -> Response:
        record = self.training_records.get(record_id)
        if record is None:
            return Response("", 404)
        if not isinstance(body, dict) or "completed" not in body:
            return Response("", 400)
        record.update(body)
        return self._json(
            request, {**self._record_answer(record), "type": str(record["type"])}, 201
        )
