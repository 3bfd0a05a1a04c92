"""BambooHR webhooks: signature verification and the two payload shapes.

Signature (BambooHR's webhook docs; the same recipe in every open-source receiver we checked):
``hex(HMAC-SHA256(key=private key as UTF-8, msg=raw body bytes + X-BambooHR-Timestamp as sent))``.
The timestamp may be Unix seconds or ISO 8601; both are accepted when judging its age.

Payloads: event-based ``{"type": "employee.updated", "timestamp": ..., "data": {"employeeId",
"changedFields": [...]}}`` and the legacy field-based ``{"employees": [{"id", "action",
"changedFields", "fields": {...}}]}``, whose field values may be plain or ``{"value": ...}``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from coachbridge.connectors import WebhookRejected

SIGNATURE_HEADER = "X-BambooHR-Signature"
TIMESTAMP_HEADER = "X-BambooHR-Timestamp"

_ID = {"type": ["string", "integer"], "description": "BambooHR employee id"}
_FIELDS = {"type": "array", "items": {"type": "string"}}
#: A delivery as the server's OpenAPI document describes it (``Connector.webhook_openapi``).
OPENAPI: dict[str, Any] = {
    "headers": [
        {
            "name": SIGNATURE_HEADER,
            "in": "header",
            "required": True,
            "description": "hex HMAC-SHA256 of the raw body followed by the timestamp header, "
            "keyed with the webhook's private key",
            "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
        },
        {
            "name": TIMESTAMP_HEADER,
            "in": "header",
            "required": True,
            "description": "when BambooHR sent it: Unix seconds or ISO 8601",
            "schema": {"type": "string", "minLength": 1},
        },
    ],
    "body": {
        "oneOf": [
            {
                "title": "event-based",
                "type": "object",
                "required": ["type", "data"],
                "properties": {
                    "type": {"type": "string", "examples": ["employee.updated"]},
                    "timestamp": {"type": "string"},
                    "data": {
                        "type": "object",
                        "properties": {"employeeId": _ID, "changedFields": _FIELDS},
                    },
                },
            },
            {
                "title": "field-based (legacy)",
                "type": "object",
                "required": ["employees"],
                "properties": {
                    "employees": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["id"],
                            "properties": {
                                "id": _ID,
                                "action": {"enum": ["Created", "Updated", "Deleted"]},
                                "changedFields": _FIELDS,
                                "fields": {"type": "object"},
                                "timestamp": {"type": "string"},
                            },
                        },
                    }
                },
            },
        ]
    },
}


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, case-insensitively, whatever mapping the web framework hands us."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                value = candidate
                break
    return value


def sign(secret: str, body: bytes, timestamp: str) -> str:
    """The signature BambooHR sends for ``body`` at ``timestamp`` (also used by tests/fakes)."""
    return hmac.new(secret.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


def parse_webhook_time(value: str) -> datetime | None:
    """Unix seconds (or milliseconds) or ISO 8601 (``Z``, ``+00:00``, ``+0000``), as UTC."""
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is not None:
        if number > 1e11:  # milliseconds: no plausible webhook is from the year 5138
            number /= 1000
        try:
            return datetime.fromtimestamp(number, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secret: str | None,
    tolerance: timedelta,
    now: datetime | None = None,
    retry_window: timedelta | None = None,
) -> bool:
    """Raise ``WebhookRejected(401, ...)`` unless the delivery is signed and fresh.

    Fresh: within ``tolerance`` of now either way, or, for a timestamp in the past, within
    ``retry_window``: BambooHR retries a delivery we answered 5xx five times, at 5, 10, 20, 40
    and 80 minute intervals (its OpenAPI document), and a retry's timestamp may be the first
    attempt's. Such a late delivery is a
    retry or a replay of one we may already hold; the inbox keys BambooHR deliveries by the
    SHA-256 of the body, so a second copy changes nothing. Returns True for a late delivery.
    """
    if not secret:
        raise WebhookRejected(401, "no webhook_secret configured for this connector")
    signature = header(headers, SIGNATURE_HEADER)
    timestamp = header(headers, TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise WebhookRejected(401, f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header")
    expected = sign(secret, body, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise WebhookRejected(401, "signature does not match")
    sent = parse_webhook_time(timestamp)
    if sent is None:
        raise WebhookRejected(401, f"{TIMESTAMP_HEADER} is neither Unix seconds nor ISO 8601")
    age = (now or datetime.now(UTC)) - sent
    if abs(age) <= tolerance:
        return False
    if retry_window is not None and timedelta(0) < age <= retry_window:
        return True
    raise WebhookRejected(
        401, f"timestamp is {abs(age).total_seconds():.0f}s away from now (stale or replayed)"
    )


@dataclass
class Change:
    """One employee change from a delivery, whichever shape it came in."""

    employee_id: str
    action: str  # created | updated | deleted
    changed_fields: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    timestamp: str | None = None


def parse_payload(body: bytes) -> list[Change]:
    """Both payload shapes as a list of changes; ``WebhookRejected(400, ...)`` if malformed."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WebhookRejected(400, "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise WebhookRejected(400, "body is not a JSON object")
    if "employees" in data:
        return _field_based(data["employees"])
    if "type" in data:
        return _event_based(data)
    raise WebhookRejected(
        400, "neither an event-based (type) nor a field-based (employees) payload"
    )


def _event_based(data: dict[str, Any]) -> list[Change]:
    kind = data.get("type")
    payload = data.get("data")
    if not isinstance(kind, str) or not isinstance(payload, dict):
        raise WebhookRejected(400, "event payload without a type string and a data object")
    if not kind.startswith("employee."):
        return []  # company.* events say nothing about people
    action = kind.split(".", 1)[1]
    if action not in ("created", "updated", "deleted"):
        return []
    emp = payload.get("employeeId")
    if emp is None or str(emp).strip() == "":
        raise WebhookRejected(400, f"{kind} event without data.employeeId")
    changed = payload.get("changedFields") or []
    if not isinstance(changed, list):
        raise WebhookRejected(400, "data.changedFields is not a list")
    stamp = data.get("timestamp")
    return [
        Change(
            str(emp).strip(),
            action,
            [str(f) for f in changed],
            timestamp=str(stamp) if stamp else None,
        )
    ]


def _field_based(employees: Any) -> list[Change]:
    if not isinstance(employees, list):
        raise WebhookRejected(400, "employees is not a list")
    out = []
    for i, entry in enumerate(employees):
        if not isinstance(entry, dict) or entry.get("id") in (None, ""):
            raise WebhookRejected(400, f"employees[{i}] has no id")
        fields = entry.get("fields") or {}
        if not isinstance(fields, dict):
            raise WebhookRejected(400, f"employees[{i}].fields is not an object")
        action = str(entry.get("action") or "Updated").lower()
        if action not in ("created", "updated", "deleted"):
            raise WebhookRejected(400, f"employees[{i}].action {entry.get('action')!r} is unknown")
        changed = entry.get("changedFields") or []
        out.append(
            Change(
                str(entry["id"]).strip(),
                action,
                [str(f) for f in changed] if isinstance(changed, list) else [],
                fields=fields,
                timestamp=str(entry["timestamp"]) if entry.get("timestamp") else None,
            )
        )
    return out
