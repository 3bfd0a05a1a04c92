"""Hook specifications: the plugin author's manual.

A coachbridge plugin is a module (or object) with functions marked ``@coachbridge.hookimpl``,
published under the entry-point group ``coachbridge`` in its ``pyproject.toml``::

    [project.entry-points.coachbridge]
    hibob = "coachbridge_hibob.plugin"

and in ``coachbridge_hibob/plugin.py``::

    from coachbridge import hookimpl
    from coachbridge.connectors import Connector

    class HiBobConnector(Connector):
        ...

    @hookimpl
    def coachbridge_register_connectors(register):
        register("hibob", HiBobConnector)

Every hook is named ``coachbridge_*`` and called with keyword arguments only, so a hook
implementation may accept fewer arguments than its specification lists. The built-in CSV,
BambooHR, Workday and generic connectors are registered through this same entry-point group.
A hook implementation whose name matches no specification below is rejected at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

PROJECT = "coachbridge"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

if TYPE_CHECKING:
    from coachbridge.connectors import Connector
    from coachbridge.domain import Pairing, ReviewEvent, Session
    from coachbridge.matching.criteria import Criterion
    from coachbridge.notify.base import Notifier


@hookspec
def coachbridge_register_connectors(register: Callable[[str, type[Connector]], None]) -> None:
    """Register connector classes by plugin name.

    Call ``register(name, ConnectorClass)`` once per connector your plugin provides. ``name`` is
    what users write as ``plugin = "<name>"`` in a ``[connectors.<table>]`` section; it must be
    unique across all installed plugins (a clash is a start-up error naming both).
    ``ConnectorClass`` subclasses :class:`coachbridge.connectors.Connector` and declares its
    pydantic ``config_model`` (a subclass of ``ConnectorConfig``); coachbridge validates the
    user's section with it and reports errors as ``connectors.<table>.<field>: <problem>``.

    :param register: callback ``register(name: str, connector_class: type[Connector])``.
    """


@hookspec
def coachbridge_register_score_criteria(register: Callable[[Criterion], None]) -> None:
    """Register extra matching criteria.

    Call ``register(Criterion(name=..., score=fn, description=...))``. ``fn(learner, guide)``
    receives two :class:`coachbridge.matching.criteria.Profile` objects and returns a number in
    0..1 (higher is a better fit). That per-pair form is plain Python once per pair; at company
    scale give the vectorised form instead (or as well):
    ``Criterion(name=..., features=f, score_block=b)``, where ``f(profiles)`` returns a numpy
    array with one row per person (called once per side) and ``b(learner_rows, guide_rows)``
    returns the ``(len(learner_rows), len(guide_rows))`` array of scores for a block, which
    matching scores alongside the built-in criteria at about their cost. A program uses the
    criterion when its ``[programs.weights]`` names it; its contribution to a pair's score is
    ``weight * value`` and shows up in the pair's breakdown under ``name``. Names must not
    clash with built-in criteria.

    :param register: callback taking one ``Criterion``.
    """


@hookspec
def coachbridge_register_notifiers(register: Callable[[str, type[Notifier]], None]) -> None:
    """Register notification channels.

    Call ``register(name, NotifierClass)``; users enable it with ``[notify.<name>]`` in the
    config. Built in: ``log`` and ``smtp`` (mail with .ics invitations). A notifier must treat
    ``Message.key`` as an idempotency key: the same key may be sent again after a crash and
    should not reach the recipient twice where the channel allows.

    :param register: callback ``register(name: str, notifier_class: type[Notifier])``.
    """


@hookspec
def coachbridge_on_pairing_created(pairing: Pairing) -> None:
    """Observe a pairing that has just become active (after the store transaction committed).

    Observers must not raise; an exception is logged and ignored.

    :param pairing: the new pairing.
    """


@hookspec
def coachbridge_on_session_scheduled(session: Session) -> None:
    """Observe a session that has just been scheduled (after commit). Private notes are absent.

    :param session: the scheduled session.
    """


@hookspec
def coachbridge_on_review_event(event: ReviewEvent, outcome: dict[str, Any]) -> None:
    """Observe a review event after the rules ran on it.

    :param event: the normalized event.
    :param outcome: what the rules did, e.g. ``{"rule": 0, "enrolled": "coaching", "pairing_id": 7}``
        or ``{}`` when no rule matched.
    """
