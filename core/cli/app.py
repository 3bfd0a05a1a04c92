"""What every command shares: the ``App`` of the current invocation."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click
from coachbridge.app import App

F = TypeVar("F", bound=Callable[..., Any])


def pass_app(func: F) -> F:
    """Give the command the ``App`` and validate the configuration before it runs."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        app = click.get_current_context().find_object(App)
        assert app is not None
        _ = app.config
        return func(app, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
