"""Built-in notifiers, registered through the same hook a plugin would use."""

from __future__ import annotations

import logging
from collections.abc import Callable

from coachbridge.markers import hookimpl
from coachbridge.notify.base import Message, Notifier

log = logging.getLogger("coachbridge.notify")


class LogNotifier(Notifier):
    """Writes what would be sent to the log: the default, and safe on a first deployment."""

    def send(self, message: Message) -> str:
        log.info(
            "notify %s -> %s: %s (%d attachment(s))",
            message.key,
            message.to_email or message.to_name,
            message.subject,
            len(message.attachments),
        )
        return "logged"


@hookimpl(trylast=True)
def coachbridge_register_notifiers(register: Callable[[str, type[Notifier]], None]) -> None:
    register("log", LogNotifier)
    from coachbridge.notify.smtp import SmtpNotifier

    register("smtp", SmtpNotifier)
