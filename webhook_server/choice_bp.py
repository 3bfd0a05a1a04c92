"""The choice pages: ``/offers/<token>`` (a learner picks a guide) and ``/requests/<token>``
(a guide accepts or declines a learner). No login, no JavaScript; like the feedback form.

The tokens are signed (``coachbridge.programs.choice``); each form carries a nonce derived from
its link (HMAC with the server secret), so a post must come from the page served for that very
link. A forged link answers 404, an expired one 410, an answered one 409, a bad field 400 with
the field named on the page; every answer runs in one transaction, so nothing is half-written.
Every answer under these paths carries the participant page headers (``participant.harden``).
"""

from __future__ import annotations

import logging
from typing import Any

from coachbridge.errors import CoachbridgeError, ConfigError, DatabaseUnavailable
from coachbridge.programs.choice import (
    MAX_REASON,
    ChoiceError,
    answer_offers_link,
    answer_request_link,
    check_form_nonce,
    form_nonce,
    offers_page,
    request_page,
)
from coachbridge_webhooks.participant import harden
from flask import Blueprint, Response, current_app, make_response, render_template, request

log = logging.getLogger("coachbridge.programs.choice")

choice = Blueprint("choice", __name__, template_folder="templates")
# The token is a secret: no caching, no referrer, no framing, nothing loaded from elsewhere.
harden(choice, "/offers/", "/requests/")

#: A few short fields; the webhook route's larger body limit does not apply here.
MAX_FORM_BYTES = 64 * 1024


@choice.before_request
def _limit_body() -> None:
    request.max_content_length = MAX_FORM_BYTES


def _ctx() -> Any:
    return current_app.extensions["coachbridge"]


def _page(template: str, status: int, **context: Any) -> Response:
    return make_response(render_template(template, **context), status)


def _message(status: int, title: str, text: str) -> Response:
    return _page("feedback_message.html", status, title=title, text=text, note=None)


def _secret() -> Any:
    secret = _ctx().config.server.secret_key
    if secret is None:
        raise ConfigError("[server] secret_key is not set")
    return secret


def _guarded(handler: Any, token: str) -> Response:
    try:
        return handler(token)
    except ChoiceError as exc:
        titles = {
            404: "This link cannot be used",
            409: "This has already been answered",
            410: "The time to answer is over",
        }
        return _message(exc.status, titles.get(exc.status, "Please check your answer"), str(exc))
    except ConfigError:
        log.warning("choice pages: [server] secret_key is not set")
        return _message(503, "Not available", "Please try again later.")
    except DatabaseUnavailable:
        return _message(503, "Not available", "Please try again in a few minutes.")
    except CoachbridgeError as exc:
        log.warning("choice answer failed: %s", exc)
        return _message(503, "Not available", "Please try again later.")


# -- /offers/<token> -------------------------------------------------------------------------
@choice.route("/offers/<token>", methods=["GET", "POST"])
def offers(token: str) -> Response:
    """A learner's open offers: pick one."""
    return _guarded(_offers, token)


def _offers_form(
    token: str, status: int = 200, error: str | None = None, chosen: str = ""
) -> Response:
    page = offers_page(_ctx(), token)
    return _page(
        "choice_offers.html",
        status,
        page=page,
        nonce=form_nonce(_secret(), token),
        error=error,
        chosen=chosen,
    )


def _offers(token: str) -> Response:
    secret = _secret()
    if request.method == "GET":
        return _offers_form(token)
    offers_page(_ctx(), token)  # a forged, expired or answered link says so first
    if not check_form_nonce(secret, token, request.form.get("nonce")):
        return _message(
            400, "Please use the form", "This answer did not come from the offers page."
        )
    chosen = request.form.get("offer", "")
    if not chosen:
        return _offers_form(token, 400, "offer: choose one of the offers.")
    try:
        answer = answer_offers_link(_ctx(), token, chosen)
    except ChoiceError as exc:
        if exc.status != 400:
            raise
        return _offers_form(token, 400, str(exc), chosen)
    text = (
        "Thank you: your choice is recorded. We have asked them to confirm; you will hear "
        "from us by mail."
        if answer.pairing_status == "requested"
        else "Thank you: your choice is recorded. You will get your sessions by mail."
    )
    return _message(200, "Thank you", text)


# -- /requests/<token> -----------------------------------------------------------------------
@choice.route("/requests/<token>", methods=["GET", "POST"])
def requests_page(token: str) -> Response:
    """A guide's request: accept, or decline with an optional reason."""
    return _guarded(_request, token)


def _request_form(
    token: str, status: int = 200, error: str | None = None, values: dict[str, str] | None = None
) -> Response:
    page = request_page(_ctx(), token)
    return _page(
        "choice_request.html",
        status,
        page=page,
        nonce=form_nonce(_secret(), token),
        error=error,
        values=values or {},
        max_reason=MAX_REASON,
    )


def _request(token: str) -> Response:
    secret = _secret()
    if request.method == "GET":
        return _request_form(token)
    request_page(_ctx(), token)  # a forged, expired or answered link says so first
    if not check_form_nonce(secret, token, request.form.get("nonce")):
        return _message(
            400, "Please use the form", "This answer did not come from the request page."
        )
    answer_value = request.form.get("answer", "")
    reason = request.form.get("reason") or None
    values = {"answer": answer_value, "reason": reason or ""}
    if answer_value not in ("accept", "decline"):
        return _request_form(token, 400, "answer: choose accept or decline.", values)
    try:
        answer_request_link(_ctx(), token, accept_it=answer_value == "accept", reason=reason)
    except ChoiceError as exc:
        if exc.status != 400:
            raise
        return _request_form(token, 400, str(exc), values)
    if answer_value == "accept":
        return _message(200, "Thank you", "You have accepted. You will get the sessions by mail.")
    return _message(
        200, "Thank you", "You have declined; we will find someone else. Thank you for telling us."
    )
