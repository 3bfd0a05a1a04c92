"""What the server and the worker share: config, plugins, database and built connectors."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from coachbridge.config import Config
from coachbridge.connectors import Connector
from coachbridge.errors import NotFoundError
from coachbridge.plugins import Registry
from coachbridge.store import Database, resolve_database_url
from coachbridge.store.tokens import connector_context


@dataclass
class Runtime:
    """Satisfies ``coachbridge.programs.automation.Context``.

    Connectors are built afresh for every sync or processing run: some keep per-run state on
    themselves (BambooHR remembers the rows of the sync in progress), so one instance shared by
    request threads, the worker and scheduled syncs could see another run's state. Webhook
    intake is the exception (``intake_connector``): it only calls ``verify_webhook`` and
    ``parse_webhook``, which the connector contract keeps free of state.
    """

    config: Config
    registry: Registry
    db: Database
    _intake: dict[str, Connector] = field(default_factory=dict, repr=False)
    _intake_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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
        return connector_class(cfg, connector_context(self.config, name, self.database))

    def intake_connector(self, name: str) -> Connector:
        """The one instance that checks ``name``'s deliveries (built on first use, then shared).

        Built once because intake runs for every delivery while the sender waits; sharing is
        safe because ``verify_webhook`` and ``parse_webhook`` must not change the connector.
        """
        connector = self._intake.get(name)
        if connector is None:
            with self._intake_lock:
                connector = self._intake.get(name)
                if connector is None:
                    connector = self._intake[name] = self.connector(name)
        return connector
