"""``GET /metrics``: the Prometheus text format, optionally behind a bearer token.

The counters and histograms come from ``coachbridge.metrics`` (summed over every serving
process when ``serve`` runs several); the inbox gauges are computed from the inbox table at
each scrape, so they hold whichever process answers. With ``[server] metrics_token`` set, a
scrape without ``Authorization: Bearer <token>`` gets 401 (compared in constant time).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from coachbridge import metrics
from coachbridge.store import Database
from coachbridge.store.tables import InboxRow
from coachbridge_webhooks.runtime import Runtime
from flask import Blueprint, Response, current_app, request
from sqlalchemy import func, select

log = logging.getLogger("coachbridge.server")

observability = Blueprint("observability", __name__)

#: Statuses of deliveries not yet processed to the end (``failed`` ones are retried later).
WAITING = ("pending", "processing", "failed")


class InboxCollector:
    """Inbox depth by status and the age of the oldest waiting delivery, read at scrape time."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily(
            "coachbridge_inbox_up", "1 when the inbox table could be read for this scrape."
        )
        try:
            with self.db.transaction() as s:
                counts = dict(
                    s.execute(
                        select(InboxRow.status, func.count())
                        .where(InboxRow.status.in_(WAITING))
                        .group_by(InboxRow.status)
                    ).all()
                )
                oldest = s.scalar(
                    select(func.min(InboxRow.received_at)).where(InboxRow.status.in_(WAITING))
                )
        except Exception as exc:  # a scrape must answer even while the database is away
            log.warning("metrics: the inbox could not be read: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily(
            "coachbridge_inbox_deliveries",
            "Deliveries waiting in the inbox, by status (pending, processing, failed).",
            labels=["status"],
        )
        for status in WAITING:
            depth.add_metric([status], counts.get(status, 0))
        yield depth
        age = 0.0
        if oldest is not None:
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            age = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        yield GaugeMetricFamily(
            "coachbridge_inbox_oldest_waiting_age_seconds",
            "Age of the oldest delivery still waiting to be processed (0 when none is).",
            value=age,
        )


def authorized(token: Any, header: str | None) -> bool:
    """Whether ``header`` is ``Bearer <token>`` (always true without a token)."""
    if token is None:
        return True
    scheme, _, given = (header or "").partition(" ")
    expected = token.get_secret_value().encode()
    # compare_digest on both parts' bytes: the time taken does not tell how much matched.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)


@observability.get("/metrics")
def scrape() -> Response:
    rt: Runtime = current_app.extensions["coachbridge"]
    if not authorized(rt.config.server.metrics_token, request.headers.get("Authorization")):
        response = Response(
            '{"error": "metrics token missing or wrong"}\n', 401, mimetype="application/json"
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics.exposition([InboxCollector(rt.db)])
    return Response(body, 200, content_type=content_type)
