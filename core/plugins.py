"""The plugin manager and a typed facade over its hooks.

Plugins are loaded from the ``coachbridge`` entry-point group. ``COACHBRIDGE_PLUGINS=a,b``
restricts loading to the named entry points (tests use it to load exactly what they need) and
``COACHBRIDGE_DISABLE_PLUGINS=a,b`` blocks the named ones. The core's own notifiers and jobs
are plugins too (``BUILTIN_PLUGINS``), always loaded.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import pluggy
from coachbridge import hookspecs
from coachbridge.errors import ConfigError

if TYPE_CHECKING:
    import click
    from coachbridge.config import Config
    from coachbridge.connectors import Connector
    from coachbridge.matching.criteria import Criterion
    from coachbridge.notify.base import Notifier
    from coachbridge.schedules import Job

log = logging.getLogger(__name__)

#: Modules of the core that implement hooks, registered under their module name before the
#: entry points. Loaded by name, as entry points are: the registry depends on no feature.
BUILTIN_PLUGINS = ("coachbridge.notify.builtin", "coachbridge.jobs.builtin")


def _names(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def make_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for module in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module), name=module)
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


def _implementations(
    pm: pluggy.PluginManager, hook_name: str, *, registration_order: bool = False
) -> Iterator[tuple[str, Callable[..., Any], list[str]]]:
    """Each plugin's implementation of a hook, with the plugin's name and the arguments the
    implementation takes: in the order pluggy would call them (the last registered first), or
    in the order the plugins were registered (the core's first)."""
    impls = getattr(pm.hook, hook_name).get_hookimpls()
    for impl in impls if registration_order else reversed(impls):
        # Wrappers only make sense around a pluggy call; observers and registrations are plain.
        if impl.hookwrapper or impl.wrapper:
            continue
        yield impl.plugin_name, impl.function, list(impl.argnames)


def _call(function: Callable[..., Any], argnames: list[str], **kwargs: Any) -> Any:
    # Keyword arguments only, and only those the implementation asks for (a plugin may take
    # fewer than the spec lists), as pluggy calls them.
    return function(**{name: kwargs[name] for name in argnames})


@dataclass
class Registry:
    """What the installed plugins provide, collected once."""

    pm: pluggy.PluginManager
    connectors: dict[str, type[Connector]] = field(default_factory=dict)
    criteria: dict[str, Criterion] = field(default_factory=dict)
    notifiers: dict[str, type[Notifier]] = field(default_factory=dict)
    #: Commands plugins add to the CLI, by name; ``command_plugins`` names who added each.
    commands: dict[str, click.Command] = field(default_factory=dict)
    command_plugins: dict[str, str] = field(default_factory=dict)

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
        reg._collect_commands()
        return reg

    def _collect_commands(self) -> None:
        import click

        for plugin, function, argnames in _implementations(
            self.pm, "coachbridge_register_commands"
        ):

            def add_command(command: click.Command, plugin: str = plugin) -> None:
                if not isinstance(command, click.Command) or not command.name:
                    raise ConfigError(f"plugin {plugin!r} registers a command that is not one")
                owner = self.command_plugins.get(command.name)
                if owner is not None and self.commands[command.name] is not command:
                    raise ConfigError(
                        f"plugins {owner!r} and {plugin!r} both register the command "
                        f"{command.name!r}"
                    )
                self.commands[command.name] = command
                self.command_plugins[command.name] = plugin

            _call(function, argnames, register=add_command)

    def jobs(self, config: Config) -> list[Job]:
        """The scheduled jobs of every plugin for ``config``, in the order they were registered
        (the core's first)."""
        from coachbridge.schedules import Job

        found: dict[str, tuple[str, Job]] = {}
        hook = "coachbridge_register_jobs"
        for plugin, function, argnames in _implementations(self.pm, hook, registration_order=True):

            def add_job(job: Job, plugin: str = plugin) -> None:
                if not isinstance(job, Job):
                    raise ConfigError(f"plugin {plugin!r} registers a job that is not a Job")
                if job.name in found:
                    owner = found[job.name][0]
                    raise ConfigError(
                        f"plugins {owner!r} and {plugin!r} both register the job {job.name!r}"
                        if owner != plugin
                        else f"plugin {plugin!r} registers the job {job.name!r} twice"
                    )
                found[job.name] = (plugin, job)

            _call(function, argnames, register=add_job, config=config)
        return [job for _, job in found.values()]

    # Event hooks: observers only. Each implementation runs on its own, so one failing plugin
    # neither breaks the caller nor silences the plugins after it.
    def _observe(self, hook_name: str, **kwargs: Any) -> None:
        for plugin, function, argnames in _implementations(self.pm, hook_name):
            try:
                _call(function, argnames, **kwargs)
            except Exception:
                log.exception("plugin %r: observer %s failed; ignored", plugin, hook_name)

    def pairing_created(self, pairing: Any) -> None:
        self._observe("coachbridge_on_pairing_created", pairing=pairing)

    def session_scheduled(self, session: Any) -> None:
        self._observe("coachbridge_on_session_scheduled", session=session)

    def review_event(self, event: Any, outcome: dict[str, Any]) -> None:
        self._observe("coachbridge_on_review_event", event=event, outcome=outcome)
