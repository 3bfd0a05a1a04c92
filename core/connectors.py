"""The connector contract: what an HRIS plugin implements and what the core gives it.

A connector reads people, review events and goals from one HRIS (full or incremental from a
saved cursor), optionally writes coachbridge's results back (``push``), and optionally receives
webhooks (``verify_webhook`` then ``parse_webhook``). Connectors never touch the store: the core
resolves identities, diffs, guards and writes in one transaction, and saves the cursor a
connector returns only after that transaction commits, so a failed sync repeats its window.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from coachbridge.domain import PersonRecord, ReviewEvent
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

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


@dataclass
class ConnectorContext:
    """What the core hands a connector: its table name, where relative paths start, a timeout."""

    name: str
    base_dir: Path = field(default_factory=Path.cwd)
    http_timeout: float = 60.0
    user_agent: str = "coachbridge"


@dataclass
class CheckResult:
    ok: bool
    message: str


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


@dataclass
class ReviewBatch:
    events: Sequence[ReviewEvent]
    cursor: str | None = None
    warnings: list[str] = field(default_factory=list)


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


class WebhookRejected(Exception):
    """Raised by ``verify_webhook``/``parse_webhook``; ``status`` is the HTTP answer (401, 400, 415).

    ``reason`` goes to the log; the HTTP body only says the status's generic text.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Connector(ABC):
    """Base class of every connector. Subclasses set ``config_model`` and implement the readers."""

    config_model: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    #: Content types a webhook delivery may have; anything else gets 415.
    webhook_content_types: ClassVar[tuple[str, ...]] = ("application/json",)

    def __init__(self, config: ConnectorConfig, context: ConnectorContext) -> None:
        self.config = config
        self.context = context

    @property
    def name(self) -> str:
        return self.context.name

    def __repr__(self) -> str:  # never the config: it holds secrets (SecretStr hides them anyway)
        return f"<{type(self).__name__} {self.name!r}>"

    # -- reading ---------------------------------------------------------------------------
    @abstractmethod
    def check(self) -> list[CheckResult]:
        """Prove connectivity and permissions. Raise ``ConnectorError`` when it cannot connect."""

    @abstractmethod
    def read_people(self, cursor: str | None, *, full: bool) -> PeopleBatch:
        """Read people: everything when ``full`` or ``cursor`` is None, else changes since it."""

    def read_reviews(self, cursor: str | None, *, full: bool) -> ReviewBatch:
        """Read review events (default: this connector has none)."""
        return ReviewBatch(events=[], cursor=cursor)

    def read_goals(self, cursor: str | None, *, full: bool) -> GoalBatch:
        """Read goals kept in the HRIS (default: none)."""
        return GoalBatch(goals=[], cursor=cursor)

    # -- writing ---------------------------------------------------------------------------
    supports_push: ClassVar[bool] = False

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
