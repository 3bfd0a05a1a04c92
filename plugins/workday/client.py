"""HTTP to one Workday tenant: authentication, retries with backoff, and errors in one line.

OAuth 2.0 refresh-token grant at ``POST {base}/ccx/oauth2/{tenant}/token`` (form-encoded, the
client id and secret in the body); the access token is kept in memory and renewed a minute
before ``expires_in`` runs out (14 minutes when Workday gives none); a 401 is retried once with
a fresh token. Without OAuth, HTTP Basic as an Integration System User (RaaS only).

Some tenants rotate refresh tokens: the token endpoint answers with a new ``refresh_token`` and
the old one stops working. The new one is kept in the connector's token store (the database,
encrypted, or ``token_file``) and used from then on by every process, in preference to the
configured one, until the operator configures another. A refresh holds the store's lock and
re-reads the stored token inside it, so two processes refreshing at once never use a token the
other has just had rotated away.

Workday throttles REST with 429 and RaaS/SOAP with 500, without ``Retry-After``. A read (GET,
and the token request) is retried after 429, every 5xx and connection failures, with exponential
backoff and full jitter, a bounded number of times (the shared policy of ``coachbridge.http``,
which also obeys a ``Retry-After`` should Workday send one). A write (POST/PATCH creating or changing a
mentorship or check-in) is retried only after 429 and 503, where Workday did not process it, and
after a connection that never opened: a 500/502/504 or a dropped connection may come after
Workday applied it, and repeating it could create a second mentorship or check-in. Every
``requests`` failure becomes one ``ConnectorError`` line naming the connector, never a traceback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from coachbridge import metrics
from coachbridge.connectors import StoredToken, TokenStore
from coachbridge.errors import ConnectorError
from coachbridge.http import (
    IDEMPOTENT_METHODS,
    READ_RETRY_STATUSES,
    WRITE_RETRY_STATUSES,
    RetryPolicy,
    never_sent,
    safe_url,
    send_with_retries,
)
from coachbridge_workday.config import SERVICE_VERSIONS, WorkdayConfig

log = logging.getLogger(__name__)

DEFAULT_TOKEN_LIFETIME = 14 * 60.0
_TOKEN_MARGIN = 60.0
_BACKOFF_CAP = 60.0
CONNECT_TIMEOUT = 30.0
#: The token store key the rotated refresh token is kept under.
REFRESH_TOKEN_KEY = "refresh_token"


def token_origin(configured: str) -> str:
    """What a stored refresh token remembers of the configured one it descends from (a digest,
    so a token the operator replaces in the config wins over the stored chain)."""
    return hashlib.sha256(configured.encode()).hexdigest()


def may_retry_status(status: int, idempotent: bool) -> bool:
    """Whether an answer with ``status`` may be followed by sending the same request again."""
    if idempotent:
        return status == 429 or status >= 500
    return status in WRITE_RETRY_STATUSES


#: Security domains that secure the REST resources this connector uses (from Workday's
#: OpenAPI documents, "Secured by:"), named when Workday answers 403.
SECURITY_DOMAINS: tuple[tuple[str, str], ...] = (
    (r"/checkIns", "Worker Data: Check-Ins REST API"),
    (r"/supervisoryOrganizations/[^/]+/orgChart", "Reports: Organization"),
    (r"/supervisoryOrganizations", "View: Supervisory Organization"),
    (r"/workers", "Worker Data: Public Worker Reports"),
    (r"mentorship", "the mentorship domains of Talent Management (Mentorships)"),
)


class WorkdayHTTPError(ConnectorError):
    """Workday answered with an error status; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def describe_error_body(response: requests.Response, limit: int = 300) -> str:
    """Workday's error body in one line: ``{"error": ..., "errors": [...]}``, OAuth or SOAP."""
    text = _peek_text(response)
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    parts: list[str] = []
    if isinstance(body, dict):
        for key in ("error", "error_description", "message"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                parts.append(value.strip())
        for item in body.get("errors") or []:
            if isinstance(item, dict) and item.get("error"):
                extra = f" (field {item['field']})" if item.get("field") else ""
                parts.append(f"{item['error']}{extra}")
    elif text.lstrip().startswith("<"):
        fault = re.search(r"<(?:\w+:)?faultstring[^>]*>(.*?)</", text, re.S)
        detail = re.search(r"<(?:\w+:)?(?:Detail_)?Message[^>]*>(.*?)</", text, re.S)
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.S | re.I)
        for match in (fault, detail, title):
            if match and match.group(1).strip():
                parts.append(match.group(1).strip())
    line = "; ".join(dict.fromkeys(parts)) or (text.strip()[:limit] if body is None else "")
    line = " ".join(line.split())
    return line[:limit]


def _peek_text(response: requests.Response) -> str:
    try:
        if response.raw is not None and not response._content_consumed:  # type: ignore[attr-defined]
            return response.raw.read(65536, decode_content=True).decode("utf-8", "replace")
        return response.text[:65536]
    except Exception:  # the error text is a courtesy; never mask the real error
        return ""


class WorkdayClient:
    """One tenant's HTTP session. ``requests_made`` counts every HTTP request (benchmarks)."""

    def __init__(
        self,
        config: WorkdayConfig,
        connector: str,
        *,
        timeout: float = 60.0,
        user_agent: str = "coachbridge",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        tokens: TokenStore | None = None,
    ) -> None:
        self.config = config
        self.tokens = tokens
        self._refresh_used: str | None = None
        self.connector = connector
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self._sleep = sleep
        self._clock = clock
        self._token: str | None = None
        self._token_expires = 0.0
        self._lock = threading.Lock()
        self.versions = {
            "staffing": config.staffing_version,
            "talentManagement": config.talent_management_version,
        }
        self.requests_made = 0

    def __repr__(self) -> str:
        return f"<WorkdayClient {self.connector!r}>"

    # -- URLs ------------------------------------------------------------------------------
    @property
    def root(self) -> str:
        return self.config.root

    def api_url(self, service: str, path: str, version: str | None = None) -> str:
        version = version or self.versions[service]
        return f"{self.root}/ccx/api/{service}/{version}/{self.config.tenant}/{path.lstrip('/')}"

    # -- authentication --------------------------------------------------------------------
    def _where(self, key: str) -> str:
        return f"connectors.{self.connector}.{key}"

    def token(self, *, force: bool = False) -> str:
        """A valid access token (cached; renewed before it expires or when ``force``)."""
        with self._lock:
            if not force and self._token and self._clock() < self._token_expires:
                return self._token
            cfg = self.config
            assert cfg.refresh_token is not None
            configured = cfg.refresh_token.get_secret_value()
            if self.tokens is None:
                body = self._grant(configured)
            else:
                with self.tokens.locked(REFRESH_TOKEN_KEY) as slot:
                    # Read inside the lock: another process may have just rotated it.
                    stored = self.stored_refresh_token(slot.current)
                    used = stored.value if stored is not None else configured
                    body = self._grant(used)
                    self._keep_rotated(body, used, configured, slot)
            token = body["access_token"]
            lifetime = DEFAULT_TOKEN_LIFETIME
            expires_in = body.get("expires_in")
            if isinstance(expires_in, int | float | str):
                with contextlib.suppress(ValueError):
                    lifetime = max(float(expires_in) - _TOKEN_MARGIN, 1.0)
            self._token = token
            self._token_expires = self._clock() + lifetime
            return token

    def stored_refresh_token(self, stored: StoredToken | None = None) -> StoredToken | None:
        """The kept refresh token that descends from the configured one (None: use that one)."""
        if stored is None and self.tokens is not None:
            stored = self.tokens.peek(REFRESH_TOKEN_KEY)
        if stored is None or self.config.refresh_token is None:
            return None
        if stored.origin != token_origin(self.config.refresh_token.get_secret_value()):
            return None  # the operator configured another token since: it wins
        return stored

    def _grant(self, refresh_token: str) -> dict[str, Any]:
        """One refresh-token grant; the answer holds a non-empty ``access_token``."""
        cfg = self.config
        assert cfg.client_secret is not None
        url = f"{self.root}/ccx/oauth2/{cfg.tenant}/token"
        data = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": cfg.client_id or "",
            "client_secret": cfg.client_secret.get_secret_value(),
        }
        self._refresh_used = refresh_token
        # A refresh-token grant creates no record, so it is as safe to repeat as a read.
        response = self._send("POST", url, data=data, auth_mode="none", idempotent=True)
        if response.status_code != 200:
            self._token_error(response)
        try:
            body = response.json()
            token = body["access_token"]
            if not isinstance(token, str) or not token:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise ConnectorError(
                f"connector {self.connector}: the token endpoint {safe_url(url)} did not return an "
                "access_token (is base_url/host the tenant's services host?)"
            ) from None
        return dict(body)

    def _keep_rotated(self, body: Mapping[str, Any], used: str, configured: str, slot: Any) -> None:
        new = body.get("refresh_token")
        if not isinstance(new, str) or not new or new == used:
            return
        try:
            slot.save(new, token_origin(configured))
        except ConnectorError as exc:
            # This process still has its access token; the next one will fail with
            # invalid_grant, and the error below says how to keep the token next time.
            log.error("%s", exc)
            return
        where = self.tokens.where if self.tokens is not None else "memory"
        log.info("workday %s: Workday rotated the refresh token; kept in %s", self.connector, where)

    def scrub(self, text: str) -> str:
        """Defence in depth: blank any configured secret that an error body might echo."""
        secrets = [self.config.client_secret, self.config.refresh_token, self.config.password]
        values = [s.get_secret_value() for s in secrets if s is not None]
        values.append(self._refresh_used or "")
        for value in values:
            if len(value) >= 4:
                text = text.replace(value, "***")
        return text

    def _token_error(self, response: requests.Response) -> None:
        said = self.scrub(describe_error_body(response))
        code = ""
        with contextlib.suppress(Exception):
            code = str(response.json().get("error", ""))
        if code == "invalid_client" or response.status_code == 401:
            hint = f"check {self._where('client_id')} and {self._where('client_secret')}"
        elif code == "invalid_grant":
            stored = self._refresh_used != (
                self.config.refresh_token.get_secret_value() if self.config.refresh_token else None
            )
            hint = (
                f"check {self._where('refresh_token')}"
                + (
                    " (the one Workday last rotated to, kept by coachbridge, was refused)"
                    if stored
                    else ""
                )
                + ": it may be revoked, expired or for another tenant (generate a new one in "
                "Manage Refresh Tokens for Integrations); a tenant that rotates refresh tokens "
                "needs [server] secret_key or "
                + self._where("token_file")
                + " so that coachbridge can keep each new one"
            )
        else:
            hint = f"check {self._where('tenant')} and the OAuth keys"
        raise ConnectorError(
            f"connector {self.connector}: Workday refused the OAuth token request "
            f"(HTTP {response.status_code}{': ' + said if said else ''}); {hint}"
        )

    def _auth_headers(self, auth_mode: str, force: bool = False) -> dict[str, str]:
        if auth_mode == "none":
            return {}
        if self.config.uses_oauth:
            return {"Authorization": f"Bearer {self.token(force=force)}"}
        return {}

    # -- requests --------------------------------------------------------------------------
    def _send(
        self,
        method: str,
        url: str,
        *,
        auth_mode: str = "auto",
        timeout: float | tuple[float, float] | None = None,
        stream: bool = False,
        force_token: bool = False,
        idempotent: bool | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """One request with bounded retries (see the module docstring for which ones).

        ``idempotent`` defaults to the method (GET/HEAD/PUT/DELETE/OPTIONS); read timeouts are
        never retried, because a slow report would only be run again and time out again.
        """
        if idempotent is None:
            idempotent = method.upper() in IDEMPOTENT_METHODS
        base_headers = dict(kwargs.pop("headers", None) or {})
        attempts = 0

        def send() -> requests.Response:
            nonlocal attempts
            headers = dict(base_headers)
            headers.update(self._auth_headers(auth_mode, force=force_token and attempts == 0))
            metrics.vendor_request("workday", retry=attempts > 0)
            attempts += 1
            auth = None
            if auth_mode != "none" and not self.config.uses_oauth and self.config.password:
                auth = (self.config.username or "", self.config.password.get_secret_value())
            self.requests_made += 1
            return self.session.request(
                method,
                url,
                headers=headers,
                auth=auth,
                timeout=timeout or (CONNECT_TIMEOUT, self.timeout),
                stream=stream,
                **kwargs,
            )

        try:
            return send_with_retries(
                send,
                idempotent=idempotent,
                policy=self.policy,
                sleep=self._sleep,
                what=f"workday {self.connector}: {method} {_path(url)}",
                logger=log,
            ).response
        except requests.exceptions.ConnectionError as exc:
            repeatable = idempotent or never_sent(exc)
            raise ConnectorError(
                f"connector {self.connector}: cannot reach Workday at {safe_url(self.root)} "
                f"({type(exc).__name__}); check {self._where('host')}/base_url and the network"
                + ("" if repeatable else self._maybe_applied(method))
            ) from None
        except requests.exceptions.Timeout:
            raise ConnectorError(
                f"connector {self.connector}: Workday did not answer {method} "
                f"{_path(url)} in time; raise {self._where('report_timeout')} for slow reports"
                + ("" if idempotent else self._maybe_applied(method))
            ) from None
        except (
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            raise ConnectorError(
                f"connector {self.connector}: Workday's answer to {method} {_path(url)} was "
                f"cut off or garbled ({type(exc).__name__})"
                + ("; nothing was changed, try again" if idempotent else "")
                + ("" if idempotent else self._maybe_applied(method))
            ) from None
        except requests.exceptions.RequestException as exc:
            # Not transient (bad URL, redirect loop, invalid header): repeating cannot help.
            raise ConnectorError(
                f"connector {self.connector}: {method} {_path(url)} to Workday failed "
                f"({type(exc).__name__}); check {self._where('host')}/base_url"
            ) from None

    @property
    def policy(self) -> RetryPolicy:
        """The shared policy (``coachbridge.http``) with this tenant's settings.

        Reads are repeated after 429 and every 5xx (RaaS throttles with 500), never after a
        read timeout (a slow report would only time out again); a Retry-After is obeyed up to
        the longest wait the backoff itself could reach.
        """
        return RetryPolicy(
            max_retries=self.config.max_retries,
            backoff_base=self.config.retry_backoff,
            backoff_cap=_BACKOFF_CAP,
            max_wait=_BACKOFF_CAP * self.config.max_retries,
            retry_statuses=READ_RETRY_STATUSES | frozenset(range(500, 600)),
            unsafe_retry_statuses=WRITE_RETRY_STATUSES,
            retry_read_timeouts=False,
        )

    @staticmethod
    def _maybe_applied(method: str) -> str:
        return (
            f"; the {method} was not repeated because Workday may have applied it: check Workday "
            "before pushing again"
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        stream: bool = False,
        timeout: float | tuple[float, float] | None = None,
        ok: tuple[int, ...] = (200, 201),
        raise_404: bool = True,
        **kwargs: Any,
    ) -> requests.Response:
        """Send with auth and retries; a 401 is retried once with a fresh token; errors raise."""
        response = self._send(method, url, stream=stream, timeout=timeout, **kwargs)
        if response.status_code == 401 and self.config.uses_oauth:
            response.close()
            response = self._send(
                method, url, stream=stream, timeout=timeout, force_token=True, **kwargs
            )
        if response.status_code in ok or (response.status_code == 404 and not raise_404):
            return response
        raise self.error(response, what)

    def error(self, response: requests.Response, what: str) -> WorkdayHTTPError:
        """A one-line error for a failed response, naming the key or security domain to fix."""
        status = response.status_code
        said = self.scrub(describe_error_body(response))
        response.close()
        said = f": {said}" if said else ""
        prefix = f"connector {self.connector}: {what}"
        if status == 401:
            keys = (
                "client_id, client_secret and refresh_token"
                if self.config.uses_oauth
                else "username and password"
            )
            return WorkdayHTTPError(
                f"{prefix}: Workday rejected the credentials (HTTP 401{said}); check "
                f"connectors.{self.connector} {keys}",
                status,
            )
        if status == 403:
            domain = next(
                (
                    name
                    for pattern, name in SECURITY_DOMAINS
                    if re.search(pattern, _path(response.url or ""))
                ),
                None,
            )
            hint = (
                f"grant the integration user's security group the domain '{domain}'"
                if domain and "/customreport2/" not in (response.url or "")
                else "share the report with the integration user and grant its security group "
                "the domains of the report's data source"
            )
            return WorkdayHTTPError(
                f"{prefix}: the integration user may not see this (HTTP 403{said}); {hint}", status
            )
        method = (response.request.method or "GET") if response.request is not None else "GET"
        if status >= 500 and not may_retry_status(status, method.upper() in IDEMPOTENT_METHODS):
            return WorkdayHTTPError(
                f"{prefix}: Workday failed (HTTP {status}{said}){self._maybe_applied(method)}",
                status,
            )
        if status == 429 or status >= 500:
            return WorkdayHTTPError(
                f"{prefix}: Workday kept failing (HTTP {status}{said}) after "
                f"{self.config.max_retries} retries; try again later",
                status,
            )
        return WorkdayHTTPError(f"{prefix}: HTTP {status}{said}", status)

    def api(
        self,
        method: str,
        service: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
    ) -> Any:
        """Call a REST service; a 404 is retried once on the service's other documented version."""

        def call(version: str) -> Any:
            return self.request(
                method,
                self.api_url(service, path, version),
                what=what,
                params=params,
                json=json_body,
                raise_404=False,
            )

        version = self.versions[service]
        response = call(version)
        if response.status_code == 404:
            others = [v for v in SERVICE_VERSIONS[service] if v != version]
            if not others:
                raise self.error(response, what)
            response.close()
            other = others[0]
            retry = call(other)
            if retry.status_code == 404:
                raise WorkdayHTTPError(
                    f"connector {self.connector}: {what}: not found (HTTP 404) at {service} "
                    f"{version} nor {other}: check the id, or "
                    f"connectors.{self.connector}.{_version_key(service)}",
                    404,
                )
            log.info(
                "workday %s: %s answers at %s, not %s", self.connector, service, other, version
            )
            self.versions[service] = other
            response = retry
        if response.status_code == 204 or not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise ConnectorError(
                f"connector {self.connector}: {what}: Workday answered with "
                f"{_kind_of(response)}, not JSON"
            ) from None


def _version_key(service: str) -> str:
    return {"staffing": "staffing_version", "talentManagement": "talent_management_version"}[
        service
    ]


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url).split("?")[0]


def _kind_of(response: requests.Response) -> str:
    ctype = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if "html" in ctype:
        return "an HTML page"
    if "xml" in ctype:
        return "XML"
    return ctype or "an unknown content type"
