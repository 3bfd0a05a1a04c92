"""When a pairing's term is over."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from coachbridge.domain import Program
from coachbridge.store.tables import PairingRow


def term_end(program: Program, pairing: PairingRow) -> datetime:
    """When ``pairing``'s term is over: a fixed-term program's pairings end with the program
    (00:00 UTC on its ``end`` day, else on ``start`` plus ``duration_weeks``); a rolling
    program's pairing ends ``duration_weeks`` after it began (a pairing not yet stored: now)."""
    term = timedelta(weeks=program.duration_weeks)
    if program.start is not None:
        last = program.end or program.start + term
        return datetime.combine(last, time.min, tzinfo=UTC)
    began = pairing.activated_at or pairing.created_at or datetime.now(UTC)
    return began + term
