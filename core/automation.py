"""Review events through the rules: enroll, match, schedule, create a goal, notify.

Filled in by the webhook-server work (issue 7); until then events stay ``pending``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def process_review_events(app: Any, event_ids: Sequence[int]) -> None:
    """Apply the configured rules to the stored review events ``event_ids`` (idempotent)."""
    del app, event_ids
