"""What every participant page sends: the pages people open from a mailed link (no login).

Their address carries a secret token, so nothing may leak it (no referrer, no caching), nothing
may frame them (clickjacking a one-time answer), and they load nothing from anywhere: the
Content-Security-Policy allows only the page's own inline style, by a fresh nonce per response,
and form posts back to this server. A later participant blueprint gets the same by calling
``harden(blueprint, "/its-prefix/")``.
"""

from __future__ import annotations

import secrets

from flask import Blueprint, Response, g, request

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
