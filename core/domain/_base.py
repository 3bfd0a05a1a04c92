from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict


class DomainModel(BaseModel):
    """Strict-ish base: unknown fields are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, str_strip_whitespace=True)


#: Years an HR date can plausibly fall in; outside them a value is a typo (0001, 9999), and
#: date arithmetic on it would overflow deep inside a run.
YEARS = range(1900, 2200)


def utc(dt: datetime) -> datetime:
    """Return ``dt`` as an aware UTC datetime; naive values are taken to be UTC already.

    ``ValueError`` for a moment outside ``YEARS``.
    """
    try:
        moment = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except OverflowError:
        moment = None
    if moment is None or moment.year not in YEARS:
        raise ValueError(f"{dt.isoformat()} is outside {YEARS.start}-{YEARS.stop - 1}")
    return moment
