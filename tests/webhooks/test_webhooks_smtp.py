"""The smtp notifier against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from coachbridge.errors import ConfigError, RuntimeFailure
from coachbridge.notify.base import Attachment, Message
from coachbridge.notify.dispatch import build_notifiers
from coachbridge.notify.smtp import SmtpConfig, SmtpNotifier, message_id
from coachbridge.store.tables import NotificationRow, PairingRow
from coachbridge_webhooks import create_app
from coachbridge_webhooks.worker import Worker
from sqlalchemy import select

from tests.webhooks.conftest import (
    Env,
    free_port,
    load,
    review,
    shared_registry,
    signed,
    with_free_port,
)


class Inbox:
    """Collects what the SMTP server received."""

    def __init__(self) -> None:
        self.mails: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.mails.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    handler = Inbox()
    controller = with_free_port(lambda port: started(handler, port))
    yield controller.port, handler
    controller.stop()


def started(handler: Inbox, port: int, **kwargs: object) -> Controller:
    """A running SMTP server on ``port``; ``OSError`` when the port was taken meanwhile."""
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()  # raises OSError (address already in use) if the port was taken
    return controller


def notifier(port: int, **extra) -> SmtpNotifier:
    cfg = SmtpConfig(
        host="127.0.0.1",
        port=port,
        security="none",
        from_address="Coaching <coaching@example.com>",
        **extra,
    )
    return SmtpNotifier(cfg)


def message(to: str = "lea@example.com", key: str = "pairing:1:learner:smtp") -> Message:
    return Message(
        key=key,
        to_name="Lea Learner",
        to_email=to,
        subject="Performance coaching: your coach pairing",
        body="Hello Lea,\n\nyour coach is Guide Coach.\n",
        attachments=[
            Attachment("sessions.ics", "text/calendar", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
        ],
    )


def test_sends_a_plain_mail_with_the_ics_attached(smtp):
    port, received = smtp
    assert notifier(port).send(message()) == "sent"
    [(rcpt, mail)] = received.mails
    assert rcpt == ["lea@example.com"]
    assert mail["From"] == "Coaching <coaching@example.com>"
    assert mail["To"] == "Lea Learner <lea@example.com>"
    assert mail["Message-ID"] == message_id("pairing:1:learner:smtp", "coaching@example.com")
    body = mail.get_body(("plain",)).get_content()
    assert "your coach is Guide Coach" in body
    [ics] = [p for p in mail.iter_attachments()]
    assert ics.get_content_type() == "text/calendar"
    assert ics.get_param("method") == "REQUEST"
    assert ics.get_filename() == "sessions.ics"
    assert b"BEGIN:VCALENDAR" in ics.get_payload(decode=True)


def test_a_repeat_carries_the_same_message_id(smtp):
    port, received = smtp
    n = notifier(port)
    n.send(message())
    n.send(message())
    ids = {mail["Message-ID"] for _, mail in received.mails}
    assert len(ids) == 1


def test_allow_domains_and_dry_run_send_nothing(smtp, caplog):
    port, received = smtp
    limited = notifier(port, allow_domains=["example.org"])
    assert limited.send(message("lea@example.com")) == "skipped: domain not in allow_domains"
    assert limited.send(message("lea@EXAMPLE.org")) == "sent"
    caplog.set_level("INFO", logger="coachbridge.notify.smtp")
    dry = notifier(port, dry_run=True)
    assert dry.send(message("x@example.com", key="k-dry")) == "logged (dry run)"
    assert [rcpt for rcpt, _ in received.mails] == [["lea@EXAMPLE.org"]]
    assert "k-dry" in caplog.text and "hello" not in caplog.text.lower()


def test_login_uses_the_password_but_never_shows_it(monkeypatch):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret-pw"
        return AuthResult(success=ok)

    handler = Inbox()
    controller = with_free_port(
        lambda port: started(handler, port, authenticator=authenticator, auth_require_tls=False)
    )
    port = controller.port
    try:
        good = notifier(port, username="cb", password="s3cret-pw")
        assert good.send(message()) == "sent"
        assert "s3cret-pw" not in repr(good.config)
        bad = notifier(port, username="cb", password="wrong-pw", timeout=1.0)
        with pytest.raises(RuntimeFailure) as info:
            bad.send(message())
        assert "wrong-pw" not in str(info.value)
    finally:
        controller.stop()
    assert len(handler.mails) == 1


def test_unreachable_server_is_a_runtime_failure():
    with pytest.raises(RuntimeFailure, match=r"smtp 127\.0\.0\.1"):
        notifier(free_port()).send(message())


def test_smtp_section_errors_name_the_key():
    classes = shared_registry().notifiers
    with pytest.raises(ConfigError) as info:
        build_notifiers(
            {"smtp": {"host": "h", "from_address": "nobody", "security": "ssl", "username": "u"}},
            classes,
            "cb.toml",
        )
    text = "\n".join(info.value.problems)
    assert "cb.toml: notify.smtp.from_address" in text
    assert "cb.toml: notify.smtp.security" in text
    with pytest.raises(ConfigError, match=r"notify\.pigeon: unknown notifier"):
        build_notifiers({"pigeon": {}}, classes)


def test_worker_mails_learner_and_guide_once_each(smtp, tmp_path, sqlite_url, monkeypatch):
    from tests.webhooks.conftest import ENV, make_env, sync_people

    port, received = smtp
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    extra = (
        f'\n[notify.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        'from_address = "Coaching <coaching@example.com>"\nallow_domains = ["example.com"]\n'
    )
    env: Env = make_env(tmp_path, sqlite_url, extra=extra)
    sync_people(env)
    client = create_app(env.config, database=env.db, registry=env.registry).test_client()
    body, headers = signed(review("E1"))
    assert client.post("/webhooks/reviews", data=body, headers=headers).status_code == 202
    worker = Worker(env.runtime(), worker_id="w", scheduler=False)
    worker.drain()
    worker.housekeeping()  # pending mail would be re-sent here; there is none
    recipients = sorted(r for rcpt, _ in received.mails for r in rcpt)
    assert recipients[0] == "e1@example.com" and recipients[1].startswith("g")
    assert len(received.mails) == 2
    for _, mail in received.mails:
        [ics] = list(mail.iter_attachments())
        assert ics.get_payload(decode=True).count(b"BEGIN:VEVENT") == 3
    with env.db.transaction() as s:
        pairing = s.scalars(select(PairingRow)).one()
        rows = list(s.scalars(select(NotificationRow)))
    assert {r.status for r in rows} == {"sent"}
    assert {r.key for r in rows} == {
        f"pairing:{pairing.id}:learner:smtp",
        f"pairing:{pairing.id}:guide:smtp",
    }
    # a crash between sending and marking leaves a row pending: it is sent again, same id
    with env.db.transaction() as s:
        row = s.scalars(select(NotificationRow).where(NotificationRow.key.like("%learner%"))).one()
        row.status = "pending"
    worker.housekeeping()
    learner_mails = [m for rcpt, m in received.mails if rcpt == ["e1@example.com"]]
    assert len(learner_mails) == 2
    assert learner_mails[0]["Message-ID"] == learner_mails[1]["Message-ID"]
    env.db.dispose()


def test_config_with_smtp_loads(tmp_path, monkeypatch):
    from tests.webhooks.conftest import ENV, write_config

    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SMTP_PASSWORD", "pw-from-env")
    path = write_config(
        tmp_path,
        "sqlite:///x.db",
        extra='\n[notify.smtp]\nhost = "mail"\nusername = "u"\npassword = "${SMTP_PASSWORD}"\n'
        'from_address = "c@example.com"\n',
    )
    cfg = load(path, shared_registry())
    built = build_notifiers(cfg.notify, shared_registry().notifiers)
    smtp_cfg = built["smtp"].config
    assert isinstance(smtp_cfg, SmtpConfig)
    assert smtp_cfg.effective_port == 587
    assert smtp_cfg.password is not None
    assert smtp_cfg.password.get_secret_value() == "pw-from-env"
    assert "pw-from-env" not in repr(smtp_cfg) and "pw-from-env" not in str(smtp_cfg)


@pytest.fixture
def tls_files(tmp_path, monkeypatch) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, trusted by the default SSL context."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.fail(
            "the openssl command is needed to make a test certificate (apt install openssl)"
        )
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return str(cert), str(key)


def test_starttls_and_implicit_tls(tls_files, monkeypatch):
    import ssl

    cert, key = tls_files
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)

    handler = Inbox()
    starttls = with_free_port(
        lambda port: started(handler, port, tls_context=server_context, require_starttls=True)
    )
    port = starttls.port
    try:
        cfg = SmtpConfig(
            host="127.0.0.1", port=port, security="starttls", from_address="c@example.com"
        )
        assert SmtpNotifier(cfg).send(message()) == "sent"
        # without STARTTLS the server refuses to take mail
        plain = SmtpConfig(
            host="127.0.0.1", port=port, security="none", from_address="c@example.com"
        )
        with pytest.raises(RuntimeFailure):
            SmtpNotifier(plain).send(message())
    finally:
        starttls.stop()

    implicit = with_free_port(lambda port: started(handler, port, ssl_context=server_context))
    port = implicit.port
    try:
        cfg = SmtpConfig(host="127.0.0.1", port=port, security="tls", from_address="c@example.com")
        assert SmtpNotifier(cfg).send(message()) == "sent"
        # the certificate really is checked: untrusted, the same server is refused
        monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent.pem")
        with pytest.raises(RuntimeFailure, match="SSLCertVerificationError"):
            SmtpNotifier(cfg).send(message())
    finally:
        implicit.stop()
    assert len(handler.mails) == 2
