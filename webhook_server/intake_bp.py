"""The intake questionnaire: ``GET``/``POST /intake/<token>``, no login, no JavaScript.

The token is signed and names one person and one program; it works for the program's
``link_days``. The page shows what is known (name, title, the HRIS's languages) and any earlier
answer; it may be answered again until the person is paired, then it shows the answer read-only.
The form carries a nonce derived from the token (HMAC with the server secret) so that a post must
come from a page served for that link. Every bad link or answer is a plain 4xx page (404 forged,
410 expired, 409 paired, 400 with the question named), never a 500, and nothing is half-written:
an answer is checked whole, then stored in one transaction. Every answer under ``/intake/``
carries the participant page headers (``participant.harden``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from coachbridge.domain.profile import SLOTS
from coachbridge.errors import CoachbridgeError
from coachbridge.links import LinkError
from coachbridge.programs.intake import (
    AnswerError,
    IntakeView,
    answer_intake,
    check_form_nonce,
    form_nonce,
    open_intake,
    read_token,
)
from coachbridge_webhooks import participant
from flask import Response, current_app, make_response, render_template, request

log = logging.getLogger("coachbridge.programs.intake")

intake = participant.blueprint("intake", __name__, "/intake/")

DAYS = {"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday", "fri": "Friday"}
HALVES = {"am": "morning", "pm": "afternoon"}
#: How each question is named on the page (an error names the question by its label).
LABELS = {
    "topics": "Topics",
    "goal": "Goal",
    "languages": "Languages",
    "availability": "Availability",
}


def slot_label(slot: str) -> str:
    day, half = slot.split("-")
    return f"{DAYS[day]} {HALVES[half]}"


def _runtime() -> Any:
    return current_app.extensions["coachbridge"]


def _values(view: IntakeView) -> dict[str, Any]:
    """The form's values: the earlier answer, else what the HRIS holds."""
    answer = view.answer
    languages = (
        answer.languages if answer is not None and answer.languages is not None else None
    ) or view.hris_languages
    return {
        "topics": list(answer.topics) if answer else [],
        "goal": (answer.goal or "") if answer else "",
        "languages": ", ".join(languages),
        "availability": list(answer.availability) if answer else [],
    }


def _form(
    token: str,
    secret: Any,
    view: IntakeView,
    *,
    status: int = 200,
    error: AnswerError | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    intake_cfg = view.program.intake
    assert intake_cfg is not None
    learner = view.role == "learner"
    message = None
    if error is not None:
        label = LABELS.get(error.field, error.field)
        message = f"{label}: {str(error).removeprefix(error.field + ': ')}"
    html = render_template(
        "intake_form.html",
        view=view,
        intake=intake_cfg,
        learner=learner,
        picks=min(intake_cfg.max_topics, len(intake_cfg.topics)),
        slots=[(slot, slot_label(slot)) for slot in SLOTS],
        nonce=form_nonce(secret, token),
        values=values or _values(view),
        error=message,
        error_field=error.field if error is not None else None,
    )
    return make_response(html, status)


def _read_only(view: IntakeView) -> Response:
    return make_response(
        render_template(
            "intake_answered.html",
            view=view,
            values=_values(view),
            slots={slot: slot_label(slot) for slot in SLOTS},
        ),
        200,
    )


@intake.route("/intake/<token>", methods=["GET", "POST"])
def intake_page(token: str) -> Response:
    """Show the questionnaire for a valid link, or record its answer."""
    return participant.answer(
        lambda: _handle(token),
        log=log,
        page_name="intake page",
        unavailable="The questionnaire is not available",
        titles={409: "Your answers can no longer change"},
    )


def _handle(token: str) -> Response:
    rt = _runtime()
    secret = participant.server_secret(rt)
    programs = rt.config.programs
    link = read_token(secret, token, programs)
    db = rt.database()
    with db.transaction() as s:
        view = open_intake(s, programs, link)
    if participant.reading():
        return _read_only(view) if view.paired else _form(token, secret, view)
    form = request.form
    if not check_form_nonce(secret, token, form.get("nonce")):
        return participant.not_from_form("questionnaire page")
    topics = [t for t in form.getlist("topic") if t.strip()]
    # Browsers send a new line as CR LF; the limit counts characters as the page's field does.
    goal = form.get("goal", "").replace("\r\n", "\n") or None
    language_text = form.get("languages", "")
    languages = [c.strip() for c in language_text.replace(";", ",").split(",") if c.strip()]
    language_answer: list[str] | None = languages or None
    if languages and [c.lower() for c in languages] == [c.lower() for c in view.hris_languages]:
        language_answer = None  # unchanged from the HRIS: keep following it
    availability = form.getlist("availability")
    values = {
        "topics": topics,
        "goal": goal or "",
        "languages": language_text,
        "availability": availability,
    }
    try:
        answer_intake(
            db,
            programs,
            link,
            topics=topics,
            goal=goal,
            languages=language_answer,
            availability=availability,
            now=datetime.now(UTC),
        )
    except LinkError:
        raise
    except AnswerError as exc:
        return _form(token, secret, view, status=400, error=exc, values=values)
    except CoachbridgeError as exc:
        log.warning("intake answer failed: %s", exc)
        return participant.message(
            503, "The questionnaire is not available", "Please try again later."
        )
    return participant.message(
        200,
        "Thank you",
        "Your answers have been saved. You can change them with the same link until you "
        "are matched.",
    )
