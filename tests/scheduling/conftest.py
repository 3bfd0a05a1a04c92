"""Fixtures of the scheduling tests."""

from __future__ import annotations

import pytest
from coachbridge.store import Database

from .scheduling_factories import Factory


@pytest.fixture
def factory(db: Database) -> Factory:
    return Factory(db)
