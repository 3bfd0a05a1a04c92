"""Syncing a connector into the store: validate, diff, guard, then write in one transaction.

The connector only reads; this module decides. A sync is all-or-nothing: every check runs
before the first write, the writes share one transaction, and the connector's new cursor is
saved in that same transaction, so a failure leaves store and cursor as they were and the next
run repeats the window.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

from coachbridge import metrics
from coachbridge.connectors import (
    STREAM_NAMES,
    Batch,
    Connector,
    ConnectorConfig,
    GoalRecord,
    PeopleBatch,
    ReviewBatch,
    Stream,
    SyncContext,
    TrainingBatch,
)
from coachbridge.context import Hooks
from coachbridge.domain import (
    PersonRecord,
    PersonStatus,
    Program,
    ReviewEvent,
    TrainingRecord,
    check_reporting_tree,
    training_key,
)
from coachbridge.errors import InputDataError, RuntimeFailure, SyncAborted
from coachbridge.pairings.goals import create_goal
from coachbridge.pairings.lifecycle import end_pairings_of_leaver, flag_reporting_conflicts
from coachbridge.pairings.manager_changes import follow_manager_changes
from coachbridge.store import Database
from coachbridge.store.eligibility import passes_filters
from coachbridge.store.tables import (
    ExternalIdRow,
    InstallationRow,
    PersonHistoryRow,
    PersonRow,
    SyncStateRow,
    TrainingRow,
)
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

# Person fields a sync copies from a record (the manager is resolved separately).
_FIELDS = (
    "first_name",
    "last_name",
    "preferred_name",
    "email",
    "job_title",
    "department",
    "division",
    "location",
    "timezone",
    "hire_date",
    "hris_status",
    "termination_date",
    "level",
    "skills",
    "interests",
    "languages",
)
# The streams a sync stores; a declared stream outside these is not read.
_STORED = frozenset({"people", "reviews", "goals", "trainings"})
# The person fields the guide filters look at (``store.eligibility.passes_filters``).
_FILTER_FIELDS = (
    "status",
    "hris_status",
    "level",
    "department",
    "division",
    "location",
    "hire_date",
)
# Goals read from an HRIS carry this prefix in their source_key; everything else is coachbridge's.
IMPORTED_GOAL_PREFIX = "import:"

# ``people forget`` keeps, instead of a person's external id, this prefix and a keyed hash of
# it, so that a later sync recognises the erased person without storing who they were.
FORGOTTEN_PREFIX = "forgotten:"


def tombstone_secret(s: Session) -> bytes:
    """This database's tombstone key (``installation.tombstone_secret``, made by migration 0003)."""
    row = s.get(InstallationRow, 1)
    if row is None or not row.tombstone_secret:
        raise RuntimeFailure(
            "the database has no tombstone key (installation.tombstone_secret): erased people "
            "cannot be recognised; restore the installation row from a backup"
        )
    return bytes.fromhex(row.tombstone_secret)


def forgotten_key(secret: bytes, connector: str, external_id: str) -> str:
    """The tombstone of an erased person's id: HMAC-SHA256 with the database's own key.

    HRIS ids are short and guessable (``1001``, ``E-1001``), so an unkeyed hash of one is
    reversed by hashing candidates; without the key, nobody holding the database alone can.
    """
    message = f"{connector}\x1f{external_id}".encode()
    return FORGOTTEN_PREFIX + hmac.new(secret, message, hashlib.sha256).hexdigest()


def legacy_forgotten_key(connector: str, external_id: str) -> str:
    """The unkeyed SHA-256 tombstone written before migration 0003 (40 hex digits; a keyed one
    has 64). Such tombstones cannot be rewritten (the ids they hide are gone), so syncs still
    compare against this form; it is never written any more."""
    digest = hashlib.sha256(f"{connector}\x1f{external_id}".encode()).hexdigest()
    return FORGOTTEN_PREFIX + digest[:40]


# Fields whose effective-dated history outcome reports need.
HISTORY_FIELDS = ("status", "job_title", "level", "department", "manager_id", "termination_date")


@dataclass
class Change:
    external_id: str
    name: str
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)


@dataclass
class _Planned:
    record: PersonRecord
    row: PersonRow | None
    values: dict[str, Any]
    absent: bool = False  # missing from a full snapshot: deactivate, keep everything else


@dataclass
class SyncReport:
    connector: str
    dry_run: bool
    full: bool
    new: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    leaving: list[Change] = field(default_factory=list)
    reactivated: list[Change] = field(default_factory=list)
    unchanged: int = 0
    reviews_new: int = 0
    reviews_corrected: int = 0  # known events whose rating, scale or cycle changed
    reviews_for_rules: list[int] = field(default_factory=list)
    goals_new: int = 0
    goals_updated: int = 0
    trainings_new: int = 0
    trainings_updated: int = 0
    trainings_removed: int = 0
    pairings_ended: int = 0
    sessions_cancelled: int = 0
    pairings_flagged: int = 0
    # Manager programs: pairings ended because the learner moved to another manager, and the
    # pairings started with the new manager (``pairings.manager_changes``).
    manager_pairings_ended: int = 0
    manager_pairings_started: int = 0
    manager_pairing_ids: list[int] = field(default_factory=list)  # the started ones, to announce
    manager_sessions_cancelled: int = 0
    warnings: list[str] = field(default_factory=list)
    # Set by a dry run that a real run would refuse (too many leavers without --force).
    blocked: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "dry_run": self.dry_run,
            "full": self.full,
            "new": len(self.new),
            "changed": len(self.changed),
            "leaving": len(self.leaving),
            "reactivated": len(self.reactivated),
            "unchanged": self.unchanged,
            "reviews_new": self.reviews_new,
            "reviews_corrected": self.reviews_corrected,
            "goals_new": self.goals_new,
            "goals_updated": self.goals_updated,
            "trainings_new": self.trainings_new,
            "trainings_updated": self.trainings_updated,
            "trainings_removed": self.trainings_removed,
            "pairings_ended": self.pairings_ended,
            "sessions_cancelled": self.sessions_cancelled,
            "pairings_flagged": self.pairings_flagged,
            "manager_pairings_ended": self.manager_pairings_ended,
            "manager_pairings_started": self.manager_pairings_started,
            "manager_sessions_cancelled": self.manager_sessions_cancelled,
            "warnings": self.warnings,
            "blocked": self.blocked,
        }


def _where(record: PersonRecord, source: str) -> str:
    return (
        f"{source}:{record.source_line}"
        if record.source_line
        else f"{source}: id {record.external_id}"
    )


def validate_people(
    records: Sequence[PersonRecord],
    source: str,
    known_ids: Iterable[str] = (),
    *,
    stored_managers: dict[str, str | None] | None = None,
) -> None:
    """Duplicate ids, unknown managers and reporting cycles are input errors naming the line.

    For an incremental batch, ``stored_managers`` (external id -> manager's external id, as the
    store has them) is the tree the batch is laid over, so a change that closes a loop with
    people outside the batch is caught too.
    """
    seen: dict[str, PersonRecord] = {}
    emails: dict[str, PersonRecord] = {}
    for record in records:
        if record.external_id in seen:
            first = seen[record.external_id]
            raise InputDataError(
                f"{_where(record, source)}: duplicate employee id {record.external_id!r} "
                f"(first seen at {_where(first, source)})"
            )
        seen[record.external_id] = record
        if record.email:
            key = record.email.lower()
            if key in emails:
                raise InputDataError(
                    f"{_where(record, source)}: work email {record.email!r} is also used by "
                    f"employee {emails[key].external_id!r}"
                )
            emails[key] = record
    known = set(known_ids)
    for record in records:
        manager = record.manager_external_id
        if manager and manager not in seen and manager not in known:
            raise InputDataError(
                f"{_where(record, source)}: manager id {manager!r} of employee "
                f"{record.external_id!r} does not exist"
            )
        if manager == record.external_id:
            raise InputDataError(
                f"{_where(record, source)}: employee {manager!r} is their own manager"
            )
    managers: dict[str, str | None] = dict(stored_managers or {})
    for r in records:
        if stored_managers is None or "manager_external_id" in r.model_fields_set:
            managers[r.external_id] = r.manager_external_id or None
    try:
        check_reporting_tree(managers, known=set(seen) | known)
    except ValueError as exc:
        first = str(exc).split(": ", 1)[-1].split(" -> ")[0]
        rec = seen.get(first)
        where = _where(rec, source) if rec else source
        raise InputDataError(f"{where}: {exc}") from None


def _record_values(record: PersonRecord, *, provided_only: bool = False) -> dict[str, Any]:
    """Store values from a record. ``provided_only``: just the fields the connector set, so that
    a source without (say) a skills column, or a second connector for the same person, does not
    clear what another source said."""
    values = {name: getattr(record, name) for name in _FIELDS}
    values["email_key"] = record.email.lower() if record.email else None
    values["status"] = record.status.value
    values["skills"] = list(record.skills)
    values["interests"] = list(record.interests)
    values["languages"] = list(record.languages)
    values["extra"] = dict(record.extra)  # fields the connector was asked to keep (by name)
    if provided_only:
        given = set(record.model_fields_set)
        if "email" in given:
            given.add("email_key")
        values = {k: v for k, v in values.items() if k in given}
    return values


def _merged_extra(row: PersonRow | None, given: dict[str, str | None]) -> dict[str, str]:
    """A person's extra fields after a record: the names it gives replace the stored ones
    (None removes one), the rest stay, so two connectors keeping different fields for the same
    person do not undo each other."""
    merged = {**(row.extra if row is not None and row.extra else {}), **given}
    return {name: value for name, value in merged.items() if value is not None}


def _diff(row: PersonRow | None, values: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    if row is None:
        return {k: (None, v) for k, v in values.items() if v not in (None, [], "")}
    out = {}
    for key, new in values.items():
        old = getattr(row, key)
        if isinstance(old, list) or isinstance(new, list):
            old, new = list(old or []), list(new or [])
        if old != new:
            out[key] = (old, new)
    return out


def _training_record_key(record: TrainingRecord) -> str:
    """A training record's natural key within (connector, person): name and completion date."""
    completed = record.completed_at.isoformat() if record.completed_at else ""
    return f"{training_key(record.training)}|{completed}"[:320]


def _stable_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


class Syncer:
    """Runs one sync of one connector. ``progress`` is called with (done, total) if given.

    ``programs`` (the configured ones) lets the manager programs among them follow people who
    move to another manager, in the sync's transaction (without it nothing follows them), and
    tells the trainings stream whose trainings are needed: the people a program's guide filter
    admits before its training test (without it a connector reads only trainings that are
    cheap to read: a file, a report column).
    ``registry`` (the plugins) hears of the pairings and sessions that makes after the commit.
    """

    def __init__(
        self,
        db: Database,
        connector: Connector,
        *,
        now: datetime | None = None,
        progress: Callable[[int, int], None] | None = None,
        programs: Mapping[str, Program] | Iterable[Program] | None = None,
        registry: Hooks | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        if isinstance(programs, Mapping):
            programs = programs.values()
        self.programs: list[Program] | None = list(programs) if programs is not None else None
        self.connector = connector
        self.name = connector.name
        self.config: ConnectorConfig = connector.config
        self.now = now or datetime.now(UTC)
        self.today = self.now.date()
        self.progress = progress

    # -- public ----------------------------------------------------------------------------
    def run(self, *, full: bool = False, dry_run: bool = False, force: bool = False) -> SyncReport:
        started = time.monotonic()
        outcome = "failed"
        try:
            report = self._run(full=full, dry_run=dry_run, force=force)
            outcome = "dry run" if dry_run else "ok"
            return report
        except SyncAborted:
            outcome = "aborted"
            raise
        finally:
            metrics.sync_finished(self.name, outcome, time.monotonic() - started)

    def _run(self, *, full: bool, dry_run: bool, force: bool) -> SyncReport:
        """One loop over the streams the connector declares: read them all, then check, then
        write them all and save their cursors in one transaction."""
        streams = self._streams()
        with self.db.transaction() as s:
            stored = {stream.name: self._cursor(s, stream.name) for stream in streams}
        # Read everything before the first write: a failing vendor changes nothing.
        context = SyncContext(connector=self.name, full=full)
        batches: dict[str, Batch] = {}
        for stream in streams:
            cursor, stream_full = self._read_position(stream, stored[stream.name], full)
            if stream.name == "trainings":
                self._training_scope(context, batches.get("people"))
            batches[stream.name] = self.connector.read_stream(
                stream, cursor, full=stream_full, context=context
            )
        people = batches.get("people")
        report = SyncReport(
            connector=self.name,
            dry_run=dry_run,
            full=isinstance(people, PeopleBatch) and people.full,
        )
        for batch in batches.values():
            report.warnings.extend(batch.warnings)

        with self.db.transaction() as s:
            plan: list[_Planned] = []
            if isinstance(people, PeopleBatch):
                plan = self._stage_people(s, people, report)
            trainings = batches.get("trainings")
            if isinstance(trainings, TrainingBatch):
                self._check_trainings(s, trainings, people, report)
            problem = self._guard(s, report)
            if problem and not force and not dry_run:
                raise SyncAborted(problem)
            if dry_run:
                report.blocked = problem if not force else None
                reviews = batches.get("reviews")
                if isinstance(reviews, ReviewBatch):
                    self._preview_reviews(s, reviews.events, report)
                s.rollback()
                return report
            for name, batch in batches.items():
                if isinstance(batch, PeopleBatch):
                    self._apply_people(s, plan, report)
                elif isinstance(batch, ReviewBatch):
                    self._apply_reviews(s, batch.events, report)
                elif isinstance(batch, TrainingBatch):
                    self._apply_trainings(s, batch, report)
                else:
                    self._apply_goals(s, batch.goals, report)
                self._save_cursor(s, name, batch.cursor)
        return report

    def _streams(self) -> list[Stream]:
        """The declared streams the core stores, in ``STREAM_NAMES`` order."""
        declared = {stream.name: stream for stream in self.connector.streams}
        for name in declared.keys() - _STORED:
            log.info("%s: the core stores no %s stream yet; not read", self.name, name)
        return [declared[name] for name in STREAM_NAMES if name in declared and name in _STORED]

    @staticmethod
    def _read_position(stream: Stream, stored: str | None, full: bool) -> tuple[str | None, bool]:
        """The cursor and ``full`` flag to read ``stream`` with (see ``Stream``).

        An incremental stream starts over on --full or without a cursor. A full stream gets
        its saved cursor even with --full: a connector that detects changes against what it
        saw last (BambooHR's rating field) must not report them twice.
        """
        if stream.incremental:
            return (None if full else stored), full or stored is None
        return stored, full

    def _stage_people(self, s: Session, batch: PeopleBatch, report: SyncReport) -> list[_Planned]:
        """Validate and plan the people batch (no writes)."""
        known = {
            row.external_id: row.person_id
            for row in s.scalars(select(ExternalIdRow).where(ExternalIdRow.connector == self.name))
        }
        tombstones = {k for k in known if k.startswith(FORGOTTEN_PREFIX)}
        records = self._skip_forgotten(s, batch.records, tombstones, report)
        validate_people(
            records,
            self.connector.source_label("people"),
            () if batch.full else known,
            stored_managers=None if batch.full else self._stored_managers(s),
        )
        return self._plan_people(s, records, batch.full, known, report)

    # -- planning --------------------------------------------------------------------------
    def _plan_people(
        self,
        s: Session,
        records: Sequence[PersonRecord],
        full: bool,
        known: dict[str, int],
        report: SyncReport,
    ) -> list[_Planned]:
        rows = {row.id: row for row in s.scalars(select(PersonRow))}
        by_email: dict[str, PersonRow] = {}
        for row in rows.values():
            if row.email_key:
                by_email.setdefault(row.email_key, row)
        taken = {pid for pid in known.values()}
        ext_of = {pid: ext for ext, pid in known.items()}
        plan: list[_Planned] = []
        for record in records:
            pid = known.get(record.external_id)
            row = rows.get(pid) if pid is not None else None
            if row is None and record.email:
                candidate = by_email.get(record.email.lower())
                # Matched by email only when that person has no id in this connector yet.
                if candidate is not None and candidate.id not in taken:
                    row = candidate
                    taken.add(candidate.id)
            values = _record_values(record, provided_only=row is not None)
            if "extra" in values:
                values["extra"] = _merged_extra(row, values["extra"])
            returning = row is not None and row.status == "inactive"
            if returning and values.get("status") == "active" and "termination_date" not in values:
                values["termination_date"] = None  # rehired: the old date stays in the history
            if record.status == PersonStatus.INACTIVE and values.get("termination_date") is None:
                if row is None or row.status == PersonStatus.ACTIVE.value:
                    values["termination_date"] = self.today
                else:
                    values["termination_date"] = row.termination_date
            diff = _diff(row, values)
            if row is not None and "manager_external_id" in record.model_fields_set:
                # A move under another manager is a change too (a reorg must show in --dry-run).
                before = ext_of.get(row.manager_id) if row.manager_id is not None else None
                after = record.manager_external_id or None
                if before != after:
                    diff["manager"] = (before, after)
            change = Change(record.external_id, record.name, diff)
            if row is None:
                report.new.append(change)
            elif row.status == "active" and values.get("status") == "inactive":
                report.leaving.append(change)
            elif row.status == "inactive" and values.get("status") == "active":
                report.reactivated.append(change)
            elif diff:
                report.changed.append(change)
            else:
                report.unchanged += 1
            plan.append(_Planned(record, row, values))
        if full:
            present = {r.external_id for r in records}
            for external_id, pid in sorted(known.items()):
                if external_id.startswith(FORGOTTEN_PREFIX):
                    continue
                row = rows.get(pid)
                if external_id not in present and row is not None and row.status == "active":
                    change = Change(external_id, row.name, {"status": ("active", "inactive")})
                    report.leaving.append(change)
                    missing = PersonRecord(
                        external_id=external_id,
                        first_name=row.first_name,
                        last_name=row.last_name,
                        status=PersonStatus.INACTIVE,
                    )
                    values = {
                        "status": "inactive",
                        "hris_status": row.hris_status,
                        "termination_date": row.termination_date or self.today,
                    }
                    plan.append(_Planned(missing, row, values, absent=True))
        return plan

    def _guard(self, s: Session, report: SyncReport) -> str | None:
        """Why this sync must not run without --force (too many leavers), or None."""
        if not report.leaving:
            return None
        active_before = s.query(PersonRow).filter(PersonRow.status == "active").count()
        limit = self.config.deactivation_limit(active_before)
        if len(report.leaving) <= limit:
            return None
        return (
            f"sync of {self.name} would deactivate {len(report.leaving)} of {active_before} active "
            f"people, more than max_deactivate allows ({limit}); nothing was changed. Check the "
            "export, then re-run with --force if this is right"
        )

    def _stored_managers(self, s: Session) -> dict[str, str | None]:
        """This connector's reporting lines as the store has them: external id -> manager's."""
        ext_of = {
            pid: ext
            for ext, pid in s.execute(
                select(ExternalIdRow.external_id, ExternalIdRow.person_id).where(
                    ExternalIdRow.connector == self.name
                )
            )
        }
        out: dict[str, str | None] = {}
        for pid, manager_id in s.execute(select(PersonRow.id, PersonRow.manager_id)):
            if pid in ext_of:
                out[ext_of[pid]] = ext_of.get(manager_id) if manager_id is not None else None
        return out

    def _skip_forgotten(
        self,
        s: Session,
        records: Sequence[PersonRecord],
        tombstones: set[str],
        report: SyncReport,
    ) -> list[PersonRecord]:
        """Leave out people whose data was erased (``people forget``): the HRIS may still list
        them, but coachbridge must not bring them back."""
        if not tombstones:
            return list(records)
        secret = tombstone_secret(s)
        kept = []
        for record in records:
            ext = record.external_id
            if (
                forgotten_key(secret, self.name, ext) in tombstones
                or legacy_forgotten_key(self.name, ext) in tombstones
            ):
                report.warnings.append(
                    f"an erased person is still in {self.name}'s data; skipped (not re-imported)"
                )
                continue
            kept.append(record)
        return kept

    # -- writing ---------------------------------------------------------------------------
    def _apply_people(self, s: Session, plan: list[_Planned], report: SyncReport) -> None:
        # Written in batches: new people in one flush, links and history as bulk inserts.
        # Row-at-a-time flushes made a 20,000-person first sync take minutes.
        total = len(plan)
        id_map: dict[str, PersonRow] = {}
        leavers: list[PersonRow] = []
        self._history_rows: list[dict[str, Any]] = []
        linked = set(
            s.scalars(select(ExternalIdRow.external_id).where(ExternalIdRow.connector == self.name))
        )
        created: list[tuple[PersonRecord, PersonRow]] = []
        for done, item in enumerate(plan, 1):
            record, row, values = item.record, item.row, item.values
            if row is None:
                row = PersonRow(**values)
                s.add(row)
                created.append((record, row))
            else:
                before = {f: getattr(row, f) for f in HISTORY_FIELDS}
                for key, value in values.items():
                    setattr(row, key, value)
                if before.get("status") == "active" and row.status == "inactive":
                    leavers.append(row)
                self._history(s, row, before, record)
            id_map[record.external_id] = row
            if self.progress and (done % 500 == 0 or done == total):
                self.progress(done, total)
        s.flush()
        for record, row in created:
            self._history(s, row, {}, record)
        links = [
            {
                "connector": self.name,
                "external_id": item.record.external_id,
                "person_id": id_map[item.record.external_id].id,
            }
            for item in plan
            if item.record.external_id not in linked
        ]
        if links:
            s.execute(insert(ExternalIdRow), links)
        # Managers second: a record may name a manager that comes later in the file.
        managers_changed: set[int] = set()
        lookup: dict[str, int] = {
            external_id: person_id
            for external_id, person_id in s.execute(
                select(ExternalIdRow.external_id, ExternalIdRow.person_id).where(
                    ExternalIdRow.connector == self.name
                )
            )
        }
        for item in plan:
            if item.absent:  # someone missing from a full snapshot keeps their last known manager
                continue
            if item.row is not None and "manager_external_id" not in item.record.model_fields_set:
                continue  # this source does not know managers: keep the one another source gave
            record = item.record
            target = id_map[record.external_id]
            manager_id = (
                lookup.get(record.manager_external_id) if record.manager_external_id else None
            )
            if target.manager_id != manager_id:
                self._history_value(
                    s, target.id, "manager_id", manager_id, record, first=item.row is None
                )
                target.manager_id = manager_id
                managers_changed.add(target.id)
        s.flush()
        if self._history_rows:
            s.execute(insert(PersonHistoryRow), self._history_rows)
        for row in leavers:
            ended, cancelled = end_pairings_of_leaver(s, row, self.now)
            report.pairings_ended += ended
            report.sessions_cancelled += cancelled
        if managers_changed:
            moves = follow_manager_changes(
                s, self.programs or [], managers_changed, self.now, registry=self.registry
            )
            report.manager_pairings_ended += moves.ended
            report.manager_pairings_started += len(moves.started)
            report.manager_pairing_ids += moves.started
            report.manager_sessions_cancelled += moves.sessions_cancelled
            report.pairings_flagged += flag_reporting_conflicts(s, managers_changed)

    def _history(
        self, s: Session, row: PersonRow, before: dict[str, Any], record: PersonRecord
    ) -> None:
        for name in HISTORY_FIELDS:
            if name == "manager_id":
                continue
            new = getattr(row, name)
            if not before or before.get(name) != new:
                self._history_value(s, row.id, name, new, record, first=not before)

    def _history_value(
        self,
        s: Session,
        person_id: int,
        name: str,
        value: Any,
        record: PersonRecord,
        first: bool = False,
    ) -> None:
        valid_from = self.today
        if name == "status" and value == "inactive" and record.termination_date:
            valid_from = record.termination_date
        elif first and record.hire_date and name != "termination_date":
            valid_from = record.hire_date
        if not first:  # a new person has no open history rows to close
            s.execute(
                update(PersonHistoryRow)
                .where(
                    PersonHistoryRow.person_id == person_id,
                    PersonHistoryRow.field == name,
                    PersonHistoryRow.valid_to.is_(None),
                )
                .values(valid_to=valid_from)
            )
        self._history_rows.append(
            {
                "person_id": person_id,
                "field": name,
                "value": None
                if value is None
                else str(value.isoformat() if isinstance(value, date) else value),
                "valid_from": valid_from,
                "source": self.name,
            }
        )

    def _rules_since(self, s: Session) -> datetime:
        if self.config.rules_since is not None:
            since = self.config.rules_since
            return since if since.tzinfo else since.replace(tzinfo=UTC)
        state = s.get(SyncStateRow, (self.name, "people"))
        if state is not None and state.first_synced_at is not None:
            return state.first_synced_at
        return self.now

    def _preview_reviews(
        self, s: Session, events: Sequence[ReviewEvent], report: SyncReport
    ) -> None:
        from coachbridge.hris.reviews import corrections, stored_event

        for event in events:
            row = stored_event(s, event)
            if row is None:
                report.reviews_new += 1
            elif corrections(row, event):
                report.reviews_corrected += 1

    def _apply_reviews(self, s: Session, events: Sequence[ReviewEvent], report: SyncReport) -> None:
        from coachbridge.hris.reviews import store_review_event

        since = self._rules_since(s)
        for event in events:
            row, created, corrected = store_review_event(
                s, event, via="sync", rules_since=since, people_from=self.config.people_from
            )
            if created:
                report.reviews_new += 1
            elif corrected:
                report.reviews_corrected += 1
            if (created or corrected) and row.rules_status == "pending":
                report.reviews_for_rules.append(row.id)

    def _apply_goals(self, s: Session, goals: Sequence[GoalRecord], report: SyncReport) -> None:
        for goal in goals:
            link = s.get(ExternalIdRow, (self.name, goal.owner_external_id))
            if link is None:
                report.warnings.append(
                    f"goal {goal.title!r}: owner {goal.owner_external_id!r} is not a known person; skipped"
                )
                continue
            # "import:" marks goals the HRIS owns: push never writes them back.
            key = f"{IMPORTED_GOAL_PREFIX}{self.name}:" + (
                goal.external_id or _stable_id(goal.owner_external_id, goal.title)
            )
            values = {
                "owner_id": link.person_id,
                "title": goal.title,
                "due_date": goal.due_date,
                "progress": goal.progress,
                "status": goal.status,
            }
            row, created = create_goal(s, source_key=key, **values)
            if created:
                report.goals_new += 1
            elif any(getattr(row, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(row, k, v)
                report.goals_updated += 1

    # -- trainings -------------------------------------------------------------------------
    @property
    def _people_source(self) -> str:
        """Whose ids name people in this connector's records (``people_from``, else its own)."""
        return self.config.people_from or self.name

    def _training_scope(self, context: SyncContext, people: Batch | None) -> None:
        """Tell the trainings reader whose trainings the programs need, and which ones.

        The people are this connector's whom a program's ``[programs.guides]`` filter admits
        before its training test, judged on the people as this sync leaves them (the batch just
        read laid over the store), so a first sync reads the trainings of its new people.
        """
        if self.programs is None:
            return
        wanted = [p for p in self.programs if p.guides is not None and p.guides.trained_in]
        names = {name for p in wanted for name in (p.guides.trained_in or []) if p.guides}
        context.training_names = frozenset(names)
        if not wanted:
            context.training_people = frozenset()
            return
        views: dict[str, Any] = {}
        full = isinstance(people, PeopleBatch) and people.full
        with self.db.transaction() as s:
            links = dict(
                s.execute(
                    select(ExternalIdRow.person_id, ExternalIdRow.external_id).where(
                        ExternalIdRow.connector == self._people_source
                    )
                ).all()
            )
            tombstones = {e for e in links.values() if e.startswith(FORGOTTEN_PREFIX)}
            secret = tombstone_secret(s) if tombstones else b""
            if not full:
                for row in s.scalars(select(PersonRow).where(PersonRow.forgotten.is_(False))):
                    if row.id in links:
                        views[links[row.id]] = {f: getattr(row, f) for f in _FILTER_FIELDS}
        if isinstance(people, PeopleBatch):
            for record in people.records:
                if tombstones and (
                    forgotten_key(secret, self._people_source, record.external_id) in tombstones
                    or legacy_forgotten_key(self._people_source, record.external_id) in tombstones
                ):
                    continue  # erased: the HRIS is not even asked about them
                base = views.get(record.external_id)
                values = _record_values(record, provided_only=base is not None)
                views[record.external_id] = {**(base or {}), **values}
        admitted = set()
        for external_id, values in views.items():
            person = SimpleNamespace(**{f: values.get(f) for f in _FILTER_FIELDS})
            for program in wanted:
                assert program.guides is not None
                if passes_filters(person, program.guides, today=self.today):
                    admitted.add(external_id)
                    break
        context.training_people = frozenset(admitted)

    def _check_trainings(
        self, s: Session, batch: TrainingBatch, people: Batch | None, report: SyncReport
    ) -> None:
        """Every record names a person this connector knows (stored, or in this sync's people
        batch); else an input error naming where the record came from. Records of people
        erased with ``people forget`` are left out (the HRIS may still list them)."""
        owner = self._people_source
        links = set(
            s.scalars(select(ExternalIdRow.external_id).where(ExternalIdRow.connector == owner))
        )
        tombstones = {k for k in links if k.startswith(FORGOTTEN_PREFIX)}
        known = links - tombstones
        if isinstance(people, PeopleBatch):
            known |= {r.external_id for r in people.records}
        secret = tombstone_secret(s) if tombstones else b""
        source = self.connector.source_label("trainings")
        kept = []
        for record in batch.records:
            ext = record.person_external_id
            if tombstones and (
                forgotten_key(secret, owner, ext) in tombstones
                or legacy_forgotten_key(owner, ext) in tombstones
            ):
                report.warnings.append(
                    f"a training of an erased person is still in {self.name}'s data; skipped"
                )
                continue
            if ext not in known:
                where = (
                    f"{source}:{record.source_line}"
                    if record.source_line
                    else f"{source}: {record.training!r}"
                )
                raise InputDataError(f"{where}: employee id {ext!r} is not a known person")
            kept.append(record)
        batch.records = kept

    def _apply_trainings(self, s: Session, batch: TrainingBatch, report: SyncReport) -> None:
        """Upsert the batch's records by their natural key; remove this connector's records the
        batch no longer holds, for the people (and trainings) it holds in full."""
        links = dict(
            s.execute(
                select(ExternalIdRow.external_id, ExternalIdRow.person_id).where(
                    ExternalIdRow.connector == self._people_source
                )
            ).all()
        )
        incoming: dict[tuple[int, str], TrainingRecord] = {}
        for record in batch.records:
            pid = links[record.person_external_id]
            incoming[(pid, _training_record_key(record))] = record
        stmt = select(TrainingRow).where(TrainingRow.source == self.name)
        scope: set[int] | None = None
        if batch.people is not None:
            scope = {links[e] for e in batch.people if e in links}
            stmt = stmt.where(TrainingRow.person_id.in_(scope))
        names = {training_key(n) for n in batch.names} if batch.names is not None else None
        stale: list[int] = []
        for row in s.scalars(stmt):
            record = incoming.pop((row.person_id, row.record_key), None)
            if record is None:
                if names is None or training_key(row.training) in names:
                    stale.append(row.id)
                continue
            if (row.training, row.expires_at) != (record.training, record.expires_at):
                row.training, row.expires_at = record.training, record.expires_at
                report.trainings_updated += 1
        if stale:
            s.execute(delete(TrainingRow).where(TrainingRow.id.in_(stale)))
            report.trainings_removed += len(stale)
        if incoming:
            s.execute(
                insert(TrainingRow),
                [
                    {
                        "person_id": pid,
                        "training": r.training,
                        "completed_at": r.completed_at,
                        "expires_at": r.expires_at,
                        "source": self.name,
                        "record_key": key,
                        "updated_at": self.now,
                    }
                    for (pid, key), r in incoming.items()
                ],
            )
            report.trainings_new += len(incoming)

    def _cursor(self, s: Session, stream: str) -> str | None:
        state = s.get(SyncStateRow, (self.name, stream))
        return state.cursor if state else None

    def _save_cursor(self, s: Session, stream: str, cursor: str | None) -> None:
        state = s.get(SyncStateRow, (self.name, stream))
        if state is None:
            state = SyncStateRow(connector=self.name, stream=stream, first_synced_at=self.now)
            s.add(state)
        state.cursor = cursor
        state.last_synced_at = self.now
