"""Waiting, in a benchmark, until a count in the store reaches zero (or a time-out)."""

from __future__ import annotations

import time

from sqlalchemy import create_engine, text


def wait_for_zero(
    url: str, count_sql: str, timeout: float, *, poll: float = 0.2, began: float | None = None
) -> tuple[int, float]:
    """Poll ``count_sql`` (a ``SELECT count(*) ...``) until it is 0 or ``timeout`` seconds have
    passed since ``began`` (default: now); returns what was left and the seconds since ``began``."""
    engine = create_engine(url)
    began = time.monotonic() if began is None else began
    try:
        while True:
            with engine.connect() as conn:
                left = int(conn.execute(text(count_sql)).scalar_one())
            if left == 0 or time.monotonic() - began > timeout:
                return left, time.monotonic() - began
            time.sleep(poll)
    finally:
        engine.dispose()
