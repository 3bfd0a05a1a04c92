"""A small HTTP client for BambooHR's REST API: auth, JSON, throttling and clear errors.

BambooHR throttles with 503 (and, from 2026-09-16, 429), both with ``Retry-After``; other
transient failures get exponential backoff with full jitter (the shared policy of
``coachbridge.http``). The total time spent waiting per request is bounded, after which a ``ConnectorError`` says what happened, including BambooHR's
own error-message header. The API key is only ever handed to ``requests`` as Basic auth; it is
never part of a URL, a log line or an exception.

A write (POST, unless the caller marks it ``idempotent``) is repeated only when BambooHR says it
did not process it: 429 and 503 (throttled), or when the connection never opened. A 502/504 or a dropped connection may come after
BambooHR already created the goal or training record, so repeating it could create a second one.
Every ``requests`` failure (refused, timed out, cut-off body, bad redirect...) becomes one
``ConnectorError`` line; none escapes as a traceback.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from coachbridge import metrics
from coachbridge.errors import ConnectorError
from coachbridge.http import (
    IDEMPOTENT_METHODS,
    READ_RETRY_STATUSES,
    WRITE_RETRY_STATUSES,
    RetryPolicy,
    retry_after_seconds,
    safe_url,
    send_with_retries,
)

log = logging.getLogger(__name__)

#: Statuses worth repeating a read for: throttling and gateway faults.
RETRY_STATUSES = READ_RETRY_STATUSES
__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRY_STATUSES",
    "WRITE_RETRY_STATUSES",
    "BambooHRClient",
    "error_message_header",
    "retry_after_seconds",
]
# The header's name differs across BambooHR's docs (the help centre even spells it with "sss").
ERROR_HEADERS = ("X-BambooHR-Error-Message", "X-BambooHR-Error-Messsage", "X-BambooHR-Message")
_STATUS_HINTS = {
    400: "BambooHR rejected the request as malformed",
    401: "BambooHR rejected the API key (401): check api_key",
    403: "BambooHR refused access (403): the API key's user lacks permission, API access is "
    "turned off, or the key was locked out after repeated failures",
    404: "BambooHR answered 404: check company_domain and base_url (unknown company or path)",
    405: "BambooHR does not allow this change (405)",
    406: "BambooHR reports an unknown field (406)",
    409: "BambooHR reports a conflict (409)",
    413: "BambooHR says the request asks for too much data (413)",
}


def error_message_header(headers: Mapping[str, str]) -> str | None:
    """BambooHR's explanation of a failure, from whichever header spelling it used."""
    for name in ERROR_HEADERS:
        value = headers.get(name)
        if value:
            return value.strip()
    return None


class BambooHRClient:
    """One ``requests.Session`` against one company's API root (see ``BambooHRConfig.api_root``).

    ``request`` returns the decoded JSON (or None for an empty body) and raises
    ``ConnectorError`` for everything else. ``requests_made`` counts HTTP requests, retries
    included (benchmarks and tests read it). ``connector`` (the configured connector's name),
    when given, starts every error message so the user knows which connector failed.
    """

    def __init__(
        self,
        api_root: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 5,
        max_retry_wait: float = 120.0,
        user_agent: str = "coachbridge",
        sleep: Callable[[float], None] = time.sleep,
        backoff_base: float = 1.0,
        connector: str | None = None,
    ) -> None:
        self.api_root = api_root
        self.connector = connector
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.backoff_base = backoff_base
        self.sleep = sleep
        self.requests_made = 0
        self.session = requests.Session()
        self.session.auth = (api_key, "x")
        self.session.headers.update({"Accept": "application/json", "User-Agent": user_agent})

    def __repr__(self) -> str:
        return f"<BambooHRClient {safe_url(self.api_root)!r}>"

    def close(self) -> None:
        self.session.close()

    def url(self, path: str) -> str:
        return self.api_root + path.lstrip("/")

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        idempotent: bool | None = None,
        allow: tuple[int, ...] = (),
    ) -> Any:
        """Send one request, retrying throttling and transient faults within the wait budget.

        ``idempotent`` (default: GET/HEAD/PUT/DELETE/OPTIONS) decides what may be repeated: a
        read is retried after connection failures, cut-off bodies and 429/502/503/504; a write
        only after 429/503, because anything else may come after BambooHR applied it. Statuses
        in ``allow`` are returned as ``{"_status": code}`` instead of raising.
        """
        if idempotent is None:
            idempotent = method.upper() in IDEMPOTENT_METHODS
        url = self.url(path)

        attempts = 0

        def send() -> requests.Response:
            nonlocal attempts
            metrics.vendor_request("bamboohr", retry=attempts > 0)
            attempts += 1
            self.requests_made += 1
            return self.session.request(
                method, url, params=params, json=json_body, timeout=self.timeout
            )

        try:
            sent = send_with_retries(
                send,
                idempotent=idempotent,
                policy=self.policy,
                sleep=self.sleep,
                what=f"BambooHR {method} {path}",
                logger=log,
            )
        except requests.RequestException as exc:
            raise ConnectorError(self._transport_failure(method, path, exc, idempotent)) from None
        response, status = sent.response, sent.response.status_code
        if status in (RETRY_STATUSES if idempotent else WRITE_RETRY_STATUSES):
            hinted = sent.retry_after
            detail = error_message_header(response.headers)
            raise ConnectorError(
                f"{self._prefix()}BambooHR {method} {path}: still throttled or unavailable "
                f"({status}) after {sent.attempts} attempts and {sent.waited:.0f}s of waiting"
                + (f" (Retry-After {hinted:.0f}s exceeds the budget)" if hinted else "")
                + (f": {detail}" if detail else "")
            )
        if status in allow:
            return {"_status": status}
        if status >= 400:
            message = self._prefix() + self._failure(method, path, response)
            if status in RETRY_STATUSES and not idempotent:
                message += (
                    "; not repeated, because BambooHR may have applied it: check BambooHR "
                    "before trying again"
                )
            raise ConnectorError(message)
        return self._decode(method, path, response, self._prefix())

    @property
    def policy(self) -> RetryPolicy:
        """The shared policy (``coachbridge.http``) with this client's settings."""
        return RetryPolicy(
            max_retries=self.max_retries,
            backoff_base=self.backoff_base,
            max_wait=self.max_retry_wait,
            retry_statuses=RETRY_STATUSES,
            unsafe_retry_statuses=WRITE_RETRY_STATUSES,
        )

    def _prefix(self) -> str:
        return f"connector {self.connector}: " if self.connector else ""

    def _transport_failure(
        self, method: str, path: str, exc: requests.RequestException, idempotent: bool
    ) -> str:
        """One line for a failure below HTTP; never the exception's text, which holds the URL."""
        kind = type(exc).__name__
        if isinstance(
            exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError
        ):
            what = f"the answer from {safe_url(self.api_root)} was cut off or garbled ({kind})"
        elif isinstance(exc, requests.ConnectionError | requests.Timeout):
            what = f"cannot reach {safe_url(self.api_root)} ({kind})"
        else:
            what = f"the request to {safe_url(self.api_root)} failed ({kind})"
        if not idempotent:
            what += "; BambooHR may or may not have applied it: check before trying again"
        return f"{self._prefix()}BambooHR {method} {path}: {what}"

    @staticmethod
    def _failure(method: str, path: str, response: requests.Response) -> str:
        status = response.status_code
        hint = _STATUS_HINTS.get(status) or f"BambooHR answered {status}"
        if status >= 500 and status not in _STATUS_HINTS:
            hint = f"BambooHR failed with a server error ({status})"
        detail = error_message_header(response.headers)
        return f"BambooHR {method} {path}: {hint}" + (f": {detail}" if detail else "")

    @staticmethod
    def _decode(method: str, path: str, response: requests.Response, prefix: str = "") -> Any:
        body = response.content
        if not body.strip():
            return None
        ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        head = body.lstrip()[:1]
        if head == b"<" or ctype in ("text/html", "text/xml", "application/xml"):
            kind = "HTML" if b"<html" in body[:500].lower() or ctype == "text/html" else "XML"
            raise ConnectorError(
                f"{prefix}BambooHR {method} {path}: answered {kind} where JSON was expected; check "
                "base_url and company_domain (a login page or proxy answers HTML)"
            )
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConnectorError(
                f"{prefix}BambooHR {method} {path}: the JSON answer is invalid or cut off "
                f"({len(body)} bytes; {exc.msg if isinstance(exc, json.JSONDecodeError) else exc})"
            ) from None
