"""One retry policy for every connector's HTTP: bounded, jittered, Retry-After, safe repeats only.

``send_with_retries`` sends a request (a callable that performs it once) and repeats it, under
a ``RetryPolicy``, only when repeating is safe:

- a request that is safe to repeat (``idempotent``: a read, or a write the caller knows to be
  harmless twice) is repeated after a dropped connection, an answer cut off mid-body, a read
  timeout (unless the policy says slow answers should not be waited for twice) and the
  policy's ``retry_statuses`` (throttling and gateway faults);
- any other request only after ``unsafe_retry_statuses`` (429 and 503: the server says it did
  not process it) or a connection that never opened (nothing was sent);
- the wait is the server's ``Retry-After`` (seconds or an HTTP date) when it gives one, else
  exponential backoff with full jitter (``random.uniform(0, base * 2**n)``, capped), so many
  workers do not retry in step;
- attempts are bounded (``max_retries`` repeats) and so is the total wait (``max_wait``): a
  wait that would pass it is not made, the last answer is returned instead.

The loop is tenacity's; this module only states the policy. What the caller gets back is the
last response (``Sent``: also how many attempts were made and how long was waited), whatever
its status, or the last ``requests`` exception raised: turning either into a one-line
``ConnectorError`` stays with the connector, which knows its vendor's wording.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

import requests
import tenacity
import urllib3

__all__ = [
    "IDEMPOTENT_METHODS",
    "READ_RETRY_STATUSES",
    "WRITE_RETRY_STATUSES",
    "RetryPolicy",
    "Sent",
    "is_idempotent",
    "never_sent",
    "retry_after_seconds",
    "safe_url",
    "send_with_retries",
]

log = logging.getLogger(__name__)

#: Methods HTTP defines as idempotent: sending one twice has the effect of sending it once.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: Statuses worth repeating a request that is safe to repeat: throttling and gateway faults.
READ_RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: The only statuses after which any other request is repeated: the server did not process it.
WRITE_RETRY_STATUSES = frozenset({429, 503})

# Failures after which a request that is safe to repeat is sent again: the network, or an
# answer cut off mid-body.
_TRANSIENT = (
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a connector's requests are repeated."""

    #: Repeats after the first attempt (0: never repeat).
    max_retries: int = 5
    #: Seconds: the ceiling of the first backoff; it doubles with every repeat.
    backoff_base: float = 1.0
    #: Seconds: the most one backoff waits (None: no cap but ``max_wait``).
    backoff_cap: float | None = None
    #: Seconds: the most waited in all for one request; a wait that would pass it is not made
    #: (None: only ``max_retries`` bounds it).
    max_wait: float | None = None
    #: Statuses after which a request that is safe to repeat is repeated.
    retry_statuses: frozenset[int] = READ_RETRY_STATUSES
    #: Statuses after which any other request is repeated.
    unsafe_retry_statuses: frozenset[int] = WRITE_RETRY_STATUSES
    #: Whether a read that timed out is sent again (False where a slow report would only time
    #: out again).
    retry_read_timeouts: bool = True
    #: Retry-After values are obeyed; set False for a server whose header is not trustworthy.
    honour_retry_after: bool = True


@dataclass
class Sent:
    """The last response, how many attempts it took and how many seconds were waited."""

    response: requests.Response
    attempts: int
    waited: float
    retry_after: float | None = field(default=None)


def safe_url(url: str) -> str:
    """``url`` as it may be shown or logged: a password in it as ``***``, and the query's
    values too (``?key=...`` is where some deployments put a token)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unreadable URL)"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = "&".join(
        f"{pair.split('=', 1)[0]}=***" if "=" in pair else pair
        for pair in parts.query.split("&")
        if pair
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def is_idempotent(method: str) -> bool:
    return method.upper() in IDEMPOTENT_METHODS


def never_sent(exc: BaseException) -> bool:
    """True when the connection never opened (refused, DNS, connect timeout): nothing was sent."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if not isinstance(exc, requests.exceptions.ConnectionError):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _may_repeat_error(exc: BaseException, idempotent: bool, policy: RetryPolicy) -> bool:
    if never_sent(exc):
        return True
    if not idempotent:
        return False
    if isinstance(exc, requests.exceptions.Timeout):  # a read timeout (connect: never sent)
        return policy.retry_read_timeouts
    return isinstance(exc, _TRANSIENT)


def _hinted(response: requests.Response, policy: RetryPolicy) -> float | None:
    if not policy.honour_retry_after:
        return None
    return retry_after_seconds(response.headers.get("Retry-After"))


def send_with_retries(
    send: Callable[[], requests.Response],
    *,
    idempotent: bool,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    what: str = "request",
    logger: logging.Logger | None = None,
) -> Sent:
    """Call ``send`` until it succeeds, may not be repeated, or the policy is spent.

    Returns the last response, whatever its status; raises the last exception ``send`` raised
    when that one may not be (or no longer be) repeated. ``what`` names the request in the log
    line each repeat writes (never a URL with credentials in it).
    """
    statuses = policy.retry_statuses if idempotent else policy.unsafe_retry_statuses
    backoff = tenacity.wait_random_exponential(
        multiplier=policy.backoff_base,
        max=policy.backoff_cap if policy.backoff_cap is not None else float("inf"),
    )
    logger = logger or log

    def should_retry(state: tenacity.RetryCallState) -> bool:
        outcome = state.outcome
        assert outcome is not None
        if outcome.failed:
            exc = outcome.exception()
            return exc is not None and _may_repeat_error(exc, idempotent, policy)
        return outcome.result().status_code in statuses

    def wait(state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            hinted = _hinted(outcome.result(), policy)
            if hinted is not None:
                return hinted
        return float(backoff(state))

    def stop(state: tenacity.RetryCallState) -> bool:
        if state.attempt_number > policy.max_retries:
            return True
        upcoming = state.upcoming_sleep or 0.0
        return policy.max_wait is not None and state.idle_for + upcoming > policy.max_wait

    def before_sleep(state: tenacity.RetryCallState) -> None:
        outcome = state.outcome
        assert outcome is not None
        if outcome.failed:
            why = type(outcome.exception()).__name__
        else:
            response = outcome.result()
            why = f"HTTP {response.status_code}"
            response.close()  # a streamed answer would hold its connection
        delay = state.upcoming_sleep or 0.0
        logger.info("%s: %s, retry %d in %.1fs", what, why, state.attempt_number, delay)

    attempts = 0
    waited = 0.0

    def attempt() -> requests.Response:
        nonlocal attempts
        attempts += 1
        return send()

    def pause(seconds: float) -> None:
        nonlocal waited
        waited += seconds
        sleep(seconds)

    retrying = tenacity.Retrying(
        sleep=pause,
        retry=should_retry,
        wait=wait,
        stop=stop,
        before_sleep=before_sleep,
        # Spent: hand back the last answer (or raise the last error) for the caller to word.
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        reraise=True,
    )
    response = retrying(attempt)
    return Sent(response, attempts, waited, _hinted(response, policy))
