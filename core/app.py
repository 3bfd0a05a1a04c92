"""The application context: configuration, plugins and database, loaded once and lazily.

The CLI, the webhook server, the worker and the demo all run on one ``App``. The use cases
(services) under the CLI take a ``Context``: the ``App`` is one, the worker's runtime another."""

from __future__ import annotations

from dataclasses import dataclass, field

from coachbridge.config import Config, find_config_path, load_config
from coachbridge.connectors import Connector
from coachbridge.errors import NotFoundError, UserError
from coachbridge.plugins import Registry
from coachbridge.store import Database, resolve_database_url
from coachbridge.store.tokens import connector_context


@dataclass
class App:
    """Lazily built: ``--help`` needs none of it, every real command validates the whole config."""

    config_option: str | None = None
    db_option: str | None = None
    _registry: Registry | None = field(default=None, repr=False)
    _config: Config | None = field(default=None, repr=False)
    _db: Database | None = field(default=None, repr=False)

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry.build()
        return self._registry

    @property
    def config(self) -> Config:
        if self._config is None:
            if self.config_option is not None and not self.config_option.strip():
                raise UserError("--config: give a file (or leave the option out)")
            models = {name: cls.config_model for name, cls in self.registry.connectors.items()}
            config = load_config(find_config_path(self.config_option), models)
            # [notify.*] sections belong to notifier plugins: validate them with the rest.
            from coachbridge.notify.dispatch import build_notifiers

            build_notifiers(config.notify, self.registry.notifiers, config.label)
            self._config = config
        return self._config

    @property
    def database_url(self) -> str:
        if self.db_option is not None and not self.db_option.strip():
            raise UserError("--db: give a database URL or file (or leave the option out)")
        return resolve_database_url(self.db_option, self.config.database_url)

    def database(self, *, check: bool = True) -> Database:
        """The store; by default checked to be at the latest schema (a new one is created)."""
        if self._db is None:
            self._db = Database(self.database_url)
            if check:
                self._db.ensure_current()
        return self._db

    def connector(self, name: str) -> Connector:
        cfg = self.config.connector(name)
        cls = self.registry.connectors.get(cfg.plugin)
        if cls is None:  # validated at load time, so only a plugin removed since
            raise NotFoundError(f"connector {name!r}: plugin {cfg.plugin!r} is not installed")
        return cls(cfg, connector_context(self.config, name, self.database))

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()
