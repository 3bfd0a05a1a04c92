"""What every participant page sends: the pages people open from a mailed link (no login).

Their address carries a secret token, so nothing may leak it (no referrer, no caching), nothing
may frame them (clickjacking a one-time answer), and they load nothing from anywhere: the
Content-Security-Policy allows only the page's own inline style, by a fresh nonce per response,
and form posts back to this server. A later participant blueprint gets the same by calling
``harden(blueprint, "/its-prefix/")``, or is made with it (and the form limit) by
``blueprint(name, __name__, "/its-prefix/")``.

The pages also answer alike: a small body limit (``limit_form``), a plain message page
(``message``), the same refusal of a post without its form nonce (``not_from_form``), and one
guard (``answer``) turning a bad link into its 4xx page and a missing secret or an unreachable
database into a 503, never a 500.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from coachbridge.errors import CoachbridgeError, ConfigError, DatabaseUnavailable
from coachbridge.links import LinkError
from flask import Blueprint, Response, g, make_response, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge

#: Headers every participant response carries, whatever its status.
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}
_POLICY = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"


def csp_nonce() -> str:
    """This response's style nonce (templates: ``<style nonce="{{ csp_nonce() }}">``)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return str(g.csp_nonce)


def policy(nonce: str | None) -> str:
    """The Content-Security-Policy; the page's inline style is allowed only by its nonce."""
    return _POLICY if nonce is None else f"{_POLICY}; style-src 'nonce-{nonce}'"


def secure(response: Response) -> Response:
    response.headers.update(HEADERS)
    response.headers["Content-Security-Policy"] = policy(g.get("csp_nonce"))
    return response


def harden(blueprint: Blueprint, *prefixes: str) -> Blueprint:
    """Give ``blueprint``'s pages the headers above, and its templates ``csp_nonce()``.

    ``prefixes`` (such as ``"/feedback/"``) cover the answers Flask gives before a request
    reaches the blueprint (an unknown address or method under that path): they carry the token
    too.
    """
    blueprint.context_processor(lambda: {"csp_nonce": csp_nonce})

    def _after(response: Response) -> Response:
        if request.blueprint == blueprint.name or request.path.startswith(prefixes):
            return secure(response)
        return response

    blueprint.after_app_request(_after)
    return blueprint


#: Answers are a few short fields; the webhook route's larger body limit does not apply here.
MAX_FORM_BYTES = 64 * 1024


def limit_form(blueprint: Blueprint, max_bytes: int = MAX_FORM_BYTES) -> None:
    """Werkzeug answers 413 when a form body to ``blueprint`` is larger (no global limit)."""

    def _limit_body() -> None:
        if request.content_length is None and not reading():
            # A body sent in chunks (no Content-Length): Werkzeug stops reading it at the
            # limit without a 413, so a form cut short would be taken as the whole answer.
            # Read one byte past the limit here (kept for the form parser) and refuse it whole.
            request.max_content_length = max_bytes + 1
            if len(request.get_data(cache=True)) > max_bytes:
                raise RequestEntityTooLarge()
        request.max_content_length = max_bytes

    blueprint.before_request(_limit_body)


def reading() -> bool:
    """Whether this request only reads the page: ``GET``, or ``HEAD`` (link checkers in mail
    systems ask that first; Flask answers it with the ``GET`` page's headers, no body)."""
    return request.method in ("GET", "HEAD")


def blueprint(name: str, import_name: str, *prefixes: str) -> Blueprint:
    """A participant blueprint with its ``templates``, hardened under ``prefixes``, its forms
    limited (``harden`` and ``limit_form``)."""
    made = Blueprint(name, import_name, template_folder="templates")
    harden(made, *prefixes)
    limit_form(made)
    return made


def render_page(template: str, status: int, **context: Any) -> Response:
    return make_response(render_template(template, **context), status)


def message(status: int, title: str, text: str, note: str | None = None) -> Response:
    """The plain message page every participant page answers with."""
    return render_page("feedback_message.html", status, title=title, text=text, note=note)


def not_from_form(where: str) -> Response:
    """The answer to a post without the form nonce of its link's page."""
    return message(400, "Please use the form", f"This answer did not come from the {where}.")


def server_secret(runtime: Any) -> Any:
    """``[server] secret_key``, or ``ConfigError`` (the pages then answer 503)."""
    secret = runtime.config.server.secret_key
    if secret is None:
        raise ConfigError("[server] secret_key is not set")
    return secret


def answer(
    handle: Callable[[], Response],
    *,
    log: logging.Logger,
    page_name: str,
    unavailable: str,
    titles: Mapping[int, str] | None = None,
    title: str = "This link cannot be used",
    failures: str | None = None,
) -> Response:
    """Run ``handle``; a ``LinkError`` becomes its status's page (titled by ``titles``, else
    ``title``), a missing secret or an unreachable database a 503 titled ``unavailable``.
    With ``failures`` (a log message with ``%s``), any other expected error is a 503 too."""
    try:
        return handle()
    except LinkError as exc:
        return message(exc.status, (titles or {}).get(exc.status, title), str(exc))
    except ConfigError:
        log.warning("%s: [server] secret_key is not set", page_name)
        return message(503, unavailable, "Please try again later.")
    except DatabaseUnavailable:
        return message(503, unavailable, "Please try again in a few minutes.")
    except CoachbridgeError as exc:
        if failures is None:
            raise
        log.warning(failures, exc)
        return message(503, unavailable, "Please try again later.")
