"""Training records from BambooHR, read for the people the programs need, never the company.

BambooHR lists training records per employee only (``GET /api/v1/training/record/employee/
{employeeId}``, optionally ``?type=<training type id>``) and has no "changed since" for them,
so reading everyone's would cost one request per employee on every sync. Instead:

- the core names the people whose trainings a program needs (``SyncContext.training_people``:
  those a ``[programs.guides]`` filter admits before its training test) and the trainings
  (``training_names``); nobody else is asked about;
- one ``GET /api/v1/training/type`` maps those names to type ids (and renewal frequencies:
  a renewable type's record expires ``frequency`` months after completion);
- the cursor remembers when each person was read. A person new to the set is read at once;
  the others are read again once their last read is older than ``trainings_refresh``, at most
  ``trainings_per_sync`` of them per sync (the oldest first), so a steady sync asks about a
  bounded batch of people, not all of them; ``sync --full`` reads the whole set again.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from coachbridge.connectors import SyncContext, TrainingBatch
from coachbridge.domain import TrainingRecord, training_key
from coachbridge.errors import ConnectorError
from coachbridge_bamboohr.client import BambooHRClient
from coachbridge_bamboohr.config import BambooHRConfig

TYPES_PATH = "v1/training/type"
RECORDS_PATH = "v1/training/record/employee/{employee}"


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months (the 31st becomes the month's last day)."""
    years, index = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, index + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _load(cursor: str | None) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        state = json.loads(cursor)
    except json.JSONDecodeError:
        return {}
    return state if isinstance(state, dict) else {}


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


class TrainingReader:
    """Reads the trainings stream for one BambooHR connector (see the module docstring)."""

    def __init__(self, client: BambooHRClient, config: BambooHRConfig) -> None:
        self.client = client
        self.config = config

    def types(self) -> dict[str, dict[str, Any]]:
        """Training types by id, as BambooHR lists them."""
        answer = self.client.request("GET", TYPES_PATH)
        if not isinstance(answer, Mapping):
            raise ConnectorError(f"BambooHR GET {TYPES_PATH}: the answer is not a map of types")
        return {str(k): v for k, v in answer.items() if isinstance(v, Mapping)}

    def read(
        self, cursor: str | None, *, full: bool, context: SyncContext | None, now: datetime
    ) -> TrainingBatch:
        people = context.training_people if context is not None else None
        names = context.training_names if context is not None else None
        if not people or not names:
            # Nobody named (no program filters guides on a training, or read on its own):
            # not one request.
            return TrainingBatch(records=[], cursor=cursor, people=frozenset())
        types = self.types()
        wanted_keys = {training_key(n) for n in names}
        wanted = {
            tid: t
            for tid, t in types.items()
            if training_key(str(t.get("name") or "")) in wanted_keys
        }
        warnings = []
        found = {training_key(str(t.get("name") or "")) for t in wanted.values()}
        for name in sorted(names):
            if training_key(name) not in found:
                warnings.append(f"BambooHR has no training type named {name!r}; none read")
        if not wanted:
            return TrainingBatch(records=[], cursor=cursor, people=frozenset(), warnings=warnings)
        state = _load(cursor)
        type_ids = sorted(wanted, key=lambda t: (len(t), t))
        seen: dict[str, str] = {}
        if not full and state.get("types") == type_ids:
            seen = {str(k): str(v) for k, v in (state.get("read") or {}).items()}
        ids = sorted((p for p in people if p.isdigit()), key=lambda p: (len(p), p))
        fresh = [p for p in ids if p not in seen]
        # Reads are stamped in UTC (ISO 8601, so they sort as text); the oldest go first.
        cutoff = _stamp(now - self.config.trainings_refresh)
        stale = [p for p in ids if p in seen and seen[p] <= cutoff]
        stale.sort(key=lambda p: seen[p])
        batch = fresh + stale[: self.config.trainings_per_sync]
        records: list[TrainingRecord] = []
        for emp in batch:
            records.extend(self._records(emp, wanted, type_ids))
            seen[emp] = _stamp(now)
        keep = {p: seen[p] for p in ids if p in seen}
        new_cursor = json.dumps({"types": type_ids, "read": keep}, separators=(",", ":"))
        return TrainingBatch(
            records=records,
            cursor=new_cursor,
            people=frozenset(batch),
            names=frozenset(str(t.get("name")) for t in wanted.values()),
            warnings=warnings,
        )

    def _records(
        self, emp: str, wanted: Mapping[str, Mapping[str, Any]], type_ids: list[str]
    ) -> list[TrainingRecord]:
        path = RECORDS_PATH.format(employee=emp)
        # One type: BambooHR filters; several: one request all the same, filtered here.
        params = {"type": type_ids[0]} if len(type_ids) == 1 else None
        # 404: the employee is gone from BambooHR (the people stream says so); no records.
        answer = self.client.request("GET", path, params=params, allow=(404,))
        if isinstance(answer, list) or (isinstance(answer, Mapping) and "_status" in answer):
            return []  # [] is BambooHR's answer for no records
        if not isinstance(answer, Mapping):
            raise ConnectorError(f"BambooHR GET {path}: the answer is not a map of records")
        out = []
        for item in answer.values():
            if not isinstance(item, Mapping):
                continue
            kind = wanted.get(str(item.get("type")))
            completed = _day(item.get("completed"))
            if kind is None or completed is None:
                continue
            expires = None
            frequency = kind.get("frequency")
            if kind.get("renewable") and isinstance(frequency, int) and frequency > 0:
                expires = add_months(completed, frequency)
            out.append(
                TrainingRecord(
                    person_external_id=emp,
                    training=str(kind.get("name")),
                    completed_at=completed,
                    expires_at=expires,
                )
            )
        return out


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
