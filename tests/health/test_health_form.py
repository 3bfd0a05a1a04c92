"""The feedback form over the Flask test client: every bad link or answer is a 4xx page."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from coachbridge.pairings.feedback import make_token
from coachbridge.store import Database
from coachbridge.store.tables import FeedbackLinkRow, FeedbackRow, SessionRow
from coachbridge_webhooks.feedback_bp import feedback
from flask import Flask
from itsdangerous.timed import TimestampSigner
from sqlalchemy import func, select

from tests.health.health_world import SECRET, World, config, program


class _Runtime:
    def __init__(self, db: Database) -> None:
        self.config = config(program())
        self.db = db

    def database(self) -> Database:
        return self.db


def make_app(db: Database) -> Flask:
    app = Flask("feedback-test")
    app.extensions["coachbridge"] = _Runtime(db)
    app.register_blueprint(feedback)
    return app


@pytest.fixture
def setup(db: Database) -> tuple[Flask, dict[str, int]]:
    from datetime import UTC, datetime

    with db.transaction() as s:
        w = World(s, program(), now=datetime.now(UTC))
        learner, guide = w.person("Lea"), w.person("Gus")
        pairing = w.pair(learner, guide)
        session = w.session(pairing, 1, "scheduled", seq=1)
        ids = {"session": session.id, "learner": learner.id, "guide": guide.id}
    return make_app(db), ids


def _nonce(html: str) -> str:
    match = re.search(r'name="nonce" value="([0-9a-f]+)"', html)
    assert match
    return match.group(1)


def _count(db: Database, table: type) -> int:
    with db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def test_form_answer_once(setup: tuple[Flask, dict[str, int]], db: Database) -> None:
    app, ids = setup
    client = app.test_client()
    url = f"/feedback/{make_token(SECRET, ids['session'], ids['learner'])}"
    page = client.get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for field in ("outcome-held", "rating-1", "rating-5", "comment", "private_note"):
        assert f'for="{field}"' in html and f'id="{field}"' in html
    assert "<script" not in html
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    nonce = _nonce(html)
    form = {"nonce": nonce, "outcome": "held", "rating": "4", "private_note": "just mine"}
    # No nonce: not from our form (CSRF).
    assert client.post(url, data={**form, "nonce": ""}).status_code == 400
    for bad in ("0", "6", "x"):
        res = client.post(url, data={**form, "rating": bad})
        assert res.status_code == 400 and "rating" in res.get_data(as_text=True)
    assert client.post(url, data={**form, "rating": ""}).status_code == 400
    assert client.post(url, data={**form, "outcome": "maybe"}).status_code == 400
    assert _count(db, FeedbackRow) == 0 and _count(db, FeedbackLinkRow) == 0
    done = client.post(url, data=form)
    answered = done.get_data(as_text=True)
    assert done.status_code == 200 and "Thank you" in answered and "just mine" in answered
    again = client.post(url, data=form)
    assert again.status_code == 409 and "just mine" not in again.get_data(as_text=True)
    # A used link opened again (a forwarded mail, a link scanner) never shows the private note.
    revisit = client.get(url)
    assert revisit.status_code == 409 and "just mine" not in revisit.get_data(as_text=True)
    assert _count(db, FeedbackRow) == 1 and _count(db, FeedbackLinkRow) == 1
    with db.transaction() as s:
        assert s.get(SessionRow, ids["session"]).status == "held"


def test_bad_links(setup: tuple[Flask, dict[str, int]]) -> None:
    app, ids = setup
    client = app.test_client()
    token = make_token(SECRET, ids["session"], ids["learner"])
    assert client.get(f"/feedback/{token[:-3]}xyz").status_code == 404
    assert client.get("/feedback/not-a-token").status_code == 404
    assert (
        client.get(
            f"/feedback/{make_token('other-secret', ids['session'], ids['learner'])}"
        ).status_code
        == 404
    )
    assert client.get(f"/feedback/{make_token(SECRET, 999_999, ids['learner'])}").status_code == 404
    assert client.get(f"/feedback/{make_token(SECRET, ids['session'], 999_999)}").status_code == 404
    assert client.get("/feedback/" + "a" * 5000).status_code == 404
    # A link made 15 days ago has expired (links work for 14 days).
    real = TimestampSigner.get_timestamp
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - 15 * 86400)
        old = make_token(SECRET, ids["session"], ids["learner"])
    res = client.get(f"/feedback/{old}")
    assert res.status_code == 410 and "expired" in res.get_data(as_text=True)
    assert client.get(f"/feedback/{token}").status_code == 200


def test_served_by_the_real_app(setup: tuple[Flask, dict[str, int]], db: Database) -> None:
    from coachbridge_webhooks.app import create_app

    _, ids = setup
    app = create_app(config(program()), database=db)
    client = app.test_client()
    token = make_token(SECRET, ids["session"], ids["guide"])
    assert client.get(f"/feedback/{token}").status_code == 200
    assert client.get("/feedback/forged").status_code == 404


def test_daily_job_for_the_worker(db: Database) -> None:
    from coachbridge.plugins import Registry
    from coachbridge.store.tables import NotificationRow

    from tests.health.health_world import App

    app = App(config(program()), db)
    # The worker's scheduler runs what the plugins register; the core registers the daily run.
    jobs = {job.name: job for job in Registry.build().jobs(app.config)}
    job = jobs["daily:program-health"]
    assert job.every is not None and job.every.days == 1
    with db.transaction() as s:
        w = World(s, program(), now=datetime.now(UTC))
        w.pair(w.person("Lea"), w.person("Gus"))  # made 60 days ago, never met
    job.run(app, datetime.now(UTC))
    with db.transaction() as s:
        keys = set(s.scalars(select(NotificationRow.key)))
    assert any(k.startswith("health:no_first_session:") for k in keys)
    assert any(k.startswith("health:no_first_session_owner:") for k in keys)


def test_form_shows_the_session_time_in_the_persons_time_zone(
    setup: tuple[Flask, dict[str, int]], db: Database
) -> None:
    from coachbridge.store.tables import PersonRow

    app, ids = setup
    with db.transaction() as s:
        s.get(PersonRow, ids["learner"]).timezone = "Asia/Kolkata"
        s.get(SessionRow, ids["session"]).start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    url = f"/feedback/{make_token(SECRET, ids['session'], ids['learner'])}"
    html = app.test_client().get(url).get_data(as_text=True)
    assert "Tuesday 01 December 2026, 14:30 (Asia/Kolkata)" in html


def test_form_posts_are_limited_to_64_kib(
    setup: tuple[Flask, dict[str, int]], db: Database
) -> None:
    app, ids = setup
    client = app.test_client()
    url = f"/feedback/{make_token(SECRET, ids['session'], ids['learner'])}"
    nonce = _nonce(client.get(url).get_data(as_text=True))
    form = {"nonce": nonce, "outcome": "held", "rating": "4", "comment": "x" * 70_000}
    assert client.post(url, data=form).status_code == 413
    assert _count(db, FeedbackRow) == 0
    small = client.post(url, data={**form, "comment": "x" * 1000})
    assert small.status_code == 200


PARTICIPANT_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


def _csp(response: object) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]  # type: ignore[attr-defined]
    return dict((part.strip() + " ").split(" ", 1) for part in header.split(";"))


def _assert_hardened(response: object) -> dict[str, str]:
    for name, value in PARTICIPANT_HEADERS.items():
        assert response.headers[name] == value, name  # type: ignore[attr-defined]
    csp = _csp(response)
    assert csp["default-src"].strip() == "'none'"
    assert csp["form-action"].strip() == "'self'"
    assert csp["frame-ancestors"].strip() == "'none'"
    assert csp["base-uri"].strip() == "'none'"
    assert set(csp) <= {"default-src", "form-action", "frame-ancestors", "base-uri", "style-src"}
    if "style-src" in csp:
        assert re.fullmatch(r"'nonce-[A-Za-z0-9_-]{20,}'", csp["style-src"].strip())
    return csp


def test_every_participant_answer_is_hardened(
    setup: tuple[Flask, dict[str, int]], db: Database
) -> None:
    """Whatever the status, a page under /feedback/ leaks no token and loads nothing else."""
    from coachbridge_webhooks.app import create_app

    _, ids = setup
    client = create_app(config(program()), database=db).test_client()
    token = make_token(SECRET, ids["session"], ids["learner"])
    url = f"/feedback/{token}"
    form_page = client.get(url)
    html = form_page.get_data(as_text=True)
    nonce = _assert_hardened(form_page)["style-src"].strip()[len("'nonce-") : -1]
    # The page's one inline style carries this response's nonce; nothing else is inline.
    assert html.count("<style") == 1 and f'<style nonce="{nonce}">' in html
    assert "style=" not in html.replace(f'<style nonce="{nonce}">', "")
    again = _csp(client.get(url))["style-src"]
    assert nonce not in again  # a fresh nonce per response
    form = {"nonce": _nonce(html), "outcome": "held", "rating": "4"}
    real = TimestampSigner.get_timestamp
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - 15 * 86400)
        expired = make_token(SECRET, ids["session"], ids["learner"])
    answers = {
        400: client.post(url, data={**form, "nonce": ""}),
        413: client.post(url, data={**form, "comment": "x" * 70_000}),
        404: client.get("/feedback/not-a-token"),
        410: client.get(f"/feedback/{expired}"),
        405: client.put(url),
    }
    answers[200] = client.post(url, data=form)
    answers[409] = client.get(url)
    for status, response in answers.items():
        assert response.status_code == status
        _assert_hardened(response)
    # Answers Flask gives before the blueprint (no such address under /feedback/) too.
    for path in ("/feedback/", f"/feedback/{token}/more"):
        response = client.get(path)
        assert response.status_code == 404
        _assert_hardened(response)


def test_an_unavailable_form_is_hardened(db: Database) -> None:
    """A 503 (no secret key configured) is a participant page too."""
    app = make_app(db)
    app.extensions["coachbridge"].config.server.secret_key = None
    response = app.test_client().get("/feedback/anything")
    assert response.status_code == 503
    _assert_hardened(response)


def _chunked(client: object, url: str, form: dict[str, str]) -> object:
    """A post whose body comes in chunks, without a Content-Length (as some clients send),
    through a server that decodes the chunks and says so (gunicorn, Werkzeug's own)."""
    body = urlencode(form).encode()
    return client.post(  # type: ignore[attr-defined]
        url,
        input_stream=io.BytesIO(body),
        environ_overrides={"wsgi.input_terminated": True},
        headers={
            "Transfer-Encoding": "chunked",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )


def test_a_chunked_post_over_the_limit_is_refused_whole(
    setup: tuple[Flask, dict[str, int]], db: Database
) -> None:
    """Werkzeug stops reading a body without a Content-Length at the limit and says nothing:
    the form cut short there must not be taken for the answer."""
    app, ids = setup
    client = app.test_client()
    url = f"/feedback/{make_token(SECRET, ids['session'], ids['learner'])}"
    nonce = _nonce(client.get(url).get_data(as_text=True))
    # The valid fields first, so that a cut-off body would still parse as an answer.
    form = {"nonce": nonce, "outcome": "held", "rating": "4", "comment": "x" * 70_000}
    res = _chunked(client, url, form)
    assert res.status_code == 413  # type: ignore[attr-defined]
    assert _count(db, FeedbackRow) == 0
    res = _chunked(client, url, {**form, "comment": "fine"})
    assert res.status_code == 200  # type: ignore[attr-defined]
    with db.transaction() as s:
        assert [f.comment for f in s.scalars(select(FeedbackRow))] == ["fine"]


def test_head_reads_the_form_and_control_characters_are_refused(
    setup: tuple[Flask, dict[str, int]], db: Database
) -> None:
    app, ids = setup
    client = app.test_client()
    url = f"/feedback/{make_token(SECRET, ids['session'], ids['learner'])}"
    head = client.head(url)
    assert head.status_code == 200 and head.get_data() == b""
    assert head.headers["Referrer-Policy"] == "no-referrer"
    nonce = _nonce(client.get(url).get_data(as_text=True))
    for field in ("comment", "private_note"):
        form = {"nonce": nonce, "outcome": "held", "rating": "4", field: "a\x00b"}
        res = client.post(url, data=form)
        assert res.status_code == 400 and "control character" in res.get_data(as_text=True)
    assert _count(db, FeedbackRow) == 0
    form = {"nonce": nonce, "outcome": "held", "rating": "4", "comment": "line\r\nnext\tcol"}
    assert client.post(url, data=form).status_code == 200
    with db.transaction() as s:
        assert [f.comment for f in s.scalars(select(FeedbackRow))] == ["line\nnext\tcol"]
