"""The ``smtp`` notifier: a plain, friendly mail with the sessions attached as an .ics invitation.

``[notify.smtp]``::

    host = "smtp.example.com"
    port = 587                       # default: 587 starttls, 465 tls, 25 none
    security = "starttls"            # "starttls" | "tls" | "none"
    username = "coachbridge"
    password = "${SMTP_PASSWORD}"    # from the environment, never printed
    from_address = "Coaching <coaching@example.com>"
    dry_run = false                  # true: write what would be sent to the log instead
    allow_domains = ["example.com"]  # send only to these domains (others are skipped)

The ``Message-ID`` header is derived from the message's stable key, so a repeat after a crash
carries the same id and mail systems (and people) can recognise it as the same message.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr
from typing import ClassVar, Literal

from coachbridge.errors import RuntimeFailure
from coachbridge.notify.base import Message, Notifier, NotifierConfig
from pydantic import Field, SecretStr, field_validator, model_validator

log = logging.getLogger("coachbridge.notify.smtp")

_DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


class SmtpConfig(NotifierConfig):
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_address: str
    timeout: float = Field(default=30.0, gt=0)

    @field_validator("from_address")
    @classmethod
    def _from(cls, value: str) -> str:
        _, address = parseaddr(value)
        if "@" not in address:
            raise ValueError("must be a mail address, e.g. 'Coaching <coaching@example.com>'")
        return value

    @model_validator(mode="after")
    def _login(self) -> SmtpConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or _DEFAULT_PORTS[self.security]


def message_id(key: str, from_address: str) -> str:
    """A Message-ID that is the same every time the message with ``key`` is sent."""
    domain = parseaddr(from_address)[1].rsplit("@", 1)[-1] or "coachbridge.invalid"
    return f"<cb.{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def build_mail(message: Message, from_address: str) -> EmailMessage:
    """The MIME message: text body plus each attachment (.ics as ``text/calendar``)."""
    mail = EmailMessage()
    mail["From"] = from_address
    mail["To"] = formataddr((message.to_name, message.to_email or ""))
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = message_id(message.key, from_address)
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(message.body)
    for attachment in message.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        params = {"method": "REQUEST"} if attachment.content_type == "text/calendar" else {}
        mail.add_attachment(
            attachment.data,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
            params=params,
        )
    return mail


class SmtpNotifier(Notifier):
    """Sends one mail per message over SMTP (STARTTLS, implicit TLS, or plain on loopback)."""

    config_model: ClassVar[type[NotifierConfig]] = SmtpConfig

    def __init__(self, config: NotifierConfig) -> None:
        super().__init__(config)
        assert isinstance(config, SmtpConfig)
        self.smtp = config

    def send(self, message: Message) -> str:
        if not message.to_email:
            return "skipped: no mail address"
        if not self.allowed(message.to_email):
            return "skipped: domain not in allow_domains"
        mail = build_mail(message, self.smtp.from_address)
        if self.config.dry_run:
            log.info(
                "dry run: would mail %s to %s: %s (%d attachment(s))",
                message.key,
                message.to_email,
                message.subject,
                len(message.attachments),
            )
            return "logged (dry run)"
        try:
            self._deliver(mail, message.to_email)
        except (OSError, smtplib.SMTPException) as exc:
            # The exception text can echo the server's reply but never our password.
            raise RuntimeFailure(
                f"smtp {self.smtp.host}:{self.smtp.effective_port}: {type(exc).__name__}: "
                f"{str(exc)[:200]}"
            ) from None
        return "sent"

    def _deliver(self, mail: EmailMessage, to: str) -> None:
        cfg = self.smtp
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if cfg.security == "tls":
            client = smtplib.SMTP_SSL(
                cfg.host, cfg.effective_port, timeout=cfg.timeout, context=context
            )
        else:
            client = smtplib.SMTP(cfg.host, cfg.effective_port, timeout=cfg.timeout)
        with client:
            client.ehlo()
            if cfg.security == "starttls":
                client.starttls(context=context)
                client.ehlo()
            if cfg.username is not None and cfg.password is not None:
                client.login(cfg.username, cfg.password.get_secret_value())
            sender = Address(addr_spec=parseaddr(cfg.from_address)[1]).addr_spec
            client.send_message(mail, from_addr=sender, to_addrs=[to])
