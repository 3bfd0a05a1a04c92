"""The /offers and /requests pages over the Flask test client: statuses, headers, nonce."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from coachbridge.matching.service import match_program
from coachbridge.programs.choice import offers_token, request_token
from coachbridge.store import Database
from coachbridge.store.tables import OfferRow, PairingRow
from coachbridge_webhooks.choice_bp import choice
from flask import Flask
from sqlalchemy import select

from tests.choice.choice_world import SECRET, Ctx, company, program
from tests.matching.matching_factory import enroll


def make_app(ctx: Ctx) -> Flask:
    app = Flask("choice-test")
    app.extensions["coachbridge"] = ctx
    app.register_blueprint(choice)
    return app


def _nonce(html: str) -> str:
    match = re.search(r'name="nonce" value="([0-9a-f]+)"', html)
    assert match
    return match.group(1)


def _rows(ctx: Ctx) -> list[OfferRow]:
    with ctx.db.transaction() as s:
        return list(s.scalars(select(OfferRow).order_by(OfferRow.id)))


def _headers(res) -> None:  # type: ignore[no-untyped-def]
    csp = res.headers["Content-Security-Policy"]
    assert csp.startswith("default-src 'none'")
    assert "form-action 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp
    assert res.headers["Referrer-Policy"] == "no-referrer"
    assert res.headers["Cache-Control"] == "no-store"


@pytest.fixture
def offered(db: Database) -> tuple[Ctx, Flask]:
    ctx = Ctx(db, program(offer_alternatives=2))
    company(ctx, learners=2, guides=3)
    match_program(ctx, "mentoring", store_as="active", now=datetime.now(UTC))
    return ctx, make_app(ctx)


def test_offers_page_pick_once(offered: tuple[Ctx, Flask]) -> None:
    ctx, app = offered
    client = app.test_client()
    first = next(o for o in _rows(ctx) if o.rank == 1)
    mine = [o for o in _rows(ctx) if o.round_id == first.id]
    url = f"/offers/{offers_token(SECRET, 'mentoring', first.learner_id)}"
    page = client.get(url)
    assert page.status_code == 200
    _headers(page)
    html = page.get_data(as_text=True)
    assert "<script" not in html
    for o in mine:
        assert f'for="offer-{o.id}"' in html and f'id="offer-{o.id}"' in html
    nonce = _nonce(html)
    # Not from our page (no or wrong nonce): refused, nothing written.
    assert client.post(url, data={"offer": str(first.id)}).status_code == 400
    assert client.post(url, data={"offer": str(first.id), "nonce": "0" * 64}).status_code == 400
    # No choice, or someone else's offer: 400 naming the field, on the form again.
    res = client.post(url, data={"nonce": nonce})
    assert res.status_code == 400 and "offer: choose one" in res.get_data(as_text=True)
    other = next(o for o in _rows(ctx) if o.learner_id != first.learner_id)
    res = client.post(url, data={"nonce": nonce, "offer": str(other.id)})
    assert res.status_code == 400 and 'name="offer"' in res.get_data(as_text=True)
    assert {o.status for o in _rows(ctx)} == {"open"}
    res = client.post(url, data={"nonce": nonce, "offer": str(first.id)})
    assert res.status_code == 200
    _headers(res)
    # The second click (or tab): answered.
    again = client.post(url, data={"nonce": nonce, "offer": str(mine[-1].id)})
    assert again.status_code == 409
    _headers(again)
    assert client.get(url).status_code == 409
    with ctx.db.transaction() as s:
        assert s.get(PairingRow, first.pairing_id).status == "active"


def test_forged_and_expired_links(offered: tuple[Ctx, Flask]) -> None:
    ctx, app = offered
    client = app.test_client()
    first = next(o for o in _rows(ctx) if o.rank == 1)
    token = offers_token(SECRET, "mentoring", first.learner_id)
    for bad in (
        token[:-2] + "xx",
        offers_token("another-secret", "mentoring", first.learner_id),
        offers_token(SECRET, "mentoring", 9999),
        "x" * 1200,
        request_token(SECRET, first.id),
    ):
        res = client.get(f"/offers/{bad}")
        assert res.status_code == 404, bad
        _headers(res)
    assert client.get(f"/requests/{token}").status_code == 404
    with ctx.db.transaction() as s:
        for row in s.scalars(select(OfferRow)):
            row.expires_at = datetime.now(UTC) - timedelta(minutes=1)
    res = client.get(f"/offers/{token}")
    assert res.status_code == 410
    _headers(res)


def test_request_page_decline_with_reason(db: Database) -> None:
    ctx = Ctx(db, program(choice="guide_accepts"))
    company(ctx, learners=1, guides=3)
    match_program(ctx, "mentoring", store_as="active", now=datetime.now(UTC))
    (req,) = _rows(ctx)
    client = make_app(ctx).test_client()
    url = f"/requests/{request_token(SECRET, req.id)}"
    page = client.get(url)
    assert page.status_code == 200
    _headers(page)
    html = page.get_data(as_text=True)
    for field in ("answer-accept", "answer-decline", "reason"):
        assert f'for="{field}"' in html and f'id="{field}"' in html
    nonce = _nonce(html)
    res = client.post(url, data={"nonce": nonce, "answer": "maybe"})
    assert res.status_code == 400 and "answer:" in res.get_data(as_text=True)
    res = client.post(url, data={"nonce": nonce, "answer": "decline", "reason": "x" * 1001})
    assert res.status_code == 400 and "reason:" in res.get_data(as_text=True)
    assert [o.status for o in _rows(ctx)] == ["open"]
    res = client.post(url, data={"nonce": nonce, "answer": "decline", "reason": "on leave"})
    assert res.status_code == 200
    rows = _rows(ctx)
    assert rows[0].status == "declined" and rows[0].reason == "on leave"
    assert (
        rows[1].kind == "request" and rows[1].status == "open" and rows[1].guide_id != req.guide_id
    )
    assert client.post(url, data={"nonce": nonce, "answer": "accept"}).status_code == 409
    # The new request's own link works.
    url2 = f"/requests/{request_token(SECRET, rows[1].id)}"
    page = client.get(url2)
    res = client.post(url2, data={"nonce": _nonce(page.get_data(as_text=True)), "answer": "accept"})
    assert res.status_code == 200
    with ctx.db.transaction() as s:
        assert s.get(PairingRow, rows[1].pairing_id).status == "active"


def test_offer_ids_no_row_can_have_are_a_400_not_a_database_error(
    offered: tuple[Ctx, Flask],
) -> None:
    ctx, app = offered
    client = app.test_client()
    first = next(o for o in _rows(ctx) if o.rank == 1)
    url = f"/offers/{offers_token(SECRET, 'mentoring', first.learner_id)}"
    nonce = _nonce(client.get(url).get_data(as_text=True))
    # Beyond a 64-bit integer (SQLite) and beyond PostgreSQL's 32-bit ids; zero and negatives.
    for bad in ("9" * 25, str(2**31), "0", "-3", " 12x"):
        res = client.post(url, data={"nonce": nonce, "offer": bad})
        assert res.status_code == 400, bad
        assert "offer: choose one" in res.get_data(as_text=True)
        _headers(res)
    assert {o.status for o in _rows(ctx)} == {"open"}


def test_another_programs_answered_offer_is_not_on_this_page(db: Database) -> None:
    """A learner in two choice programs posts the other program's (answered) offer id to this
    program's page: it is not one of this page's offers (400), not "already answered" (409)."""
    ctx = Ctx(db, program())
    company(ctx, learners=1, guides=3)
    match_program(ctx, "mentoring", store_as="active", now=datetime.now(UTC))
    second = program(id="second", name="Second")
    ctx.config.programs[second.id] = second
    with db.transaction() as s:
        for guide in (101, 102, 103):
            enroll(s, second, guide, "guide")
        enroll(s, second, 1, "learner")
    match_program(ctx, "second", store_as="active", now=datetime.now(UTC))
    rows = _rows(ctx)
    answered = next(o for o in rows if o.program_id == "mentoring" and o.rank == 1)
    with db.transaction() as s:
        s.get(OfferRow, answered.id).status = "accepted"
    client = make_app(ctx).test_client()
    url = f"/offers/{offers_token(SECRET, 'second', 1)}"
    nonce = _nonce(client.get(url).get_data(as_text=True))
    res = client.post(url, data={"nonce": nonce, "offer": str(answered.id)})
    assert res.status_code == 400 and "offer: choose one" in res.get_data(as_text=True)
    assert {o.status for o in _rows(ctx) if o.program_id == "second"} == {"open"}


def test_head_reads_the_page_like_get(offered: tuple[Ctx, Flask]) -> None:
    """Mail systems' link checkers send HEAD first: it reads, it never answers a form."""
    ctx, app = offered
    client = app.test_client()
    first = next(o for o in _rows(ctx) if o.rank == 1)
    url = f"/offers/{offers_token(SECRET, 'mentoring', first.learner_id)}"
    res = client.head(url)
    assert res.status_code == 200 and res.get_data() == b""
    _headers(res)
    assert client.head("/offers/forged").status_code == 404
    assert {o.status for o in _rows(ctx)} == {"open"}


def test_a_405_names_the_methods_the_page_takes(offered: tuple[Ctx, Flask]) -> None:
    from coachbridge_webhooks.app import create_app

    ctx, _ = offered
    first = next(o for o in _rows(ctx) if o.rank == 1)
    url = f"/offers/{offers_token(SECRET, 'mentoring', first.learner_id)}"
    client = create_app(ctx.config, database=ctx.db, registry=ctx.registry).test_client()
    for method in ("PUT", "DELETE", "PATCH"):
        res = client.open(url, method=method)
        assert res.status_code == 405, method
        assert set(res.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
        _headers(res)


def test_a_reason_counts_a_browsers_line_break_once_and_refuses_control_characters(
    db: Database,
) -> None:
    ctx = Ctx(db, program(choice="guide_accepts"))
    company(ctx, learners=1, guides=3)
    match_program(ctx, "mentoring", store_as="active", now=datetime.now(UTC))
    (req,) = _rows(ctx)
    client = make_app(ctx).test_client()
    url = f"/requests/{request_token(SECRET, req.id)}"
    nonce = _nonce(client.get(url).get_data(as_text=True))
    for bad in ("on\x00leave", "on leave\x1b[31m"):
        res = client.post(url, data={"nonce": nonce, "answer": "decline", "reason": bad})
        assert res.status_code == 400 and "reason: contains a control character" in res.get_data(
            as_text=True
        )
    assert [o.status for o in _rows(ctx)] == ["open"]
    # Ten lines that fill the page's 1,000-character field: a browser sends each break as CR LF.
    reason = "\r\n".join(["x" * 99] * 10)
    assert len(reason) > 1000 and len(reason.replace("\r\n", "\n")) <= 1000
    res = client.post(url, data={"nonce": nonce, "answer": "decline", "reason": reason})
    assert res.status_code == 200
    assert _rows(ctx)[0].reason == reason.replace("\r\n", "\n")


def test_an_accept_ignores_a_reason(db: Database) -> None:
    ctx = Ctx(db, program(choice="guide_accepts"))
    company(ctx, learners=1, guides=3)
    match_program(ctx, "mentoring", store_as="active", now=datetime.now(UTC))
    (req,) = _rows(ctx)
    client = make_app(ctx).test_client()
    url = f"/requests/{request_token(SECRET, req.id)}"
    nonce = _nonce(client.get(url).get_data(as_text=True))
    res = client.post(url, data={"nonce": nonce, "answer": "accept", "reason": "x" * 2000})
    assert res.status_code == 200
    assert _rows(ctx)[0].status == "accepted" and _rows(ctx)[0].reason is None
