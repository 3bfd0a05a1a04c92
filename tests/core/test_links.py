"""Signed participant links: tokens and form nonces made before ``coachbridge.links`` existed
(by each feature's own serializer) still read, and are still made, byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import pytest
from coachbridge.errors import ConfigError
from coachbridge.links import LinkError, LinkExpired, LinkForged, LinkUsed
from coachbridge.pairings import feedback
from coachbridge.programs import choice, intake

from tests.participants.participants_world import program

KEY = "s3cret-key"
#: Made by the code before the shared signer: feedback at time 1_800_000_000 with nonce
#: "NONCE", intake for person 7 in "prog" on 2026-01-02, an offer link and a request link.
FEEDBACK = "eyJzIjozLCJwIjo3LCJuIjoiTk9OQ0UifQ.a0nSAA.qRPlL0kLH12Fvo40hTrTHgwGodc"
INTAKE = "eyJwIjo3LCJnIjoicHJvZyIsInQiOjE3NjczMTIwMDB9.u_WTwIKmpIIAVuCyp6v08u1QhGk"
OFFERS = "eyJrIjoibyIsImciOiJwcm9nIiwicCI6N30.DJvuKd1dVOfl21PVrTJJu0EAk6o"
REQUEST = "eyJrIjoiciIsIm8iOjExfQ.AX11VOZnhc67lVVF7NocO6KiqQQ"
SIGNED_AT = 1_800_000_000


def test_tokens_are_made_exactly_as_before():
    with (
        mock.patch("secrets.token_urlsafe", return_value="NONCE"),
        mock.patch("time.time", return_value=SIGNED_AT),
    ):
        assert feedback.make_token(KEY, 3, 7) == FEEDBACK
    assert intake.make_token(KEY, 7, "prog", now=datetime(2026, 1, 2, tzinfo=UTC)) == INTAKE
    assert choice.offers_token(KEY, "prog", 7) == OFFERS
    assert choice.request_token(KEY, 11) == REQUEST


def test_tokens_made_before_still_read():
    with mock.patch("time.time", return_value=SIGNED_AT + 3600):
        link = feedback.read_token(KEY, FEEDBACK)
    assert (link.session_id, link.person_id, link.nonce) == (3, 7, "NONCE")
    with (
        mock.patch("time.time", return_value=SIGNED_AT + 15 * 24 * 3600),
        pytest.raises(LinkExpired, match="14 days") as expired,
    ):
        feedback.read_token(KEY, FEEDBACK)
    assert expired.value.status == 410
    programs = {"prog": program()}  # the token names "prog"; its intake says how long it lasts
    read = intake.read_token(KEY, INTAKE, programs, now=datetime(2026, 1, 3, tzinfo=UTC))
    assert (read.person_id, read.program_id) == (7, "prog")
    assert choice.LINKS.read(KEY, OFFERS) == {"k": "o", "g": "prog", "p": 7}
    assert choice.LINKS.read(KEY, REQUEST) == {"k": "r", "o": 11}


def test_form_nonces_are_derived_as_before():
    # The offer and request pages have always used the feedback form's salt.
    assert feedback.form_nonce(KEY, FEEDBACK) == (
        "c3d69a10de78c53b67a2d1ecd54654ba55cc7b864fcd2617eefef77ab5cfbb78"
    )
    assert intake.form_nonce(KEY, INTAKE) == (
        "751ac96f2e56319ae3ae9e1ccbb53ba11cf18dd8eb3acfe690b1e180949cda8f"
    )
    assert choice.form_nonce(KEY, OFFERS) == (
        "460523d93f993da9400f5983c27243f5e93777cc4157f8c3f82bac1fa4712339"
    )
    for module, token in ((feedback, FEEDBACK), (intake, INTAKE), (choice, REQUEST)):
        nonce = module.form_nonce(KEY, token)
        assert module.check_form_nonce(KEY, token, nonce)
        assert not module.check_form_nonce(KEY, token, nonce[:-1] + "0")
        assert not module.check_form_nonce(KEY, token, None)
        assert not module.check_form_nonce(KEY, token, "é\udcff")  # any text, no crash


def test_one_kind_of_link_does_not_read_as_another():
    with pytest.raises(LinkForged) as forged:
        choice.LINKS.read(KEY, INTAKE)
    assert forged.value.status == 404 and str(forged.value) == "this link is not valid"
    with pytest.raises(LinkForged, match="this intake link is not valid"):
        intake.LINKS.read(KEY, OFFERS)
    with pytest.raises(LinkForged, match="this feedback link is not valid"):
        feedback.read_token(KEY, INTAKE)
    with pytest.raises(LinkForged):
        choice.LINKS.read("another key", OFFERS)
    with pytest.raises(LinkForged):
        choice.LINKS.read(KEY, "x" * 1001)  # refused before any work


def test_statuses_and_the_missing_secret():
    assert (LinkError.status, LinkForged.status, LinkExpired.status, LinkUsed.status) == (
        400,
        404,
        410,
        409,
    )
    assert issubclass(LinkUsed, LinkError)
    with pytest.raises(ConfigError, match="offer and request links need it"):
        choice.offers_token(None, "prog", 7)
    with pytest.raises(ConfigError, match="feedback links need it"):
        feedback.make_token("", 1, 2)
