"""Turning cell text into coachbridge values. Each parser raises ``ValueError`` with a short
reason; the connector adds file, line and column."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime

from coachbridge.domain import GoalStatus, PersonStatus

# HRIS status vocabularies, case-folded. People on leave are still employed: active.
ACTIVE_STATUSES = frozenset(
    {
        "active",
        "employed",
        "current",
        "on leave",
        "leave",
        "leave of absence",
        "loa",
        "parental leave",
        "maternity leave",
        "paternity leave",
        "sick leave",
        "sabbatical",
        "probation",
        "new hire",
        "rehired",
        "suspended",
        "a",
    }
)
INACTIVE_STATUSES = frozenset(
    {
        "inactive",
        "terminated",
        "termed",
        "former",
        "left",
        "leaver",
        "retired",
        "resigned",
        "dismissed",
        "deceased",
        "separated",
        "withdrawn",
        "ended",
        "i",
        "t",
    }
)
GOAL_STATUSES = {
    "open": GoalStatus.OPEN,
    "not started": GoalStatus.OPEN,
    "new": GoalStatus.OPEN,
    "in progress": GoalStatus.IN_PROGRESS,
    "in_progress": GoalStatus.IN_PROGRESS,
    "started": GoalStatus.IN_PROGRESS,
    "on track": GoalStatus.IN_PROGRESS,
    "at risk": GoalStatus.IN_PROGRESS,
    "behind": GoalStatus.IN_PROGRESS,
    "completed": GoalStatus.COMPLETED,
    "complete": GoalStatus.COMPLETED,
    "done": GoalStatus.COMPLETED,
    "achieved": GoalStatus.COMPLETED,
    "cancelled": GoalStatus.CANCELLED,
    "canceled": GoalStatus.CANCELLED,
    "dropped": GoalStatus.CANCELLED,
}
_LEVEL = re.compile(r"\d+")
_SPACES = re.compile(r"[\s_-]+")


def _key(text: str) -> str:
    return _SPACES.sub(" ", text.strip().casefold())


def parse_status(
    text: str, extra_active: Iterable[str] = (), extra_inactive: Iterable[str] = ()
) -> PersonStatus:
    """Map an HRIS status ("Active", "Terminated", "On leave", ...) onto active/inactive."""
    key = _key(text)
    if key in {_key(s) for s in extra_inactive} or key in INACTIVE_STATUSES:
        return PersonStatus.INACTIVE
    if key in {_key(s) for s in extra_active} or key in ACTIVE_STATUSES:
        return PersonStatus.ACTIVE
    raise ValueError(
        f"unknown status {text!r} (add it to active_statuses or inactive_statuses in the config)"
    )


def parse_level(text: str) -> int | None:
    """``"5"``, ``"L5"``, ``"5 Manager"``, ``"Level 5"``, ``"5.0"`` -> 5; empty -> None."""
    if not text:
        return None
    match = _LEVEL.search(text)
    if match is None:
        raise ValueError(f"no level number in {text!r} (expected e.g. 5, L5 or '5 Manager')")
    return int(match.group())


def parse_list(text: str, separators: str = ";|") -> list[str]:
    """Split a list cell on any of ``separators``; blanks and repeats are dropped, order kept."""
    if not text:
        return []
    pattern = "[" + re.escape(separators) + "]"
    out: list[str] = []
    for part in re.split(pattern, text):
        item = part.strip()
        if item and item not in out:
            out.append(item)
    return out


def parse_date(text: str, fmt: str | None = None) -> date | None:
    """ISO 8601 (``2024-01-31``, also with a time) or ``fmt``; empty -> None."""
    if not text:
        return None
    try:
        if fmt:
            return datetime.strptime(text, fmt).date()
        if len(text) > 10 and text[10] in "T ":
            return datetime.fromisoformat(text).date()
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"unparseable date {text!r} (expected {fmt or 'YYYY-MM-DD'})") from None


def parse_datetime(text: str, fmt: str | None = None) -> datetime | None:
    """An ISO 8601 moment, or a date (ISO or ``fmt``) meaning midnight UTC; no offset means UTC."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        if not fmt:
            raise ValueError(
                f"unparseable date {text!r} (expected ISO 8601, e.g. 2026-01-31)"
            ) from None
        try:
            value = datetime.strptime(text, fmt)
        except ValueError:
            raise ValueError(f"unparseable date {text!r} (expected {fmt})") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_number(text: str) -> float | None:
    """A number with a decimal point or comma (``4,5`` from European spreadsheets)."""
    if not text:
        return None
    try:
        value = float(text.replace(",", ".") if text.count(",") == 1 and "." not in text else text)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite number: {text!r}")
    return value


def parse_progress(text: str) -> float:
    """``50``, ``50%`` or ``0.5`` of a goal; 0..100."""
    if not text:
        return 0.0
    percent = text.endswith("%")
    value = parse_number(text.rstrip("%").strip())
    assert value is not None
    if not percent and 0 < value <= 1 and "." in text:
        value *= 100  # a fraction such as 0.5
    if not 0 <= value <= 100:
        raise ValueError(f"progress {text!r} is outside 0..100")
    return value


def parse_goal_status(text: str) -> GoalStatus:
    if not text:
        return GoalStatus.OPEN
    try:
        return GOAL_STATUSES[_key(text)]
    except KeyError:
        known = ", ".join(s.value for s in GoalStatus)
        raise ValueError(f"unknown goal status {text!r} (expected {known})") from None
