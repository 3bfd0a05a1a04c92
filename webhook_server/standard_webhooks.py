"""The Standard Webhooks signature scheme (https://www.standardwebhooks.com/).

A sender adds three headers: ``webhook-id`` (unique per message, our delivery id),
``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` (space-separated ``v1,<base64>``
entries, several during a secret rotation). Each signature is HMAC-SHA256, keyed with the
base64-decoded part of the ``whsec_...`` secret, over ``<id>.<timestamp>.<raw body>``.

This is a few lines of the standard library (``hmac.compare_digest`` for constant-time
comparison), so it is written here rather than pulling in the reference SDK and its HTTP-client
dependencies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

from coachbridge.connectors import WebhookRejected

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
DEFAULT_TOLERANCE_SECONDS = 5 * 60
_PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (the prefix is optional).

    Raises ``ValueError`` when the part after the prefix is not base64, so a mistyped secret is
    caught when the config is loaded rather than rejecting every delivery later.
    """
    text = secret.strip()
    text = text.removeprefix(_PREFIX)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be a Standard Webhooks secret: 'whsec_' + base64") from None
    if len(key) < 16:
        raise ValueError("is too short: use at least 16 random bytes (24 base64 characters)")
    return key


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, case-insensitively, whatever mapping the web framework hands us."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return candidate
    return value


def sign(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """The ``webhook-signature`` value a sender puts on ``body`` (used by tests and benchmarks)."""
    digest = hmac.new(
        secret_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256
    ).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    secret: str, msg_id: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """All three headers for one delivery, plus the JSON content type."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: sign(secret, msg_id, ts, body),
        "content-type": "application/json",
    }


def verify(
    headers: Mapping[str, str],
    body: bytes,
    key: bytes,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> str:
    """Return the delivery's ``webhook-id``; raise ``WebhookRejected(401, ...)`` otherwise.

    Garbage entries in the signature header (no ``v1,`` prefix, bad base64) are skipped; the
    delivery passes when any ``v1`` entry matches.
    """
    msg_id = header(headers, ID_HEADER)
    stamp = header(headers, TIMESTAMP_HEADER)
    signatures = header(headers, SIGNATURE_HEADER)
    if not msg_id or not stamp or not signatures:
        raise WebhookRejected(401, "missing webhook-id, webhook-timestamp or webhook-signature")
    if len(msg_id) > 300:
        raise WebhookRejected(401, "webhook-id is longer than 300 characters")
    stamp = stamp.strip()
    # Unix seconds have 10 digits until the year 2286; a longer value is garbage, and bounding
    # it keeps int() and the float arithmetic below from ever overflowing.
    if len(stamp) > 12:
        raise WebhookRejected(401, "webhook-timestamp is not Unix seconds (too long)")
    # ASCII digits only, as the spec and our OpenAPI document say (int() would also take a
    # sign, underscores and other scripts' digits).
    if not (stamp.isascii() and stamp.isdigit()):
        raise WebhookRejected(401, "webhook-timestamp is not Unix seconds")
    sent = int(stamp)
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_seconds:
        raise WebhookRejected(401, "webhook-timestamp is outside the tolerance (stale or replayed)")
    expected = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    for entry in signatures.split():
        version, _, value = entry.partition(",")
        if version != "v1" or not value:
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(given, expected):
            return msg_id
    raise WebhookRejected(401, "no valid v1 signature")
