"""Signed participant links: the errors their pages answer with, signing and reading tokens.

Feedback, intake, offer and request links all put a small payload in a token signed with
``[server] secret_key`` (itsdangerous) under a salt of their own, and each page's form carries
a nonce derived from its token (HMAC with the same secret), so a post must come from a page
served for that very link. A ``LinkSigner`` holds one kind's salts: never change a salt or a
payload's keys, or the links already mailed stop working.

The errors carry the HTTP status the page answers with: 404 for a forged link (or one naming
what no longer exists), 410 for an expired one, 409 for one already used (or whose answer can
no longer change), 400 for anything else.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from coachbridge.errors import ConfigError, UserError
from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

__all__ = [
    "LinkError",
    "LinkExpired",
    "LinkForged",
    "LinkSigner",
    "LinkUsed",
    "secret_text",
]


class LinkError(UserError):
    """A link that cannot be used; ``status`` is the HTTP status its page answers with."""

    status = 400


class LinkForged(LinkError):
    """A bad signature, or a link naming what is not there (any more)."""

    status = 404


class LinkExpired(LinkError):
    status = 410


class LinkUsed(LinkError):
    """The link's answer is given, or can no longer change."""

    status = 409


def secret_text(secret_key: Any, what: str) -> str:
    """The server secret as text, or ``ConfigError`` naming ``what`` needs it."""
    value = secret_key.get_secret_value() if hasattr(secret_key, "get_secret_value") else secret_key
    if not value:
        raise ConfigError(
            f"[server] secret_key is not set: {what} need it (e.g. "
            'secret_key = "${COACHBRIDGE_SECRET_KEY}")'
        )
    return str(value)


@dataclass(frozen=True)
class LinkSigner:
    """One kind of link: ``salt`` signs its tokens, ``form_salt`` derives its form nonces.

    ``what`` names the links in the ``ConfigError`` of a missing secret ("feedback links");
    ``invalid`` is the message of ``LinkForged``. A ``timed`` token carries its signing time
    (``URLSafeTimedSerializer``), so ``read`` can check its age; ``max_length`` refuses longer
    tokens before any work.
    """

    salt: str
    form_salt: bytes
    what: str
    invalid: str = "this link is not valid"
    timed: bool = False
    max_length: int | None = None

    def secret(self, secret_key: Any) -> str:
        return secret_text(secret_key, self.what)

    def _serializer(self, secret_key: Any) -> URLSafeSerializer:
        kind = URLSafeTimedSerializer if self.timed else URLSafeSerializer
        return kind(self.secret(secret_key), salt=self.salt)

    def sign(self, secret_key: Any, payload: Any) -> str:
        """``payload`` signed for this kind of link."""
        return str(self._serializer(secret_key).dumps(payload))

    def read(
        self,
        secret_key: Any,
        token: str,
        *,
        max_age: int | None = None,
        expired: str = "this link has expired",
    ) -> Any:
        """The payload of ``token``: ``LinkForged`` for a bad signature (or a token too long),
        ``LinkExpired`` (with ``expired``) for a timed token older than ``max_age`` seconds."""
        if self.max_length is not None and len(token) > self.max_length:
            raise LinkForged(self.invalid)
        serializer = self._serializer(secret_key)
        try:
            if isinstance(serializer, URLSafeTimedSerializer):
                return serializer.loads(token, max_age=max_age)
            return serializer.loads(token)
        except SignatureExpired:
            raise LinkExpired(expired) from None
        except BadSignature:
            raise LinkForged(self.invalid) from None

    def form_nonce(self, secret_key: Any, token: str) -> str:
        """The hidden form field a post must carry (ties the post to a page served for it)."""
        key = hashlib.sha256(self.form_salt + self.secret(secret_key).encode()).digest()
        return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()

    def check_form_nonce(self, secret_key: Any, token: str, value: str | None) -> bool:
        """True when ``value`` is the form nonce of ``token`` (constant-time; any text)."""
        if not value:
            return False
        expected = self.form_nonce(secret_key, token).encode()
        return hmac.compare_digest(expected, str(value).encode("utf-8", "surrogatepass"))
