"""Write-back: turn what coachbridge owns into ``PushItem``s for one connector, and remember results.

The core decides *what* to write; each connector decides *how* its HRIS stores it. For every
record this module builds one :class:`~coachbridge.connectors.PushItem` whose ``fields`` and
``people`` are the whole contract between the two (connector-agnostic, documented below), adds
what the previous push stored in ``external_refs`` (the HRIS id and a fingerprint of what was
sent), asks the connector to write the records that are new or changed, and stores each result
as soon as the connector returns it.

``PushItem.fields`` per kind (dates are ISO ``YYYY-MM-DD`` strings, datetimes ISO 8601 with an
offset, absent values ``None``):

- ``goal``: ``title``; ``description`` (the goal's measure and target as text, or ``None``);
  ``due_date``; ``progress`` (float 0..100); ``percent`` (the same as an int 0..100);
  ``status`` (``open``, ``in_progress``, ``completed``, ``cancelled``); ``completion_date``
  (the day the goal was last updated, only when ``status`` is ``completed``); ``program``
  (the program's name).
- ``session`` (held sessions only): ``date``; ``start``; ``minutes`` (int); ``program`` (the
  program's name); ``description`` (a neutral one-line summary: program and the guide's name;
  never the agenda, action items or private notes).
- ``pairing`` (active, paused, completed and ended pairings): ``program``; ``kind`` (the
  program's kind); ``start``; ``end`` (the day it ended, or for an open pairing its planned
  end: the program's end, else its start plus ``duration_weeks``; ``None`` if unknown);
  ``status``; ``end_reason``;
  ``purpose`` (the program's objective, or ``None``).

``PushItem.people`` (every kind): ``learner``, ``guide`` and ``owner`` (the goal's owner; for
sessions and pairings the learner) as *this connector's* external ids, or ``None`` where the
person has none; the same with an ``_email`` suffix (work email) and a ``_name`` suffix (display
name) so a connector can fall back or label records.

A connector declares which kinds it writes with a ``push_kinds`` class attribute (default: all
three); items of other kinds are never built for it. Private session notes and feedback are never
read by this module, so no item can carry them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from coachbridge.connectors import Connector, PushItem, PushKind, PushResult
from coachbridge.errors import ConnectorError
from coachbridge.hris.sync import IMPORTED_GOAL_PREFIX
from coachbridge.store import Database
from coachbridge.store.tables import (
    ExternalIdRow,
    ExternalRefRow,
    GoalRow,
    PairingRow,
    PersonRow,
    ProgramRow,
    SessionRow,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

ALL_KINDS: tuple[PushKind, ...] = ("goal", "session", "pairing")
PUSHED_PAIRING_STATUSES = ("active", "paused", "completed", "ended")
#: Actions after which the HRIS holds what we sent, so the fingerprint is remembered.
_WRITTEN = ("created", "updated", "closed")


def fingerprint(item_fields: dict[str, Any], people: dict[str, str | None]) -> str:
    """A stable SHA-256 of what would be sent: equal fingerprints mean nothing to write."""
    canonical = json.dumps(
        {"fields": item_fields, "people": people},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class PushReport:
    """The outcome of one push: one result per item, in the order the items were built."""

    connector: str
    dry_run: bool
    results: list[PushResult] = field(default_factory=list)
    error: str | None = None

    def counts(self) -> dict[str, dict[str, int]]:
        """``{kind: {action: n}}`` for the summary line and JSON output."""
        out: dict[str, Counter[str]] = {}
        for result in self.results:
            out.setdefault(result.kind, Counter())[result.action] += 1
        return {kind: dict(counter) for kind, counter in sorted(out.items())}

    def as_dict(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "dry_run": self.dry_run,
            "counts": self.counts(),
            "results": [
                {
                    "kind": r.kind,
                    "local_id": r.local_id,
                    "action": r.action,
                    "external_id": r.external_id,
                    "message": r.message,
                }
                for r in self.results
            ],
            "error": self.error,
        }


class _People:
    """Looks up a person's id in one connector, email and name, with one query per table."""

    def __init__(self, s: Session, connector: str) -> None:
        self.ids: dict[int, str] = {}
        rows = s.execute(
            select(ExternalIdRow.person_id, ExternalIdRow.external_id)
            .where(ExternalIdRow.connector == connector)
            .order_by(ExternalIdRow.person_id, ExternalIdRow.external_id)
        )
        for person_id, external_id in rows:
            self.ids.setdefault(person_id, external_id)
        self.rows: dict[int, PersonRow] = {row.id: row for row in s.scalars(select(PersonRow))}

    def describe(self, role: str, person_id: int | None) -> dict[str, str | None]:
        row = self.rows.get(person_id) if person_id is not None else None
        usable = row is not None and not row.forgotten
        return {
            role: self.ids.get(person_id) if person_id is not None and usable else None,
            f"{role}_email": row.email if usable and row is not None else None,
            f"{role}_name": row.name if usable and row is not None else None,
        }


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return str(value.isoformat())


def _goal_description(goal: GoalRow) -> str | None:
    parts = []
    if goal.measure:
        parts.append(f"Measure: {goal.measure}")
    if goal.target:
        parts.append(f"Target: {goal.target}")
    return "\n".join(parts) or None


def build_push_items(
    s: Session, connector: str, kinds: Iterable[PushKind] = ALL_KINDS
) -> list[PushItem]:
    """Every record of ``kinds`` that coachbridge owns, as items for ``connector``.

    Goals imported from an HRIS (``source_key`` starting with ``import:``) are not coachbridge's
    and are never pushed back; goals made by hand or by rules are. Each item carries the external id and fingerprint a previous push stored.
    """
    wanted = set(kinds)
    people = _People(s, connector)
    programs = {row.id: row for row in s.scalars(select(ProgramRow))}
    pairings = {row.id: row for row in s.scalars(select(PairingRow))}
    refs = {
        (row.kind, row.local_id): row
        for row in s.scalars(select(ExternalRefRow).where(ExternalRefRow.connector == connector))
    }

    def program_name(program_id: str | None) -> str | None:
        program = programs.get(program_id) if program_id else None
        return (program.name or program.id) if program else program_id

    def who(learner: int | None, guide: int | None, owner: int | None) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        out.update(people.describe("learner", learner))
        out.update(people.describe("guide", guide))
        out.update(people.describe("owner", owner))
        return out

    items: list[PushItem] = []

    def add(kind: PushKind, local_id: int, fields: dict[str, Any], who_: dict[str, str | None]):
        ref = refs.get((kind, local_id))
        items.append(
            PushItem(
                kind=kind,
                local_id=local_id,
                fields=fields,
                people=who_,
                external_id=ref.external_id if ref else None,
                previous_fingerprint=ref.fingerprint if ref else None,
                fingerprint=fingerprint(fields, who_),
            )
        )

    if "goal" in wanted:
        for goal in s.scalars(
            select(GoalRow)
            .where(
                GoalRow.source_key.is_(None)
                | GoalRow.source_key.not_like(f"{IMPORTED_GOAL_PREFIX}%")
            )
            .order_by(GoalRow.id)
        ):
            pairing = pairings.get(goal.pairing_id) if goal.pairing_id else None
            learner = pairing.learner_id if pairing else goal.owner_id
            guide = pairing.guide_id if pairing else None
            program_id = goal.program_id or (pairing.program_id if pairing else None)
            progress = max(0.0, min(100.0, float(goal.progress or 0.0)))
            completed = goal.status == "completed"
            fields = {
                "title": goal.title,
                "description": _goal_description(goal),
                "due_date": _iso(goal.due_date),
                "progress": progress,
                "percent": 100 if completed else round(progress),
                "status": goal.status,
                "completion_date": _iso(goal.updated_at.date()) if completed else None,
                "program": program_name(program_id),
            }
            add("goal", goal.id, fields, who(learner, guide, goal.owner_id))

    if "session" in wanted:
        for session in s.scalars(
            select(SessionRow).where(SessionRow.status == "held").order_by(SessionRow.id)
        ):
            pairing = pairings.get(session.pairing_id)
            if pairing is None:
                continue
            who_ = who(pairing.learner_id, pairing.guide_id, pairing.learner_id)
            program = program_name(pairing.program_id)
            guide_name = who_.get("guide_name")
            start = session.start if session.start.tzinfo else session.start.replace(tzinfo=UTC)
            fields = {
                "date": start.date().isoformat(),
                "start": start.isoformat(),
                "minutes": int(session.minutes),
                "program": program,
                "description": f"{program} session" + (f" with {guide_name}" if guide_name else ""),
            }
            add("session", session.id, fields, who_)

    if "pairing" in wanted:
        for pairing in sorted(pairings.values(), key=lambda p: p.id):
            if pairing.status not in PUSHED_PAIRING_STATUSES:
                continue
            program = programs.get(pairing.program_id)
            objective = (program.settings or {}).get("objective") if program else None
            fields = {
                "program": program_name(pairing.program_id),
                "kind": program.kind if program else None,
                "start": _iso((pairing.activated_at or pairing.created_at).date()),
                "end": _iso(pairing.ended_at.date())
                if pairing.ended_at
                else _planned_end(program, pairing),
                "status": pairing.status,
                "end_reason": pairing.end_reason,
                "purpose": objective or None,
            }
            add("pairing", pairing.id, fields, who(pairing.learner_id, pairing.guide_id, None))
    return items


def _planned_end(program: ProgramRow | None, pairing: PairingRow) -> str | None:
    """When an open pairing is due to end, from the program as configured when last used."""
    settings = (program.settings or {}) if program is not None else {}
    weeks = settings.get("duration_weeks")
    if settings.get("end"):
        return str(settings["end"])
    if settings.get("start") and weeks:
        return _iso(date.fromisoformat(settings["start"]) + timedelta(weeks=int(weeks)))
    began = pairing.activated_at or pairing.created_at
    return _iso(began.date() + timedelta(weeks=int(weeks))) if weeks and began else None


def store_push_results(
    s: Session,
    connector: str,
    items: Sequence[PushItem],
    results: Sequence[PushResult],
    now: datetime | None = None,
) -> None:
    """Remember what the HRIS now holds: its id and the fingerprint of what was sent."""
    now = now or datetime.now(UTC)
    by_key = {(item.kind, item.local_id): item for item in items}
    for result in results:
        item = by_key.get((result.kind, result.local_id))
        if item is None or result.action not in _WRITTEN:
            continue
        ref = s.get(ExternalRefRow, (connector, result.kind, result.local_id))
        if ref is None:
            ref = ExternalRefRow(connector=connector, kind=result.kind, local_id=result.local_id)
            s.add(ref)
        ref.external_id = result.external_id or item.external_id
        ref.fingerprint = item.fingerprint
        ref.state = result.action
        ref.pushed_at = now


def run_push(
    db: Database,
    connector: Connector,
    *,
    dry_run: bool = False,
    kinds: Iterable[PushKind] | None = None,
) -> PushReport:
    """Push every new or changed record to ``connector``; unchanged ones cost no request.

    Items go to the connector one at a time, and each item's result (the HRIS id and the
    fingerprint of what was sent) is recorded in its own small transaction as soon as the
    connector returns it. If the HRIS fails halfway, or the process dies, at most the item in
    flight is lost: the next push updates what was already written instead of creating it a
    second time. A dry run asks the connector what it would do and writes nothing anywhere.
    """
    supported: tuple[PushKind, ...] = tuple(connector.push_kinds)
    wanted = [k for k in (kinds or supported) if k in supported]
    with db.transaction() as s:
        items = build_push_items(s, connector.name, wanted)
    report = PushReport(connector=connector.name, dry_run=dry_run)
    try:
        for item in items:
            if item.external_id and item.previous_fingerprint == item.fingerprint:
                report.results.append(
                    PushResult(item.kind, item.local_id, "unchanged", item.external_id)
                )
                continue
            results = connector.push([item], dry_run=dry_run)
            report.results.extend(results)
            if not dry_run:
                with db.transaction() as s:
                    store_push_results(s, connector.name, [item], results)
    except ConnectorError as exc:
        report.error = str(exc)
        exc.push_report = report  # type: ignore[attr-defined]  # the CLI shows what got through
        raise
    return report
