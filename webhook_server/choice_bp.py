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
from collections.abc import Callable
from typing import Any

from coachbridge.links import LinkError
from coachbridge.programs.choice import (
    MAX_REASON,
    answer_offers_link,
    answer_request_link,
    check_form_nonce,
    form_nonce,
    offers_page,
    request_page,
)
from coachbridge_webhooks import participant
from flask import Response, current_app, request

log = logging.getLogger("coachbridge.programs.choice")

# The token is a secret: no caching, no referrer, no framing, nothing loaded from elsewhere.
choice = participant.blueprint("choice", __name__, "/offers/", "/requests/")


def _ctx() -> Any:
    return current_app.extensions["coachbridge"]


def _secret() -> Any:
    return participant.server_secret(_ctx())


def _guarded(handler: Any, token: str) -> Response:
    return participant.answer(
        lambda: handler(token),
        log=log,
        page_name="choice pages",
        unavailable="Not available",
        titles={
            404: "This link cannot be used",
            409: "This has already been answered",
            410: "The time to answer is over",
        },
        title="Please check your answer",
        failures="choice answer failed: %s",
    )


# -- /offers/<token> -------------------------------------------------------------------------
@choice.route("/offers/<token>", methods=["GET", "POST"])
def offers(token: str) -> Response:
    """A learner's open offers: pick one."""
    return _guarded(_offers, token)


def _offers_form(
    token: str, status: int = 200, error: str | None = None, chosen: str = ""
) -> Response:
    page = offers_page(_ctx(), token)
    return participant.render_page(
        "choice_offers.html",
        status,
        page=page,
        nonce=form_nonce(_secret(), token),
        error=error,
        chosen=chosen,
    )


def _refused(token: str, form: Callable[[str], Response], load: Any, where: str) -> Response | None:
    """The page to answer a GET (the form) or a post refused; None for a post to act on."""
    secret = _secret()
    if participant.reading():
        return form(token)
    load(_ctx(), token)  # a forged, expired or answered link says so first
    if not check_form_nonce(secret, token, request.form.get("nonce")):
        return participant.not_from_form(where)
    return None


def _offers(token: str) -> Response:
    refused = _refused(token, _offers_form, offers_page, "offers page")
    if refused is not None:
        return refused
    chosen = request.form.get("offer", "")
    if not chosen:
        return _offers_form(token, 400, "offer: choose one of the offers.")
    try:
        answer = answer_offers_link(_ctx(), token, chosen)
    except LinkError as exc:
        if exc.status != 400:
            raise
        return _offers_form(token, 400, str(exc), chosen)
    text = (
        "Thank you: your choice is recorded. We have asked them to confirm; you will hear "
        "from us by mail."
        if answer.pairing_status == "requested"
        else "Thank you: your choice is recorded. You will get your sessions by mail."
    )
    return participant.message(200, "Thank you", text)


# -- /requests/<token> -----------------------------------------------------------------------
@choice.route("/requests/<token>", methods=["GET", "POST"])
def requests_page(token: str) -> Response:
    """A guide's request: accept, or decline with an optional reason."""
    return _guarded(_request, token)


def _request_form(
    token: str, status: int = 200, error: str | None = None, values: dict[str, str] | None = None
) -> Response:
    page = request_page(_ctx(), token)
    return participant.render_page(
        "choice_request.html",
        status,
        page=page,
        nonce=form_nonce(_secret(), token),
        error=error,
        values=values or {},
        max_reason=MAX_REASON,
    )


def _request(token: str) -> Response:
    refused = _refused(token, _request_form, request_page, "request page")
    if refused is not None:
        return refused
    answer_value = request.form.get("answer", "")
    reason = request.form.get("reason") or None
    values = {"answer": answer_value, "reason": reason or ""}
    if answer_value not in ("accept", "decline"):
        return _request_form(token, 400, "answer: choose accept or decline.", values)
    try:
        answer_request_link(_ctx(), token, accept_it=answer_value == "accept", reason=reason)
    except LinkError as exc:
        if exc.status != 400:
            raise
        return _request_form(token, 400, str(exc), values)
    if answer_value == "accept":
        return participant.message(
            200, "Thank you", "You have accepted. You will get the sessions by mail."
        )
    return participant.message(
        200, "Thank you", "You have declined; we will find someone else. Thank you for telling us."
    )
