"""A local fake Workday tenant on loopback, for end-to-end tests and the benchmark.

It follows what Workday publishes (staffing v6 OpenAPI: paging, worker fields, check-ins,
supervisory organizations; RaaS customreport2 with ``format=json``, ``?xsds``, prompts) and the
quirks integrators report: empty fields left out of a row, a multi-valued field a string when it
holds one value and a list when it holds several, booleans as ``"0"``/``"1"``, 429/500
throttling without ``Retry-After``, ``{"error": ..., "errors": [...]}`` bodies, the OAuth
refresh-token grant with ``invalid_grant``. Scenario switches let tests break it on purpose.
"""

from __future__ import annotations

import base64
import json
import random
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Flask, Response, request
from werkzeug.serving import make_server

PROMPT_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2}$")
DATE_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PEOPLE_REPORT = "isu_coaching/Coaching_Workers"
REVIEWS_REPORT = "isu_coaching/Coaching_Reviews"
PEOPLE_COLUMNS = (
    "Employee_ID",
    "Worker_WID",
    "First_Name",
    "Last_Name",
    "Email_-_Work",
    "Business_Title",
    "Supervisory_Organization",
    "Location",
    "Time_Zone",
    "Manager_ID",
    "Hire_Date",
    "Active",
    "Management_Level",
    "Skills",
)
REVIEW_COLUMNS = (
    "Employee_ID",
    "Employee_Review_ID",
    "Review_Period",
    "Overall_Rating",
    "Completed_On",
)
_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")
_SKILLS = ("Python", "SQL", "Negotiation", "Public Speaking", "Leadership", "Design", "Finance")
_TZ = ("Europe/Berlin", "America/New_York", "America/Los_Angeles", "Asia/Tokyo")
_LEVELS = ("1 Individual Contributor", "2 Senior", "3 Lead", "4 Manager", "5 Senior Manager")


@dataclass
class FakeWorker:
    employee_id: str
    wid: str
    first: str
    last: str
    email: str | None
    title: str | None
    location: str | None
    timezone: str | None
    manager_id: str | None
    hire_date: date
    level: str | None
    skills: list[str] = field(default_factory=list)
    active: bool = True
    updated: datetime = field(default_factory=lambda: datetime(2024, 1, 1, tzinfo=UTC))
    # A multi-instance group column (Training, Completed_On, Expiration_Date) or plain names.
    trainings: list[Any] = field(default_factory=list)


def make_workers(n: int, seed: int = 7) -> list[FakeWorker]:
    """A reporting tree of ``n`` workers (worker 0 at the top), deterministic for a seed."""
    rng = random.Random(seed)
    workers = []
    for i in range(n):
        # A span of control of about 7, as in most org charts; managers come first.
        boss = min(i - 1, max(0, (i - 1) // 7 + rng.choice((-1, 0, 0, 1))))
        manager = None if i == 0 else f"E{boss:06d}"
        skills = rng.sample(_SKILLS, rng.randrange(0, 4))
        workers.append(
            FakeWorker(
                employee_id=f"E{i:06d}",
                wid=f"{rng.getrandbits(128):032x}",
                first=rng.choice(_FIRST),
                last=f"{rng.choice(_LAST)}{i}",
                email=f"worker{i}@acme.example",
                title=None if rng.random() < 0.05 else rng.choice(("Engineer", "Analyst", "Lead")),
                location=rng.choice(("Berlin", "New York", "Tokyo")),
                timezone=rng.choice(_TZ),
                manager_id=manager,
                hire_date=date(2015, 1, 1) + timedelta(days=rng.randrange(0, 3000)),
                level=rng.choice(_LEVELS),
                skills=skills,
            )
        )
    return workers


@dataclass
class FakeReview:
    employee_id: str
    review_id: str
    cycle: str
    rating: str
    completed: str | None


class FakeWorkday:
    """The tenant's state plus scenario switches. ``log`` records (method, path, query)."""

    def __init__(self, workers: list[FakeWorker] | None = None, tenant: str = "acme") -> None:
        self.tenant = tenant
        self.client_id = "cb-client"
        self.client_secret = "s3cret-client"
        self.refresh_token = "refresh-abc"
        # Rotating tenants answer each grant with a new refresh token and forget the old one
        # (as public integrations report of Workday); ``token_delay`` widens the window in which
        # two processes refresh at once.
        self.rotate_refresh = False
        self.token_delay = 0.0
        self.grants = 0
        self.isu = ("isu_coaching", "isu-pass")
        self.expires_in: int | None = 3600
        self.tokens: dict[str, float] = {}
        self.workers: dict[str, FakeWorker] = {w.employee_id: w for w in workers or []}
        self.reviews: list[FakeReview] = []
        self.versions = {"staffing": {"v6"}, "talentManagement": {"v2"}}
        self.xsd_enabled = True
        # Employee ids the staffing collection leaves out (a worker the ISU sees in the report
        # but not through Worker Data: Public Worker Reports).
        self.unlisted: set[str] = set()
        # The XSD type of the people report's Updated_From prompt: "dateTime" or "date" (a Date
        # prompt refuses a date-time and filters by day), or None to leave it out of the schema.
        self.prompt_type: str | None = "dateTime"
        self.hidden_columns: set[str] = set()
        self.forbidden: list[str] = []
        self.failures: list[tuple[str, int]] = []  # (path regex, status), consumed in order
        # (path regex, status) answered to a write AFTER it was applied, as a gateway that gave
        # up on a request Workday still processed; consumed in order.
        self.lost_answers: list[tuple[str, int]] = []
        self.report_mode = "json"  # json | html | xml | truncated
        self.mentorships: dict[str, dict[str, Any]] = {}
        self.check_ins: dict[str, dict[str, Any]] = {}
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._reports: dict[str, list[str]] | None = None
        self._reports_size = 0
        self.app = self._build()
        self._server: Any = None
        self.url = ""

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> FakeWorkday:
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def count(self, method: str, pattern: str) -> int:
        return sum(1 for m, p, _ in self.log if m == method and re.search(pattern, p))

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _error(status: int, message: str, errors: list[dict[str, str]] | None = None) -> Response:
        body: dict[str, Any] = {"error": message}
        if errors is not None:
            body["errors"] = errors
        return Response(json.dumps(body), status=status, mimetype="application/json")

    def _authorized(self, allow_basic: bool) -> bool:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            expiry = self.tokens.get(header[7:])
            return expiry is not None and expiry > time.monotonic()
        if allow_basic and header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return (user, password) == self.isu
        return False

    def _injected(self) -> Response | None:
        with self._lock:
            for index, (pattern, status) in enumerate(self.failures):
                if re.search(pattern, request.path):
                    del self.failures[index]
                    return self._error(
                        status, "Too many requests" if status == 429 else "Server busy"
                    )
        for pattern in self.forbidden:
            if re.search(pattern, request.path):
                return self._error(
                    403,
                    "The task submitted is not authorized.",
                    [{"error": "The task submitted is not authorized.", "code": "S22"}],
                )
        return None

    def _worker(self, ref: str) -> FakeWorker | None:
        if ref.startswith("Employee_ID="):
            return self.workers.get(ref.split("=", 1)[1])
        return next((w for w in self.workers.values() if w.wid == ref), None)

    # -- people as Workday shows them ------------------------------------------------------
    def reports_of(self) -> dict[str, list[str]]:
        """Manager id -> direct reports' ids (cached; call ``changed()`` after re-parenting)."""
        if self._reports is None or self._reports_size != len(self.workers):
            reports: dict[str, list[str]] = {}
            for w in self.workers.values():
                if w.manager_id:
                    reports.setdefault(w.manager_id, []).append(w.employee_id)
            self._reports, self._reports_size = reports, len(self.workers)
        return self._reports

    def changed(self) -> None:
        self._reports = None

    def org_of(self, worker: FakeWorker) -> str:
        """Managers sit in the organization they manage; others in their manager's."""
        manages = worker.employee_id in self.reports_of()
        if manages or worker.manager_id is None:
            return f"ORG-{worker.employee_id}"
        return f"ORG-{worker.manager_id}"

    def people_row(self, w: FakeWorker) -> dict[str, Any]:
        row: dict[str, Any] = {
            "Employee_ID": w.employee_id,
            "Worker_WID": w.wid,
            "First_Name": w.first,
            "Last_Name": w.last,
            "Email_-_Work": w.email,
            "Business_Title": w.title,
            "Supervisory_Organization": f"Team {w.manager_id or w.employee_id}",
            "Location": w.location,
            "Time_Zone": w.timezone,
            "Manager_ID": w.manager_id,
            "Hire_Date": w.hire_date.isoformat(),
            "Active": "1" if w.active else "0",
            "Management_Level": w.level,
            # The quirk: one value is a string, several a list, none: no key at all.
            "Skills": w.skills[0] if len(w.skills) == 1 else (w.skills or None),
            "Trainings": w.trainings[0] if len(w.trainings) == 1 else (w.trainings or None),
        }
        return {
            k: v for k, v in row.items() if v not in (None, "", []) and k not in self.hidden_columns
        }

    def review_row(self, r: FakeReview) -> dict[str, Any]:
        row = {
            "Employee_ID": r.employee_id,
            "Employee_Review_ID": r.review_id,
            "Review_Period": r.cycle,
            "Overall_Rating": r.rating,
            "Completed_On": r.completed,
        }
        return {k: v for k, v in row.items() if v is not None}

    def worker_json(self, w: FakeWorker) -> dict[str, Any]:
        org = self.org_of(w)
        return {
            "id": w.wid,
            "descriptor": f"{w.first} {w.last}",
            "workerId": w.employee_id,
            "workerType": {"id": "wt-employee", "descriptor": "Employee"},
            "person": {"id": f"p-{w.wid[:8]}", "email": w.email},
            "primaryJob": {
                "id": f"job-{w.wid[:8]}",
                "descriptor": w.title or "",
                "businessTitle": w.title,
                "supervisoryOrganization": {"id": org, "descriptor": f"Team {org[4:]}"},
                "location": {"id": f"loc-{w.location}", "descriptor": w.location, "country": {}},
            },
        }

    def org_json(self, org_id: str) -> dict[str, Any]:
        head = self.workers.get(org_id[4:])
        return {
            "id": org_id,
            "descriptor": f"Team {org_id[4:]}",
            "name": f"Team {org_id[4:]}",
            "code": org_id,
            "inactive": False,
            "managers": [{"id": head.wid, "descriptor": f"{head.first} {head.last}"}]
            if head
            else [],
        }

    def check_in_json(self, check_in: str) -> dict[str, Any]:
        """A check-in as staffing v6 answers it: only the properties its check-in detail names
        (the worker it belongs to is the fake's own bookkeeping, not part of the answer)."""
        documented = ("date", "description", "associatedTopics", "checkInAttachments")
        stored = self.check_ins[check_in]
        return {"id": check_in, **{k: stored[k] for k in documented if k in stored}}

    def org_ids(self) -> list[str]:
        heads = set(self.reports_of()) | {
            w.employee_id for w in self.workers.values() if w.manager_id is None
        }
        return sorted(f"ORG-{head}" for head in heads)

    # -- the app ---------------------------------------------------------------------------
    def _build(self) -> Flask:
        app = Flask("fake_workday")
        t = self

        @app.before_request
        def _log() -> None:
            t.log.append((request.method, request.path, dict(request.args)))

        @app.after_request
        def _lose_answer(response: Response) -> Response:
            if request.method == "GET" or response.status_code >= 400:
                return response
            with t._lock:
                for index, (pattern, status) in enumerate(t.lost_answers):
                    if re.search(pattern, request.path):
                        del t.lost_answers[index]
                        return t._error(status, "Gateway timeout")
            return response

        @app.post("/ccx/oauth2/<tenant>/token")
        def token(tenant: str) -> Response:
            form = request.form
            if tenant != t.tenant:
                return t._error(404, "Resource not found")
            if (form.get("client_id"), form.get("client_secret")) != (t.client_id, t.client_secret):
                return Response(
                    json.dumps({"error": "invalid_client", "error_description": "Invalid client"}),
                    status=401,
                    mimetype="application/json",
                )
            if (
                form.get("grant_type") != "refresh_token"
                or form.get("refresh_token") != t.refresh_token
            ):
                return Response(
                    json.dumps(
                        {"error": "invalid_grant", "error_description": "Invalid refresh token"}
                    ),
                    status=400,
                    mimetype="application/json",
                )
            if t.token_delay:
                time.sleep(t.token_delay)
            t.grants += 1
            if t.rotate_refresh:
                t.refresh_token = f"refresh-{secrets.token_hex(8)}"
            access = secrets.token_hex(16)
            t.tokens[access] = time.monotonic() + (t.expires_in or 900)
            body: dict[str, Any] = {
                "access_token": access,
                "token_type": "Bearer",
                "refresh_token": t.refresh_token,
            }
            if t.expires_in is not None:
                body["expires_in"] = t.expires_in
            return Response(json.dumps(body), mimetype="application/json")

        @app.get("/ccx/service/customreport2/<tenant>/<owner>/<name>")
        def report(tenant: str, owner: str, name: str) -> Response:
            if not t._authorized(allow_basic=True):
                return t._error(401, "Invalid username or password")
            injected = t._injected()
            if injected is not None:
                return injected
            ref = f"{owner}/{name}"
            if tenant != t.tenant or ref not in (PEOPLE_REPORT, REVIEWS_REPORT):
                return Response(
                    "<html><head><title>Not Found</title></head><body>Report not found</body></html>",
                    status=404,
                    mimetype="text/html",
                )
            columns = PEOPLE_COLUMNS if ref == PEOPLE_REPORT else REVIEW_COLUMNS
            if "xsds" in request.args or "xsd" in request.args:
                if not t.xsd_enabled:
                    return t._error(404, "Resource not found")
                prompts = {"Updated_From": t.prompt_type} if t.prompt_type else {}
                if ref != PEOPLE_REPORT:
                    prompts = {}
                return Response(xsd_for(columns, prompts), mimetype="application/xml")
            if request.args.get("format") != "json":
                return Response("<wd:Report_Data/>", mimetype="application/xml")
            if t.report_mode == "html":
                return Response("<html><body>Sign in</body></html>", mimetype="text/html")
            if t.report_mode == "xml":
                return Response(
                    '<?xml version="1.0"?><wd:Report_Data/>', mimetype="application/xml"
                )
            since = request.args.get("Updated_From")
            by_day = t.prompt_type == "date"
            if since is not None and not (DATE_FORMAT if by_day else PROMPT_FORMAT).match(since):
                kind = "date" if by_day else "date-time"
                return t._error(400, f"Invalid {kind} for prompt Updated_From: {since}")
            if ref == PEOPLE_REPORT:
                cutoff = datetime.fromisoformat(since) if since else None
                if cutoff is not None and by_day:
                    cutoff = cutoff.replace(tzinfo=UTC)
                rows: Iterator[dict[str, Any]] = (
                    t.people_row(w)
                    for w in list(t.workers.values())
                    if cutoff is None or w.updated >= cutoff
                )
            else:
                rows = (t.review_row(r) for r in list(t.reviews))
            return Response(
                stream_report(rows, truncate=t.report_mode == "truncated"),
                mimetype="application/json",
            )

        def api_guard(service: str, version: str, tenant: str) -> Response | None:
            if version not in t.versions.get(service, set()) or tenant != t.tenant:
                return t._error(404, "Resource not found")
            if not t._authorized(allow_basic=False):
                return t._error(401, "Invalid resource or operation", [{"error": "invalid token"}])
            return t._injected()

        def paged(items: list[Any], render: Any = lambda item: item) -> Response:
            try:
                limit = int(request.args.get("limit", 20))
                offset = int(request.args.get("offset", 0))
            except ValueError:
                return t._error(400, "Invalid request")
            if limit > 100 or limit < 1:
                return t._error(
                    400, "Invalid request", [{"error": "limit must be 1..100", "field": "limit"}]
                )
            page = [render(item) for item in items[offset : offset + limit]]
            return Response(
                json.dumps({"data": page, "total": len(items)}), mimetype="application/json"
            )

        @app.get("/ccx/api/staffing/<version>/<tenant>/workers")
        def workers(version: str, tenant: str) -> Response:
            denied = api_guard("staffing", version, tenant)
            if denied is not None:
                return denied
            terminated = request.args.get("includeTerminatedWorkers") == "true"
            items = [
                w
                for w in t.workers.values()
                if (w.active or terminated) and w.employee_id not in t.unlisted
            ]
            search = (request.args.get("search") or "").lower().split()
            if search:  # "by name or worker ID", case-insensitive, terms ORed
                items = [
                    w
                    for w in items
                    if any(
                        term in (w.employee_id.lower(), w.first.lower(), w.last.lower())
                        for term in search
                    )
                ]
            return paged(items, t.worker_json)

        @app.get("/ccx/api/staffing/<version>/<tenant>/supervisoryOrganizations")
        def orgs(version: str, tenant: str) -> Response:
            denied = api_guard("staffing", version, tenant)
            if denied is not None:
                return denied
            return paged(t.org_ids(), t.org_json)

        @app.get("/ccx/api/staffing/<version>/<tenant>/supervisoryOrganizations/<org>/orgChart")
        def org_chart(version: str, tenant: str, org: str) -> Response:
            denied = api_guard("staffing", version, tenant)
            if denied is not None:
                return denied
            head = t.workers.get(org[4:])
            superior = t.org_json(f"ORG-{head.manager_id}") if head and head.manager_id else None
            reports = t.reports_of()
            subs = [t.org_json(f"ORG-{e}") for e in reports.get(org[4:], []) if e in reports]
            chart = {
                "id": org,
                "descriptor": f"Team {org[4:]}",
                "superior": superior,
                "subordinates": subs,
            }
            return paged([chart])

        @app.route(
            "/ccx/api/staffing/<version>/<tenant>/workers/<worker>/checkIns", methods=["POST"]
        )
        def create_check_in(version: str, tenant: str, worker: str) -> Response:
            denied = api_guard("staffing", version, tenant)
            if denied is not None:
                return denied
            if t._worker(worker) is None:
                return t._error(404, "Resource not found")
            body = request.get_json(silent=True) or {}
            if not body.get("date"):
                return t._error(
                    400, "Invalid request", [{"error": "date is required", "field": "date"}]
                )
            new_id = secrets.token_hex(16)
            t.check_ins[new_id] = {"worker": worker, **body}
            return Response(
                json.dumps(t.check_in_json(new_id)), status=201, mimetype="application/json"
            )

        @app.route(
            "/ccx/api/staffing/<version>/<tenant>/workers/<worker>/checkIns/<sub>",
            methods=["PATCH"],
        )
        def update_check_in(version: str, tenant: str, worker: str, sub: str) -> Response:
            denied = api_guard("staffing", version, tenant)
            if denied is not None:
                return denied
            if sub not in t.check_ins:
                return t._error(404, "Resource not found")
            t.check_ins[sub].update(request.get_json(silent=True) or {})
            return Response(json.dumps(t.check_in_json(sub)), mimetype="application/json")

        @app.post("/ccx/api/talentManagement/<version>/<tenant>/createMentorshipForWorker")
        def create_mentorship(version: str, tenant: str) -> Response:
            denied = api_guard("talentManagement", version, tenant)
            if denied is not None:
                return denied
            body = request.get_json(silent=True) or {}
            errors = []
            for role in ("mentee", "mentor"):
                ref = (body.get(role) or {}).get("id", "")
                if t._worker(ref) is None:
                    errors.append(
                        {
                            "error": f"Invalid ID value. '{ref}' is not a valid ID value for type = Worker",
                            "field": role,
                        }
                    )
            for key in ("startDate", "endDate", "purpose"):
                if not body.get(key):
                    errors.append({"error": f"{key} is required", "field": key})
            if not (body.get("mentorType") or {}).get("id"):
                errors.append({"error": "mentorType is required", "field": "mentorType"})
            if errors:
                return t._error(400, "Invalid request", errors)
            new_id = secrets.token_hex(16)
            t.mentorships[new_id] = {"state": "in progress", **body}
            answer = {
                "id": new_id,
                "descriptor": "Mentorship",
                "businessProcessParameters": {"overallStatus": "Successfully Completed"},
            }
            return Response(json.dumps(answer), status=201, mimetype="application/json")

        @app.post("/ccx/api/talentManagement/<version>/<tenant>/mentorships/<mid>/<action>")
        def mentorship_action(version: str, tenant: str, mid: str, action: str) -> Response:
            denied = api_guard("talentManagement", version, tenant)
            if denied is not None:
                return denied
            if mid not in t.mentorships or action not in ("close", "edit"):
                return t._error(404, "Resource not found")
            body = request.get_json(silent=True) or {}
            if action == "close":
                if not (body.get("closeMentorshipReason") or {}).get("id"):
                    return t._error(
                        400,
                        "Invalid request",
                        [
                            {
                                "error": "closeMentorshipReason is required",
                                "field": "closeMentorshipReason",
                            }
                        ],
                    )
                t.mentorships[mid].update(state="closed", close=body)
            else:
                t.mentorships[mid].update(body)
            return Response(json.dumps({"id": mid}), mimetype="application/json")

        @app.post("/_fake/touch")
        def touch() -> Response:
            """Benchmark control: change the first ``count`` workers' titles now."""
            count = int(request.args.get("count", 100))
            now = datetime.now(UTC)
            for worker in list(t.workers.values())[:count]:
                worker.title = "Changed"
                worker.updated = now
            return Response(json.dumps({"touched": count}), mimetype="application/json")

        return app


def xsd_for(columns: tuple[str, ...], prompts: dict[str, str] | None = None) -> str:
    elements = "\n".join(
        f'            <xsd:element name="{c}" type="xsd:string" minOccurs="0"'
        + (' maxOccurs="unbounded"/>' if c == "Skills" else "/>")
        for c in columns
    )
    # Prompts as typed attributes of the report's data: where Workday places them is not in a
    # public document, and the connector reads any typed declaration outside the rows.
    attributes = "".join(
        f'\n            <xsd:attribute name="{name}" type="xsd:{kind}"/>'
        for name, kind in (prompts or {}).items()
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:wd="urn:com.workday.report/Coaching"
  elementFormDefault="qualified" targetNamespace="urn:com.workday.report/Coaching">
    <xsd:element name="Report_Data" type="wd:Report_DataType"/>
    <xsd:complexType name="Report_EntryType">
        <xsd:sequence>
{elements}
        </xsd:sequence>
    </xsd:complexType>
    <xsd:complexType name="Report_DataType">
        <xsd:sequence>
            <xsd:element name="Report_Entry" type="wd:Report_EntryType" minOccurs="0" maxOccurs="unbounded"/>
        </xsd:sequence>{attributes}
    </xsd:complexType>
</xsd:schema>
"""


def stream_report(rows: Iterator[dict[str, Any]], *, truncate: bool = False) -> Iterator[bytes]:
    """``{"Report_Entry": [...]}`` written row by row (never built whole in memory).

    ``truncate`` cuts the body inside the second row, as a dropped connection would.
    """
    yield b'{"Report_Entry": ['
    batch: list[str] = []
    first = True
    for row in rows:
        batch.append(json.dumps(row))
        if truncate:
            break
        if len(batch) == 200:
            yield (("" if first else ",") + ",".join(batch)).encode()
            first = False
            batch = []
    if truncate:
        yield (
            ",".join(batch) + (',{"Employee_ID": "E0' if batch else '{"Employee_ID": "E0')
        ).encode()
        return
    if batch:
        yield (("" if first else ",") + ",".join(batch)).encode()
    yield b"]}"
