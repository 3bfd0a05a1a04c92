"""What the server and the worker share: config, plugins, database and built connectors."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from coachbridge.config import Config
from coachbridge.connectors import Connector, ConnectorContext
from coachbridge.errors import NotFoundError
from coachbridge.plugins import Registry
from coachbridge.store import Database, resolve_database_url


@dataclass
class Runtime:
    """Satisfies ``coachbridge.automation.AutomationContext``; connectors are built once."""

    config: Config
    registry: Registry
    db: Database
    _connectors: dict[str, Connector] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def build(
        cls, config: Config, *, database: Database | None = None, registry: Registry | None = None
    ) -> Runtime:
        db = database or Database(resolve_database_url(None, config.database_url))
        return cls(config=config, registry=registry or Registry.build(), db=db)

    def database(self) -> Database:
        return self.db

    def connector(self, name: str) -> Connector:
        """The connector configured as ``[connectors.<name>]``; ``NotFoundError`` if none."""
        with self._lock:
            built = self._connectors.get(name)
            if built is not None:
                return built
            cfg = self.config.connector(name)
            connector_class = self.registry.connectors.get(cfg.plugin)
            if connector_class is None:
                raise NotFoundError(f"connector {name!r}: plugin {cfg.plugin!r} is not installed")
            built = connector_class(cfg, ConnectorContext(name=name, base_dir=self.config.base_dir))
            self._connectors[name] = built
            return built
