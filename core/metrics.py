"""Operational metrics in the Prometheus format: the counting API for the core and plugins.

Code counts through the functions below (``vendor_request("bamboohr")``); the server exposes
the result at ``/metrics`` (docs/webhooks.md lists every metric). Nothing here imports
prometheus_client or makes a metric before the first count: prometheus_client decides, when it
is first imported, whether values live in this process or in files shared by several processes
(``PROMETHEUS_MULTIPROC_DIR``), and ``serve`` sets that directory up before gunicorn forks its
workers, after this module has long been imported.

Label values are bounded: connector and channel names come from the config, outcomes from the
code. A name taken from a request (an unknown connector in a delivery's address) is never a
label value.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

#: The directory prometheus_client's multiprocess mode keeps its value files in.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The label value of a delivery addressed to a connector that does not exist.
UNKNOWN_CONNECTOR = "(unknown)"

#: How long things take, in seconds: from a fast webhook processing run to a long sync.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Histogram,
            disable_created_metrics,
        )

        # The *_created series: not emitted in multiprocess mode, so not in one process either.
        disable_created_metrics()
        shared = multiprocess_dir()
        if shared is not None:  # e.g. a `coachbridge worker` started before `serve` made it
            Path(shared).mkdir(parents=True, exist_ok=True)
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.deliveries = Counter(
            "coachbridge_webhook_deliveries",
            "Webhook deliveries answered, by connector and HTTP status.",
            ["connector", "status"],
            registry=r,
        )
        self.processing = Histogram(
            "coachbridge_delivery_processing_seconds",
            "Time the worker took to process one delivery, by connector and outcome.",
            ["connector", "outcome"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.rules = Counter(
            "coachbridge_rule_outcomes",
            "What the rules did with review events, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.syncs = Counter(
            "coachbridge_syncs",
            "People syncs run, by connector and outcome.",
            ["connector", "outcome"],
            registry=r,
        )
        self.sync_seconds = Histogram(
            "coachbridge_sync_duration_seconds",
            "How long people syncs took, by connector and outcome.",
            ["connector", "outcome"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.vendor_requests = Counter(
            "coachbridge_vendor_requests",
            "HTTP requests sent to HR systems (retries included), by vendor.",
            ["vendor"],
            registry=r,
        )
        self.vendor_retries = Counter(
            "coachbridge_vendor_retries",
            "HTTP requests to HR systems that repeated an earlier one, by vendor.",
            ["vendor"],
            registry=r,
        )
        self.notifications = Counter(
            "coachbridge_notifications",
            "Notification attempts, by channel and outcome (sent, skipped, failed).",
            ["channel", "outcome"],
            registry=r,
        )
        self.matching = Histogram(
            "coachbridge_matching_seconds",
            "Wall time of one matching run (candidates, exact solve, widening).",
            buckets=_BUCKETS,
            registry=r,
        )


_lock = threading.Lock()
_made: _Metrics | None = None


def _metrics() -> _Metrics:
    global _made
    if _made is None:
        with _lock:
            if _made is None:
                _made = _Metrics()
    return _made


# -- counting (any code) -------------------------------------------------------------------
def delivery_received(connector: str, status: int) -> None:
    """A webhook delivery was answered with ``status`` (pass ``UNKNOWN_CONNECTOR`` for 404s)."""
    _metrics().deliveries.labels(connector, str(status)).inc()


def delivery_processed(connector: str, outcome: str, seconds: float) -> None:
    """The worker finished one delivery: ``done``, ``failed`` (retried later) or ``dead``."""
    _metrics().processing.labels(connector, outcome).observe(seconds)


def rule_outcome(outcome: str) -> None:
    """A rule ran on an event (``enrolled``, ``paired``, ``cooldown``, ...), or none could
    because the event's person is unknown (``unknown person``)."""
    _metrics().rules.labels(outcome).inc()


def sync_finished(connector: str, outcome: str, seconds: float) -> None:
    """A people sync ended: ``ok``, ``dry run``, ``aborted`` (a guard stopped it) or ``failed``."""
    m = _metrics()
    m.syncs.labels(connector, outcome).inc()
    m.sync_seconds.labels(connector, outcome).observe(seconds)


def vendor_request(vendor: str, *, retry: bool = False) -> None:
    """An HTTP request to an HR system is about to be sent; ``retry`` when it repeats one."""
    m = _metrics()
    m.vendor_requests.labels(vendor).inc()
    if retry:
        m.vendor_retries.labels(vendor).inc()


def notification(channel: str, outcome: str) -> None:
    """A notification was ``sent``, ``skipped`` by its channel, or ``failed``."""
    _metrics().notifications.labels(channel, outcome).inc()


def matching_solved(seconds: float) -> None:
    """A matching run (candidates, solve, widening) took ``seconds``."""
    _metrics().matching.observe(seconds)


# -- exposing (the server) -----------------------------------------------------------------
def multiprocess_dir() -> str | None:
    """The shared value directory when counting across processes, else None."""
    return os.environ.get(MULTIPROC_ENV) or None


def enable_multiprocess(path: Path) -> None:
    """Count in files under ``path`` from now on, in this process and in the ones it forks.

    Must run before the first count: prometheus_client reads the variable once, on import.
    Files left by processes that are no longer running (an earlier ``serve``) are removed, so
    counts start again; files of running processes (a ``coachbridge worker`` sharing the
    directory) stay.
    """
    if "prometheus_client.values" in sys.modules and os.environ.get(MULTIPROC_ENV) != str(path):
        raise RuntimeError("metrics were counted before the multiprocess directory was set")
    path.mkdir(parents=True, exist_ok=True)
    for file in path.glob("*.db"):
        pid = file.stem.rpartition("_")[2]
        if not pid.isdigit() or not _running(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                file.unlink()
    os.environ[MULTIPROC_ENV] = str(path)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def process_exited(pid: int) -> None:
    """Tell the multiprocess files that a worker process ended (gunicorn's ``child_exit``)."""
    path = multiprocess_dir()
    if path is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, path)


def exposition(extra: Iterable[Any] = ()) -> tuple[bytes, str]:
    """Every metric (summed over all processes in multiprocess mode) plus the ``extra``
    collectors (values computed at scrape time), as (body, content type): the text format,
    which every Prometheus version reads."""
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        generate_latest,
        multiprocess,
    )

    registry = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path is not None:
        multiprocess.MultiProcessCollector(registry, path=path)
    else:
        registry.register(_Forward(_metrics().registry))
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Forward:
    """This process's own metrics, for a scrape registry made per request."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        yield from self.registry.collect()


__all__ = [
    "MULTIPROC_ENV",
    "UNKNOWN_CONNECTOR",
    "delivery_processed",
    "delivery_received",
    "enable_multiprocess",
    "exposition",
    "matching_solved",
    "multiprocess_dir",
    "notification",
    "process_exited",
    "rule_outcome",
    "sync_finished",
    "vendor_request",
]
