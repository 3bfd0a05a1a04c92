"""The Workday connector: people and reviews from RaaS (or staffing REST), write-back, webhooks."""

from __future__ import annotations

import base64
import binascii
import hmac
import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from coachbridge.connectors import (
    PEOPLE,
    PERSON_COLUMNS,
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
from coachbridge.errors import ConnectorError, InputDataError
from coachbridge.mapping import propose_mapping
from coachbridge_workday.client import WorkdayClient
from coachbridge_workday.config import (
    REQUIRED_PEOPLE_COLUMNS,
    REQUIRED_REVIEW_COLUMNS,
    WorkdayColumns,
    WorkdayConfig,
)
from coachbridge_workday.discovery import choose_prompt, field_aliases
from coachbridge_workday.raas import Report, ReportSchema, fetch_schema, report_url, stream_rows
from coachbridge_workday.rest import RestPeople
from coachbridge_workday.values import RowMapper, workday_datetime

# The people fields read from a report (reviews fields are checked separately).
_PEOPLE_FIELDS = ("wid", "active", *PERSON_COLUMNS)
# Where the people stream leaves its rows' trainings for the trainings stream of the same sync.
_TRAININGS = "workday.trainings"


class WorkdayConnector(Connector):
    """Reads a Workday tenant and writes mentorships and check-ins back (see docs/workday.md)."""

    config_model: ClassVar[type[WorkdayConfig]] = WorkdayConfig
    supports_push: ClassVar[bool] = True
    supports_webhooks: ClassVar[bool] = True
    push_kinds: tuple[PushKind, ...] = ("session", "pairing")
    webhook_content_types: ClassVar[tuple[str, ...]] = ("application/json", "text/json")
    webhook_openapi: ClassVar[Mapping[str, Any] | None] = {
        "security": {
            "type": "http",
            "scheme": "basic",
            "description": "webhook_username and webhook_password of the connector",
        },
        "body": {
            "type": "object",
            "required": ["Report_Entry"],
            "description": "rows in the shape of the connector's reviews_report",
            "properties": {
                "Report_Entry": {
                    "oneOf": [
                        {"type": "object"},
                        {"type": "array", "items": {"type": "object"}},
                    ]
                }
            },
        },
    }

    supports_discovery: ClassVar[bool] = True
    connect_options: ClassVar[Mapping[str, str]] = {
        "tenant": "tenant",
        "host": "host",
        "base_url": "base_url",
        "report": "people_report",
    }

    config: WorkdayConfig

    def __init__(self, config: WorkdayConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.client = WorkdayClient(
            config,
            context.name,
            timeout=context.http_timeout,
            user_agent=context.user_agent,
            tokens=context.tokens,
        )
        self._wids: dict[str, str | None] = {}  # employee id -> WID, looked up once per run
        self._schemas: dict[str, ReportSchema | None] = {}  # report key -> its ?xsds, per run
        # A report with an "updated since" prompt reads changes only; otherwise every read is
        # the whole report (and staffing REST always is).
        people_incremental = config.people_source == "raas" and bool(config.updated_since_prompt)
        streams = [PEOPLE.with_cursor("incremental" if people_incremental else "full")]
        if config.reviews_report:
            prompt = config.reviews_updated_since_prompt
            streams.append(REVIEWS.with_cursor("incremental" if prompt else "full"))
        if config.columns.trainings and config.people_source == "raas":
            streams.append(TRAININGS)  # a column of the people report: no extra request
        self.streams = tuple(streams)

    # -- reports ---------------------------------------------------------------------------
    def _report(self, key: str) -> Report:
        ref = getattr(self.config, key)
        try:
            return Report(key, ref, report_url(self.config.root, self.config.tenant, ref))
        except ConnectorError as exc:
            raise InputDataError(f"connectors.{self.name}.{key}: {exc}") from None

    def source_label(self, stream: str) -> str:
        """Where a record came from, for the core's error messages (``<label>:<entry>``)."""
        if stream == "people" and self.config.people_source == "raas":
            return f"connector {self.name} people_report {self.config.people_report!r} entry"
        return f"connector {self.name} {stream}"

    def _missing_columns(
        self,
        report: Report,
        fields: Sequence[str],
        required: Sequence[str],
        present: set[str] | None,
    ) -> tuple[set[str], list[str]]:
        """Compare mapped columns with the report's columns: (optional absent fields, warnings).

        A required column, or one set explicitly under ``columns``, that the report lacks is an
        error: Workday leaves out fields the integration user may not see, and reading on would
        blank that field for everyone.
        """
        if present is None:
            return set(), []
        explicit = self.config.columns.model_fields_set
        absent: set[str] = set()
        errors: list[str] = []
        for field in fields:
            column = getattr(self.config.columns, field)
            if column.split("/")[0] in present:
                continue
            if field in required or field in explicit:
                errors.append(f"{column!r} (columns.{field})")
            else:
                absent.add(field)
        if errors:
            raise InputDataError(
                f"connector {self.name}: {report.label} has no column "
                + ", ".join(errors)
                + ": add the field to the report, fix the mapping under "
                f"connectors.{self.name}.columns, or grant the integration user's security group "
                "the domain that secures that field (Workday leaves out fields it may not see)"
            )
        notes = []
        if absent:
            names = ", ".join(sorted(getattr(self.config.columns, f) for f in absent))
            notes.append(f"{report.label} has no column {names}; those fields are not synced")
        return absent, notes

    def _schema(self, report: Report) -> ReportSchema | None:
        if report.key not in self._schemas:
            self._schemas[report.key] = fetch_schema(self.client, report)
        return self._schemas[report.key]

    def _columns(self, report: Report) -> set[str] | None:
        schema = self._schema(report)
        return set(schema.columns) if schema is not None else None

    def prompt_value(self, report: Report, prompt: str, cursor: str) -> str:
        """The "updated since" prompt's value for ``cursor`` (a Workday date-time with offset).

        A prompt the report's schema types ``xsd:date`` gets ``YYYY-MM-DD``, a day before the
        cursor's UTC date: the tenant's day may lag UTC's, and a date cannot say the hour, so
        rows changed that day come again and the sync finds them unchanged. Any other prompt
        (``xsd:dateTime``, or a schema that does not say) gets the date-time with offset.
        """
        schema = self._schema(report)
        if schema is None or schema.prompt_type(prompt) != "date":
            return cursor
        try:
            moment = datetime.fromisoformat(cursor)
        except ValueError:
            return cursor
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return (moment.astimezone(UTC).date() - timedelta(days=1)).isoformat()

    def _iter_report(self, report: Report, prompts: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        yield from stream_rows(self.client, report, prompts)

    def iter_people(
        self, prompts: Mapping[str, str] | None = None, *, full: bool = True
    ) -> tuple[Iterator[PersonRecord], RowMapper, list[str]]:
        """Stream people records from the people report (memory flat in head count).

        Returns the records (a generator), the mapper (its counters fill while reading) and a
        list of warnings that also fills while reading.
        """
        report = self._report("people_report")
        columns = self._columns(report)
        mapper = RowMapper(self.config, self.name, f"connector {self.name} {report.label}")
        mapper.absent, _ = self._missing_columns(
            report, _PEOPLE_FIELDS, REQUIRED_PEOPLE_COLUMNS, columns
        )
        notes: list[str] = []

        def records() -> Iterator[PersonRecord]:
            seen: set[str] = set()
            rows = 0
            for rows, row in enumerate(self._iter_report(report, prompts or {}), 1):
                if full:
                    seen.update(row)
                yield mapper.person(row, rows)
            if not full or not rows:
                return
            if columns is None:
                # No schema from Workday: judge missing columns from the whole full report
                # (never from one row: Workday leaves empty fields out of each row).
                self._missing_columns(report, _PEOPLE_FIELDS, REQUIRED_PEOPLE_COLUMNS, seen)
                return
            # In the schema, mapped, yet empty in every row: usually a field the integration
            # user may not see (Workday leaves it out instead of refusing).
            empty = sorted(
                column
                for field in _PEOPLE_FIELDS
                if field not in mapper.absent
                and (column := getattr(self.config.columns, field)).split("/")[0] not in seen
            )
            if empty:
                notes.append(
                    f"{report.label}: column {', '.join(empty)} is in the report but empty in "
                    f"all {rows} rows; if that is wrong, grant the integration user's security "
                    "group the domain that secures it"
                )

        return records(), mapper, notes

    def read_people(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> PeopleBatch:
        """People: a full report, or with ``updated_since_prompt`` the rows changed since ``cursor``."""
        started = datetime.now(UTC)
        if self.config.people_source == "rest":
            reader = RestPeople(self.client)
            records = reader.read()
            return PeopleBatch(records=records, full=True, cursor=None, warnings=reader.warnings)
        incremental = bool(self.config.updated_since_prompt and cursor and not full)
        prompts: dict[str, str] = {}
        if incremental and self.config.updated_since_prompt and cursor:
            prompt = self.config.updated_since_prompt
            prompts[prompt] = self.prompt_value(self._report("people_report"), prompt, cursor)
        stream, mapper, notes = self.iter_people(prompts, full=not incremental)
        records = list(stream)
        if context is not None and self.config.columns.trainings:
            # This sync's trainings stream takes them from here: the report is read once.
            context.shared[_TRAININGS] = (mapper, not incremental)
        warnings = list(notes)
        if mapper.bad_timezones:
            sample = ", ".join(sorted(mapper.bad_timezones)[:3])
            warnings.append(
                f"{sum(mapper.bad_timezones.values())} rows have a time zone that is not an IANA "
                f"name ({sample}); map columns.timezone to a Time_Zone_ID-style column"
            )
        return PeopleBatch(
            records=records,
            full=not incremental,
            cursor=workday_datetime(started) if self.config.updated_since_prompt else None,
            warnings=warnings,
        )

    def read_trainings(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> TrainingBatch:
        """Trainings from the people report's ``columns.trainings`` column: the rows this
        sync's people stream read (complete for those people; for everyone after a full
        read), else the whole report read here."""
        if not self.config.columns.trainings:
            return TrainingBatch(records=[], cursor=cursor)
        shared = context.shared.get(_TRAININGS) if context is not None else None
        if shared is None:
            stream, mapper, _ = self.iter_people({}, full=True)
            for _record in stream:
                pass
            everyone = True
        else:
            mapper, everyone = shared
        return TrainingBatch(
            records=list(mapper.training_records),
            cursor=None,
            people=None if everyone else frozenset(mapper.training_people),
        )

    def read_reviews(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> ReviewBatch:
        """Completed reviews from ``reviews_report``; idempotent on the review id."""
        if not self.config.reviews_report:
            return ReviewBatch(events=[], cursor=cursor)
        started = datetime.now(UTC)
        report = self._report("reviews_report")
        prompt = self.config.reviews_updated_since_prompt
        prompts = (
            {prompt: self.prompt_value(report, prompt, cursor)}
            if prompt and cursor and not full
            else {}
        )
        columns = self._columns(report)
        self._missing_columns(
            report, (*REQUIRED_REVIEW_COLUMNS, "cycle"), REQUIRED_REVIEW_COLUMNS, columns
        )
        mapper = RowMapper(self.config, self.name, f"connector {self.name} {report.label}")
        events: list[ReviewEvent] = []
        warnings: list[str] = []
        for entry, row in enumerate(self._iter_report(report, prompts), 1):
            event, why = mapper.review(row, entry, self.name)
            if event is not None:
                events.append(event)
            elif why:
                warnings.append(why)
        return ReviewBatch(
            events=events, cursor=workday_datetime(started) if prompt else None, warnings=warnings
        )

    # -- set-up (coachbridge connect) ------------------------------------------------------
    def discover(self) -> Discovery:
        """The people report's columns, types and prompts (``?xsds``), a proposed mapping and
        the first five people as a sync would read them with it."""
        report = self._report("people_report")
        schema = self._schema(report)
        if schema is not None:
            names = sorted(schema.columns)
            types: Mapping[str, str] = schema.column_types
            how = "schema"
        else:  # no ?xsds on this tenant: the columns of the first rows
            rows = self._iter_report(report, {})
            seen: set[str] = set()
            for _, row in zip(range(20), rows, strict=False):
                seen.update(row)
            close = getattr(rows, "close", None)
            if close:
                close()
            names, types, how = sorted(seen), {}, "first rows"
        proposal = propose_mapping(field_aliases(), names)
        by_field = {m.field: m for m in proposal}
        if by_field["id"].column is None:
            raise InputDataError(
                f"{report.label} has no id-like column (columns: {', '.join(names) or 'none'}): "
                "add the worker's Employee_ID to the report"
            )
        columns = {m.field: m.column for m in proposal if m.column is not None}
        prompt = choose_prompt(schema.prompt_types) if schema is not None else None
        settings: dict[str, Any] = {"columns": columns}
        if prompt:
            settings["updated_since_prompt"] = prompt
        proposed = WorkdayConnector(
            self.config.model_copy(
                update={"columns": WorkdayColumns(**columns), "updated_since_prompt": prompt}
            ),
            self.context,
        )
        # One client: a tenant that rotates refresh tokens must not see a second refresh.
        proposed.client, proposed._schemas = self.client, self._schemas
        records, _, _ = proposed.iter_people(full=False)
        samples = list(itertools.islice(records, 5))
        getattr(records, "close", lambda: None)()
        notes = [f"{len(names)} columns ({how})"]
        if schema is not None:
            for name, kind in sorted(schema.prompt_types.items()):
                notes.append(
                    f"prompt {name}: {kind}" + (" (updated_since_prompt)" if name == prompt else "")
                )
        if not prompt:
            notes.append("no date prompt: every sync reads the whole report")
        missing = [
            f"{m.field}: no column found (default {getattr(WorkdayColumns(), m.field)!r} absent); "
            "not synced"
            for m in proposal
            if m.column is None
        ]
        return Discovery(
            source=f"Workday tenant {self.config.tenant}, {report.label}",
            columns=[FoundColumn(n, types.get(n)) for n in names],
            mapping=proposal,
            settings=settings,
            samples=samples,
            missing=missing,
            notes=notes,
        )

    # -- check -----------------------------------------------------------------------------
    def check(self) -> list[CheckResult]:
        """Prove the credentials, each configured report (and its columns) or staffing access."""
        results: list[CheckResult] = []
        if self.config.uses_oauth:
            self.client.token(force=True)
            results.append(
                CheckResult(True, f"OAuth token from /ccx/oauth2/{self.config.tenant}/token")
            )
            results.append(CheckResult(True, self._refresh_token_line()))
        if self.config.people_source == "rest":
            body = self.client.api(
                "GET", "staffing", "workers", what="staffing workers", params={"limit": 1}
            )
            results.append(CheckResult(True, f"staffing workers: {body.get('total', '?')} visible"))
            self.client.api(
                "GET",
                "staffing",
                "supervisoryOrganizations",
                what="supervisory organizations",
                params={"limit": 1},
            )
            results.append(CheckResult(True, "supervisory organizations readable"))
        for key, fields, required in (
            ("people_report", _PEOPLE_FIELDS, REQUIRED_PEOPLE_COLUMNS),
            ("reviews_report", (*REQUIRED_REVIEW_COLUMNS, "cycle"), REQUIRED_REVIEW_COLUMNS),
        ):
            if not getattr(self.config, key) or (
                key == "people_report" and self.config.people_source == "rest"
            ):
                continue
            results.append(self._check_report(key, fields, required))
        if not self.config.mentor_type or not self.config.close_reason:
            missing = [k for k in ("mentor_type", "close_reason") if not getattr(self.config, k)]
            results.append(
                CheckResult(
                    True,
                    f"push: mentorships are not written until {', '.join(missing)} "
                    "is set (check-ins are)",
                )
            )
        return results

    def _refresh_token_line(self) -> str:
        """Which refresh token is in use: its source and age, never its value."""
        stored = self.client.stored_refresh_token()
        tokens = self.context.tokens
        if tokens is None:
            keeps = ""
        elif tokens.where.startswith("nowhere"):
            keeps = (
                "; a rotated one could not be kept: set [server] secret_key or "
                f"connectors.{self.name}.token_file"
            )
        else:
            keeps = f"; a rotated one is kept in {tokens.where}"
        if stored is None:
            return (
                f"refresh token: the configured one (connectors.{self.name}.refresh_token){keeps}"
            )
        age = datetime.now(UTC) - stored.updated_at
        return (
            f"refresh token: the one Workday rotated to {_age(age.total_seconds())} ago, kept in "
            f"{tokens.where if tokens is not None else 'memory'} (used instead of "
            f"connectors.{self.name}.refresh_token)"
        )

    def _check_report(
        self, key: str, fields: Sequence[str], required: Sequence[str]
    ) -> CheckResult:
        report = self._report(key)
        columns = self._columns(report)
        prompt_note = self._prompt_note(report)
        if columns is None:
            # No schema: run the report and stop after its first row.
            rows = self._iter_report(report, {})
            first = next(rows, None)
            close = getattr(rows, "close", None)
            if close:
                close()
            columns = set(first or {})
            how = "first row"
        else:
            how = "schema"
        try:
            _, notes = self._missing_columns(report, fields, required, columns)
        except InputDataError as exc:
            return CheckResult(False, str(exc).removeprefix(f"connector {self.name}: "))
        extra = f"; {notes[0]}" if notes else ""
        return CheckResult(
            True, f"{report.label}: reachable, {len(columns)} columns ({how}){prompt_note}{extra}"
        )

    def _prompt_note(self, report: Report) -> str:
        key = {
            "people_report": "updated_since_prompt",
            "reviews_report": "reviews_updated_since_prompt",
        }
        prompt = getattr(self.config, key[report.key])
        if not prompt:
            return ""
        schema = self._schema(report)
        kind = schema.prompt_type(prompt) if schema is not None else None
        if kind == "date":
            return f"; prompt {prompt} is a Date (sent as YYYY-MM-DD, a day's overlap)"
        if kind == "dateTime":
            return f"; prompt {prompt} is a date-time (sent with its offset)"
        return f"; prompt {prompt} has no type in the schema (sent as a date-time with offset)"

    # -- write-back ------------------------------------------------------------------------
    def push(self, items: Sequence[PushItem], *, dry_run: bool) -> list[PushResult]:
        """Mentorships for mentoring pairings, check-ins for held sessions (see writeback.py)."""
        from coachbridge_workday.writeback import WriteBack

        if not self.config.uses_oauth and not dry_run and items:
            raise InputDataError(
                f"connectors.{self.name}: write-back uses Workday's REST API, which needs OAuth "
                "(client_id, client_secret, refresh_token)"
            )
        return WriteBack(self.client, self.config, self.name, self._wids).push(
            items, dry_run=dry_run
        )

    # -- webhooks --------------------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """HTTP Basic against ``webhook_username``/``webhook_password``, compared in constant time.

        Returns None: an Integration step's post carries no delivery id, so the server keys the
        delivery by the SHA-256 of its body. The review id is not a delivery id: a corrected
        review is re-sent under the same id and must not be dropped as a duplicate (the review
        itself is de-duplicated later by its ``source_event_id``).
        """
        user, password = self.config.webhook_username, self.config.webhook_password
        if not user or password is None:
            raise WebhookRejected(401, f"connector {self.name} has no webhook_username/password")
        header = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            raise WebhookRejected(401, "missing HTTP Basic credentials")
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise WebhookRejected(401, "malformed HTTP Basic credentials") from None
        given_user, sep, given_password = given.partition(b":")
        # Both comparisons always run so the timing does not tell which part was wrong.
        user_ok = hmac.compare_digest(given_user, user.encode())
        password_ok = hmac.compare_digest(given_password, password.get_secret_value().encode())
        if not (sep and user_ok and password_ok):
            raise WebhookRejected(401, "wrong HTTP Basic credentials")
        return None

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ParsedDelivery:
        """A ``Report_Entry`` body in the shape of ``reviews_report`` -> review events."""
        try:
            data = json.loads(body)
        except ValueError:
            raise WebhookRejected(400, "body is not JSON") from None
        rows = _entries(data)
        mapper = RowMapper(self.config, self.name, f"connector {self.name} webhook")
        events: list[ReviewEvent] = []
        for entry, row in enumerate(rows, 1):
            if not isinstance(row, dict):
                raise WebhookRejected(400, f"Report_Entry {entry} is not an object")
            try:
                event, why = mapper.review(row, entry, self.name)
            except ValueError as exc:
                raise WebhookRejected(400, f"Report_Entry {entry}: {exc}") from None
            if why:
                raise WebhookRejected(400, why)
            if event is not None:
                events.append(event)
        return ParsedDelivery(reviews=events)


def _age(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def _entries(data: Any) -> list[Any]:
    """``Report_Entry`` as a list (Workday gives one row as an object, several as a list)."""
    if not isinstance(data, dict) or "Report_Entry" not in data:
        raise WebhookRejected(400, "body has no Report_Entry")
    rows = data["Report_Entry"]
    if isinstance(rows, dict):
        return [rows]
    if not isinstance(rows, list):
        raise WebhookRejected(400, "Report_Entry is neither a list nor an object")
    return rows
