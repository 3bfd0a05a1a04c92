"""The notifier contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

__all__ = [
    "Attachment",
    "Message",
    "Notifier",
    "NotifierConfig",
]


class NotifierConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    dry_run: bool = False
    allow_domains: list[str] | None = None


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Message:
    """One message to one person. ``key`` is stable: sending the same key twice is a repeat."""

    key: str
    to_name: str
    to_email: str | None
    subject: str
    body: str
    attachments: list[Attachment] = field(default_factory=list)
    recipient_id: int | None = None

    def __repr__(self) -> str:  # bodies can carry personal data; keep them out of logs
        return f"<Message {self.key!r}>"


class Notifier(ABC):
    config_model: ClassVar[type[NotifierConfig]] = NotifierConfig

    def __init__(self, config: NotifierConfig) -> None:
        self.config = config

    def allowed(self, email: str | None) -> bool:
        if email is None:
            return False
        if self.config.allow_domains is None:
            return True
        domain = email.rsplit("@", 1)[-1].lower()
        return domain in {d.lower() for d in self.config.allow_domains}

    @abstractmethod
    def send(self, message: Message) -> str:
        """Deliver ``message``; return a short status (``sent``, ``logged``, ``skipped: ...``)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def close(self) -> None:  # noqa: B027 - optional hook for channels holding connections
        """Release connections (optional)."""

    @staticmethod
    def describe(message: Message) -> dict[str, Any]:
        return {"key": message.key, "to": message.to_email, "subject": message.subject}
