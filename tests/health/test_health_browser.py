"""As a person would: the feedback form and the HTML report in headless Chromium.

Uses Debian's ``chromium`` (``tests/health/ensure_chromium.sh`` installs it) driven by Playwright
for Python with that executable; ``playwright install`` is never needed. A chromium that cannot
start fails the run before any test (tests/prerequisites.py); only ``COACHBRIDGE_TEST_SKIP=browser``
leaves these tests out.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from coachbridge.pairings.feedback import make_token
from coachbridge.reports import build_reports, render_html
from coachbridge.store import Database
from coachbridge.store.tables import FeedbackRow, SessionRow
from sqlalchemy import select
from werkzeug.serving import make_server

from tests.health.health_world import SECRET, World, program
from tests.health.test_health_form import make_app
from tests.health.test_health_reports import END, START, _company
from tests.health.test_health_reports import NOW as REPORT_NOW
from tests.prerequisites import CHROMIUM, LAUNCH

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, **LAUNCH)  # type: ignore[arg-type]
        yield b
        b.close()


class _Watch:
    """Collects failed requests, console errors and every URL the page asked for."""

    def __init__(self, page: object) -> None:
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.urls: list[str] = []
        page.on("requestfailed", lambda r: self.failed.append(r.url))  # type: ignore[attr-defined]
        page.on("request", lambda r: self.urls.append(r.url))  # type: ignore[attr-defined]
        page.on(  # type: ignore[attr-defined]
            "console", lambda m: self.errors.append(m.text) if m.type == "error" else None
        )
        page.on("pageerror", lambda e: self.errors.append(str(e)))  # type: ignore[attr-defined]


def test_feedback_form_in_a_browser(browser: object, sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.upgrade()
    with db.transaction() as s:
        w = World(s, program(), now=datetime.now(UTC))
        learner, guide = w.person("Lea"), w.person("Gus")
        session = w.session(w.pair(learner, guide), 1, "scheduled", seq=1)
        sid, lid = session.id, learner.id
    server = make_server("127.0.0.1", 0, make_app(db), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/feedback/{make_token(SECRET, sid, lid)}"
        page = browser.new_page()  # type: ignore[attr-defined]
        watch = _Watch(page)
        response = page.goto(url)
        assert "style-src 'nonce-" in response.headers["content-security-policy"]
        assert page.get_by_role("heading", name="How did your session go?").is_visible()
        # The inline style applied under the Content-Security-Policy (by its nonce): a blocked
        # style would leave the browser's defaults (white page, blue-less button).
        look = page.evaluate(
            "() => [getComputedStyle(document.body).backgroundColor,"
            " getComputedStyle(document.querySelector('button')).backgroundColor]"
        )
        assert look == ["rgb(246, 246, 248)", "rgb(31, 95, 168)"]
        # Keyboard only: Tab into the first radio group, Space to choose, arrows to move.
        page.keyboard.press("Tab")
        page.keyboard.press("Space")
        assert page.get_by_label("Yes, it was held").is_checked()
        page.keyboard.press("Tab")
        page.keyboard.press("Space")
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        assert page.get_by_label("4 – very good").is_checked()
        page.keyboard.press("Tab")
        page.keyboard.type("Helpful first chat")
        page.keyboard.press("Tab")
        page.keyboard.type("remember to ask about the team move")
        page.keyboard.press("Tab")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.get_by_role("heading", name="Thank you").is_visible()
        assert "remember to ask about the team move" in page.content()
        assert watch.failed == [] and watch.errors == []
        page.close()
    finally:
        server.shutdown()
        thread.join(5)
    with db.transaction() as s:
        fb = s.scalars(select(FeedbackRow)).one()
        assert (fb.session_id, fb.from_person_id, fb.rating) == (sid, lid, 4)
        assert fb.comment == "Helpful first chat"
        assert s.get(SessionRow, sid).status == "held"
    db.dispose()


def test_html_report_in_a_browser(browser: object, sqlite_url: str, tmp_path: Path) -> None:
    db = Database(sqlite_url)
    db.upgrade()
    _company(db)
    with db.transaction() as s:
        reports = build_reports(
            s, [program(start=START, end=END)], min_group_size=5, now=REPORT_NOW
        )
    path = tmp_path / "report.html"
    path.write_text(render_html(reports, now=REPORT_NOW, min_group_size=5), encoding="utf-8")
    page = browser.new_page(viewport={"width": 390, "height": 844})  # type: ignore[attr-defined]
    watch = _Watch(page)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    assert page.get_by_role("heading", name="Mentoring").first.is_visible()
    assert page.locator("svg").count() >= 4
    # Readable on a phone: nothing wider than the screen.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    assert watch.failed == [] and watch.errors == []
    assert watch.urls == [path.as_uri()]  # the page itself, nothing else
    page.close()
    db.dispose()
