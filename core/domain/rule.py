"""Rules: declarative reactions to review events. Conditions are data, never ``eval``."""

from __future__ import annotations

import operator
import re
import string
from collections.abc import Callable, Mapping
from typing import Any, Literal

from coachbridge.domain._base import DomainModel
from coachbridge.domain.enrollment import Role, normalize_role
from coachbridge.domain.review import REVIEW_EVENT_TYPES
from pydantic import Field, field_validator, model_validator

Operator = Literal["==", "!=", "<", "<=", ">", ">=", "in", "not in"]

EVENT_FIELDS = frozenset(
    {"type", "cycle", "rating", "raw_rating", "scale_min", "scale_max", "completed_at", "source"}
)
PERSON_FIELDS = frozenset(
    {
        "id",
        "name",
        "email",
        "job_title",
        "department",
        "division",
        "location",
        "timezone",
        "level",
        "status",
        "hire_date",
    }
)

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
}


#: ``person.extra.<name>``: a field a connector keeps by name (BambooHR's ``extra_fields``).
_EXTRA = re.compile(r"^person\.extra\.[A-Za-z0-9_-]+$")


def _check_field(name: str) -> str:
    if name in EVENT_FIELDS:
        return name
    if name.startswith("person.") and name.removeprefix("person.") in PERSON_FIELDS:
        return name
    if _EXTRA.match(name):
        return name
    known = [*sorted(EVENT_FIELDS), *sorted(f"person.{f}" for f in PERSON_FIELDS)]
    known.append("person.extra.<name>")
    raise ValueError(f"unknown field {name!r}; known fields: {', '.join(known)}")


class Condition(DomainModel):
    field: str
    op: Operator
    value: Any

    @field_validator("field")
    @classmethod
    def _field(cls, value: str) -> str:
        return _check_field(value)

    @model_validator(mode="after")
    def _value(self) -> Condition:
        if self.op in ("in", "not in") and not isinstance(self.value, list):
            raise ValueError(f"operator {self.op!r} needs a list value")
        return self

    def holds(self, facts: Mapping[str, Any]) -> bool:
        """True when the condition holds; a missing fact or incomparable types never match."""
        actual = facts.get(self.field)
        if actual is None:
            return False
        try:
            return bool(_OPS[self.op](actual, self.value))
        except TypeError:
            return False


def placeholder_field(name: str) -> str:
    """The field a text placeholder names: ``{person_department}`` is ``person.department``,
    ``{person_extra_costCenter}`` is ``person.extra.costCenter``."""
    if name.startswith("person_extra_"):
        return "person.extra." + name.removeprefix("person_extra_")
    return name.replace("person_", "person.", 1) if name.startswith("person_") else name


def template_fields(text: str) -> list[str]:
    """The ``{placeholder}`` names used in a text, so that unknown ones fail at load time."""
    return [name for _, name, _, _ in string.Formatter().parse(text) if name]


class RuleAction(DomainModel):
    enroll: str
    role: Role = Role.LEARNER
    goal: str | None = None
    sessions: int | None = Field(default=None, ge=0)
    notify: bool = True

    @field_validator("role", mode="before")
    @classmethod
    def _role(cls, value: object) -> object:
        return normalize_role(value) if isinstance(value, str) else value

    @field_validator("goal")
    @classmethod
    def _goal(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parts = [p for p in string.Formatter().parse(value) if p[1] is not None]
            except ValueError as exc:
                raise ValueError(f"goal text is not a valid template: {exc}") from None
            for _, name, spec, conversion in parts:
                if not name or spec or conversion:
                    shown = "{" + (name or "") + (f"!{conversion}" if conversion else "")
                    shown += (f":{spec}" if spec else "") + "}"
                    raise ValueError(
                        f"goal text: {shown}: placeholders are plain names such as {{cycle}}"
                    )
                _check_field(placeholder_field(name))
        return value


class Rule(DomainModel):
    on: str
    when: list[Condition] = Field(default_factory=list)
    then: RuleAction
    cooldown_days: int | None = Field(default=None, ge=0)
    name: str | None = None

    @field_validator("on")
    @classmethod
    def _on(cls, value: str) -> str:
        if value not in REVIEW_EVENT_TYPES:
            raise ValueError(
                f"unknown event type {value!r}; known: {', '.join(REVIEW_EVENT_TYPES)}"
            )
        return value

    def matches(self, facts: Mapping[str, Any]) -> bool:
        return facts.get("type") == self.on and all(c.holds(facts) for c in self.when)
