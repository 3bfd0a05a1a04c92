"""The pluggy markers of the ``coachbridge`` project.

Plugins mark their hook implementations with ``hookimpl`` (re-exported as
``coachbridge.hookimpl``); the specifications in ``coachbridge.hookspecs`` use ``hookspec``.
They live apart from the specifications so that a built-in plugin module can mark its
implementations without importing the manual, whose type hints name the whole core.
"""

from __future__ import annotations

import pluggy

__all__ = ["PROJECT", "hookimpl", "hookspec"]

PROJECT = "coachbridge"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
