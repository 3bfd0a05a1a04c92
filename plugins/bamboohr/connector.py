"""The BambooHR connector: people and ratings in, goals and sessions out, webhooks verified.

Requests per sync do not grow with head count:

- full: one custom report (``POST /api/v1/reports/custom?format=JSON``) of every employee,
  active and inactive. It does not page; the deprecated-but-documented report is used rather
  than the dataset API because datasets use different field names and the report accepts the
  classic aliases (and custom-field aliases) companies already know.
- incremental: ``GET /api/v1/employees/changed?since=<cursor>`` (a map keyed by id), then one
  report restricted to those ids (``filters.employeeIds``), plus, only when managers are named
  by employee number or email, one thin report to translate them.

The people cursor is JSON: ``{"since": <BambooHR's latest change timestamp>, "supervisor":
<which supervisor field names managers>}``; the reviews cursor remembers each employee's last
seen rating so that only a *change* of the rating field becomes a review event.

Streams: people (incremental), trainings (read only for the people a program's guide filter
admits, see ``trainings``) and, when ``rating_field`` is set, reviews (a full stream whose
cursor is that memory). Within one sync the reviews stream reads the rows the people stream
fetched, through the core's ``SyncContext`` (no second report); read on its own it fetches the
report itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from coachbridge.connectors import (
    PEOPLE,
    REVIEWS,
    TRAININGS,
    CheckResult,
    Connector,
    ConnectorContext,
    Discovery,
    FoundColumn,
    ParsedDelivery,
    PeopleBatch,
    PushItem,
    PushKind,
    PushResult,
    ReviewBatch,
    SyncContext,
    TrainingBatch,
    WebhookRejected,
)
from coachbridge.domain import PersonRecord, ReviewEvent
from coachbridge.errors import ConnectorError
from coachbridge.mapping import propose_mapping
from coachbridge_bamboohr import mapping, webhooks
from coachbridge_bamboohr.client import BambooHRClient
from coachbridge_bamboohr.config import BambooHRConfig
from coachbridge_bamboohr.trainings import TrainingReader
from coachbridge_bamboohr.writeback import Writer

log = logging.getLogger(__name__)

REPORT_PATH = "v1/reports/custom"
CHANGED_PATH = "v1/employees/changed"
# Ids per filtered report: keeps a request body well under any proxy limit; a window of more
# changes than this costs one more request per chunk, never one per employee.
IDS_PER_REPORT = 5000
# Where the people stream leaves its report rows for the reviews stream of the same sync.
_ROWS = "bamboohr.report_rows"


def _since_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


class BambooHRConnector(Connector):
    """Reads people and ratings from one BambooHR company and writes goals and sessions back."""

    config_model: ClassVar[type[BambooHRConfig]] = BambooHRConfig  # type: ignore[assignment]
    supports_push: ClassVar[bool] = True
    supports_webhooks: ClassVar[bool] = True
    push_kinds: tuple[PushKind, ...] = ("goal", "session")
    webhook_content_types: ClassVar[tuple[str, ...]] = ("application/json",)
    webhook_openapi: ClassVar[Mapping[str, Any] | None] = webhooks.OPENAPI

    config: BambooHRConfig

    def __init__(self, config: BambooHRConfig, context: ConnectorContext) -> None:  # type: ignore[override]
        super().__init__(config, context)
        self.client = BambooHRClient(
            config.api_root,
            config.api_key.get_secret_value(),
            timeout=min(config.timeout, context.http_timeout),
            max_retries=config.max_retries,
            max_retry_wait=config.max_retry_wait,
            user_agent=context.user_agent,
            connector=context.name,
        )
        self._writer = Writer(self.client, config)
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # tests move it
        self._ids: mapping.FieldIds | None = None  # field metadata, fetched when first needed
        # Only what this company writes back, so switched-off kinds are not even built.
        self.push_kinds = tuple(
            kind
            for kind, on in (("goal", config.push_goals), ("session", config.push_sessions))
            if on
        )
        # Ratings are a stream only where a field holds them. Trainings are read only for the
        # people a program's guide filter names (see ``trainings``): no program, no request.
        self.streams = (PEOPLE, REVIEWS, TRAININGS) if config.rating_field else (PEOPLE, TRAININGS)

    def source_label(self, stream: str) -> str:
        return f"BambooHR {self.config.company_domain} ({self.name})"

    # -- reading ---------------------------------------------------------------------------
    @property
    def requested_fields(self) -> list[str]:
        return mapping.report_fields(self.config.rating_field, self.config.fields)

    def _report(
        self,
        fields: Sequence[str],
        employee_ids: Sequence[str] | None = None,
        client: BambooHRClient | None = None,
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Rows of one custom report and the field ids BambooHR actually returned."""
        body: dict[str, Any] = {"title": "coachbridge", "fields": list(fields)}
        if employee_ids is not None:
            ids = [int(i) for i in employee_ids if str(i).isdigit()]
            body["filters"] = {"employeeIds": ids}
        answer = (client or self.client).request(
            "POST",
            REPORT_PATH,
            params={"format": "JSON", "onlyCurrent": "true"},
            json_body=body,
            idempotent=True,  # a report reads; repeating it is harmless
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("employees"), list):
            raise ConnectorError(
                f"BambooHR POST {REPORT_PATH}: the answer has no employees list "
                "(not a custom report answer)"
            )
        rows = [r for r in answer["employees"] if isinstance(r, dict)]
        returned = [str(f.get("id")) for f in answer.get("fields") or [] if isinstance(f, dict)]
        asked = set(fields) | {"id"}
        if any(key not in asked for key in returned) or any(
            key not in asked for row in rows for key in row
        ):
            # The answer names fields otherwise than asked (numeric ids for aliases, or the
            # reverse): map them back through the field metadata, fetched once per run.
            rows, returned = mapping.align_answer(rows, returned, fields, self._field_ids(client))
        for row in rows:
            row["id"] = str(row.get("id", "")).strip()
        return rows, returned

    def _field_ids(self, client: BambooHRClient | None = None) -> mapping.FieldIds:
        if self._ids is None:
            meta = (client or self.client).request("GET", "v1/meta/fields")
            if not isinstance(meta, list):
                raise ConnectorError(
                    "BambooHR GET v1/meta/fields: the answer is not a list of fields"
                )
            self._ids = mapping.FieldIds(f for f in meta if isinstance(f, dict))
        return self._ids

    def _changed(self, since: str) -> tuple[dict[str, str], str | None]:
        """``{employee id: action}`` changed since ``since``, and BambooHR's ``latest``."""
        answer = self.client.request("GET", CHANGED_PATH, params={"since": since, "type": "all"})
        if not isinstance(answer, dict):
            raise ConnectorError(f"BambooHR GET {CHANGED_PATH}: the answer is not a JSON object")
        employees = answer.get("employees") or {}
        if isinstance(employees, list):  # tolerate a list form; the documented one is a map
            employees = {str(e.get("id")): e for e in employees if isinstance(e, dict)}
        if not isinstance(employees, dict):
            raise ConnectorError(f"BambooHR GET {CHANGED_PATH}: employees is not a map")
        out = {}
        for key, entry in employees.items():
            entry = entry if isinstance(entry, dict) else {}
            out[str(entry.get("id") or key)] = str(entry.get("action") or "Updated").lower()
        latest = answer.get("latest")
        return out, str(latest) if latest else None

    def _records(
        self,
        rows: Sequence[dict[str, Any]],
        mode: str | None,
        directory: mapping.Directory,
        warnings: list[str],
        known: set[str] | None,
        present: Sequence[str] = (),
    ) -> list[PersonRecord]:
        # What BambooHR returned: the report's field list, else every key any row carries.
        returned = set(present) or {key for row in rows for key in row}
        records = []
        for row in rows:
            manager = mapping.resolve_manager(row, mode, directory)
            if known is not None and manager is not None and manager not in known:
                warnings.append(
                    f"employee {row.get('id')}: supervisor {manager} is not among the employees "
                    "the API key can see; manager left empty"
                )
                manager = None
            record, problem = mapping.to_record(row, manager, self.config.fields, returned)
            if problem:
                warnings.append(problem)
            if record is not None:
                records.append(record)
        return records

    def read_people(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> PeopleBatch:
        """Everything (one report) when ``full`` or without a cursor, else what changed.

        The report's rows are left in ``context`` for this sync's reviews stream.
        """
        state = self._load_cursor(cursor)
        if full or not state.get("since"):
            batch, rows = self._read_full()
        else:
            batch, rows = self._read_changes(state)
        if context is not None:
            context.shared[_ROWS] = rows
        return batch

    def _read_full(self) -> tuple[PeopleBatch, list[dict[str, Any]]]:
        started = datetime.now(UTC)
        fields = self.requested_fields
        rows, returned = self._report(fields)
        warnings = self._missing_warnings(fields, returned, rows)
        mode = mapping.choose_supervisor_mode(rows)
        directory = mapping.Directory.of(rows)
        ids = {r["id"] for r in rows}
        records = self._records(rows, mode, directory, warnings, known=ids, present=returned)
        stamps = [s for r in rows if (s := mapping.parse_timestamp(mapping.text(r, "lastChanged")))]
        # BambooHR's own clock where we have it; else ours, a little early to be safe.
        since = max(stamps) if stamps else started - timedelta(minutes=5)
        cursor = json.dumps({"since": _since_text(since), "supervisor": mode})
        return PeopleBatch(records=records, full=True, cursor=cursor, warnings=warnings), rows

    def _read_changes(self, state: dict[str, Any]) -> tuple[PeopleBatch, list[dict[str, Any]]]:
        since = str(state["since"])
        changed, latest = self._changed(since)
        warnings: list[str] = []
        deleted = sorted(i for i, action in changed.items() if action == "deleted")
        for emp in deleted:
            warnings.append(
                f"employee {emp} was deleted in BambooHR; run `coachbridge sync {self.name} "
                "--full` to deactivate them"
            )
        wanted = sorted((i for i, a in changed.items() if a != "deleted"), key=_id_order)
        rows: list[dict[str, Any]] = []
        returned: list[str] = []
        fields = self.requested_fields
        for start in range(0, len(wanted), IDS_PER_REPORT):
            chunk, got = self._report(fields, wanted[start : start + IDS_PER_REPORT])
            rows.extend(chunk)
            returned = returned or got
        if rows:
            warnings = self._missing_warnings(fields, returned, rows) + warnings
        mode = state.get("supervisor")
        directory = mapping.Directory({}, {})
        if mode not in ("supervisorEId", "supervisorId") and any(
            mapping.text(r, "supervisorEId") or mapping.text(r, "supervisorEmail") for r in rows
        ):
            thin, _ = self._report(["employeeNumber", "workEmail"])
            directory = mapping.Directory.of(thin)
        records = self._records(rows, mode, directory, warnings, known=None, present=returned)
        new_since = latest if (latest and changed) else since
        cursor = json.dumps({"since": new_since, "supervisor": mode})
        batch = PeopleBatch(records=records, full=False, cursor=cursor, warnings=warnings)
        return batch, rows

    def _missing_warnings(
        self, fields: Sequence[str], returned: Sequence[str], rows: Sequence[Mapping[str, Any]]
    ) -> list[str]:
        gone = mapping.missing_fields(fields, returned, rows)
        if not gone:
            return []
        return [
            f"BambooHR returned no {', '.join(gone)}: the API key cannot see these fields (or "
            "they do not exist); give its user access to them, or those values stay empty"
        ]

    @staticmethod
    def _load_cursor(cursor: str | None) -> dict[str, Any]:
        if not cursor:
            return {}
        try:
            state = json.loads(cursor)
        except json.JSONDecodeError:
            return {"since": cursor}  # a bare timestamp, e.g. set by hand
        return state if isinstance(state, dict) else {}

    def read_reviews(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> ReviewBatch:
        """A change in ``rating_field`` since the last sync becomes a review event.

        Uses the rows this sync's people stream fetched (``context``; no extra request), else
        reads the whole report. The cursor maps each employee id to the last rating seen, so an
        unchanged rating yields nothing.
        """
        field = self.config.rating_field
        if not field:
            return ReviewBatch(events=[], cursor=cursor)
        rows: list[dict[str, Any]] | None = context.shared.get(_ROWS) if context else None
        if rows is None:
            rows, _ = self._report(self.requested_fields)
        seen: dict[str, str] = {}
        if cursor:
            try:
                loaded = json.loads(cursor).get("ratings", {})
                seen = {str(k): str(v) for k, v in loaded.items()}
            except (json.JSONDecodeError, AttributeError):
                seen = {}
        events: list[ReviewEvent] = []
        warnings: list[str] = []
        for row in rows:
            emp = row["id"]
            value = mapping.text(row, field)
            if value is None or seen.get(emp) == value:
                continue
            raw = mapping.parse_rating(value)
            if raw is None or not (
                self.config.rating_scale_min <= raw <= self.config.rating_scale_max
            ):
                warnings.append(
                    f"employee {emp}: {field} value {value!r} is not a rating on the "
                    f"{self.config.rating_scale_min:g}..{self.config.rating_scale_max:g} scale"
                )
                continue
            changed_at = mapping.parse_timestamp(mapping.text(row, "lastChanged"))
            events.append(
                mapping.rating_event(
                    source=self.name,
                    employee_id=emp,
                    raw=raw,
                    scale_min=self.config.rating_scale_min,
                    scale_max=self.config.rating_scale_max,
                    completed_at=changed_at,
                    key=mapping.rating_key(field, changed_at),
                    email=mapping.text(row, "workEmail"),
                )
            )
            seen[emp] = value
        for row in rows:  # remember values as they are now, even where unparsable
            if (value := mapping.text(row, field)) is not None:
                seen[row["id"]] = value
        new_cursor = json.dumps({"ratings": dict(sorted(seen.items()))}, separators=(",", ":"))
        return ReviewBatch(events=events, cursor=new_cursor, warnings=warnings)

    def read_trainings(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> TrainingBatch:
        """Training records of the people ``context.training_people`` names, in batches: see
        ``coachbridge_bamboohr.trainings``."""
        reader = TrainingReader(self.client, self.config)
        return reader.read(cursor, full=full, context=context, now=self.clock())

    def fetch_people(
        self, external_ids: Sequence[str], *, client: BambooHRClient | None = None
    ) -> list[PersonRecord]:
        """The named employees, by one filtered report (plus one thin report for managers)."""
        ids = sorted({str(i) for i in external_ids if str(i).isdigit()}, key=_id_order)
        if not ids:
            return []
        rows, returned = self._report(self.requested_fields, ids, client)
        thin, _ = self._report(
            ["employeeNumber", "workEmail", "supervisorEId", "supervisorId", "supervisorEmail"],
            None,
            client,
        )
        mode = mapping.choose_supervisor_mode(thin)
        directory = mapping.Directory.of(thin)
        warnings: list[str] = []
        records = self._records(
            rows, mode, directory, warnings, known={r["id"] for r in thin}, present=returned
        )
        for warning in warnings:
            log.warning("%s: %s", self.name, warning)
        return records

    # -- set-up (coachbridge connect) ------------------------------------------------------
    supports_discovery: ClassVar[bool] = True
    connect_options: ClassVar[Mapping[str, str]] = {
        "company_domain": "company_domain",
        "base_url": "base_url",
    }

    def discover(self) -> Discovery:
        """The fields and lists from BambooHR's metadata, which field holds the supervisor and
        the rating, the custom fields, and the first five people as a sync would read them."""
        meta = self.client.request("GET", "v1/meta/fields")
        if not isinstance(meta, list):
            raise ConnectorError("BambooHR GET v1/meta/fields: the answer is not a list of fields")
        fields = [f for f in meta if isinstance(f, dict)]
        lists = self.client.request("GET", "v1/meta/lists", allow=(403, 404))
        list_fields = [f for f in lists if isinstance(f, dict)] if isinstance(lists, list) else []
        list_keys = {str(f.get("alias") or f.get("fieldId")) for f in list_fields}
        self._ids = mapping.FieldIds(fields)
        names = [str(f.get("alias") or f.get("id")) for f in fields]
        labels = {str(f.get("alias") or f.get("id")): str(f.get("name") or "") for f in fields}
        standard = dict(mapping.STANDARD_ALIASES)
        # Standard fields are not always listed with an alias: they are there all the same.
        known = sorted({*names, *standard.values(), *mapping.SUPERVISOR_FIELDS})
        proposal = propose_mapping({f: (a,) for f, a in standard.items()}, known)
        supervisor = [f for f in mapping.SUPERVISOR_FIELDS if f in names]
        ordinary = (
            set(standard.values()) | set(mapping.OPTIONAL_FIELDS) | set(mapping.SUPERVISOR_FIELDS)
        )
        others = [n for n in names if n not in ordinary]
        rating = propose_mapping(
            {
                "rating": (
                    "performanceRating",
                    "Performance Rating",
                    "Overall Rating",
                    "Review Rating",
                )
            },
            [*others, *(labels[n] for n in others if labels.get(n))],
        )[0]
        settings: dict[str, Any] = {}
        if rating.column is not None:
            column = next((n for n in others if rating.column in (n, labels.get(n))), rating.column)
            rating = type(rating)("rating_field", column, rating.how, rating.confidence)
            settings["rating_field"] = column
        else:
            rating = type(rating)("rating_field", None, "none", 0.0)
        custom = [n for n in others if n.startswith("custom") or not n.isidentifier()]
        proposed = BambooHRConnector(
            self.config.model_copy(update={"rating_field": settings.get("rating_field")}),
            self.context,
        )
        proposed.client, proposed._ids = self.client, self._ids
        batch, _ = proposed._read_full()
        notes = [f"{len(fields)} fields, {len(list_fields)} list fields"]
        notes.append(
            "supervisor: "
            + (
                ", ".join(supervisor)
                if supervisor
                else "not listed (resolved from "
                "supervisorEId, supervisorId or supervisorEmail as each row has them)"
            )
        )
        if custom:
            notes.append(f"custom fields: {', '.join(custom)} (add to fields = [...] to keep them)")
        missing = list(batch.warnings)
        if rating.column is None:
            missing.append("rating_field: no field looks like a performance rating; no reviews")
        return Discovery(
            source=f"BambooHR {self.config.company_domain}",
            columns=[
                FoundColumn(n, str(f.get("type") or "") or None, "list" if n in list_keys else "")
                for n, f in zip(names, fields, strict=True)
            ],
            mapping=[*proposal, rating],
            settings=settings,
            samples=list(batch.records[:5]),
            missing=missing,
            notes=notes,
        )

    # -- checking --------------------------------------------------------------------------
    def check(self) -> list[CheckResult]:
        """The key works (field list readable) and which needed fields it cannot see."""
        meta = self.client.request("GET", "v1/meta/fields")
        if not isinstance(meta, list):
            raise ConnectorError("BambooHR GET v1/meta/fields: the answer is not a list of fields")
        results = [
            CheckResult(
                True, f"API key accepted by {self.config.company_domain} ({len(meta)} fields)"
            )
        ]
        self._ids = mapping.FieldIds(f for f in meta if isinstance(f, dict))
        known = {str(f.get(k)) for f in meta if isinstance(f, dict) for k in ("alias", "id")}
        known |= (
            set(mapping.CORE_FIELDS) | set(mapping.OPTIONAL_FIELDS) | set(mapping.SUPERVISOR_FIELDS)
        )  # standard fields are not always listed with an alias
        custom = [f for f in (self.config.rating_field, *self.config.fields) if f]
        unknown = [f for f in custom if f not in known]
        if unknown:
            results.append(
                CheckResult(False, f"unknown field(s) in the config: {', '.join(unknown)}")
            )
        fields = self.requested_fields
        rows, returned = self._report(fields, [])
        gone = [f for f in mapping.missing_fields(fields, returned, rows) if f not in unknown]
        if gone:
            results.append(
                CheckResult(False, f"the API key cannot see these needed fields: {', '.join(gone)}")
            )
        else:
            results.append(CheckResult(True, f"all {len(fields)} needed fields are visible"))
        if self.config.push_sessions and self.config.training_type_id is None:
            types = self.client.request("GET", "v1/training/type", allow=(403,))
            if isinstance(types, dict) and types.get("_status") == 403:
                results.append(
                    CheckResult(
                        False,
                        "training settings: the API key's user may not read them (403); push "
                        "cannot write held sessions as training records",
                    )
                )
            else:
                results.append(CheckResult(True, "training settings readable (training types)"))
        return results

    # -- writing ---------------------------------------------------------------------------
    def push(self, items: Sequence[PushItem], *, dry_run: bool) -> list[PushResult]:
        """Goals as BambooHR goals, held sessions as training records; see ``writeback``."""
        results = []
        for item in items:
            if item.external_id and item.previous_fingerprint == item.fingerprint:
                results.append(PushResult(item.kind, item.local_id, "unchanged", item.external_id))
            elif item.kind == "goal" and self.config.push_goals:
                results.append(self._writer.goal(item, dry_run))
            elif item.kind == "session" and self.config.push_sessions:
                results.append(self._writer.session(item, dry_run))
            else:
                results.append(
                    PushResult(item.kind, item.local_id, "skipped", None, "not written to BambooHR")
                )
        return results

    # -- webhooks --------------------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """Check ``X-BambooHR-Signature`` over body + timestamp; None: BambooHR has no delivery id."""
        secret = self.config.webhook_secret
        late = webhooks.verify(
            headers,
            body,
            secret.get_secret_value() if secret else None,
            self.config.webhook_tolerance,
            retry_window=self.config.retry_window,
        )
        if late:
            log.info("%s: accepted a late delivery (a retry, within retry_window)", self.name)
        return None

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ParsedDelivery:
        """Both payload shapes, from the payload alone: no request to BambooHR.

        Parsing runs while BambooHR waits for our answer (and again in the worker), so it only
        checks the shape. Changed employees come back as ``changed_ids`` for the worker's
        incremental sync (/employees/changed, and the rating cursor), which also brings in a
        rating change the payload names without its value.
        """
        changes = webhooks.parse_payload(body)
        wanted = sorted({c.employee_id for c in changes if c.action != "deleted"}, key=_id_order)
        bad = [i for i in wanted if not i.isdigit()]
        if bad:
            raise WebhookRejected(400, f"employee id(s) are not BambooHR ids: {', '.join(bad)}")
        return ParsedDelivery(changed_ids=wanted, reviews=self._webhook_ratings(changes))

    def _webhook_ratings(self, changes: Sequence[webhooks.Change]) -> list[ReviewEvent]:
        field = self.config.rating_field
        if not field:
            return []
        labels = {field.casefold()}
        if self.config.rating_field_label:
            labels.add(self.config.rating_field_label.casefold())
        events = []
        for change in changes:
            if change.action == "deleted":
                continue
            in_payload = {k.casefold(): k for k in change.fields}
            hit = next((in_payload[label] for label in labels if label in in_payload), None)
            mentioned = hit is not None or any(
                f.casefold() in labels for f in change.changed_fields
            )
            if not mentioned:
                continue
            value = mapping.text(change.fields, hit) if hit else None
            if value is None:  # named without its value: the incremental sync reads it
                continue
            raw = mapping.parse_rating(value)
            if raw is None or not (
                self.config.rating_scale_min <= raw <= self.config.rating_scale_max
            ):
                log.warning(
                    "%s: webhook rating for employee %s is not on the scale; ignored",
                    self.name,
                    change.employee_id,
                )
                continue
            changed_at = mapping.parse_timestamp(change.timestamp or "") or datetime.now(UTC)
            events.append(
                mapping.rating_event(
                    source=self.name,
                    employee_id=change.employee_id,
                    raw=raw,
                    scale_min=self.config.rating_scale_min,
                    scale_max=self.config.rating_scale_max,
                    completed_at=changed_at,
                    # The key the incremental sync gives the same change: one event either way.
                    key=mapping.rating_key(field, changed_at),
                    email=mapping.text(change.fields, "workEmail"),
                )
            )
        return events


def _id_order(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (1 << 62, value)
