"""Registers the bamboohr connector (entry point group `coachbridge`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coachbridge import hookimpl
from coachbridge_bamboohr.connector import BambooHRConnector


@hookimpl
def coachbridge_register_connectors(register: Callable[[str, Any], None]) -> None:
    """BambooHR: people and ratings in, goals and held sessions out, signed webhooks."""
    register("bamboohr", BambooHRConnector)
