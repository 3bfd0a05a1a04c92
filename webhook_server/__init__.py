"""The coachbridge webhook server (Flask app factory ``create_app``) and worker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: Any, **kwargs: Any) -> Flask:
    """Build the Flask app (see ``coachbridge_webhooks.app.create_app``)."""
    from coachbridge_webhooks.app import create_app as factory

    return factory(config, **kwargs)


__all__ = ["create_app"]
