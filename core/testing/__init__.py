"""The connector test kit: the checks every coachbridge connector must pass, for pytest.

A connector's test module subclasses ``ConnectorContract`` (a connector that declares no people
stream, such as a webhook-only one) or ``PeopleContract`` (one that reads people), names the
streams it expects the connector to declare, and provides three fixtures::

    from coachbridge.testing import PeopleContract

    class TestHiBobContract(PeopleContract):
        streams = ("people", "reviews")

        @pytest.fixture
        def vendor(self):             # a FakeVendor: a controllable fake of the HRIS
            ...

        @pytest.fixture
        def settings(self, vendor):   # the [connectors.<name>] section, pointing at the fake
            return {"plugin": "hibob", "api_token": "t0ken-123", "base_url": vendor.url}

        @pytest.fixture
        def make_connector(self):     # settings -> a fresh connector instance
            return lambda settings: HiBobConnector(
                HiBobConfig.model_validate(settings), ConnectorContext(name=self.name)
            )

The checks: the declared streams are the expected ones and well formed; a missing or
misspelt config key is an error naming ``connectors.<name>.<key>``; secrets (every
``SecretStr`` in the config) never appear in a repr, a str, an error or a log line; a sync
reads exactly the declared streams; and, for ``PeopleContract``, people records are valid,
ids are stable across syncs, an incremental cursor only moves forward (a full stream's cursor
is not a position), a person removed from the vendor becomes a leaver in a full sync, a
failing vendor is a ``ConnectorError`` (exit status 1) that leaves the store unchanged, and
where the connector declares a trainings stream, a training the vendor records is stored once
for its person (the vendor then also implements ``TrainingVendor.add_training``). Which
checks apply follows from what the connector declares, never from a skip. docs/plugins.md has
a complete example.

This module needs pytest (a test dependency); the rest of coachbridge never imports it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import pytest
from coachbridge.config import validation_problems
from coachbridge.connectors import (
    STREAM_NAMES,
    Connector,
    PeopleBatch,
    Stream,
    SyncContext,
)
from coachbridge.domain import Eligibility, PersonRecord, Program
from coachbridge.errors import CoachbridgeError, ConnectorError, UserError
from coachbridge.hris.sync import Syncer, validate_people
from coachbridge.store import Database
from coachbridge.store.tables import ExternalIdRow, PersonRow, SyncStateRow, TrainingRow
from pydantic import SecretStr, ValidationError
from sqlalchemy import func, select

__all__ = ["ConnectorContract", "FakeVendor", "PeopleContract", "TrainingVendor"]

#: The streams a sync stores.
_STORED = ("people", "reviews", "goals", "trainings")
#: The training the trainings check records at the vendor, and the program that asks for it.
_KIT_TRAINING = "Kit coaching fundamentals"
_KIT_PROGRAM = Program(id="kit", kind="mentoring", guides=Eligibility(trained_in=[_KIT_TRAINING]))
_CONFIG_FILE = "coachbridge.toml"


@runtime_checkable
class FakeVendor(Protocol):
    """What the kit needs of a fake HRIS: wrap your test fake in a small adapter with these.

    ``remote`` says whether the connector reaches the vendor over a network (an API: its
    failures are ``ConnectorError``, exit 1) or reads local files (a missing export is an input
    error naming the file, exit 2).
    """

    remote: bool

    def people_ids(self) -> set[str]:
        """Every person's id the vendor lists now (active or not)."""
        ...

    def add_person(
        self,
        first_name: str,
        last_name: str,
        *,
        email: str | None = None,
        manager_id: str | None = None,
    ) -> str:
        """Add an active person (a change as of now, by the vendor's clock); return their id."""
        ...

    def remove_person(self, external_id: str) -> None:
        """Remove the person: the vendor no longer lists them at all."""
        ...

    def fail_next(self, status: int) -> None:
        """Make the vendor fail from now on: HTTP ``status`` to every request (enough of them
        to outlast any retries), or for a file-based vendor, the export goes missing."""
        ...


@runtime_checkable
class TrainingVendor(Protocol):
    """What the kit needs of a fake HRIS whose connector declares a trainings stream."""

    def add_training(self, external_id: str, training: str, completed_at: date) -> None:
        """Record that the person completed ``training`` on ``completed_at`` (never expires)."""
        ...


class ConnectorContract:
    """Checks for every connector. Provide ``settings`` and ``make_connector`` fixtures."""

    #: The streams the connector declares with ``settings`` (names, any order).
    streams: ClassVar[tuple[str, ...]] = ()
    #: The connector's name in the config (``[connectors.<name>]``).
    name: ClassVar[str] = "kit"

    # -- fixtures the kit provides ---------------------------------------------------------
    @pytest.fixture
    def connector(
        self, settings: dict[str, Any], make_connector: Callable[[dict[str, Any]], Connector]
    ) -> Connector:
        return make_connector(settings)

    @pytest.fixture
    def contract_db(self, tmp_path: Path) -> Iterator[Database]:
        """A fresh store per test (SQLite: the checks are about the connector)."""
        database = Database(f"sqlite:///{tmp_path / 'contract.db'}")
        database.upgrade()
        yield database
        database.dispose()

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def secrets_of(connector: Connector) -> list[str]:
        """Every secret in the connector's config (its ``SecretStr`` values)."""
        config = connector.config
        values = [getattr(config, name) for name in type(config).model_fields]
        return [v.get_secret_value() for v in values if isinstance(v, SecretStr)]

    def sync(
        self, db: Database, make_connector: Callable[[dict[str, Any]], Connector], settings: Any
    ) -> Any:
        """One sync with a fresh connector (nothing carried over in the instance)."""
        return Syncer(db, make_connector(settings)).run(full=True)

    # -- the checks ------------------------------------------------------------------------
    def test_declares_its_streams(self, connector: Connector) -> None:
        declared = [stream.name for stream in connector.streams]
        assert sorted(declared) == sorted(self.streams), "declared streams differ"
        assert len(set(declared)) == len(declared), "a stream is declared twice"
        for stream in connector.streams:
            assert isinstance(stream, Stream) and stream.name in STREAM_NAMES
            assert stream.key_properties and stream.cursor in ("full", "incremental")
            if stream.name in _STORED:
                reader = getattr(type(connector), stream.reader)
                base = getattr(Connector, stream.reader)
                assert reader is not base, f"{stream.name} is declared but not implemented"
        # People checks are not optional: a connector that reads people is tested as one.
        assert ("people" in declared) == isinstance(self, PeopleContract), (
            "a connector declaring a people stream is tested with PeopleContract"
        )

    def test_config_errors_name_the_key(
        self, settings: dict[str, Any], connector: Connector
    ) -> None:
        model = connector.config_model
        model.model_validate(settings)  # the settings the kit was given are valid
        required = [
            key
            for key, info in model.model_fields.items()
            if info.is_required() and key != "plugin"
        ]
        cases = [({k: v for k, v in settings.items() if k != key}, key) for key in required]
        cases.append(({**settings, "no_such_setting": "x"}, "no_such_setting"))
        secrets = self.secrets_of(connector)
        for section, key in cases:
            with pytest.raises(ValidationError) as info:
                model.model_validate(section)
            problems = validation_problems(info.value, _CONFIG_FILE, ("connectors", self.name))
            text = "\n".join(problems)
            assert f"{_CONFIG_FILE}: connectors.{self.name}.{key}: " in text, text
            assert not any(secret in text for secret in secrets)

    def test_secrets_never_in_a_repr_or_str(self, connector: Connector) -> None:
        secrets = self.secrets_of(connector)
        config = connector.config
        shown = [repr(connector), str(connector), repr(config), str(config)]
        shown.append(config.model_dump_json())
        shown.extend(repr(value) for value in vars(connector).values())
        for text in shown:
            for secret in secrets:
                assert secret not in text

    def test_secrets_never_logged(
        self,
        connector: Connector,
        contract_db: Database,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        secrets = self.secrets_of(connector)
        caplog.set_level(logging.DEBUG)
        messages: list[str] = []
        try:
            connector.check()
        except CoachbridgeError as exc:
            messages.append(str(exc))
        try:
            Syncer(contract_db, connector).run(full=True)
        except CoachbridgeError as exc:
            messages.append(str(exc))
        seen = caplog.text + "\n".join(messages)
        for secret in secrets:
            assert secret not in seen

    def test_a_sync_reads_exactly_the_declared_streams(
        self, connector: Connector, contract_db: Database
    ) -> None:
        report = Syncer(contract_db, connector).run()
        with contract_db.transaction() as s:
            saved = set(
                s.scalars(select(SyncStateRow.stream).where(SyncStateRow.connector == self.name))
            )
        assert saved == {name for name in self.streams if name in _STORED}
        if "people" not in self.streams:
            assert (report.new, report.changed, report.leaving) == ([], [], [])


class PeopleContract(ConnectorContract):
    """Checks for a connector that reads people. Also provide a ``vendor`` fixture."""

    streams: ClassVar[tuple[str, ...]] = ("people",)

    def _read_all(self, connector: Connector) -> PeopleBatch:
        stream = connector.stream("people")
        assert stream is not None
        batch = connector.read_stream(
            stream, None, full=True, context=SyncContext(connector=self.name, full=True)
        )
        assert isinstance(batch, PeopleBatch)
        return batch

    def test_people_records_are_valid(self, connector: Connector, vendor: FakeVendor) -> None:
        batch = self._read_all(connector)
        assert batch.full, "a read with full=True must return the whole population"
        ids = [record.external_id for record in batch.records]
        assert all(isinstance(record, PersonRecord) for record in batch.records)
        assert all(ids) and len(set(ids)) == len(ids), "ids must be present and unique"
        assert set(ids) == vendor.people_ids()
        for record in batch.records:
            # Valid by the model's own rules (a record built with model_construct would not be).
            again = PersonRecord.model_validate(record.model_dump())
            assert again.model_dump() == record.model_dump()
        validate_people(batch.records, connector.source_label("people"))

    def test_ids_are_stable_across_syncs(
        self,
        settings: dict[str, Any],
        make_connector: Callable[[dict[str, Any]], Connector],
        contract_db: Database,
        vendor: FakeVendor,
    ) -> None:
        first = self.sync(contract_db, make_connector, settings)
        links = self._links(contract_db)
        second = self.sync(contract_db, make_connector, settings)
        assert len(first.new) == len(vendor.people_ids()) == len(links)
        assert (second.new, second.leaving, second.reactivated) == ([], [], [])
        assert self._links(contract_db) == links

    def test_incremental_cursor_only_moves_forward(
        self,
        settings: dict[str, Any],
        make_connector: Callable[[dict[str, Any]], Connector],
        vendor: FakeVendor,
    ) -> None:
        stream = make_connector(settings).stream("people")
        assert stream is not None

        def read(cursor: str | None, full: bool) -> PeopleBatch:
            connector = make_connector(settings)
            batch = connector.read_stream(
                stream, cursor, full=full, context=SyncContext(connector=self.name, full=full)
            )
            assert isinstance(batch, PeopleBatch)
            return batch

        first = read(None, True)
        newcomer = vendor.add_person("Kit", "Newcomer", email="kit.newcomer@example.test")
        second = read(first.cursor, False)
        assert newcomer in {r.external_id for r in second.records}, "a change was missed"
        if not stream.incremental:
            # A full stream's cursor is no position: every read is everyone.
            assert {r.external_id for r in second.records} == vendor.people_ids()
            return
        assert first.cursor is not None and second.cursor is not None
        third = read(second.cursor, False)
        assert newcomer not in {r.external_id for r in third.records}, "the cursor did not move"
        fourth = read(third.cursor, False)
        assert newcomer not in {r.external_id for r in fourth.records}, "the cursor moved back"
        assert not third.full and not fourth.full

    def test_a_removed_person_is_a_leaver_in_a_full_sync(
        self,
        settings: dict[str, Any],
        make_connector: Callable[[dict[str, Any]], Connector],
        contract_db: Database,
        vendor: FakeVendor,
    ) -> None:
        leaver = vendor.add_person("Kit", "Leaver", email="kit.leaver@example.test")
        self.sync(contract_db, make_connector, settings)
        vendor.remove_person(leaver)
        report = self.sync(contract_db, make_connector, settings)
        assert [change.external_id for change in report.leaving] == [leaver]
        with contract_db.transaction() as s:
            link = s.get(ExternalIdRow, (self.name, leaver))
            assert link is not None
            assert s.get(PersonRow, link.person_id).status == "inactive"  # type: ignore[union-attr]

    def test_a_vendor_failure_is_one_error_and_changes_nothing(
        self,
        settings: dict[str, Any],
        make_connector: Callable[[dict[str, Any]], Connector],
        contract_db: Database,
        vendor: FakeVendor,
    ) -> None:
        self.sync(contract_db, make_connector, settings)
        before = self._state(contract_db)
        vendor.add_person("Kit", "Unsynced", email="kit.unsynced@example.test")
        vendor.fail_next(500)
        with pytest.raises(CoachbridgeError) as info:
            Syncer(contract_db, make_connector(settings)).run()
        error = info.value
        if vendor.remote:
            assert isinstance(error, ConnectorError) and error.exit_code == 1
        else:
            assert isinstance(error, UserError) and error.exit_code == 2
        message = str(error)
        assert message and "\n" not in message and "Traceback" not in message
        assert self._state(contract_db) == before

    def test_a_vendor_training_is_stored_once(
        self,
        settings: dict[str, Any],
        make_connector: Callable[[dict[str, Any]], Connector],
        contract_db: Database,
        vendor: FakeVendor,
    ) -> None:
        def sync() -> Any:
            connector = make_connector(settings)
            return Syncer(contract_db, connector, programs=[_KIT_PROGRAM]).run()

        def stored() -> list[tuple[str, str, date | None]]:
            with contract_db.transaction() as s:
                rows = s.execute(
                    select(
                        ExternalIdRow.external_id, TrainingRow.training, TrainingRow.completed_at
                    )
                    .join(ExternalIdRow, ExternalIdRow.person_id == TrainingRow.person_id)
                    .where(TrainingRow.source == self.name, ExternalIdRow.connector == self.name)
                )
                return sorted((e, t, c) for e, t, c in rows)

        declared = make_connector(settings).stream("trainings") is not None
        if not declared:
            sync()
            assert stored() == [], "a connector without a trainings stream stored trainings"
            return
        assert isinstance(vendor, TrainingVendor), (
            "a connector declaring trainings is tested with a vendor that has add_training"
        )
        sync()  # the people first
        person = sorted(vendor.people_ids())[0]
        vendor.add_training(person, _KIT_TRAINING, date(2026, 1, 15))
        first = sync()
        assert first.trainings_new >= 1
        assert (person, _KIT_TRAINING, date(2026, 1, 15)) in stored()
        before = stored()
        again = sync()
        assert (again.trainings_new, again.trainings_removed) == (0, 0), "not idempotent"
        assert stored() == before

    # -- helpers ---------------------------------------------------------------------------
    def _links(self, db: Database) -> dict[str, int]:
        with db.transaction() as s:
            rows = s.scalars(select(ExternalIdRow).where(ExternalIdRow.connector == self.name))
            return {row.external_id: row.person_id for row in rows}

    def _state(self, db: Database) -> tuple[int, dict[str, str | None]]:
        with db.transaction() as s:
            people = s.scalar(select(func.count()).select_from(PersonRow)) or 0
            cursors = {
                row.stream: row.cursor
                for row in s.scalars(
                    select(SyncStateRow).where(SyncStateRow.connector == self.name)
                )
            }
        return people, cursors
