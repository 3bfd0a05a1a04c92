"""What the server and the worker share: config, plugins, database and built connectors."""

from __future__ import annotations

from dataclasses import dataclass

from coachbridge.config import Config
from coachbridge.connectors import Connector, ConnectorContext
from coachbridge.errors import NotFoundError
from coachbridge.plugins import Registry
from coachbridge.store import Database, resolve_database_url


@dataclass
class Runtime:
    """Satisfies ``coachbridge.automation.AutomationContext``.

    Connectors are built afresh for every use: they are cheap, and some keep per-run state on
    themselves (BambooHR remembers the rows of the sync in progress), so one instance shared by
    request threads, the worker and scheduled syncs could see another run's state.
    """

    config: Config
    registry: Registry
    db: Database

    @classmethod
    def build(
        cls, config: Config, *, database: Database | None = None, registry: Registry | None = None
    ) -> Runtime:
        db = database or Database(resolve_database_url(None, config.database_url))
        return cls(config=config, registry=registry or Registry.build(), db=db)

    def database(self) -> Database:
        return self.db

    def connector(self, name: str) -> Connector:
        """A new connector configured as ``[connectors.<name>]``; ``NotFoundError`` if none."""
        cfg = self.config.connector(name)
        connector_class = self.registry.connectors.get(cfg.plugin)
        if connector_class is None:
            raise NotFoundError(f"connector {name!r}: plugin {cfg.plugin!r} is not installed")
        return connector_class(cfg, ConnectorContext(name=name, base_dir=self.config.base_dir))
