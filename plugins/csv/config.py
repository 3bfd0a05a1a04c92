"""The ``[connectors.<name>]`` settings of a CSV connector."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from coachbridge.connectors import PERSON_COLUMNS, ConnectorConfig
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# coachbridge field -> default header, in the order the docs list them.
PEOPLE_FIELDS: tuple[str, ...] = PERSON_COLUMNS
PEOPLE_REQUIRED: tuple[str, ...] = ("id", "first_name", "last_name")
REVIEW_FIELDS: tuple[str, ...] = (
    "employee_id",
    "cycle",
    "rating",
    "rating_scale_max",
    "completed_at",
)
REVIEW_REQUIRED: tuple[str, ...] = ("employee_id", "cycle", "rating")
GOAL_FIELDS: tuple[str, ...] = ("id", "employee_id", "title", "due_date", "progress", "status")
GOAL_REQUIRED: tuple[str, ...] = ("employee_id", "title")
TRAINING_FIELDS: tuple[str, ...] = ("employee_id", "training", "completed_at", "expires_at")
TRAINING_REQUIRED: tuple[str, ...] = ("employee_id", "training", "completed_at")

STREAM_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "people": (PEOPLE_FIELDS, PEOPLE_REQUIRED),
    "reviews": (REVIEW_FIELDS, REVIEW_REQUIRED),
    "goals": (GOAL_FIELDS, GOAL_REQUIRED),
    "trainings": (TRAINING_FIELDS, TRAINING_REQUIRED),
}

Delimiter = Literal["auto", ",", ";", "\t", "|", "tab"]
Encoding = Literal["auto", "utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16"]


class _Columns(BaseModel):
    """Maps coachbridge field names to the file's own headers; unlisted fields keep theirs."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _columns_model(fields: tuple[str, ...], name: str) -> type[_Columns]:
    from pydantic import create_model

    definitions: dict[str, object] = {f: (str | None, None) for f in fields}
    return create_model(name, __base__=_Columns, **definitions)  # type: ignore[call-overload, no-any-return]


PeopleColumns = _columns_model(PEOPLE_FIELDS, "PeopleColumns")
ReviewColumns = _columns_model(REVIEW_FIELDS, "ReviewColumns")
GoalColumns = _columns_model(GOAL_FIELDS, "GoalColumns")
TrainingColumns = _columns_model(TRAINING_FIELDS, "TrainingColumns")


class CsvConfig(ConnectorConfig):
    """``people`` is required; ``reviews``, ``goals`` and ``trainings`` are optional. Paths are
    relative to the config file's folder."""

    people: Path
    reviews: Path | None = None
    goals: Path | None = None
    trainings: Path | None = None
    delimiter: Delimiter = "auto"
    encoding: Encoding = "auto"
    date_format: str | None = Field(
        default=None,
        description="strptime format of dates such as '%d/%m/%Y' (default: ISO 8601, YYYY-MM-DD)",
    )
    list_separators: str = Field(
        default=";|", min_length=1, description="characters that separate items of list fields"
    )
    rating_scale_min: float = 1.0
    rating_scale_max: float = 5.0
    active_statuses: list[str] = Field(
        default_factory=list, description="extra HRIS status values that mean active"
    )
    inactive_statuses: list[str] = Field(
        default_factory=list, description="extra HRIS status values that mean inactive"
    )
    columns: PeopleColumns = Field(default_factory=PeopleColumns)  # type: ignore[valid-type]
    review_columns: ReviewColumns = Field(default_factory=ReviewColumns)  # type: ignore[valid-type]
    goal_columns: GoalColumns = Field(default_factory=GoalColumns)  # type: ignore[valid-type]
    training_columns: TrainingColumns = Field(default_factory=TrainingColumns)  # type: ignore[valid-type]

    @field_validator("delimiter")
    @classmethod
    def _tab(cls, value: str) -> str:
        return "\t" if value == "tab" else value

    @field_validator("date_format")
    @classmethod
    def _date_format(cls, value: str | None) -> str | None:
        if value is not None and "%" not in value:
            raise ValueError("use strptime codes, e.g. '%d/%m/%Y'")
        return value

    @model_validator(mode="after")
    def _scale(self) -> CsvConfig:
        if self.rating_scale_max <= self.rating_scale_min:
            raise ValueError("rating_scale_max must be greater than rating_scale_min")
        return self

    def headers(self, stream: str) -> dict[str, str]:
        """Field -> header the file uses for ``stream`` (people, reviews, goals or trainings)."""
        mapping = {
            "people": self.columns,
            "reviews": self.review_columns,
            "goals": self.goal_columns,
            "trainings": self.training_columns,
        }
        fields, _ = STREAM_FIELDS[stream]
        given = mapping[stream].model_dump()
        return {f: (given.get(f) or f) for f in fields}

    def mapped_explicitly(self, stream: str) -> set[str]:
        """Fields the config maps by hand: their header must be in the file."""
        mapping = {
            "people": self.columns,
            "reviews": self.review_columns,
            "goals": self.goal_columns,
            "trainings": self.training_columns,
        }
        return {f for f, v in mapping[stream].model_dump().items() if v}
