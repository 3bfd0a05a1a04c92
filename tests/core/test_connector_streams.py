"""The declared connector contract: streams, cursor strategies, one loop, declared capabilities."""

from __future__ import annotations

from typing import Any

import pytest
from coachbridge.connectors import (
    GOALS,
    PEOPLE,
    REVIEWS,
    TRAININGS,
    CheckResult,
    Connector,
    ConnectorConfig,
    ConnectorContext,
    GoalBatch,
    PeopleBatch,
    ReviewBatch,
    Stream,
    SyncContext,
    TrainingBatch,
)
from coachbridge.domain import PersonRecord, ReviewEvent
from coachbridge.hris.sync import Syncer
from coachbridge.store import Database
from coachbridge.store.tables import ReviewEventRow, SyncStateRow
from sqlalchemy import select


class Recording(Connector):
    """Records how the core calls each reader; every stream hands back a numbered cursor."""

    streams = (PEOPLE, REVIEWS, GOALS, TRAININGS)

    def __init__(self, config: ConnectorConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.calls: list[tuple[str, str | None, bool, SyncContext | None]] = []
        self.round = 0

    def check(self) -> list[CheckResult]:
        return []

    def _record(self, stream: str, cursor: str | None, full: bool, context: Any) -> str:
        self.calls.append((stream, cursor, full, context))
        return f"{stream}-{self.round}"

    def read_people(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> PeopleBatch:
        new = self._record("people", cursor, full, context)
        people = [PersonRecord(external_id="A", first_name="Ann")]
        return PeopleBatch(records=people, full=full, cursor=new)

    def read_reviews(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> ReviewBatch:
        return ReviewBatch(events=[], cursor=self._record("reviews", cursor, full, context))

    def read_goals(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> GoalBatch:
        return GoalBatch(goals=[], cursor=self._record("goals", cursor, full, context))

    def read_trainings(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> TrainingBatch:
        return TrainingBatch(records=[], cursor=self._record("trainings", cursor, full, context))


def _cursors(db: Database, name: str) -> dict[str, str | None]:
    with db.transaction() as s:
        rows = s.scalars(select(SyncStateRow).where(SyncStateRow.connector == name))
        return {row.stream: row.cursor for row in rows}


def test_one_loop_reads_each_declared_stream_with_its_cursor_strategy(
    sqlite_url: str,
) -> None:
    db = Database(sqlite_url)
    db.upgrade()
    conn = Recording(ConnectorConfig(plugin="rec"), ConnectorContext(name="rec"))
    Syncer(db, conn).run()
    # People first, trainings last, and one context shared by every stream of the sync.
    assert [c[:3] for c in conn.calls] == [
        ("people", None, True),
        ("reviews", None, False),
        ("goals", None, False),
        ("trainings", None, False),
    ]
    assert len({id(c[3]) for c in conn.calls}) == 1 and conn.calls[0][3] is not None
    # Without programs the core names nobody's trainings: the reader reads what is cheap.
    assert conn.calls[3][3].training_people is None
    assert _cursors(db, "rec") == {
        "people": "people-0",
        "reviews": "reviews-0",
        "goals": "goals-0",
        "trainings": "trainings-0",
    }
    conn.calls.clear()
    conn.round = 1
    Syncer(db, conn).run()
    assert [c[:3] for c in conn.calls] == [
        ("people", "people-0", False),
        ("reviews", "reviews-0", False),
        ("goals", "goals-0", False),
        ("trainings", "trainings-0", False),
    ]
    conn.calls.clear()
    conn.round = 2
    Syncer(db, conn).run(full=True)
    # --full: an incremental stream starts over; a full stream keeps its memory.
    assert [c[:3] for c in conn.calls] == [
        ("people", None, True),
        ("reviews", "reviews-1", True),
        ("goals", "goals-1", True),
        ("trainings", "trainings-1", True),
    ]
    db.dispose()


def test_only_declared_streams_are_read_and_their_cursors_saved(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.upgrade()
    conn = Recording(ConnectorConfig(plugin="rec"), ConnectorContext(name="rec"))
    conn.streams = (PEOPLE,)
    Syncer(db, conn).run()
    assert [c[0] for c in conn.calls] == ["people"]
    assert set(_cursors(db, "rec")) == {"people"}
    nothing = Recording(ConnectorConfig(plugin="rec"), ConnectorContext(name="hooks"))
    nothing.streams = ()
    report = Syncer(db, nothing).run()
    assert nothing.calls == [] and not report.full and report.new == []
    db.dispose()


def test_a_stream_declaration_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown stream"):
        Stream("payroll", ("id",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key_properties"):
        Stream("people", ())
    with pytest.raises(ValueError, match="cursor"):
        Stream("people", ("external_id",), "sometimes")  # type: ignore[arg-type]
    assert PEOPLE.incremental and not PEOPLE.with_cursor("full").incremental
    assert PEOPLE.reader == "read_people"


def test_reading_an_undeclared_stream_is_refused() -> None:
    conn = Recording(ConnectorConfig(plugin="rec"), ConnectorContext(name="rec"))
    conn.streams = (PEOPLE,)
    with pytest.raises(ValueError, match="does not declare a reviews stream"):
        conn.read_stream(REVIEWS, None, full=True)


def test_declared_capabilities_have_defaults() -> None:
    class Minimal(Connector):
        def check(self) -> list[CheckResult]:
            return []

    conn = Minimal(ConnectorConfig(plugin="min"), ConnectorContext(name="m"))
    assert conn.source_label("people") == "connector m"
    assert conn.streams == (PEOPLE,)
    assert (conn.supports_push, conn.supports_webhooks) == (False, False)
    assert conn.push_kinds == ("goal", "session", "pairing")
    assert conn.config.people_from is None
    with pytest.raises(NotImplementedError, match="declares people but has no read_people"):
        conn.read_people(None, full=True)


class ReviewTool(Connector):
    """A source of reviews that names people by another connector's ids."""

    streams = (REVIEWS,)

    def check(self) -> list[CheckResult]:
        return []

    def read_reviews(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> ReviewBatch:
        event = ReviewEvent(
            cycle="2025",
            subject_external_id="A",
            raw_rating=4,
            scale_max=5,
            source=self.name,
            source_event_id="r1",
        )
        return ReviewBatch(events=[event])


def test_people_from_is_a_declared_config_key_a_sync_honours(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.upgrade()
    hr = Recording(ConnectorConfig(plugin="rec"), ConnectorContext(name="hr"))
    hr.streams = (PEOPLE,)
    Syncer(db, hr).run()
    config = ConnectorConfig(plugin="tool", people_from="hr")
    Syncer(db, ReviewTool(config, ConnectorContext(name="tool"))).run()
    with db.transaction() as s:
        event = s.scalars(select(ReviewEventRow)).one()
        assert event.person_id is not None and event.subject_external_id == "A"
    db.dispose()
