"""The connector contract: what an HRIS plugin implements and what the core gives it.

A connector declares the streams it reads (``Connector.streams``: people, reviews, goals, each a
``Stream`` with its key and cursor strategy) and implements one reader per declared stream
(``read_people``, ``read_reviews``, ``read_goals``); the core runs one loop over the declared
streams. It optionally writes coachbridge's results back (``push``, for the kinds in
``push_kinds``) and optionally receives webhooks (``verify_webhook`` then ``parse_webhook``).
Connectors never touch the store: the core resolves identities, diffs, guards and writes in one
transaction, and saves the cursor a connector returns only after that transaction commits, so a
failed sync repeats its window. Every capability the core uses is declared on ``Connector`` or
``ConnectorConfig`` below with its default; docs/plugins.md walks through writing one.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Protocol, get_args

from coachbridge.domain import PersonRecord, ReviewEvent, TrainingRecord
from coachbridge.mapping import FieldMatch
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

__all__ = [
    "GOALS",
    "PEOPLE",
    "PERSON_COLUMNS",
    "REVIEWS",
    "STREAM_NAMES",
    "TRAININGS",
    "Batch",
    "CheckResult",
    "Connector",
    "ConnectorConfig",
    "ConnectorContext",
    "CursorStrategy",
    "Discovery",
    "Duration",
    "FoundColumn",
    "GoalBatch",
    "GoalRecord",
    "ParsedDelivery",
    "PeopleBatch",
    "PushItem",
    "PushKind",
    "PushResult",
    "ReviewBatch",
    "StoredToken",
    "Stream",
    "StreamName",
    "SyncContext",
    "TokenSlot",
    "TokenStore",
    "TrainingBatch",
    "WebhookRejected",
    "parse_duration",
]

#: The standard column names of a tabular people source (a CSV file, an HRIS report), each the
#: name a connector's ``columns`` mapping uses for one ``PersonRecord`` field: ``id`` is the
#: record's ``external_id`` and ``manager_id`` its ``manager_external_id``.
PERSON_COLUMNS: tuple[str, ...] = (
    "id",
    "first_name",
    "last_name",
    "preferred_name",
    "email",
    "job_title",
    "department",
    "division",
    "location",
    "timezone",
    "manager_id",
    "hire_date",
    "termination_date",
    "status",
    "level",
    "skills",
    "interests",
    "languages",
)

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")


def parse_duration(value: str | int | float) -> timedelta:
    """``"15m"``, ``"2h"``, ``"1d"``, ``"30s"`` or a number of seconds."""
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError("duration must be positive")
        return timedelta(seconds=value)
    match = _DURATION.match(value)
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"not a duration: {value!r} (use e.g. '30s', '15m', '2h', '1d')")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


def _duration_or_as_is(value: object) -> object:
    if isinstance(value, bool):  # pydantic would read ``true`` as one second
        raise ValueError("not a duration: use e.g. '30s', '15m', '2h', '1d'")
    if isinstance(value, str | int | float):
        return parse_duration(value)
    return value


#: A config value that is a ``timedelta`` and may be written ``"15m"``, ``"2h"``, ``"1d"``,
#: ``"30s"`` or a number of seconds (for plugins' config models too).
Duration = Annotated[timedelta, BeforeValidator(_duration_or_as_is)]


class ConnectorConfig(BaseModel):
    """Keys every ``[connectors.<name>]`` section accepts; plugins subclass this.

    ``extra="forbid"`` so that a typo in a key is an error naming it, not a silently
    ignored setting.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    plugin: str
    max_deactivate: int | str | None = Field(
        default=None,
        description="most people one sync may deactivate: a count or a percentage such as '10%'",
    )
    rules_since: datetime | None = Field(
        default=None,
        description="review events found by a sync run through the rules only when completed after "
        "this moment (default: the moment of the connector's first sync)",
    )
    sync_every: Duration | None = Field(
        default=None, description="the worker runs an incremental sync this often, e.g. '15m'"
    )
    token_file: Path | None = Field(
        default=None,
        description="keep the secrets the vendor hands out (rotated refresh tokens) in this file "
        "(mode 0600) instead of the database",
    )
    people_from: str | None = Field(
        default=None,
        description="another connector whose employee ids this connector's review events name "
        "(e.g. a review tool that sends BambooHR ids); None: this connector's own ids",
    )
    """The connector whose employee ids this connector's review events carry.

    A review tool (the generic webhook connector) has no people of its own: its events name
    people by another connector's ids. The core looks a review's subject up in ``people_from``
    first, then in this connector, then by email. None (the default): this connector's own ids.
    """

    @field_validator("max_deactivate")
    @classmethod
    def _max_deactivate(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and value < 0:
            raise ValueError("must not be negative")
        if isinstance(value, str):
            match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*", value)
            if not match or float(match.group(1)) > 100:
                raise ValueError("use a count (e.g. 25) or a percentage (e.g. '10%')")
        return value

    def deactivation_limit(self, active_before: int) -> int:
        """How many people a sync may deactivate, given how many were active before it."""
        if isinstance(self.max_deactivate, int):
            return self.max_deactivate
        percent = 10.0
        if self.max_deactivate is not None:
            percent = float(self.max_deactivate.strip().rstrip("%"))
        limit = int(active_before * percent / 100)
        # A small company may always lose one person without --force (10% of 8 is 0.8).
        return max(limit, 1) if active_before and percent > 0 else limit


@dataclass(frozen=True)
class StoredToken:
    """A secret a connector keeps between processes (a rotated OAuth refresh token).

    ``origin`` is whatever the connector saved with it to recognise the configured secret it
    descends from (a digest, never the secret); ``updated_at`` is when it was saved.
    """

    value: str = field(repr=False)
    origin: str | None
    updated_at: datetime


class TokenSlot(Protocol):
    """One key of a ``TokenStore`` held under its lock: read ``current``, then ``save``."""

    @property
    def current(self) -> StoredToken | None: ...

    def save(self, value: str, origin: str | None) -> None:
        """Keep ``value`` (encrypted or in a mode-0600 file); visible to others on unlock."""


class TokenStore(Protocol):
    """Where the core keeps a connector's secret state, for connectors that cannot import the
    store: ``[connectors.<name>] token_file`` (a JSON file, mode 0600, flock'ed) or by default
    the database (table ``connector_tokens``, encrypted with a key derived from
    ``[server] secret_key``).

    ``locked(key)`` serialises every process that uses the key: take it around a refresh, then
    re-read ``current`` inside, so two processes refreshing at once do not strand each other.
    ``where`` says where the secrets live, for ``check`` (never a secret).
    """

    @property
    def where(self) -> str: ...

    def peek(self, key: str) -> StoredToken | None:
        """The stored value without taking the lock (None: nothing kept, or unreadable)."""

    def locked(self, key: str) -> AbstractContextManager[TokenSlot]:
        """Hold ``key``'s lock for the block; raises ``ConnectorError`` if it cannot be kept."""


@dataclass
class ConnectorContext:
    """What the core hands a connector: its table name, where relative paths start, a timeout,
    and where it may keep secret state (``tokens``; None when the caller gave no store)."""

    name: str
    base_dir: Path = field(default_factory=Path.cwd)
    http_timeout: float = 60.0
    user_agent: str = "coachbridge"
    tokens: TokenStore | None = field(default=None, repr=False)


@dataclass
class CheckResult:
    ok: bool
    message: str


StreamName = Literal["people", "reviews", "goals", "trainings"]
#: The streams the core knows, in the order a sync reads and writes them (people first: the
#: other streams name people by their ids).
STREAM_NAMES: tuple[StreamName, ...] = get_args(StreamName)

CursorStrategy = Literal["full", "incremental"]


@dataclass(frozen=True)
class Stream:
    """One kind of record a connector reads, declared as the Singer SDK and Meltano declare them.

    ``name`` says what the records are and which reader the core calls (``read_<name>``);
    ``key_properties`` name the record fields that identify a record across syncs (the test kit
    checks they are unique and stable). ``cursor`` is the strategy:

    - ``"incremental"``: a read from a cursor returns only what changed since it, and the cursor
      it returns is where the next read starts. ``sync --full`` (and a first sync) passes no
      cursor and ``full=True``: the read starts over and returns everything.
    - ``"full"``: every read returns the whole set. The cursor, if the connector returns one,
      is its memory of what it saw (a digest, the last values seen) and the core hands it back
      on every sync, ``--full`` included, so that a change is reported once.

    ``trainings`` is read only when a program filters guides on a training (``[programs.guides]
    trained_in``): the core then tells the reader, through ``SyncContext``, whose trainings and
    which ones the programs need.
    """

    name: StreamName
    key_properties: tuple[str, ...]
    cursor: CursorStrategy = "full"
    description: str = ""

    def __post_init__(self) -> None:
        if self.name not in STREAM_NAMES:
            raise ValueError(f"unknown stream {self.name!r}: use one of {', '.join(STREAM_NAMES)}")
        if self.cursor not in get_args(CursorStrategy):
            raise ValueError(f"stream {self.name}: cursor must be 'full' or 'incremental'")
        if not self.key_properties:
            raise ValueError(f"stream {self.name}: key_properties must name at least one field")

    @property
    def reader(self) -> str:
        """The connector method that reads this stream."""
        return f"read_{self.name}"

    @property
    def incremental(self) -> bool:
        return self.cursor == "incremental"

    def with_cursor(self, cursor: CursorStrategy) -> Stream:
        """This stream with another cursor strategy (for streams that depend on the config)."""
        return Stream(self.name, self.key_properties, cursor, self.description)


#: People, keyed by the HRIS's employee id; incremental unless a connector says otherwise.
PEOPLE = Stream("people", ("external_id",), "incremental", "people and their reporting lines")
#: Completed reviews, keyed by the source and the source's event id.
REVIEWS = Stream("reviews", ("source", "source_event_id"), "full", "completed review events")
#: Goals kept in the HRIS, keyed by owner and id (the core keys a goal without an id by its
#: owner and title).
GOALS = Stream("goals", ("owner_external_id", "external_id"), "full", "goals kept in the HRIS")
#: Completed trainings, keyed by person, training and completion date (a person may hold one
#: training several times; the latest counts).
TRAININGS = Stream(
    "trainings",
    ("person_external_id", "training", "completed_at"),
    "full",
    "completed trainings (the guide filter trained_in)",
)


@dataclass
class SyncContext:
    """What one sync shares between the streams of one connector; the core passes it to every
    reader it calls in that sync (``context=``).

    ``shared`` starts empty for every sync and is never stored: a stream may leave there what it
    fetched so that a later stream of the same sync can use it instead of asking the vendor
    again (BambooHR's reviews reuse the report its people stream fetched). Key entries by the
    plugin's name. A stream must still work when ``shared`` has nothing for it (called on its
    own, by a test or by another caller, with ``context=None``). The core reads streams in
    ``STREAM_NAMES`` order.
    """

    connector: str
    full: bool = False
    shared: dict[str, Any] = field(default_factory=dict)
    #: For the trainings stream: the external ids of the people whose trainings the programs
    #: need (those a program's guide filter admits before its training test), and the training
    #: names they ask for. None: not known (read on its own); read what is cheap to read. A
    #: connector that pays one request per person (BambooHR) reads only these people.
    training_people: frozenset[str] | None = None
    training_names: frozenset[str] | None = None


@dataclass
class PeopleBatch:
    """People read in one sync.

    ``full`` means the batch is the whole population: anyone the store knows from this connector
    and absent here has left. ``cursor`` is saved after the sync commits.
    """

    records: Sequence[PersonRecord]
    full: bool
    cursor: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def items(self) -> Sequence[PersonRecord]:
        """The records, under the name every batch shares."""
        return self.records


@dataclass
class ReviewBatch:
    events: Sequence[ReviewEvent]
    cursor: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def items(self) -> Sequence[ReviewEvent]:
        return self.events


@dataclass
class GoalRecord:
    """A goal as the HRIS holds it (imported, for people who already keep goals there)."""

    owner_external_id: str
    title: str
    external_id: str | None = None
    due_date: date | None = None
    progress: float = 0.0
    status: str = "open"
    source_line: int | None = None


@dataclass
class GoalBatch:
    goals: Sequence[GoalRecord]
    cursor: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def items(self) -> Sequence[GoalRecord]:
        return self.goals


@dataclass
class TrainingBatch:
    """Trainings read in one sync.

    ``people`` names (by external id) the people whose trainings the batch holds in full: the
    core replaces what it stored from this connector for them (records absent here are
    removed). None: the batch is everyone's (a file, a report of the whole company).
    ``names``, when given, limits that replacement to those trainings (a reader that asked the
    HRIS for some trainings only).
    """

    records: Sequence[TrainingRecord]
    cursor: str | None = None
    people: frozenset[str] | None = None
    names: frozenset[str] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def items(self) -> Sequence[TrainingRecord]:
        return self.records


#: What a reader returns.
Batch = PeopleBatch | ReviewBatch | GoalBatch | TrainingBatch


PushKind = Literal["goal", "session", "pairing"]


@dataclass
class PushItem:
    """One record coachbridge owns, to be written into the HRIS.

    ``external_id`` is what a previous push stored (None the first time); ``fingerprint`` is a
    hash of ``fields`` so a connector (and the core) can tell an unchanged record from an edited
    one. People are given by this connector's ids (``learner``/``guide``/``owner``), and also by
    email so a connector can fall back where ids are missing.
    """

    kind: PushKind
    local_id: int
    fields: dict[str, Any]
    people: dict[str, str | None]
    external_id: str | None = None
    previous_fingerprint: str | None = None
    fingerprint: str = ""


@dataclass
class PushResult:
    kind: PushKind
    local_id: int
    action: Literal["created", "updated", "closed", "unchanged", "skipped"]
    external_id: str | None = None
    message: str = ""


@dataclass
class ParsedDelivery:
    """What one webhook delivery means, in coachbridge's terms."""

    reviews: list[ReviewEvent] = field(default_factory=list)
    people: list[PersonRecord] = field(default_factory=list)
    cycle_events: list[dict[str, Any]] = field(default_factory=list)
    #: External ids of people the delivery says changed but does not describe in full. Parsing
    #: never fetches them (it runs while the sender waits); the worker brings them in later.
    changed_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FoundColumn:
    """One column (or field) a connector found at the source, with its type where it says."""

    name: str
    type: str | None = None
    note: str = ""


@dataclass
class Discovery:
    """What ``Connector.discover`` found at the source and what it proposes.

    ``settings`` are the keys to add to the ``[connectors.<name>]`` table on top of those the
    user gave (the column mapping, ``updated_since_prompt``, ...); ``mapping`` is each field's
    proposal with its confidence; ``samples`` are the first people as a sync would store them
    with those settings; ``missing`` says what would not be synced, one line each.
    """

    source: str
    columns: list[FoundColumn] = field(default_factory=list)
    mapping: list[FieldMatch] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    samples: list[PersonRecord] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class WebhookRejected(Exception):
    """Raised by ``verify_webhook``/``parse_webhook``; ``status`` is the HTTP answer (401, 400, 415).

    ``reason`` goes to the log; the HTTP body only says the status's generic text.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Connector(ABC):
    """Base class of every connector. Subclasses set ``config_model``, declare ``streams`` and
    implement ``check`` and the reader of each declared stream.

    Everything the core asks of a connector is declared here with its default; nothing is
    discovered by probing. Class attributes may be overridden per instance in ``__init__`` where
    they depend on the config (``streams``, ``push_kinds``).
    """

    config_model: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    #: Content types a webhook delivery may have; anything else gets 415.
    webhook_content_types: ClassVar[tuple[str, ...]] = ("application/json",)

    #: The streams this connector reads, in any order (the core reads them in
    #: ``STREAM_NAMES`` order). Default: people only, incremental. A connector that receives
    #: events only (webhooks) declares none.
    streams: tuple[Stream, ...] = (PEOPLE,)

    #: Whether ``push`` writes records back into the HRIS.
    supports_push: ClassVar[bool] = False
    #: Which kinds of record ``push`` writes (a subset of goal, session, pairing); the core
    #: builds no other kind. Default: all kinds (only read when ``supports_push``).
    push_kinds: tuple[PushKind, ...] = ("goal", "session", "pairing")

    #: Whether the webhook server may route deliveries to ``verify_webhook``/``parse_webhook``.
    supports_webhooks: ClassVar[bool] = False

    def __init__(self, config: ConnectorConfig, context: ConnectorContext) -> None:
        self.config = config
        self.context = context

    @property
    def name(self) -> str:
        return self.context.name

    def __repr__(self) -> str:  # never the config: it holds secrets (SecretStr hides them anyway)
        return f"<{type(self).__name__} {self.name!r}>"

    def source_label(self, stream: str) -> str:
        """How the core's error messages name where ``stream``'s records came from.

        A record's position is appended (``<label>:<line>`` when the record has a
        ``source_line``, else ``<label>: id <external id>``), so a file-based connector returns
        the file's path. Default: ``connector <name>``.
        """
        return f"connector {self.name}"

    def stream(self, name: str) -> Stream | None:
        """The declared stream called ``name``, or None."""
        return next((s for s in self.streams if s.name == name), None)

    # -- reading ---------------------------------------------------------------------------
    @abstractmethod
    def check(self) -> list[CheckResult]:
        """Prove connectivity and permissions. Raise ``ConnectorError`` when it cannot connect."""

    def read_stream(
        self,
        stream: Stream,
        cursor: str | None,
        *,
        full: bool,
        context: SyncContext | None = None,
    ) -> Batch:
        """Read one declared stream: the core's single entry point into the readers.

        Calls ``read_<stream name>(cursor, full=full, context=context)``.
        """
        if stream.name not in {s.name for s in self.streams}:
            raise ValueError(f"{type(self).__name__} does not declare a {stream.name} stream")
        if stream.name == "people":
            reader: Any = self.read_people
        elif stream.name == "reviews":
            reader = self.read_reviews
        elif stream.name == "goals":
            reader = self.read_goals
        else:
            reader = self.read_trainings
        return reader(cursor, full=full, context=context)  # type: ignore[no-any-return]

    def read_people(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> PeopleBatch:
        """Read people: everything when ``full`` or ``cursor`` is None, else changes since it.

        Required when ``streams`` declares people (the default).
        """
        raise NotImplementedError(f"{type(self).__name__} declares people but has no read_people")

    def read_reviews(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> ReviewBatch:
        """Read review events (default: this connector has none)."""
        return ReviewBatch(events=[], cursor=cursor)

    def read_goals(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> GoalBatch:
        """Read goals kept in the HRIS (default: none)."""
        return GoalBatch(goals=[], cursor=cursor)

    def read_trainings(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> TrainingBatch:
        """Read completed trainings (default: none). See ``SyncContext.training_people``."""
        return TrainingBatch(records=[], cursor=cursor)

    # -- set-up ----------------------------------------------------------------------------
    #: Whether ``discover`` can look at the source and propose a mapping (``coachbridge connect``).
    supports_discovery: ClassVar[bool] = False
    #: ``coachbridge connect``'s options this connector takes, each to the config key it sets
    #: (e.g. ``{"report": "people_report"}``); any other option given is a usage error.
    connect_options: ClassVar[Mapping[str, str]] = {}

    def discover(self) -> Discovery:
        """Look at the source with the settings given so far and propose the rest.

        Raise ``ConnectorError`` when the vendor cannot be reached or refuses the credentials,
        ``InputDataError`` when what is there cannot be synced (no id-like column).
        """
        raise NotImplementedError(f"{type(self).__name__} does not support discovery")

    # -- writing ---------------------------------------------------------------------------
    def push(self, items: Sequence[PushItem], *, dry_run: bool) -> list[PushResult]:
        """Write coachbridge's records into the HRIS idempotently (see ``PushItem``)."""
        raise NotImplementedError

    # -- webhooks --------------------------------------------------------------------------
    supports_webhooks: ClassVar[bool] = False
    #: How a delivery looks, for the server's OpenAPI document (``/openapi.json``), or None
    #: (headers and body not described). Keys: ``headers``, a list of OpenAPI header parameter
    #: objects (the signature headers); ``body``, the JSON Schema of the body; ``security``,
    #: an OpenAPI security scheme object when the sender authenticates with HTTP auth (an
    #: ``Authorization`` header cannot be described as a parameter).
    webhook_openapi: ClassVar[Mapping[str, Any] | None] = None

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """Authenticate a delivery before anything is parsed.

        The server calls this and ``parse_webhook`` on one shared instance from many request
        threads at once: neither may change the connector's state.

        Return the sender's delivery id when the scheme has one (None: the core uses the SHA-256
        of the body). Raise ``WebhookRejected(401, ...)`` for a bad, missing or stale signature.
        """
        raise WebhookRejected(404, "this connector does not receive webhooks")

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ParsedDelivery:
        """Turn a verified delivery into normalized facts; ``WebhookRejected(400, ...)`` if malformed."""
        raise WebhookRejected(400, "this connector does not receive webhooks")

    def fetch_people(self, external_ids: Sequence[str]) -> list[PersonRecord]:
        """Fetch the named people (a webhook that carries only ids). Default: nobody."""
        return []
