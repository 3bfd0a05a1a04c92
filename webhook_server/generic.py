"""The generic connector: any review tool that sends Standard Webhooks.

Config (``[connectors.<name>]``)::

    plugin = "generic"
    secret = "${REVIEWS_SECRET}"     # whsec_<base64>, from the environment
    people_from = "bamboohr"         # optional: whose employee ids ``employee_id`` holds
    tolerance_seconds = 300          # optional: accepted clock difference

Events: ``review.completed`` (one person's review), ``review_cycle.launched`` and
``review_cycle.closed`` (a cycle as a whole). A review event's id is its natural key
(type, cycle, employee), so the same review sent twice under two webhook ids is still one event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar

from coachbridge import hookimpl
from coachbridge.connectors import (
    CheckResult,
    Connector,
    ConnectorConfig,
    ConnectorContext,
    ParsedDelivery,
    Stream,
    WebhookRejected,
)
from coachbridge.domain import ReviewEvent
from coachbridge.domain.review import normalize_rating
from coachbridge_webhooks import standard_webhooks
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
)


class GenericConfig(ConnectorConfig):
    """``[connectors.<name>]`` with ``plugin = "generic"``."""

    secret: SecretStr = Field(description="Standard Webhooks signing secret, whsec_<base64>")
    tolerance_seconds: int = Field(default=standard_webhooks.DEFAULT_TOLERANCE_SECONDS, ge=1)

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        standard_webhooks.secret_key(value.get_secret_value())  # raises without echoing it
        return value


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    timestamp: datetime | None = None
    data: dict[str, Any]


class _ReviewData(BaseModel):
    model_config = ConfigDict(extra="allow")
    cycle_id: str = Field(min_length=1, max_length=200)
    employee_id: str | None = Field(default=None, max_length=200)
    employee_email: str | None = Field(default=None, max_length=320)
    # JSON numbers only: true or "1" is not a rating (lax parsing made either the lowest).
    rating: StrictFloat | StrictInt
    rating_scale_min: StrictFloat | StrictInt = 1.0
    rating_scale_max: StrictFloat | StrictInt
    completed_at: datetime | None = None

    @field_validator("employee_id", mode="before")
    @classmethod
    def _id(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class _CycleData(BaseModel):
    model_config = ConfigDict(extra="allow")
    cycle_id: str = Field(min_length=1, max_length=200)


EVENT_TYPES: tuple[str, ...] = ("review.completed", "review_cycle.launched", "review_cycle.closed")

_CYCLE = {"type": "string", "minLength": 1, "maxLength": 200}
#: A delivery as the server's OpenAPI document describes it (``Connector.webhook_openapi``).
OPENAPI: dict[str, Any] = {
    "headers": [
        {
            "name": standard_webhooks.ID_HEADER,
            "in": "header",
            "required": True,
            "description": "unique per message: the delivery id",
            "schema": {"type": "string", "minLength": 1, "maxLength": 300},
        },
        {
            "name": standard_webhooks.TIMESTAMP_HEADER,
            "in": "header",
            "required": True,
            "description": "Unix seconds; older or newer than tolerance_seconds is refused",
            "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
        },
        {
            "name": standard_webhooks.SIGNATURE_HEADER,
            "in": "header",
            "required": True,
            "description": "space-separated v1,<base64 HMAC-SHA256 of id.timestamp.body>",
            "schema": {"type": "string", "minLength": 1},
        },
    ],
    "body": {
        "type": "object",
        "required": ["type", "data"],
        "properties": {
            "type": {"enum": list(EVENT_TYPES)},
            "timestamp": {"type": "string", "format": "date-time"},
            "data": {
                "oneOf": [
                    {
                        "title": "review.completed",
                        "type": "object",
                        "required": ["cycle_id", "rating", "rating_scale_max"],
                        "properties": {
                            "cycle_id": _CYCLE,
                            "employee_id": {"type": ["string", "integer"]},
                            "employee_email": {"type": "string", "maxLength": 320},
                            "rating": {"type": "number"},
                            "rating_scale_min": {"type": "number", "default": 1},
                            "rating_scale_max": {"type": "number"},
                            "completed_at": {"type": "string", "format": "date-time"},
                        },
                    },
                    {
                        "title": "review_cycle.launched, review_cycle.closed",
                        "type": "object",
                        "required": ["cycle_id"],
                        "properties": {"cycle_id": _CYCLE},
                    },
                ]
            },
        },
    },
}


def _first_problem(exc: ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "(body)"
    return f"{where}: {err['msg']}"


class GenericConnector(Connector):
    """Receives review events by webhook; it has no people of its own to sync."""

    config_model: ClassVar[type[ConnectorConfig]] = GenericConfig
    supports_webhooks: ClassVar[bool] = True
    #: Events arrive by webhook only: there is nothing to sync.
    streams: tuple[Stream, ...] = ()
    webhook_openapi: ClassVar[Mapping[str, Any] | None] = OPENAPI

    def __init__(self, config: ConnectorConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, GenericConfig)
        self._key = standard_webhooks.secret_key(config.secret.get_secret_value())
        self._tolerance = config.tolerance_seconds

    def check(self) -> list[CheckResult]:
        return [CheckResult(True, "webhook-only connector: signing secret is well-formed")]

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> str | None:
        return standard_webhooks.verify(headers, body, self._key, tolerance_seconds=self._tolerance)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ParsedDelivery:
        try:
            raw = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise WebhookRejected(400, "body is not valid JSON") from None
        except RecursionError:  # e.g. 100,000 nested '[': bad input, not a server fault
            raise WebhookRejected(400, "body nests too deeply") from None
        try:
            payload = _Payload.model_validate(raw)
        except ValidationError as exc:
            raise WebhookRejected(400, _first_problem(exc)) from None
        if payload.type not in EVENT_TYPES:
            raise WebhookRejected(400, f"unsupported event type {payload.type[:60]!r}")
        if payload.type == "review.completed":
            return ParsedDelivery(reviews=[self._review(payload)])
        try:
            cycle = _CycleData.model_validate(payload.data)
        except ValidationError as exc:
            raise WebhookRejected(400, "data." + _first_problem(exc)) from None
        return ParsedDelivery(
            cycle_events=[
                {
                    "type": payload.type,
                    "cycle": cycle.cycle_id,
                    "at": payload.timestamp.isoformat() if payload.timestamp else None,
                }
            ]
        )

    def _review(self, payload: _Payload) -> ReviewEvent:
        try:
            data = _ReviewData.model_validate(payload.data)
        except ValidationError as exc:
            raise WebhookRejected(400, "data." + _first_problem(exc)) from None
        if not data.employee_id and not data.employee_email:
            raise WebhookRejected(400, "data: needs employee_id or employee_email")
        try:
            rating = normalize_rating(data.rating, data.rating_scale_max, data.rating_scale_min)
        except ValueError as exc:
            raise WebhookRejected(400, f"data.rating: {exc}") from None
        subject = data.employee_id or (data.employee_email or "").lower()
        try:
            return ReviewEvent(
                type=payload.type,
                cycle=data.cycle_id,
                subject_external_id=data.employee_id,
                subject_email=data.employee_email,
                raw_rating=data.rating,
                scale_min=data.rating_scale_min,
                scale_max=data.rating_scale_max,
                rating=rating,
                completed_at=data.completed_at or payload.timestamp,
                source=self.name,
                source_event_id=_event_key(payload.type, data.cycle_id, subject),
            )
        except ValidationError as exc:
            raise WebhookRejected(400, "data." + _first_problem(exc)) from None


def _event_key(event_type: str, cycle: str, subject: str) -> str:
    """The review's identity, at most 300 characters: ``type:cycle:subject`` when it fits,
    else with the cycle and subject as a digest (cut short, two people's long emails in one
    cycle would be one review, the second overwriting the first)."""
    key = f"{event_type}:{cycle}:{subject}"
    if len(key) <= 300:
        return key
    digest = hashlib.sha256(f"{cycle}\x1f{subject}".encode()).hexdigest()
    return f"{event_type}:sha256:{digest}"


@hookimpl
def coachbridge_register_connectors(register: Callable[[str, Any], None]) -> None:
    """Register the ``generic`` (Standard Webhooks) connector."""
    register("generic", GenericConnector)
