"""The /offers and /requests pages as a person uses them: Debian's chromium through Playwright,
checked with axe-core (axe-playwright-python): no serious or critical violation on any page,
the form, the error form, the thank-you page and the link error pages; keyboard alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from axe_playwright_python.sync_playwright import Axe
from coachbridge.matching.service import match_program
from coachbridge.programs.choice import offers_token, request_token
from coachbridge.store import Database
from coachbridge.store.tables import OfferRow, PairingRow
from sqlalchemy import select
from werkzeug.serving import make_server

from tests.choice.choice_world import SECRET, Ctx, company, program
from tests.choice.test_choice_pages import make_app
from tests.prerequisites import CHROMIUM, LAUNCH

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, **LAUNCH)  # type: ignore[arg-type]
        yield b
        b.close()


def _serious(page: object) -> list[str]:
    """The serious and critical axe-core violations of the page as it is now."""
    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']}"
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]


def _serve(ctx: Ctx) -> tuple[object, threading.Thread, str]:
    server = make_server("127.0.0.1", 0, make_app(ctx), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread, f"http://127.0.0.1:{server.server_port}"


def test_offers_page_accessible_and_keyboard_only(browser: object, sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.upgrade()
    ctx = Ctx(db, program(offer_alternatives=2))
    company(ctx, learners=1, guides=3)
    match_program(ctx, "mentoring", store_as="active", now=datetime.now(UTC))
    with db.transaction() as s:
        offers = list(s.scalars(select(OfferRow).order_by(OfferRow.rank)))
    server, thread, base = _serve(ctx)
    try:
        page = browser.new_page()  # type: ignore[attr-defined]
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        url = f"{base}/offers/{offers_token(SECRET, 'mentoring', offers[0].learner_id)}"
        response = page.goto(url)
        assert response.status == 200
        assert "form-action 'self'" in response.headers["content-security-policy"]
        assert page.get_by_role("heading", name="Choose your mentor").is_visible()
        assert _serious(page) == []
        # Keyboard alone: Tab into the radio group, arrow to the second option, submit.
        page.keyboard.press("Tab")
        page.keyboard.press("Space")
        page.keyboard.press("ArrowDown")
        assert page.locator(f"#offer-{offers[1].id}").is_checked()
        page.keyboard.press("Tab")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.get_by_role("heading", name="Thank you").is_visible()
        assert _serious(page) == []
        # The same link again: answered (409), an accessible page too.
        response = page.goto(url)
        assert response.status == 409
        assert _serious(page) == []
        response = page.goto(f"{base}/offers/forged")
        assert response.status == 404
        assert _serious(page) == []
        # The checker is no formality: an unlabelled field on the page is caught.
        page.evaluate("document.body.insertAdjacentHTML('beforeend', '<input type=text>')")
        assert any(v.startswith("label") for v in _serious(page))
        # Only the 409 and 404 statuses themselves; no blocked style, script or request.
        assert [e for e in errors if "Failed to load resource" not in e] == []
        page.close()
    finally:
        server.shutdown()  # type: ignore[attr-defined]
        thread.join(5)
    with db.transaction() as s:
        pairing = s.scalars(select(PairingRow).where(PairingRow.status == "active")).one()
        assert pairing.guide_id == offers[1].guide_id
    db.dispose()


def test_request_page_accessible_with_an_error(browser: object, sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.upgrade()
    ctx = Ctx(db, program(choice="guide_accepts"))
    company(ctx, learners=1, guides=2)
    match_program(ctx, "mentoring", store_as="active", now=datetime.now(UTC))
    with db.transaction() as s:
        (req,) = list(s.scalars(select(OfferRow)))
    server, thread, base = _serve(ctx)
    try:
        page = browser.new_page()  # type: ignore[attr-defined]
        response = page.goto(f"{base}/requests/{request_token(SECRET, req.id)}")
        assert response.status == 200
        assert _serious(page) == []
        # Too long a reason (the browser's maxlength bypassed): 400 with the field named.
        page.get_by_label("No, I decline").check()
        page.evaluate("document.getElementById('reason').removeAttribute('maxlength')")
        page.get_by_label("If you decline: why?").fill("x" * 1001)
        with page.expect_navigation():
            page.get_by_role("button", name="Send my answer").click()
        assert page.get_by_role("alert").inner_text().startswith("reason:")
        assert _serious(page) == []
        page.get_by_label("If you decline: why?").fill("parental leave")
        with page.expect_navigation():
            page.get_by_role("button", name="Send my answer").click()
        assert page.get_by_role("heading", name="Thank you").is_visible()
        assert _serious(page) == []
        page.close()
    finally:
        server.shutdown()  # type: ignore[attr-defined]
        thread.join(5)
    with db.transaction() as s:
        rows = list(s.scalars(select(OfferRow).order_by(OfferRow.id)))
        assert rows[0].status == "declined" and rows[0].reason == "parental leave"
    db.dispose()
