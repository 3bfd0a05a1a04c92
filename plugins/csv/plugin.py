"""Registers the csv connector (entry point group `coachbridge`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coachbridge import hookimpl
from coachbridge_csv.connector import CsvConnector


@hookimpl
def coachbridge_register_connectors(register: Callable[[str, Any], None]) -> None:
    """The built-in ``csv`` connector: people, reviews and goals from exported files."""
    register("csv", CsvConnector)
