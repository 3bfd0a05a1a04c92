"""People: the HRIS is the source of truth; coachbridge keeps one row per human."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from enum import StrEnum

from coachbridge.domain._base import DomainModel
from pydantic import Field, field_validator


class PersonStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


class PersonRecord(DomainModel):
    """One person as a connector reads them from its HRIS, before identity resolution.

    ``external_id`` is the HRIS's own id; ``manager_external_id`` refers to another record of the
    same connector. ``source_line`` (when the source is a file) lets errors point at the line.
    """

    external_id: str = Field(min_length=1, max_length=200)
    first_name: str = Field(default="", max_length=200)
    last_name: str = Field(default="", max_length=200)
    preferred_name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    job_title: str | None = Field(default=None, max_length=300)
    department: str | None = Field(default=None, max_length=300)
    division: str | None = Field(default=None, max_length=300)
    location: str | None = Field(default=None, max_length=300)
    timezone: str | None = None
    manager_external_id: str | None = Field(default=None, max_length=200)
    hire_date: date | None = None
    status: PersonStatus = PersonStatus.ACTIVE
    hris_status: str | None = Field(default=None, max_length=100)
    termination_date: date | None = None
    level: int | None = Field(default=None, ge=-1000, le=1000)
    skills: list[str] = Field(default_factory=list)
    interests: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    # Fields a connector was asked to keep by name. None: the source returned the field empty,
    # so the stored value goes; a name left out is left as stored (another connector's, or
    # one the source could not see this time).
    extra: dict[str, str | None] = Field(default_factory=dict)
    source_line: int | None = Field(default=None, exclude=True)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if "@" not in value or value.startswith("@") or value.endswith("@"):
            raise ValueError(f"not an email address: {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if not value:
            return None
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("level")
    @classmethod
    def _level(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError("level must not be negative")
        return value

    @property
    def name(self) -> str:
        first = self.preferred_name or self.first_name
        return " ".join(part for part in (first, self.last_name) if part)


class Person(DomainModel):
    """A person as coachbridge knows them (the shape of ``coachbridge people --format json``)."""

    id: int
    name: str
    email: str | None = None
    job_title: str | None = None
    department: str | None = None
    division: str | None = None
    location: str | None = None
    timezone: str | None = None
    manager_id: int | None = None
    hire_date: date | None = None
    status: PersonStatus = PersonStatus.ACTIVE
    hris_status: str | None = None
    termination_date: date | None = None
    level: int | None = Field(default=None, ge=-1000, le=1000)
    skills: list[str] = Field(default_factory=list)
    interests: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    external_ids: dict[str, str] = Field(default_factory=dict)


def check_reporting_tree(
    managers: Mapping[str, str | None], known: Iterable[str] | None = None
) -> None:
    """Reject a reporting structure that is not a forest.

    ``managers`` maps each id to its manager's id (or None). Raises ``ValueError`` naming the
    first unknown manager or the ids of a reporting cycle, in a stable order.
    """
    ids = set(managers) if known is None else set(known) | set(managers)
    for pid in sorted(managers):
        manager = managers[pid]
        if manager is not None and manager not in ids:
            raise ValueError(f"{pid}: manager {manager!r} does not exist")
    state: dict[str, int] = {}  # 1 = on the current path, 2 = known acyclic
    for start in sorted(managers):
        path: list[str] = []
        node: str | None = start
        while node is not None and state.get(node) is None:
            state[node] = 1
            path.append(node)
            node = managers.get(node)
        if node is not None and state.get(node) == 1:
            cycle = path[path.index(node) :]
            raise ValueError("reporting cycle: " + " -> ".join([*cycle, node]))
        for visited in path:
            state[visited] = 2
