"""The webhook server as a coachbridge plugin: ``serve``, ``worker`` and ``events``.

Published as the ``webhooks`` entry point (``COACHBRIDGE_DISABLE_PLUGINS=webhooks`` leaves it
out). The ``generic`` connector is a separate entry point. The worker's scheduler runs the
jobs every plugin registers (``coachbridge_register_jobs``); the core registers the connector
syncs and the daily run, so this plugin registers no job of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coachbridge import hookimpl


@hookimpl
def coachbridge_register_commands(register: Callable[[Any], None]) -> None:
    # Imported when the hook runs, so that loading the plugin (e.g. to list connectors) stays
    # light; the commands import the server itself when they run.
    from coachbridge_webhooks.commands import events, serve, worker

    register(serve)
    register(worker)
    register(events)
