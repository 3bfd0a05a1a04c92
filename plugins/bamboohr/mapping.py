"""From BambooHR report rows (field alias -> string) to coachbridge records.

BambooHR returns every value as a string (or null), uses ``"0000-00-00"`` for an empty date,
and silently leaves out any field the API key may not see. Supervisor fields are ambiguous in
the docs (``supervisorEId`` is an employee id per some sources, the employee *number* per
others), so the manager is resolved by whichever field actually matches employee ids, then by
employee number, then by the supervisor's work email.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from coachbridge.domain import PersonRecord, PersonStatus, ReviewEvent
from pydantic import ValidationError

log = logging.getLogger(__name__)

#: Fields every sync asks for; those the key cannot see are reported by name.
CORE_FIELDS = (
    "firstName",
    "lastName",
    "workEmail",
    "jobTitle",
    "department",
    "division",
    "location",
    "status",
    "hireDate",
)
OPTIONAL_FIELDS = (
    "preferredName",
    "employmentHistoryStatus",
    "terminationDate",
    "employeeNumber",
    "lastChanged",
)
#: coachbridge field -> the BambooHR field alias a sync reads it from (the employee ``id`` is
#: always there; the manager is resolved from ``SUPERVISOR_FIELDS``).
STANDARD_ALIASES: dict[str, str] = {
    "id": "id",
    "first_name": "firstName",
    "last_name": "lastName",
    "preferred_name": "preferredName",
    "email": "workEmail",
    "job_title": "jobTitle",
    "department": "department",
    "division": "division",
    "location": "location",
    "manager_id": "supervisorEId",
    "hire_date": "hireDate",
    "termination_date": "terminationDate",
    "status": "status",
}
SUPERVISOR_FIELDS = ("supervisorId", "supervisorEId", "supervisorEmail")
SUPERVISOR_MODES = ("supervisorEId", "supervisorId", "supervisorEId:number", "supervisorEmail")


def report_fields(rating_field: str | None, extra: Sequence[str]) -> list[str]:
    """The field list of every report request, without duplicates, in a stable order."""
    out: list[str] = []
    for name in (*CORE_FIELDS, *OPTIONAL_FIELDS, *SUPERVISOR_FIELDS, rating_field, *extra):
        if name and name not in out:
            out.append(name)
    return out


class FieldIds:
    """Which names mean one field, from ``GET /api/v1/meta/fields``: its ``id`` (an integer or
    a dotted string) and its ``alias`` (only present when the field has one).

    A custom report may answer a field under the alias it was asked by or under its id; this
    maps each answer key back to the name coachbridge asked with.
    """

    def __init__(self, meta: Iterable[Mapping[str, Any]]) -> None:
        self._names: dict[str, frozenset[str]] = {}
        for field in meta:
            names = {str(field[k]) for k in ("id", "alias") if field.get(k) not in (None, "")}
            group = frozenset(names)
            for name in names:
                self._names[name] = group

    def same(self, name: str) -> frozenset[str]:
        return self._names.get(name, frozenset({name}))

    def answer_keys(self, requested: Sequence[str]) -> dict[str, str]:
        """``{key the answer may use: requested name}`` for every name of each requested field."""
        out: dict[str, str] = {}
        for name in requested:
            for other in self.same(name):
                out.setdefault(other, name)
        return out


def align_answer(
    rows: list[dict[str, Any]],
    returned: list[str],
    requested: Sequence[str],
    ids: FieldIds,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows and field list keyed by the requested names, whichever names BambooHR echoed."""
    keys = ids.answer_keys(requested)
    renamed = []
    for row in rows:
        out: dict[str, Any] = {}
        for key, value in row.items():
            name = key if key == "id" else keys.get(key, key)
            if name not in out or out[name] is None:
                out[name] = value
        renamed.append(out)
    return renamed, [keys.get(key, key) for key in returned]


def missing_fields(
    requested: Sequence[str], returned: Iterable[str], rows: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Requested fields BambooHR silently dropped (what the key may not see, or unknown names).

    The report's ``fields`` list is authoritative when present; otherwise a field counts as
    dropped when no row carries the key at all.
    """
    seen = set(returned)
    if not seen and rows:
        for row in rows:
            seen.update(row)
    if not seen:
        return []
    # A supervisor is needed once: any one of its three fields is enough.
    gone = [f for f in requested if f not in seen and f not in SUPERVISOR_FIELDS]
    if not any(f in seen for f in SUPERVISOR_FIELDS):
        gone.append("supervisorId/supervisorEId/supervisorEmail")
    return gone


def text(row: Mapping[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, dict) and "value" in value:  # webhook variant {"value": ...}
        value = value["value"]
    value = str(value).strip()
    return value or None


def parse_date(value: str | None) -> date | None:
    """A BambooHR date: ``YYYY-MM-DD``; ``0000-00-00`` and blanks mean none."""
    if not value or value.startswith("0000-00-00"):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def parse_timestamp(value: str | None) -> datetime | None:
    """An ISO 8601 timestamp as BambooHR writes it (``Z``, ``+00:00`` or ``+0000``), in UTC."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def choose_supervisor_mode(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """Which supervisor field names managers here: the one whose values match most references.

    ``supervisorEId`` and ``supervisorId`` are tried as employee ids, then ``supervisorEId`` as
    an employee number, then ``supervisorEmail`` as a work email. None when no row has any.
    """
    ids = {str(r.get("id")) for r in rows}
    numbers = {n for r in rows if (n := text(r, "employeeNumber"))}
    emails = {e.lower() for r in rows if (e := text(r, "workEmail"))}
    scores: dict[str, int] = {mode: 0 for mode in SUPERVISOR_MODES}
    for row in rows:
        eid, sid, mail = (
            text(row, "supervisorEId"),
            text(row, "supervisorId"),
            text(row, "supervisorEmail"),
        )
        scores["supervisorEId"] += eid in ids if eid else 0
        scores["supervisorId"] += sid in ids if sid else 0
        scores["supervisorEId:number"] += eid in numbers if eid else 0
        scores["supervisorEmail"] += mail.lower() in emails if mail else 0
    best = max(SUPERVISOR_MODES, key=lambda m: (scores[m], -SUPERVISOR_MODES.index(m)))
    return best if scores[best] else None


@dataclass
class Directory:
    """How to turn a supervisor reference into an employee id: by number and by work email."""

    by_number: dict[str, str]
    by_email: dict[str, str]

    @classmethod
    def of(cls, rows: Iterable[Mapping[str, Any]]) -> Directory:
        by_number: dict[str, str] = {}
        by_email: dict[str, str] = {}
        for row in rows:
            emp = str(row.get("id"))
            if number := text(row, "employeeNumber"):
                by_number.setdefault(number, emp)
            if email := text(row, "workEmail"):
                by_email.setdefault(email.lower(), emp)
        return cls(by_number, by_email)


def resolve_manager(row: Mapping[str, Any], mode: str | None, directory: Directory) -> str | None:
    """The manager's employee id for one row, by ``mode``, falling back to supervisorEmail."""
    found: str | None = None
    if mode in ("supervisorEId", "supervisorId"):
        found = text(row, mode)
    elif mode == "supervisorEId:number":
        eid = text(row, "supervisorEId")
        found = directory.by_number.get(eid) if eid else None
    if found is None:
        mail = text(row, "supervisorEmail")
        found = directory.by_email.get(mail.lower()) if mail else None
    return found


#: Which BambooHR fields each record field comes from (any one present is enough).
_SOURCES: dict[str, tuple[str, ...]] = {
    "first_name": ("firstName",),
    "last_name": ("lastName",),
    "preferred_name": ("preferredName",),
    "email": ("workEmail",),
    "job_title": ("jobTitle",),
    "department": ("department",),
    "division": ("division",),
    "location": ("location",),
    "manager_external_id": SUPERVISOR_FIELDS,
    "hire_date": ("hireDate",),
    "status": ("status",),
    "hris_status": ("employmentHistoryStatus", "status"),
    "termination_date": ("terminationDate",),
}


def to_record(
    row: Mapping[str, Any],
    manager: str | None,
    extra_fields: Sequence[str],
    present: Iterable[str] | None = None,
) -> tuple[PersonRecord | None, str | None]:
    """One report row as a ``PersonRecord``; (None, reason) when the row cannot be used.

    ``present`` names the fields BambooHR returned. A field it left out (the key may not see
    it) is left out of the record too, so the sync keeps the value already stored instead of
    clearing it.
    """
    emp = text(row, "id")
    if not emp:
        return None, "a row without an employee id"
    hris_status = text(row, "status")
    status = (
        PersonStatus.INACTIVE
        if hris_status and hris_status.lower() == "inactive"
        else PersonStatus.ACTIVE
    )
    # Only what BambooHR returned: an empty field removes the stored value (None), a field the
    # key could not see leaves it as it was.
    returned_names = set(present) if present is not None else set(row)
    extra: dict[str, str | None] = {
        name: text(row, name)
        for name in dict.fromkeys((*extra_fields, "employeeNumber"))
        if name in returned_names
    }
    termination = parse_date(text(row, "terminationDate"))
    email = text(row, "workEmail")
    values: dict[str, Any] = {
        "external_id": emp,
        "first_name": text(row, "firstName") or "",
        "last_name": text(row, "lastName") or "",
        "preferred_name": text(row, "preferredName"),
        "email": email,
        "job_title": text(row, "jobTitle"),
        "department": text(row, "department"),
        "division": text(row, "division"),
        "location": text(row, "location"),
        "manager_external_id": manager if manager != emp else None,
        "hire_date": parse_date(text(row, "hireDate")),
        "status": status,
        "hris_status": text(row, "employmentHistoryStatus") or hris_status,
        # A future-dated termination of someone still active is not a departure yet.
        "termination_date": termination if status == PersonStatus.INACTIVE else None,
        "extra": extra,
    }
    if present is not None:
        returned = set(present)
        values = {
            key: value
            for key, value in values.items()
            if key not in _SOURCES or any(src in returned for src in _SOURCES[key])
        }
    try:
        return PersonRecord(**values), None
    except ValidationError as exc:
        first = exc.errors(include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        if where == "email":  # keep the person; an unusable email is only a warning
            values["email"] = None
            return PersonRecord(**values), f"employee {emp}: work email is not an address; ignored"
        return None, f"employee {emp}: {where}: {first['msg']}"


def parse_rating(value: str | None) -> float | None:
    """A rating as a number: ``"4"``, ``"3.5"``, ``"4 - Exceeds"`` -> the leading number."""
    if not value:
        return None
    head = value.strip().split()[0].rstrip(".,:-")
    try:
        return float(head)
    except ValueError:
        return None


def rating_key(field: str, changed_at: datetime | None) -> str:
    """What makes one rating change one event, whichever way it arrives: the field and the UTC
    day of the change (with the employee and the value, in ``rating_event``).

    A field-based webhook stamps the change seconds after BambooHR's ``lastChanged``, which the
    sync sees, so the exact moment cannot match; the day does. The same value set again on
    another day is a new event; set twice on one day it is one.
    """
    day = (changed_at or datetime.now(UTC)).astimezone(UTC).date().isoformat()
    return f"{field}@{day}"


def rating_event(
    *,
    source: str,
    employee_id: str,
    raw: float,
    scale_min: float,
    scale_max: float,
    completed_at: datetime | None,
    key: str,
    email: str | None = None,
) -> ReviewEvent:
    """A normalized review event for one observed rating change; ``key`` makes its id unique."""
    digest = hashlib.sha256(f"{employee_id}\x1f{raw:g}\x1f{key}".encode()).hexdigest()[:20]
    return ReviewEvent(
        type="review.completed",
        subject_external_id=employee_id,
        subject_email=email,
        raw_rating=raw,
        scale_min=scale_min,
        scale_max=scale_max,
        completed_at=completed_at,
        source=source,
        source_event_id=f"rating:{employee_id}:{digest}",
    )
