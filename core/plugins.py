"""The plugin manager and a typed facade over its hooks.

Plugins are loaded from the ``coachbridge`` entry-point group. ``COACHBRIDGE_PLUGINS=a,b``
restricts loading to the named entry points (tests use it to load exactly what they need) and
``COACHBRIDGE_DISABLE_PLUGINS=a,b`` blocks the named ones.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import pluggy
from coachbridge import hookspecs
from coachbridge.errors import ConfigError

if TYPE_CHECKING:
    from coachbridge.connectors import Connector
    from coachbridge.matching.criteria import Criterion
    from coachbridge.notify.base import Notifier

log = logging.getLogger(__name__)


def _names(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def make_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    from coachbridge.notify import builtin as builtin_notifiers

    pm.register(builtin_notifiers, name="coachbridge.notify.builtin")
    if load_entry_points:
        only = _names("COACHBRIDGE_PLUGINS")
        blocked = _names("COACHBRIDGE_DISABLE_PLUGINS") or set()
        for ep in entry_points(group=hookspecs.PROJECT):
            if (only is not None and ep.name not in only) or ep.name in blocked:
                continue
            if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken third-party plugin must not take the CLI down
                raise ConfigError(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
            pm.register(plugin, name=ep.name)
    pm.check_pending()
    return pm


@dataclass
class Registry:
    """What the installed plugins provide, collected once."""

    pm: pluggy.PluginManager
    connectors: dict[str, type[Connector]] = field(default_factory=dict)
    criteria: dict[str, Criterion] = field(default_factory=dict)
    notifiers: dict[str, type[Notifier]] = field(default_factory=dict)

    @classmethod
    def build(cls, pm: pluggy.PluginManager | None = None) -> Registry:
        pm = pm or make_plugin_manager()
        reg = cls(pm=pm)
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise ConfigError(f"plugin {exc.plugin!r}: {exc}") from exc

        def add_connector(name: str, connector_class: type[Connector]) -> None:
            if name in reg.connectors and reg.connectors[name] is not connector_class:
                raise ConfigError(f"two plugins register the connector {name!r}")
            reg.connectors[name] = connector_class

        def add_criterion(criterion: Criterion) -> None:
            from coachbridge.matching.criteria import BUILTIN_CRITERIA

            if criterion.name in BUILTIN_CRITERIA or criterion.name in reg.criteria:
                raise ConfigError(f"matching criterion {criterion.name!r} is registered twice")
            problem = criterion.problem()
            if problem is not None:
                raise ConfigError(f"matching criterion {criterion.name!r}: {problem}")
            reg.criteria[criterion.name] = criterion

        def add_notifier(name: str, notifier_class: type[Notifier]) -> None:
            if name in reg.notifiers and reg.notifiers[name] is not notifier_class:
                raise ConfigError(f"two plugins register the notifier {name!r}")
            reg.notifiers[name] = notifier_class

        pm.hook.coachbridge_register_connectors(register=add_connector)
        pm.hook.coachbridge_register_score_criteria(register=add_criterion)
        pm.hook.coachbridge_register_notifiers(register=add_notifier)
        return reg

    # Event hooks: observers only, so one failing plugin never breaks the caller.
    def _observe(self, hook_name: str, **kwargs: Any) -> None:
        try:
            getattr(self.pm.hook, hook_name)(**kwargs)
        except Exception:
            log.exception("plugin observer %s failed; ignored", hook_name)

    def pairing_created(self, pairing: Any) -> None:
        self._observe("coachbridge_on_pairing_created", pairing=pairing)

    def session_scheduled(self, session: Any) -> None:
        self._observe("coachbridge_on_session_scheduled", session=session)

    def review_event(self, event: Any, outcome: dict[str, Any]) -> None:
        self._observe("coachbridge_on_review_event", event=event, outcome=outcome)
