from __future__ import annotations

import re
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


#: Unicode's control characters (category Cc) but tab and line feed.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain_text(text: str) -> str:
    """``text`` as a person typed it: new lines as ``\n`` (browsers send CR LF), and
    ``ValueError`` for any other control character (a NUL byte cannot even be stored in
    PostgreSQL, and no one types one)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    found = _CONTROL.search(text)
    if found is not None:
        raise ValueError(f"contains a control character (U+{ord(found.group()):04X})")
    return text
