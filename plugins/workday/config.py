"""The ``[connectors.<name>]`` section of a ``plugin = "workday"`` connector."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from coachbridge.connectors import ConnectorConfig, Duration
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

#: Versions Workday documents for each REST service; a 404 on one is retried on the other.
SERVICE_VERSIONS: dict[str, tuple[str, ...]] = {
    "staffing": ("v6", "v7"),
    "talentManagement": ("v2", "v1"),
}


class WorkdayColumns(BaseModel):
    """coachbridge field -> report column (the XML alias Workday shows in the report's JSON).

    A column may name a field inside a group column as ``Group/Field``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # people report
    id: str = "Employee_ID"
    wid: str = "Worker_WID"
    first_name: str = "First_Name"
    last_name: str = "Last_Name"
    preferred_name: str = "Preferred_Name"
    email: str = "Email_-_Work"
    job_title: str = "Business_Title"
    department: str = "Supervisory_Organization"
    division: str = "Division"
    location: str = "Location"
    timezone: str = "Time_Zone"
    manager_id: str = "Manager_ID"
    hire_date: str = "Hire_Date"
    termination_date: str = "Termination_Date"
    active: str = "Active"
    status: str = "Worker_Status"
    level: str = "Management_Level"
    skills: str = "Skills"
    interests: str = "Interests"
    languages: str = "Languages"
    # Completed trainings: a multi-valued column of the people report (each value a training
    # name, or a group instance with the training, its completion and expiry dates). None:
    # no trainings are read.
    trainings: str | None = None
    # reviews report
    employee_id: str = "Employee_ID"
    review_id: str = "Employee_Review_ID"
    cycle: str = "Review_Period"
    rating: str = "Overall_Rating"
    completed_at: str = "Completed_On"


#: Columns a people report must have; every other mapped column is optional.
REQUIRED_PEOPLE_COLUMNS = ("id",)
REQUIRED_REVIEW_COLUMNS = ("employee_id", "review_id", "rating", "completed_at")


class WorkdayConfig(ConnectorConfig):
    """Settings of one Workday tenant. Secrets are ``SecretStr``: never printed, never logged."""

    host: str | None = Field(default=None, description="e.g. wd5-impl-services1.workday.com")
    base_url: str | None = Field(default=None, description="default https://{host}")
    tenant: str = Field(min_length=1)

    client_id: str | None = None
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None

    people_source: Literal["raas", "rest"] = "raas"
    people_report: str | None = None
    reviews_report: str | None = None
    updated_since_prompt: str | None = None
    reviews_updated_since_prompt: str | None = None
    columns: WorkdayColumns = Field(default_factory=WorkdayColumns)
    inactive_statuses: list[str] = Field(
        default_factory=lambda: ["Terminated", "Inactive", "Retired", "Deceased"]
    )
    rating_scale_min: float = 1.0
    rating_scale_max: float = 5.0

    mentor_type: str | None = None
    close_reason: str | None = None
    mentorship_length: Duration = Field(
        default=timedelta(days=182),
        description="end date sent for a mentorship whose pairing has no end yet (start + this)",
    )
    worker_id_type: str = Field(
        default="Employee_ID", description="reference id type when no WID is known"
    )
    staffing_version: Literal["v6", "v7"] = "v6"
    talent_management_version: Literal["v1", "v2"] = "v2"

    webhook_username: str | None = None
    webhook_password: SecretStr | None = None

    report_timeout: Duration = Field(default=timedelta(minutes=15))
    max_retries: int = Field(default=5, ge=0, le=20)
    retry_backoff: float = Field(default=1.0, ge=0, le=60, description="first backoff, seconds")

    @field_validator("client_id", "client_secret", "refresh_token", "username", "password")
    @classmethod
    def _header_safe(cls, value: str | SecretStr | None) -> str | SecretStr | None:
        # Sent as HTTP Basic credentials or form fields: ASCII only (requests would fail deep
        # inside). The value itself is never part of the message.
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is not None and not text.isascii():
            raise ValueError(
                "holds a character that is not ASCII; check the variable it comes from"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("use https://host (or http:// for a local test server)")
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("credentials go only over https (http is for a local test server)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check(self) -> WorkdayConfig:
        if not self.host and not self.base_url:
            raise ValueError("set host (e.g. wd5-impl-services1.workday.com) or base_url")
        oauth = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
        }
        given = [k for k, v in oauth.items() if v]
        if given and len(given) < 3:
            missing = ", ".join(k for k in oauth if k not in given)
            raise ValueError(
                f"OAuth needs client_id, client_secret and refresh_token; missing {missing}"
            )
        if bool(self.username) != bool(self.password):
            raise ValueError("HTTP Basic needs both username and password")
        if not given and not self.username:
            raise ValueError(
                "no credentials: set client_id, client_secret and refresh_token (OAuth) "
                "or username and password (Integration System User)"
            )
        if self.people_source == "raas" and not self.people_report:
            raise ValueError('people_report is required when people_source = "raas"')
        if self.people_source == "rest" and not given:
            raise ValueError(
                'people_source = "rest" needs OAuth (client_id, client_secret, refresh_token)'
            )
        if bool(self.webhook_username) != bool(self.webhook_password):
            raise ValueError("webhooks need both webhook_username and webhook_password")
        if self.rating_scale_max <= self.rating_scale_min:
            raise ValueError("rating_scale_max must be above rating_scale_min")
        return self

    @property
    def root(self) -> str:
        return self.base_url or f"https://{self.host}"

    @property
    def uses_oauth(self) -> bool:
        return self.refresh_token is not None
