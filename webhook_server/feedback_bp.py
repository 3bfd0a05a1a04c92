"""The session feedback form: ``GET``/``POST /feedback/<token>``, no login, no JavaScript.

The token in the address is signed, names one session and one person, expires after 14 days
and works once. The form carries a nonce derived from the token (HMAC with the server secret),
so a post must come from a page that was served for that very link; a cross-site form cannot
know it. Every bad link or answer gets a plain page with a 4xx status, never a 500. Every
answer under ``/feedback/`` carries the participant page headers (``participant.harden``).

Register with ``app.register_blueprint(feedback)``; the app must hold the runtime
(``app.extensions["coachbridge"]``: ``.config`` and ``.database()``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from coachbridge.errors import CoachbridgeError, UserError
from coachbridge.links import LinkError
from coachbridge.pairings.feedback import (
    Outcome,
    answer_link,
    check_form_nonce,
    form_nonce,
    link_state,
    open_link,
    read_token,
)
from coachbridge.store.tables import PersonRow, SessionRow
from coachbridge_webhooks import participant
from flask import Response, current_app, request

log = logging.getLogger("coachbridge.pairings.feedback")

# The token is a secret: no caching, no referrer, no framing, nothing loaded from elsewhere.
feedback = participant.blueprint("feedback", __name__, "/feedback/")

RATINGS = (
    (1, "1 – poor"),
    (2, "2 – fair"),
    (3, "3 – good"),
    (4, "4 – very good"),
    (5, "5 – excellent"),
)
OUTCOMES = (
    (Outcome.HELD.value, "Yes, it was held"),
    (Outcome.MISSED.value, "No, it was missed"),
    (Outcome.RESCHEDULED.value, "It was moved to another time"),
)


def _runtime() -> Any:
    return current_app.extensions["coachbridge"]


def session_time(session: SessionRow, person: PersonRow) -> str:
    """When the session is planned, in the person's own time zone (UTC when unknown)."""
    try:
        zone = ZoneInfo(person.timezone) if person.timezone else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        zone = ZoneInfo("UTC")
    start = session.start if session.start.tzinfo else session.start.replace(tzinfo=UTC)
    local = start.astimezone(zone)
    return f"{local:%A %d %B %Y, %H:%M} ({zone.key})"


def _form(
    token: str,
    secret: Any,
    context: dict[str, Any],
    status: int = 200,
    error: str | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    return participant.render_page(
        "feedback_form.html",
        status,
        token=token,
        nonce=form_nonce(secret, token),
        ratings=RATINGS,
        outcomes=OUTCOMES,
        error=error,
        values=values or {},
        **context,
    )


@feedback.route("/feedback/<token>", methods=["GET", "POST"])
def feedback_page(token: str) -> Response:
    """Show the form for a valid unused link, or record its answer."""
    return participant.answer(
        lambda: _handle(token),
        log=log,
        page_name="feedback form",
        unavailable="Feedback is not available",
    )


def _handle(token: str) -> Response:
    rt = _runtime()
    secret = participant.server_secret(rt)
    if len(token) > 1000:
        return participant.message(
            404, "This link cannot be used", "this feedback link is not valid"
        )
    link = read_token(secret, token)
    db = rt.database()
    with db.transaction() as s:
        session, pairing, person = open_link(s, link)
        used = link_state(s, link)
        context = {"session_date": session_time(session, person), "program": pairing.program_id}
    if used is not None:
        # Never the private note: a used link is opened again by mail forwards and link
        # scanners too. The note is shown once, in the answer to the post that saved it.
        return participant.message(
            409,
            "You have already answered",
            "This link has been used; each link works once. Thank you for your answer.",
        )
    if participant.reading():
        return _form(token, secret, context)
    form = request.form
    if not check_form_nonce(secret, token, form.get("nonce")):
        return participant.not_from_form("feedback form")
    outcome = form.get("outcome", "")
    rating = form.get("rating") or None
    comment = form.get("comment")
    private_note = form.get("private_note")
    values = {
        "outcome": outcome,
        "rating": rating,
        "comment": comment,
        "private_note": private_note,
    }
    if outcome not in {o for o, _ in OUTCOMES}:
        return _form(token, secret, context, 400, "Say whether the session happened.", values)
    if outcome == Outcome.HELD.value and rating is None:
        return _form(token, secret, context, 400, "Choose a rating from 1 to 5.", values)
    try:
        with db.transaction() as s:
            answer_link(
                s,
                link,
                outcome=outcome,
                rating=rating,
                comment=comment,
                private_note=private_note,
                now=datetime.now(UTC),
            )
    except LinkError:
        raise
    except UserError as exc:
        return _form(token, secret, context, 400, str(exc), values)
    except CoachbridgeError as exc:
        log.warning("feedback answer failed: %s", exc)
        return participant.message(503, "Feedback is not available", "Please try again later.")
    text = {
        Outcome.HELD.value: "Your answer has been recorded. Thank you!",
        Outcome.MISSED.value: "Recorded: the session was missed. Thank you for telling us.",
        Outcome.RESCHEDULED.value: "Recorded: the session moved. Thank you for telling us.",
    }[outcome]
    return participant.message(200, "Thank you", text, note=(private_note or "").strip() or None)
