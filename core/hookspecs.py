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
BambooHR, Workday and generic connectors, and the webhook server (``serve``, ``worker``,
``events``), are registered through this same entry-point group; the core's own notifiers and
scheduled jobs through these same hooks. ``COACHBRIDGE_DISABLE_PLUGINS=webhooks`` leaves the
webhook server out, and the command line simply has no ``serve``, ``worker`` or ``events``.
A hook implementation whose name matches no specification below is rejected at start-up.

Registration hooks (``coachbridge_register_*``) run at start-up (the jobs hook when a worker
starts, with the configuration): a name that two plugins register is a start-up error naming
both. Observer hooks
(``coachbridge_on_*``) run after the fact; each implementation is called on its own, so one
that raises is logged with its plugin's name and the others still run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from coachbridge.markers import PROJECT, hookimpl, hookspec

__all__ = [
    "PROJECT",
    "coachbridge_on_pairing_created",
    "coachbridge_on_review_event",
    "coachbridge_on_session_scheduled",
    "coachbridge_register_commands",
    "coachbridge_register_connectors",
    "coachbridge_register_jobs",
    "coachbridge_register_notifiers",
    "coachbridge_register_score_criteria",
    "hookimpl",
    "hookspec",
]

if TYPE_CHECKING:
    import click
    from coachbridge.config import Config
    from coachbridge.connectors import Connector
    from coachbridge.domain import Pairing, ReviewEvent, Session
    from coachbridge.matching.criteria import Criterion
    from coachbridge.notify.base import Notifier
    from coachbridge.schedules import Job


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
def coachbridge_register_commands(register: Callable[[click.Command], None]) -> None:
    """Add commands to the ``coachbridge`` command line.

    Call ``register(command)`` with a :class:`click.Command` or :class:`click.Group`; it
    becomes ``coachbridge <command.name> ...`` and is listed by ``coachbridge --help``. The
    name must be unique: one that a built-in command or another plugin already uses is a
    start-up error naming both. The webhook server adds ``serve``, ``worker`` and ``events``
    this way (``webhook_server/plugin.py``).

    Write the command like the built-in ones: decorate it with
    ``coachbridge.cli.app.pass_app`` to receive the invocation's ``App`` (``config``,
    ``registry``, ``database()``, ``connector(name)``), loaded after the global ``--config`` and
    ``--db`` options and validated before the command runs. Raise
    ``coachbridge.errors`` exceptions for expected failures: the CLI prints them as one line
    and exits 2 (``UserError``, ``ConfigError``: usage, configuration, input) or 1
    (``RuntimeFailure``, ``ConnectorError``: vendor, database). ``coachbridge.cli.output``
    gives ``format_option`` and ``emit`` for table, JSON and CSV output. Import what the
    command needs inside ``coachbridge_register_commands`` or the command's body, not at the
    top of the plugin module: every invocation of the CLI loads the plugins.

    :param register: callback ``register(command: click.Command)``.
    """


@hookspec
def coachbridge_register_jobs(register: Callable[[Job], None], config: Config) -> None:
    """Add scheduled jobs to the worker (``coachbridge worker``, or the worker in ``serve``).

    Call ``register(Job(name, run, every=... | at=..., lease=...))`` with a
    :class:`coachbridge.schedules.Job`:

    - ``name``: the key of the job's row in the ``jobs`` table, unique across plugins (a clash
      is a start-up error naming both plugins). Prefix it with your plugin's name
      (``"hibob:refresh"``) and keep it stable: a new name starts a new schedule.
    - ``every`` (a ``timedelta``): due when that long has passed since the last start; or
      ``at`` (a ``datetime.time``, UTC unless it has a ``tzinfo``): due once a day, at the
      first tick after that time. With neither, the job runs only when its row is requested.
    - ``run(ctx, now)``: ``ctx`` has ``config``, ``registry``, ``database()`` and
      ``connector(name)``; ``now`` is the scheduler's time (aware, UTC).
    - ``lease`` (default one hour): how long one worker may hold the job.

    The hook runs with the loaded configuration, so a plugin can register one job per
    configured item (the core registers ``sync:<connector>`` for every connector, due every
    ``sync_every``, and ``daily:program-health``, the daily run). Register nothing when the
    configuration does not call for it.

    Idempotency: across all workers one takes the job's lease and runs it; the others skip it.
    A worker that dies mid-run leaves its lease to expire, and the job then runs again, so
    ``run`` must be safe to repeat: do the work in store transactions and give notifications
    stable keys (the notifier contract). Failures: an exception is caught, logged with the
    job's name (a ``CoachbridgeError`` as one line, anything else with its traceback) and
    kept in ``jobs.last_error``; the worker goes on, and the job is tried again when it is next
    due, not at once. Dry runs: the scheduler always runs jobs for real; to let people preview
    a job, register a command with a ``--dry-run`` option (as ``coachbridge nudge
    --dry-run`` previews the daily run) and have ``run`` and the command share one function.

    :param register: callback ``register(job: Job)``.
    :param config: the loaded configuration (``[connectors.*]``, ``[[programs]]``, ...).
    """


@hookspec
def coachbridge_on_pairing_created(pairing: Pairing) -> None:
    """Observe a pairing that has just become active (after the store transaction committed).

    Observers must not raise: an exception is logged with the plugin's name and ignored, and
    the other plugins' observers still run. Nothing an observer does can undo the pairing.

    :param pairing: the new pairing.
    """


@hookspec
def coachbridge_on_session_scheduled(session: Session) -> None:
    """Observe a session that has just been scheduled (after commit). Private notes are absent.

    Observers must not raise: an exception is logged with the plugin's name and ignored, and
    the other plugins' observers still run.

    :param session: the scheduled session.
    """


@hookspec
def coachbridge_on_review_event(event: ReviewEvent, outcome: dict[str, Any]) -> None:
    """Observe a review event after the rules ran on it (after commit).

    Observers must not raise: an exception is logged with the plugin's name and ignored, and
    the other plugins' observers still run.

    :param event: the normalized event.
    :param outcome: what the rules did, e.g. ``{"rule": 0, "enrolled": "coaching", "pairing_id": 7}``
        or ``{}`` when no rule matched.
    """
