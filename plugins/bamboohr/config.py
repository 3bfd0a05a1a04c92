"""The ``[connectors.<name>]`` section of a BambooHR connector."""

from __future__ import annotations

import re
from datetime import timedelta

from coachbridge.connectors import ConnectorConfig, Duration
from pydantic import Field, SecretStr, field_validator, model_validator

_GATEWAY = re.compile(r"/api/gateway\.php/[^/]+/?$")


class BambooHRConfig(ConnectorConfig):
    """Settings of one BambooHR company. Secrets are ``SecretStr``: never printed or logged."""

    company_domain: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$",
        description="the text before .bamboohr.com in the company's BambooHR address",
    )
    api_key: SecretStr = Field(description="API key; HTTP Basic username, password 'x'")
    base_url: str | None = Field(
        default=None,
        description="https://{company_domain}.bamboohr.com (default; requests go to /api/v1/...) "
        "or the legacy https://api.bamboohr.com/api/gateway.php/{company_domain} (/v1/...)",
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="the webhook's private key, returned once when it was created"
    )
    webhook_tolerance: Duration = Field(
        default=timedelta(minutes=5), description="oldest X-BambooHR-Timestamp accepted, e.g. '5m'"
    )
    retry_window: Duration = Field(
        default=timedelta(hours=3),
        description="oldest X-BambooHR-Timestamp accepted from a validly signed delivery that "
        "BambooHR retries (after a 5xx: 5 retries at 5, 10, 20, 40 and 80 minute intervals, "
        "the last 155 minutes after the first attempt); duplicates are recognised by their body",
    )
    rating_field: str | None = Field(
        default=None, description="field alias holding the latest performance rating"
    )
    rating_field_label: str | None = Field(
        default=None,
        description="the rating field's name in legacy field-based webhooks (default: its alias)",
    )
    rating_scale_min: float = 1.0
    rating_scale_max: float = 5.0
    fields: list[str] = Field(
        default_factory=list, description="extra field aliases to read (kept in a person's extra)"
    )
    # -- write-back ---------------------------------------------------------------------------
    push_goals: bool = True
    push_sessions: bool = True
    share_goals_with_guide: bool = Field(
        default=True, description="share each pushed goal with the learner's guide as well"
    )
    training_type: str = Field(
        default="Coaching session",
        min_length=1,
        description="training type name held sessions are recorded under (created if missing)",
    )
    training_type_id: int | None = Field(
        default=None, ge=1, description="use this existing training type id instead of the name"
    )
    training_category: str | None = Field(
        default=None, description="category for the training type when coachbridge creates it"
    )
    # -- trainings (read for the people a program's guide filter admits) -------------------
    trainings_refresh: Duration = Field(
        default=timedelta(days=7),
        description="how long a person's training records are trusted before they are read again",
    )
    trainings_per_sync: int = Field(
        default=200,
        ge=0,
        description="most people whose training records are read again in one sync (people new "
        "to a program's guide filter are always read)",
    )
    # -- HTTP ---------------------------------------------------------------------------------
    timeout: float = Field(default=30.0, gt=0, le=600)
    max_retries: int = Field(default=5, ge=0, le=20)
    max_retry_wait: float = Field(
        default=120.0, ge=0, description="most seconds spent waiting on throttling per request"
    )

    @field_validator("api_key")
    @classmethod
    def _header_safe(cls, value: SecretStr) -> SecretStr:
        # It travels as HTTP Basic credentials: ASCII only (requests would fail deep inside).
        if not value.get_secret_value().isascii():
            raise ValueError(
                "holds a character that is not ASCII; check the variable it comes from"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        value = value.strip().rstrip("/")
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL such as https://acme.bamboohr.com")
        if value.endswith("/api") or value.endswith("/api/v1"):
            raise ValueError(
                "give the host only (https://acme.bamboohr.com) or the gateway form "
                "(https://api.bamboohr.com/api/gateway.php/acme); /api/v1 is added per request"
            )
        return value

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9_.]+", name):
                raise ValueError(f"not a BambooHR field alias or id: {name!r}")
        return value

    @model_validator(mode="after")
    def _scale(self) -> BambooHRConfig:
        if self.rating_scale_max <= self.rating_scale_min:
            raise ValueError("rating_scale_max must be greater than rating_scale_min")
        if self.retry_window < self.webhook_tolerance:
            raise ValueError("retry_window must not be shorter than webhook_tolerance")
        return self

    @property
    def api_root(self) -> str:
        """Where versioned paths (``v1/...``) start, for either base URL form."""
        base = self.base_url or f"https://{self.company_domain}.bamboohr.com"
        if _GATEWAY.search(base):
            return base.rstrip("/") + "/"
        return base.rstrip("/") + "/api/"
