"""Programs: coaching (short, goal-focused) and mentoring (long, relationship-focused) and kin."""

from __future__ import annotations

import math
from datetime import date
from enum import StrEnum

from coachbridge.domain._base import YEARS, DomainModel
from coachbridge.domain.profile import Intake
from pydantic import Field, StrictBool, StrictInt, ValidationInfo, field_validator, model_validator

DEFAULT_CIRCLE_SIZE = (3, 6)


class ProgramKind(StrEnum):
    COACHING = "coaching"
    MENTORING = "mentoring"
    PEER = "peer"
    REVERSE = "reverse"
    GROUP = "group"
    MANAGER = "manager"


_PEER_POOL = "use [programs.participants] (everyone is both learner and guide)"
_MANAGER = "each learner's guide is their current manager from the HRIS: no matching"

#: Keys that only some kinds take: a program of another kind that sets one is refused, naming it.
KIND_ONLY_KEYS: dict[str, frozenset[ProgramKind]] = {
    "max_reports": frozenset({ProgramKind.MANAGER}),
    "participants": frozenset({ProgramKind.PEER}),
    "circle_size": frozenset({ProgramKind.GROUP}),
}
#: Keys a kind does not take, each with the reason given in the error.
KIND_EXCLUDED_KEYS: dict[ProgramKind, dict[str, str]] = {
    ProgramKind.MANAGER: dict.fromkeys(
        ("guides", "capacity", "min_score", "top_k", "certify", "weights", "limits", "choice"),
        _MANAGER,
    ),
    ProgramKind.PEER: {
        "learners": _PEER_POOL,
        "guides": _PEER_POOL,
        "capacity": "each participant is in at most one pair",
        "limits": "",
        "certify": "a peer match is exact over its candidate pairs; set top_k for their number",
    },
}
_KIND_CHECKED = tuple(
    dict.fromkeys([*KIND_ONLY_KEYS, *(k for keys in KIND_EXCLUDED_KEYS.values() for k in keys)])
)


class Eligibility(DomainModel):
    """Who is enrolled automatically in one role. Every given filter must hold."""

    level: tuple[int, int] | None = None
    departments: list[str] | None = None
    divisions: list[str] | None = None
    locations: list[str] | None = None
    status: list[str] = Field(default_factory=lambda: ["active"])
    min_tenure_days: StrictInt | None = Field(default=None, ge=0)
    max_tenure_days: StrictInt | None = Field(default=None, ge=0)
    # Guides only (docs/programs.md, "Trained guides"): a training the HRIS records, counted
    # while unexpired and, with training_valid_days, completed within that many days.
    trained_in: list[str] | None = None
    training_valid_days: StrictInt | None = Field(default=None, ge=1)
    # Guides only: the average session rating a guide received, once at least min_ratings.
    min_guide_rating: float | None = Field(default=None, ge=1.0, le=5.0)
    min_ratings: StrictInt = Field(default=5, ge=1)

    @field_validator("trained_in")
    @classmethod
    def _trained_in(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value or any(not name.strip() for name in value):
                raise ValueError("give at least one training name, none of them empty")
            value = [name.strip() for name in value]
        return value

    @property
    def guide_only_keys(self) -> list[str]:
        """The guide-only keys this filter sets (an error under [programs.learners])."""
        keys = ("trained_in", "training_valid_days", "min_guide_rating", "min_ratings")
        return [key for key in keys if key in self.model_fields_set]

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, value: object) -> object:
        if isinstance(value, int):
            return (value, value)
        return value

    @model_validator(mode="after")
    def _ranges(self) -> Eligibility:
        if self.level is not None and self.level[0] > self.level[1]:
            raise ValueError(
                f"level range {list(self.level)} is empty: the low end is above the high end"
            )
        if (
            self.min_tenure_days is not None
            and self.max_tenure_days is not None
            and self.min_tenure_days > self.max_tenure_days
        ):
            raise ValueError("min_tenure_days is above max_tenure_days")
        if self.training_valid_days is not None and self.trained_in is None:
            raise ValueError("training_valid_days needs trained_in (the trainings it applies to)")
        return self


class Choice(StrEnum):
    """Who must agree before a pairing starts (``choice`` of a program)."""

    NONE = "none"  # the optimum is paired at once (the default)
    LEARNER_PICKS = "learner_picks"  # the learner picks among offers (the optimum held)
    GUIDE_ACCEPTS = "guide_accepts"  # the guide accepts or declines a request
    BOTH = "both"  # the learner picks, then the guide accepts


def _group_defaults(data: dict[str, object]) -> None:
    """A group program's guide capacity is its circle's maximum (``circle_size`` default 3-6)."""
    size = data.get("circle_size")
    if size is None:
        size = data["circle_size"] = DEFAULT_CIRCLE_SIZE
    if isinstance(size, list | tuple) and len(size) == 2 and isinstance(size[1], int):
        # A dump of the model (capacity already the maximum) validates again unchanged.
        if "capacity" in data and data["capacity"] != size[1]:
            raise ValueError(
                "capacity: does not apply to a group program; a guide's capacity is the "
                "maximum of circle_size"
            )
        data["capacity"] = size[1]


class Limits(DomainModel):
    per_guide_per_department: StrictInt | None = Field(default=None, ge=1)


class Program(DomainModel):
    """A program as configured in ``[[programs]]``.

    Without ``start`` the program is rolling: each pairing's sessions start from the day it is made.
    """

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    name: str = ""
    kind: ProgramKind
    objective: str = ""
    owner: str | None = None
    start: date | None = None
    end: date | None = None
    duration_weeks: StrictInt = Field(default=12, ge=1, le=520)
    cadence_days: StrictInt = Field(default=14, ge=1, le=365)
    session_minutes: StrictInt = Field(default=45, ge=5, le=480)
    capacity: StrictInt = Field(default=3, ge=0, le=1000)
    # Group programs: each guide meets [min, max] learners together; max is the guide's capacity.
    circle_size: tuple[int, int] | None = None
    # Scores are weighted sums of criteria in 0..1: a NaN or a negative floor is a typo.
    min_score: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    top_k: StrictInt = Field(default=50, ge=1)
    # Prove the match optimal over every allowed pair (pricing with the solve's duals); false
    # keeps the optimum within each learner's top_k best guides (faster at company scale).
    certify: StrictBool = True
    # The webhook worker gathers review events for up to this many seconds (from the oldest
    # waiting delivery) or this many events, and matches their learners in one solve.
    burst_window_seconds: float = Field(default=2.0, gt=0, allow_inf_nan=False)
    burst_max: StrictInt = Field(default=1000, ge=1)
    holidays: str | None = None
    working_hours: tuple[int, int] = (9, 17)
    learners: Eligibility | None = None
    guides: Eligibility | None = None
    # A peer program's one pool: everyone admitted is both learner and guide.
    participants: Eligibility | None = None
    weights: dict[str, float] = Field(
        default_factory=lambda: {"skills": 0.4, "seniority": 0.2, "timezone": 0.2, "language": 0.2}
    )
    limits: Limits = Field(default_factory=Limits)
    # The participants' own answers (docs/participants.md): what is asked, and whether a shared
    # language or an overlapping free slot is a hard constraint rather than a criterion.
    intake: Intake | None = None
    require_common_language: StrictBool = False
    require_availability_overlap: StrictBool = False
    # Mutual choice before a pairing starts (coachbridge.matching.offers).
    choice: Choice = Choice.NONE
    offer_alternatives: StrictInt = Field(default=2, ge=0, le=10)
    respond_within_days: StrictInt = Field(default=5, ge=1, le=90)
    max_requests: StrictInt = Field(default=3, ge=1, le=50)
    settings: dict[str, int | float | str | bool] = Field(default_factory=dict)
    # Manager coaching: a manager with more reports in the program is warned about, not refused.
    max_reports: StrictInt | None = Field(default=None, ge=1, le=10_000)

    @field_validator("holidays")
    @classmethod
    def _known_calendar(cls, code: str | None) -> str | None:
        """A calendar the ``holidays`` library has (refused at load, not at the first
        scheduling run after pairings were already stored)."""
        if not code:
            return code
        import holidays as holidays_lib  # its data loads on first use

        country, _, subdiv = code.strip().partition("-")
        try:
            holidays_lib.country_holidays(country.upper(), subdiv=subdiv.upper() or None)
        except NotImplementedError as exc:
            raise ValueError(
                f"unknown holiday calendar {code!r} ({exc}); use a country code such as "
                '"DE" or a country and subdivision such as "US-CA"'
            ) from None
        return code

    @field_validator(*_KIND_CHECKED)
    @classmethod
    def _applies_to_kind(cls, value: object, info: ValidationInfo) -> object:
        """A key the program's kind does not take is an error naming the key. A value equal to
        the default fits every kind, so that a program dumped and validated again still loads."""
        kind = info.data.get("kind")
        name = info.field_name or ""
        if kind is None or value == cls.model_fields[name].get_default(call_default_factory=True):
            return value
        only = KIND_ONLY_KEYS.get(name)
        if only is not None and kind not in only:
            kinds = " or ".join(f'"{k.value}"' for k in sorted(only))
            raise ValueError(f"applies only to kind = {kinds}, not to a {kind.value} program")
        excluded = KIND_EXCLUDED_KEYS.get(kind, {})
        if name in excluded:
            why = excluded[name]
            raise ValueError(f"does not apply to a {kind.value} program{': ' + why if why else ''}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: object) -> object:
        if isinstance(data, dict):
            data = dict(data)
            if not data.get("name") and data.get("id"):
                data["name"] = data["id"]
            start, end = data.get("start"), data.get("end")
            if isinstance(start, date) and isinstance(end, date) and "duration_weeks" not in data:
                data["duration_weeks"] = max(1, ((end - start).days + 6) // 7)
            if data.get("kind") == ProgramKind.GROUP.value:
                _group_defaults(data)
        return data

    def eligibility(self, role: str) -> Eligibility | None:
        """Who is enrolled automatically as ``role`` (``learner``/``guide``).

        A peer program admits its ``participants`` in both roles.
        """
        if self.kind == ProgramKind.PEER:
            return self.participants
        return self.learners if role == "learner" else self.guides

    @field_validator("circle_size")
    @classmethod
    def _circle_size(cls, value: tuple[int, int] | None, info: ValidationInfo) -> object:
        if value is not None and value[0] < 2:
            raise ValueError(f"{list(value)}: a circle needs at least 2 learners (min >= 2)")
        if value is not None and value[0] > value[1]:
            raise ValueError(f"{list(value)}: the minimum is above the maximum")
        return value

    @model_validator(mode="after")
    def _dates(self) -> Program:
        if self.learners is not None and self.learners.guide_only_keys:
            key = self.learners.guide_only_keys[0]
            raise ValueError(f"learners.{key} applies to guides only: move it to [programs.guides]")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        for name, day in (("start", self.start), ("end", self.end)):
            if day is not None and day.year not in YEARS:
                raise ValueError(f"{name} {day} is outside {YEARS.start}-{YEARS.stop - 1}")
        lo, hi = self.working_hours
        if not (0 <= lo < hi <= 24):
            raise ValueError(
                "working_hours must be [start_hour, end_hour] with 0 <= start < end <= 24"
            )
        for key, weight in self.weights.items():
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"weights.{key} must be a number, not negative")
        return self

    @property
    def sessions_planned(self) -> int:
        """How many sessions a pairing gets: ``duration_weeks * 7 // cadence_days``."""
        return self.duration_weeks * 7 // self.cadence_days
