"""Registers the workday connector (entry point group `coachbridge`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coachbridge import hookimpl


@hookimpl
def coachbridge_register_connectors(register: Callable[[str, Any], None]) -> None:
    """The Workday connector: RaaS or staffing REST people, reviews, write-back, webhooks."""
    from coachbridge_workday.connector import WorkdayConnector

    register("workday", WorkdayConnector)
