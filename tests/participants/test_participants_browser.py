"""The intake page as a person uses it: headless Debian chromium, keyboard only, axe-core.

Chromium is driven by Playwright with Debian's executable (tests/prerequisites.py); axe-core
runs through ``axe-playwright-python`` (tests/a11y.py). No serious or critical violation is
allowed on the questionnaire, its error state, the thank-you page or the read-only page.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from coachbridge.programs.intake import make_token
from coachbridge.store import Database
from coachbridge.store.tables import ProfileRow
from sqlalchemy import select
from werkzeug.serving import make_server

from tests.a11y import serious_violations, violations
from tests.participants.participants_world import SECRET, company, pair
from tests.participants.test_participants_page import make_app
from tests.prerequisites import CHROMIUM, LAUNCH

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, **LAUNCH)  # type: ignore[arg-type]
        yield b
        b.close()


@pytest.fixture
def served(sqlite_url: str) -> Iterator[tuple[str, Database, dict[str, int]]]:
    db = Database(sqlite_url)
    db.upgrade()
    ids = company(db)
    server = make_server("127.0.0.1", 0, make_app(db), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", db, ids
    finally:
        server.shutdown()
        thread.join(5)
        db.dispose()


def _url(base: str, person_id: int) -> str:
    return f"{base}/intake/{make_token(SECRET, person_id, 'mentoring')}"


def test_the_questionnaire_with_the_keyboard_and_axe(
    browser: object, served: tuple[str, Database, dict[str, int]]
) -> None:
    base, db, ids = served
    page = browser.new_page()  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    url = _url(base, ids["lea"])
    response = page.goto(url)
    assert response.status == 200
    assert "style-src 'nonce-" in response.headers["content-security-policy"]
    assert page.get_by_role("heading", name="Mentoring: a few questions").is_visible()
    assert serious_violations(page) == []
    # The page's own style applied under its Content-Security-Policy.
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(246, 246, 248)"
    # Keyboard only: the first choice, the goal, the languages, a slot, then send.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "topic-1"
    page.keyboard.press("ArrowDown")  # (none) -> the first topic
    page.keyboard.press("ArrowDown")  # -> the second
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "goal"
    page.keyboard.type("Speak at the next all-hands")
    page.keyboard.press("Tab")
    page.keyboard.press("Control+A")
    page.keyboard.type("de, fr")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # Monday morning
    assert page.get_by_label("Monday morning").is_checked()
    for _ in range(10):  # past the other slots to the button
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.tagName") == "BUTTON"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_role("heading", name="Thank you").is_visible()
    assert serious_violations(page) == []
    with db.transaction() as s:
        row = s.scalars(select(ProfileRow)).one()
        assert row.topics == ["public speaking"]
        assert row.goal == "Speak at the next all-hands"
        assert (row.languages, row.availability) == (["de", "fr"], ["mon-am"])
    assert errors == []  # no script, nothing blocked by the policy
    # The error state (a 400 page; the browser logs the status): the question named, announced, the field marked; still no violation.
    page.goto(url)
    page.fill("#languages", "french")
    with page.expect_navigation():
        page.click("button")
    assert page.get_by_role("alert").inner_text().startswith("Languages:")
    assert page.get_attribute("#languages", "aria-invalid") == "true"
    assert serious_violations(page) == []
    page.close()


def test_the_guide_page_and_the_read_only_page_pass_axe(
    browser: object, served: tuple[str, Database, dict[str, int]]
) -> None:
    base, db, ids = served
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(_url(base, ids["gus"]))
    assert page.get_by_role("group", name="Which topics can you offer?").is_visible()
    assert serious_violations(page) == []
    page.get_by_label("negotiation").check()
    with page.expect_navigation():
        page.click("button")
    pair(db, ids["lea"], ids["gus"])
    response = page.goto(_url(base, ids["gus"]))
    assert response.status == 200
    assert "can no longer change" in page.content()
    assert serious_violations(page) == []
    # A forged link's page too.
    response = page.goto(f"{base}/intake/forged")
    assert response.status == 404
    assert serious_violations(page) == []
    # The check itself works: a page with an unlabelled field is caught.
    page.set_content("<html lang='en'><title>t</title><main><input type='text'></main></html>")
    assert any(v["id"] == "label" for v in violations(page))
    page.close()
