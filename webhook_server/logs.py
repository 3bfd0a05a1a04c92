"""Log output of ``serve`` and the worker: plain text, or one JSON object per line.

``configure_logging("json")`` turns every line into an object with ``time``, ``level``,
``logger`` and ``message``, plus, where the line is about one, ``connector``, ``delivery_id``
and ``request_id`` (bound with ``bound``/``annotate`` by the code handling a request or a
delivery). gunicorn's own lines (its master and workers) are formatted the same way through
``GunicornLogger``. python-json-logger does the encoding.

Nothing logs a secret: the server logs why a delivery was refused, never its headers or body.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

from gunicorn import glogging
from pythonjsonlogger.json import JsonFormatter

#: The values ``[server] log_format`` (and ``serve --log-format``) accept.
LOG_FORMATS = ("text", "json")
#: The fields a line carries when it is about a request or a delivery.
CONTEXT_FIELDS = ("connector", "delivery_id", "request_id")
REQUEST_ID_HEADER = "X-Request-ID"
#: A request id taken from the client: short and plain, so it cannot forge log content.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

_fields: ContextVar[dict[str, str] | None] = ContextVar("coachbridge_log_fields", default=None)


def bind(**fields: Any) -> Token[dict[str, str] | None]:
    """Add ``fields`` to every line logged from this context until ``unbind(token)``."""
    current = _fields.get() or {}
    return _fields.set({**current, **{k: str(v) for k, v in fields.items() if v is not None}})


def unbind(token: Token[dict[str, str] | None]) -> None:
    _fields.reset(token)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """``fields`` on every line logged inside the block (``annotate`` adds more)."""
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def annotate(**fields: Any) -> None:
    """Add ``fields`` for the rest of the enclosing ``bound`` block (or request)."""
    bind(**fields)


def fields() -> dict[str, str]:
    """The fields bound in this context."""
    return dict(_fields.get() or {})


def request_id(header: str | None) -> str:
    """The client's ``X-Request-ID`` when it is plain and short, else a new one."""
    if header and _VALID_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


class ContextFilter(logging.Filter):
    """Copies the bound fields onto each record (a handler filter: it sees every record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_fields.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class _JsonFormatter(JsonFormatter):  # type: ignore[misc]
    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        # The time first (python-json-logger's own ``timestamp`` comes last), in UTC.
        log_data["time"] = datetime.fromtimestamp(record.created, UTC).isoformat()
        super().add_fields(log_data, record, message_dict)


def json_formatter() -> logging.Formatter:
    return _JsonFormatter(
        ["levelname", "name", "message"], rename_fields={"levelname": "level", "name": "logger"}
    )


def _json_handler(handler: logging.Handler) -> None:
    handler.setFormatter(json_formatter())
    if not any(isinstance(f, ContextFilter) for f in handler.filters):
        handler.addFilter(ContextFilter())


def configure_logging(fmt: str) -> None:
    """Use ``fmt`` ("text" or "json") for every log line of this process and its children.

    The level stays as the command line set it (``-v``). Call before gunicorn starts: it
    formats its own lines with ``GunicornLogger``, which follows the choice made here.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    GunicornLogger.log_format = fmt
    if fmt == "text":
        return
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    for handler in root.handlers:
        _json_handler(handler)


class GunicornLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger, its lines in JSON when ``configure_logging("json")`` was called."""

    log_format = "text"

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        if self.log_format != "json":
            return
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                _json_handler(handler)


__all__ = [
    "CONTEXT_FIELDS",
    "LOG_FORMATS",
    "REQUEST_ID_HEADER",
    "ContextFilter",
    "GunicornLogger",
    "annotate",
    "bind",
    "bound",
    "configure_logging",
    "fields",
    "request_id",
    "unbind",
]
