"""A connector for Peoplebook, a made-up HR API: the complete example of docs/plugins.md."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests
from coachbridge import hookimpl
from coachbridge.connectors import (
    PEOPLE,
    CheckResult,
    Connector,
    ConnectorConfig,
    ConnectorContext,
    PeopleBatch,
    SyncContext,
)
from coachbridge.domain import PersonRecord, PersonStatus
from coachbridge.errors import ConnectorError
from coachbridge.http import RetryPolicy, send_with_retries
from pydantic import Field, SecretStr


class PeoplebookConfig(ConnectorConfig):
    """``[connectors.<name>]`` with ``plugin = "peoplebook"``."""

    base_url: str = Field(description="the company's API root, e.g. https://acme.peoplebook.test")
    token: SecretStr = Field(description="API token; sent as a Bearer token, never shown")
    max_retries: int = Field(default=5, ge=0, le=20)


class PeoplebookConnector(Connector):
    """People from ``GET /people`` (``?updated_since=<cursor>`` for what changed)."""

    config_model = PeoplebookConfig
    streams = (PEOPLE,)  # people, incremental (the default for PEOPLE)
    config: PeoplebookConfig

    def __init__(self, config: PeoplebookConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {config.token.get_secret_value()}"
        self.policy = RetryPolicy(max_retries=config.max_retries, max_wait=120)
        self.sleep: Callable[[float], None] = time.sleep  # tests replace it

    def _get(self, path: str, **params: str) -> Any:
        url = self.config.base_url.rstrip("/") + path
        timeout = self.context.http_timeout
        try:
            sent = send_with_retries(
                lambda: self.session.get(url, params=params, timeout=timeout),
                idempotent=True,
                policy=self.policy,
                sleep=self.sleep,
                what=f"peoplebook GET {path}",
            )
        except requests.RequestException as exc:  # never the exception's text: it has the URL
            raise ConnectorError(
                f"connector {self.name}: cannot reach Peoplebook ({type(exc).__name__})"
            ) from None
        if sent.response.status_code != 200:
            raise ConnectorError(
                f"connector {self.name}: Peoplebook GET {path} answered "
                f"{sent.response.status_code} after {sent.attempts} attempts"
            )
        return sent.response.json()

    def check(self) -> list[CheckResult]:
        body = self._get("/people")
        return [CheckResult(True, f"token accepted; {len(body['people'])} people visible")]

    def read_people(
        self, cursor: str | None, *, full: bool, context: SyncContext | None = None
    ) -> PeopleBatch:
        params = {} if full or cursor is None else {"updated_since": cursor}
        body = self._get("/people", **params)
        records = [
            PersonRecord(
                external_id=str(p["id"]),
                first_name=p["first_name"],
                last_name=p["last_name"],
                email=p.get("email"),
                manager_external_id=p.get("manager_id"),
                status=PersonStatus.ACTIVE if p.get("active", True) else PersonStatus.INACTIVE,
            )
            for p in body["people"]
        ]
        # Peoplebook's own clock, so no change between two reads is missed.
        return PeopleBatch(records=records, full=not params, cursor=body["now"])


@hookimpl
def coachbridge_register_connectors(register: Callable[[str, type[Connector]], None]) -> None:
    register("peoplebook", PeoplebookConnector)
