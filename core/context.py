"""What a use case runs on: the configuration, the plugins' hooks and the store.

The CLI's ``App`` and the webhook worker's runtime both provide a ``Context``; every service
function takes one. It sits low in the layers (docs/architecture.md), so the plugins' registry
is described here by what the core asks of it (``Hooks``), not imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from coachbridge.config import Config
from coachbridge.domain import Pairing, ReviewEvent, Session
from coachbridge.store import Database
from coachbridge.store.tables import ProgramRow
from sqlalchemy.orm import Session as DbSession

__all__ = ["Context", "Hooks", "check_program"]


class Hooks(Protocol):
    """What the core asks of the installed plugins (``coachbridge.plugins.Registry``)."""

    @property
    def criteria(self) -> Mapping[str, Any]: ...

    @property
    def notifiers(self) -> Mapping[str, Any]: ...

    def pairing_created(self, pairing: Pairing) -> None: ...

    def session_scheduled(self, session: Session) -> None: ...

    def review_event(self, event: ReviewEvent, outcome: dict[str, Any]) -> None: ...


class Context(Protocol):
    """What a use case needs: the configuration, the plugins and the store."""

    @property
    def config(self) -> Config: ...

    @property
    def registry(self) -> Hooks: ...

    def database(self) -> Database: ...


def check_program(ctx: Context, s: DbSession, program_id: str) -> None:
    """``NotFoundError`` naming the known programs unless ``program_id`` is configured or
    stored (a program removed from the config still has its history)."""
    if program_id not in ctx.config.programs and s.get(ProgramRow, program_id) is None:
        ctx.config.program(program_id)  # raises NotFoundError naming the known programs
