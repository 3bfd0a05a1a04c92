"""The CSV connector: people, review results and goals from files an HRIS or a spreadsheet exports.

Every people file is a full snapshot, so a person missing from it has left (the core's
``max_deactivate`` guard protects against a truncated export). The connector only reads and
validates; identity matching, diffing and writing happen in ``coachbridge.hris.sync``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from coachbridge.connectors import (
    GOALS,
    PEOPLE,
    REVIEWS,
    TRAININGS,
    CheckResult,
    Connector,
    ConnectorContext,
    Discovery,
    FoundColumn,
    GoalBatch,
    GoalRecord,
    PeopleBatch,
    ReviewBatch,
    SyncContext,
    TrainingBatch,
)
from coachbridge.domain import PersonRecord, PersonStatus, ReviewEvent, TrainingRecord
from coachbridge.errors import InputDataError
from coachbridge.mapping import propose_mapping
from coachbridge_csv.config import PEOPLE_FIELDS, PEOPLE_REQUIRED, STREAM_FIELDS, CsvConfig
from coachbridge_csv.reader import Row, Table, read_table
from coachbridge_csv.values import (
    parse_date,
    parse_datetime,
    parse_goal_status,
    parse_level,
    parse_list,
    parse_number,
    parse_progress,
    parse_status,
)
from pydantic import ValidationError

T = TypeVar("T")

# PersonRecord field a people column fills, where the names differ.
_RECORD_FIELD = {"id": "external_id", "manager_id": "manager_external_id"}
_LIST_FIELDS = ("skills", "interests", "languages")
_DATE_FIELDS = ("hire_date", "termination_date")
#: Headers HRIS exports commonly give each people field, for ``coachbridge connect``.
_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("employee_id", "Employee ID", "Employee Number", "emp_id", "Worker ID", "Staff ID"),
    "first_name": ("First Name", "Given Name", "firstName", "forename"),
    "last_name": ("Last Name", "Surname", "Family Name", "lastName"),
    "preferred_name": ("Preferred Name", "Nickname"),
    "email": ("Work Email", "Email Address", "workEmail", "E-mail"),
    "job_title": ("Title", "Job Title", "Position"),
    "department": ("Dept", "Team"),
    "division": ("Business Unit",),
    "location": ("Office", "Work Location", "Site"),
    "timezone": ("Time Zone", "tz"),
    "manager_id": ("Manager ID", "Manager Employee ID", "Supervisor ID", "Reports To ID"),
    "hire_date": ("Start Date", "Hire Date", "Date Hired"),
    "termination_date": ("End Date", "Leaving Date", "Termination Date"),
    "status": ("Employment Status", "Active"),
    "level": ("Grade", "Job Level", "Band"),
}


class CsvConnector(Connector):
    """Reads ``people`` (required), ``reviews``, ``goals`` and ``trainings`` files; see docs/csv.md."""

    config_model = CsvConfig

    def __init__(self, config: CsvConfig, context: ConnectorContext) -> None:  # type: ignore[override]
        super().__init__(config, context)
        self.config: CsvConfig = config
        self.today = datetime.now(UTC).date()
        # Every file is a whole snapshot; its cursor is the file's digest. Reviews, goals and
        # trainings are streams only where their file is configured.
        self.streams = tuple(
            stream.with_cursor("full")
            for stream in (PEOPLE, REVIEWS, GOALS, TRAININGS)
            if stream.name == "people" or getattr(config, stream.name) is not None
        )

    # -- helpers ---------------------------------------------------------------------------
    def path(self, stream: str) -> Path | None:
        """The configured file of ``stream``, resolved against the config file's folder."""
        value = getattr(self.config, stream)
        if value is None:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.context.base_dir / path

    def source_label(self, stream: str) -> str:
        """How errors name the source of a stream (the core's validation uses it)."""
        path = self.path(stream)
        return str(path) if path is not None else f"connector {self.name}"

    def _table(self, stream: str) -> tuple[Table, dict[str, str]] | None:
        path = self.path(stream)
        if path is None:
            return None
        fields, required = STREAM_FIELDS[stream]
        headers = self.config.headers(stream)
        must = [headers[f] for f in required]
        must += [headers[f] for f in sorted(self.config.mapped_explicitly(stream))]
        table = read_table(
            path,
            expected_headers=[headers[f] for f in fields],
            required_headers=list(dict.fromkeys(must)),
            encoding=self.config.encoding,
            delimiter=self.config.delimiter,
        )
        present = {f: h.casefold() for f, h in headers.items() if h.casefold() in table.headers}
        return table, present

    @staticmethod
    def _cell(
        table: Table,
        row: Row,
        columns: dict[str, str],
        field: str,
        parse: Callable[[str], T],
    ) -> T:
        try:
            return parse(row.values.get(columns[field], ""))
        except ValueError as exc:
            header = table.title(columns[field])
            raise InputDataError(f"{table.where(row.line)}: column {header}: {exc}") from None

    # -- set-up (coachbridge connect) ------------------------------------------------------
    supports_discovery: ClassVar[bool] = True
    connect_options: ClassVar[Mapping[str, str]] = {"people": "people"}

    def discover(self) -> Discovery:
        """The people file's header row, a proposed ``columns`` mapping and its first five
        people as a sync would read them."""
        path = self.path("people")
        assert path is not None  # people is a required setting
        table = read_table(
            path,
            expected_headers=list(PEOPLE_FIELDS),
            required_headers=[],
            encoding=self.config.encoding,
            delimiter=self.config.delimiter,
        )
        headers = [table.title(h) for h in table.headers]
        proposal = propose_mapping({f: _ALIASES.get(f, ()) for f in PEOPLE_FIELDS}, headers)
        lacking = [m.field for m in proposal if m.column is None and m.field in PEOPLE_REQUIRED]
        if lacking:
            what = "no id-like column" if "id" in lacking else "no column for " + ", ".join(lacking)
            raise InputDataError(
                f"{path}:1: {what} (headers found: {', '.join(headers) or 'none'})"
            )
        columns = {
            m.field: m.column for m in proposal if m.column and m.column.casefold() != m.field
        }
        settings: dict[str, object] = {"columns": columns} if columns else {}
        proposed = CsvConnector(
            self.config.model_copy(update={"columns": type(self.config.columns)(**columns)}),
            self.context,
        )
        samples = list(proposed.read_people(None, full=True).records[:5])
        delimiter = {"\t": "tab"}.get(table.delimiter, repr(table.delimiter))
        return Discovery(
            source=str(path),
            columns=[FoundColumn(h) for h in headers],
            mapping=proposal,
            settings=settings,
            samples=samples,
            missing=[f"{m.field}: no column found; not synced" for m in proposal if not m.found],
            notes=[f"{len(table.rows)} rows ({table.encoding}, delimiter {delimiter})"],
        )

    # -- the contract ----------------------------------------------------------------------
    def check(self) -> list[CheckResult]:
        """Each configured file exists, is readable text and has the required columns."""
        results = []
        for stream in ("people", "reviews", "goals", "trainings"):
            try:
                loaded = self._table(stream)
            except InputDataError as exc:
                results.append(CheckResult(False, f"{stream}: {exc}"))
                continue
            if loaded is not None:
                table = loaded[0]
                delimiter = {"\t": "tab"}.get(table.delimiter, repr(table.delimiter))
                results.append(
                    CheckResult(
                        True,
                        f"{stream}: {table.path}: {len(table.rows)} rows "
                        f"({table.encoding}, delimiter {delimiter})",
                    )
                )
        return results

    def read_people(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> PeopleBatch:
        """The whole people file (always a full snapshot, whatever ``full`` says)."""
        loaded = self._table("people")
        assert loaded is not None  # people is a required setting
        table, columns = loaded
        records = [self._person(table, row, columns) for row in table.rows]
        if not records:
            raise InputDataError(f"{table.path}: no people after the header line")
        return PeopleBatch(records=records, full=True, cursor=f"sha256:{table.digest}")

    def _person(self, table: Table, row: Row, columns: dict[str, str]) -> PersonRecord:
        where = table.where(row.line)
        data: dict[str, Any] = {}
        for field in columns:
            if field in _DATE_FIELDS:
                data[field] = self._cell(
                    table, row, columns, field, lambda t: parse_date(t, self.config.date_format)
                )
            elif field in _LIST_FIELDS:
                split = partial(parse_list, separators=self.config.list_separators)
                data[field] = self._cell(table, row, columns, field, split)
            elif field == "level":
                data[field] = self._cell(table, row, columns, field, parse_level)
            elif field == "status":
                continue
            else:
                data[_RECORD_FIELD.get(field, field)] = row.values.get(columns[field]) or None
        if not data.get("external_id"):
            raise InputDataError(f"{where}: column {table.title(columns['id'])}: empty employee id")
        status_text = row.values.get(columns["status"], "") if "status" in columns else ""
        if status_text:
            data["status"] = self._cell(
                table,
                row,
                columns,
                "status",
                lambda t: parse_status(
                    t, self.config.active_statuses, self.config.inactive_statuses
                ),
            )
            data["hris_status"] = status_text
        else:
            ended = data.get("termination_date")
            gone = ended is not None and ended <= self.today
            data["status"] = PersonStatus.INACTIVE if gone else PersonStatus.ACTIVE
            if "status" in columns:
                data["hris_status"] = None
        for name in ("first_name", "last_name"):
            data[name] = data.get(name) or ""
        try:
            return PersonRecord(source_line=row.line, **data)
        except ValidationError as exc:
            raise InputDataError(f"{where}: {_explain(exc, table, columns)}") from None

    def read_reviews(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> ReviewBatch:
        """Completed reviews, one per employee and cycle; ratings normalized onto 0..1."""
        loaded = self._table("reviews")
        if loaded is None:
            return ReviewBatch(events=[], cursor=cursor)
        table, columns = loaded
        seen: dict[str, int] = {}
        events = []
        for row in table.rows:
            where = table.where(row.line)
            employee = row.values.get(columns["employee_id"], "")
            cycle = row.values.get(columns["cycle"], "")
            if not employee or not cycle:
                missing = "employee_id" if not employee else "cycle"
                raise InputDataError(f"{where}: column {table.title(columns[missing])}: empty")
            key = f"{employee}:{cycle}"
            if key in seen:
                raise InputDataError(
                    f"{where}: a second review of employee {employee!r} in cycle {cycle!r} "
                    f"(first at line {seen[key]})"
                )
            seen[key] = row.line
            raw = self._cell(table, row, columns, "rating", parse_number)
            if raw is None:
                continue  # not rated (yet): nothing to record
            scale_max = None
            if "rating_scale_max" in columns:
                scale_max = self._cell(table, row, columns, "rating_scale_max", parse_number)
            completed_at = None
            if "completed_at" in columns:
                completed_at = self._cell(
                    table,
                    row,
                    columns,
                    "completed_at",
                    lambda t: parse_datetime(t, self.config.date_format),
                )
            try:
                events.append(
                    ReviewEvent(
                        cycle=cycle,
                        subject_external_id=employee,
                        raw_rating=raw,
                        scale_min=self.config.rating_scale_min,
                        # An empty cell takes the config's scale; a 0 is a value (refused below).
                        scale_max=self.config.rating_scale_max if scale_max is None else scale_max,
                        completed_at=completed_at,
                        source=self.name,
                        source_event_id=key,
                    )
                )
            except ValidationError as exc:
                # The column the problem is in (a date out of range is not the rating's fault).
                field = str(exc.errors()[0]["loc"][0]) if exc.errors()[0]["loc"] else "rating"
                name = {
                    "completed_at": "completed_at",
                    "scale_max": "rating_scale_max",
                    "cycle": "cycle",
                    "subject_external_id": "employee_id",
                }.get(field, "rating")
                if (
                    name == "rating"
                    and _reason(exc).startswith("rating scale")
                    and "rating_scale_max" in columns
                ):
                    name = "rating_scale_max"  # the rating is fine, its scale is not
                column = columns.get(name, columns["rating"])
                raise InputDataError(
                    f"{where}: column {table.title(column)}: {_reason(exc)}"
                ) from None
        return ReviewBatch(events=events, cursor=f"sha256:{table.digest}")

    def read_goals(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> GoalBatch:
        """Goals people already keep in the HRIS, keyed by ``id`` or by owner and title."""
        loaded = self._table("goals")
        if loaded is None:
            return GoalBatch(goals=[], cursor=cursor)
        table, columns = loaded
        goals = []
        for row in table.rows:
            owner = row.values.get(columns["employee_id"], "")
            title = row.values.get(columns["title"], "")
            if not owner or not title:
                missing = "employee_id" if not owner else "title"
                raise InputDataError(
                    f"{table.where(row.line)}: column {table.title(columns[missing])}: empty"
                )
            due: date | None = None
            if "due_date" in columns:
                due = self._cell(
                    table,
                    row,
                    columns,
                    "due_date",
                    lambda t: parse_date(t, self.config.date_format),
                )
            goals.append(
                GoalRecord(
                    owner_external_id=owner,
                    title=title,
                    external_id=row.values.get(columns["id"]) if "id" in columns else None,
                    due_date=due,
                    progress=self._cell(table, row, columns, "progress", parse_progress)
                    if "progress" in columns
                    else 0.0,
                    status=self._cell(table, row, columns, "status", parse_goal_status).value
                    if "status" in columns
                    else "open",
                    source_line=row.line,
                )
            )
        return GoalBatch(goals=goals, cursor=f"sha256:{table.digest}")

    def read_trainings(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> TrainingBatch:
        """Completed trainings, one per line; a person may hold a training several times (the
        core counts the latest). An empty ``expires_at`` never expires. The whole file is read
        whatever ``context`` asks for: it costs nothing per person."""
        loaded = self._table("trainings")
        if loaded is None:
            return TrainingBatch(records=[], cursor=cursor)
        table, columns = loaded
        records = []
        for row in table.rows:
            where = table.where(row.line)
            for name in ("employee_id", "training", "completed_at"):
                if not row.values.get(columns[name], ""):
                    raise InputDataError(f"{where}: column {table.title(columns[name])}: empty")
            dates = {
                name: self._cell(
                    table, row, columns, name, lambda t: parse_date(t, self.config.date_format)
                )
                for name in ("completed_at", "expires_at")
                if name in columns
            }
            try:
                records.append(
                    TrainingRecord(
                        person_external_id=row.values[columns["employee_id"]],
                        training=row.values[columns["training"]],
                        source_line=row.line,
                        **dates,
                    )
                )
            except ValidationError as exc:
                error = exc.errors()[0]
                field = str(error["loc"][0]) if error.get("loc") else ""
                column = f"column {table.title(columns[field])}: " if field in columns else ""
                raise InputDataError(f"{where}: {column}{_reason(exc)}") from None
        return TrainingBatch(records=records, cursor=f"sha256:{table.digest}")


def _reason(exc: ValidationError) -> str:
    error = exc.errors()[0]
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


def _explain(exc: ValidationError, table: Table, columns: dict[str, str]) -> str:
    """The first validation problem, named by the file's header rather than our field name."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error.get("loc") else ""
    column_of = {_RECORD_FIELD.get(f, f): table.title(h) for f, h in columns.items()}
    column = column_of.get(field, field)
    prefix = f"column {column}: " if column else ""
    return prefix + _reason(exc)
