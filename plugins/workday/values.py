"""Reading Workday report values, quirks included, and mapping rows to coachbridge records.

Workday's RaaS JSON leaves empty fields out of a row, gives a multi-valued field as a string
when it holds one value and as a list when it holds several, writes booleans as ``"0"``/``"1"``,
and names references by their descriptor (``"5 Manager"``). Every reader here accepts each of
those shapes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from coachbridge.domain import PersonRecord, PersonStatus, ReviewEvent, TrainingRecord
from coachbridge.errors import InputDataError
from coachbridge_workday.config import WorkdayColumns, WorkdayConfig
from pydantic import ValidationError

_TRUE = {"1", "true", "yes", "y", "active"}
_FALSE = {"0", "false", "no", "n", "inactive"}
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})")


def get_path(row: Mapping[str, Any], column: str) -> Any:
    """The value of ``column`` (``Group/Field`` reaches into a group column), or None."""
    value: Any = row
    for part in column.split("/"):
        if isinstance(value, list):  # a group with several instances: take the first
            value = value[0] if value else None
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def has_path(row: Mapping[str, Any], column: str) -> bool:
    return column.split("/")[0] in row


def text(value: Any) -> str | None:
    """One value as text: a list gives its first item, a reference object its descriptor."""
    if value is None:
        return None
    if isinstance(value, list):
        for item in value:
            found = text(item)
            if found:
                return found
        return None
    if isinstance(value, Mapping):
        for key in ("Descriptor", "descriptor", "ID", "id"):
            if isinstance(value.get(key), str):
                return value[key].strip() or None
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    out = str(value).strip()
    return out or None


def texts(value: Any) -> list[str]:
    """A multi-valued field as a list: a string (one value; ``;``-joined values are split), or a list."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        one = text(item)
        if one is None:
            continue
        for part in one.split(";") if isinstance(item, str) else [one]:
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def flag(value: Any) -> bool | None:
    """``"1"``/``"0"``, true/false, yes/no; None when absent or unreadable."""
    one = text(value)
    if one is None:
        return None
    low = one.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    return None


def leading_number(value: Any) -> float | None:
    """The first number in a value: ``"5 Manager"`` -> 5, ``"Level 3"`` -> 3, ``"4.5"`` -> 4.5."""
    one = text(value)
    if one is None:
        return None
    match = _NUMBER.search(one)
    return float(match.group(0)) if match else None


def day(value: Any) -> date | None:
    """A Workday date (``2024-03-15``, ``2024-03-15-07:00`` or a date-time); None if unreadable."""
    one = text(value)
    if one is None:
        return None
    match = _DATE.match(one)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def moment(value: Any) -> datetime | None:
    """A Workday date-time with offset (a bare date is midnight UTC); None if unreadable."""
    one = text(value)
    if one is None:
        return None
    candidate = one.replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        only = day(one)
        return datetime(only.year, only.month, only.day, tzinfo=UTC) if only else None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def workday_datetime(moment_: datetime) -> str:
    """A Workday date-time with offset, e.g. ``2026-11-27T03:01:29.000+00:00``."""
    moment_ = moment_.astimezone(UTC)
    return moment_.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment_.microsecond // 1000:03d}+00:00"


def _valid_timezone(value: str | None) -> str | None:
    if not value:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    return value


class RowMapper:
    """Maps report rows to ``PersonRecord``/``ReviewEvent`` through the ``columns`` table.

    ``absent`` holds optional columns the report does not have: those fields are not read.
    ``notes`` gathers warnings worth one line each (counted, not repeated per row).
    """

    def __init__(self, config: WorkdayConfig, connector: str, source: str) -> None:
        self.config = config
        self.columns: WorkdayColumns = config.columns
        self.connector = connector
        self.source = source
        self.absent: set[str] = set()
        self.bad_timezones: dict[str, int] = {}
        self._inactive = {s.strip().lower() for s in config.inactive_statuses}
        # Trainings read from the people rows (when columns.trainings is set), and whose.
        self.training_records: list[TrainingRecord] = []
        self.training_people: set[str] = set()

    def _col(self, field: str) -> str | None:
        return None if field in self.absent else getattr(self.columns, field)

    def _get(self, row: Mapping[str, Any], field: str) -> Any:
        column = self._col(field)
        return None if column is None else get_path(row, column)

    def person(self, row: Mapping[str, Any], entry: int) -> PersonRecord:
        """One people row; an unusable row is an ``InputDataError`` naming the entry and column."""
        where = f"{self.source} entry {entry}"
        external_id = text(self._get(row, "id"))
        if not external_id:
            raise InputDataError(
                f"{where}: no employee id in column {self.columns.id!r} (columns.id); every "
                "row needs one"
            )
        active = flag(self._get(row, "active"))
        status_text = text(self._get(row, "status"))
        if active is None and status_text is not None:
            active = status_text.lower() not in self._inactive and flag(status_text) is not False
        if active is None:
            active = True
        tz_raw = text(self._get(row, "timezone"))
        timezone = _valid_timezone(tz_raw)
        if tz_raw and timezone is None:
            self.bad_timezones[tz_raw] = self.bad_timezones.get(tz_raw, 0) + 1
        level = leading_number(self._get(row, "level"))
        wid = text(self._get(row, "wid"))
        values: dict[str, Any] = {
            "external_id": external_id,
            "first_name": text(self._get(row, "first_name")) or "",
            "last_name": text(self._get(row, "last_name")) or "",
            "preferred_name": text(self._get(row, "preferred_name")),
            "email": text(self._get(row, "email")),
            "job_title": text(self._get(row, "job_title")),
            "department": text(self._get(row, "department")),
            "division": text(self._get(row, "division")),
            "location": text(self._get(row, "location")),
            "timezone": timezone,
            "manager_external_id": text(self._get(row, "manager_id")),
            "hire_date": day(self._get(row, "hire_date")),
            "termination_date": day(self._get(row, "termination_date")),
            "status": PersonStatus.ACTIVE if active else PersonStatus.INACTIVE,
            "hris_status": status_text or ("Active" if active else "Inactive"),
            "level": int(level) if level is not None and level >= 0 else None,
            "skills": texts(self._get(row, "skills")),
            "interests": texts(self._get(row, "interests")),
            "languages": texts(self._get(row, "languages")),
            "extra": {"wid": wid} if wid else {},
            "source_line": entry,
        }
        if self.columns.trainings:
            self.training_records.extend(self.trainings(row, entry, external_id))
            self.training_people.add(external_id)
        try:
            return PersonRecord(**values)
        except ValidationError as exc:
            err = exc.errors(include_url=False, include_input=False)[0]
            field = str(err["loc"][0]) if err["loc"] else "row"
            column = getattr(self.columns, field, field)
            msg = err["msg"].removeprefix("Value error, ")
            raise InputDataError(
                f"{where}: employee {external_id!r}: column {column!r} (columns.{field}): {msg}"
            ) from None

    def trainings(
        self, row: Mapping[str, Any], entry: int, external_id: str
    ) -> list[TrainingRecord]:
        """The ``columns.trainings`` values of one people row.

        Multi-valued like every such column (a string for one value, a list for several,
        absent for none). A value is a training name (its dates unknown), or a group instance
        whose sub-fields give the training (a field named like Training, Course or Name), its
        completion (a field with "Complet" in its name) and its expiry ("Expir"). A date that
        cannot be read is an error naming the entry and the column.
        """
        column = self.columns.trainings
        if not column:
            return []
        value = row.get(column) if "/" not in column else get_path(row, column)
        items = value if isinstance(value, list) else ([] if value is None else [value])
        out: list[TrainingRecord] = []
        where = f"{self.source} entry {entry}: employee {external_id!r}: column {column!r}"
        for item in items:
            if not isinstance(item, Mapping):
                names = texts(item)
                out.extend(
                    TrainingRecord(person_external_id=external_id, training=n, source_line=entry)
                    for n in names
                )
                continue
            fields = {str(k).casefold(): v for k, v in item.items()}
            name = next(
                (
                    text(v)
                    for k, v in fields.items()
                    if any(w in k for w in ("training", "course", "name", "descriptor"))
                    and "date" not in k
                    and text(v)
                ),
                None,
            )
            if not name:
                continue
            dates: dict[str, date | None] = {}
            for key, part in (("completed_at", "complet"), ("expires_at", "expir")):
                raw = next((text(v) for k, v in fields.items() if part in k), None)
                dates[key] = day(raw)
                if raw and dates[key] is None:
                    raise InputDataError(f"{where}: {name!r}: unreadable date {raw!r}")
            try:
                out.append(
                    TrainingRecord(
                        person_external_id=external_id, training=name, source_line=entry, **dates
                    )
                )
            except ValidationError as exc:
                msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
                raise InputDataError(f"{where}: {name!r}: {msg}") from None
        return out

    def review(
        self, row: Mapping[str, Any], entry: int, source: str
    ) -> tuple[ReviewEvent | None, str | None]:
        """One reviews row -> (event, None), or (None, why it was skipped); None, None: not completed."""
        where = f"{self.source} entry {entry}"
        review_id = text(get_path(row, self.columns.review_id))
        employee = text(get_path(row, self.columns.employee_id))
        completed = moment(get_path(row, self.columns.completed_at))
        if completed is None:
            return None, None  # not completed yet: not an event
        if not review_id or not employee:
            missing = "review id" if not review_id else "employee id"
            return None, f"{where}: no {missing}; skipped"
        raw = leading_number(get_path(row, self.columns.rating))
        if raw is None:
            return None, f"{where}: review {review_id!r} has no numeric rating; skipped"
        lo, hi = self.config.rating_scale_min, self.config.rating_scale_max
        if not lo <= raw <= hi:
            return None, (
                f"{where}: review {review_id!r} rating {raw:g} is outside rating_scale_min.."
                f"rating_scale_max ({lo:g}..{hi:g}); skipped"
            )
        try:
            event = ReviewEvent(
                type="review.completed",
                cycle=text(get_path(row, self.columns.cycle)),
                subject_external_id=employee,
                raw_rating=raw,
                scale_min=lo,
                scale_max=hi,
                completed_at=completed,
                source=source,
                source_event_id=review_id,
            )
        except ValidationError as exc:
            # One line naming the field, never the value (it would reach the log).
            err = exc.errors(include_url=False, include_input=False)[0]
            field = ".".join(str(p) for p in err["loc"]) or "review"
            raise ValueError(
                f"{where}: {field}: {err['msg'].removeprefix('Value error, ')}"
            ) from None
        return event, None
