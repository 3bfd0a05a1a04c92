"""The intake page over the Flask test client: statuses, headers, the nonce, nothing half-written."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from coachbridge.programs.intake import make_token
from coachbridge.programs.profiles import set_profile
from coachbridge.store import Database
from coachbridge.store.tables import AuditRow, ProfileRow
from coachbridge_webhooks.intake_bp import intake
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.participants.participants_world import SECRET, TOPICS, app_for, company, pair, program


class _Runtime:
    def __init__(self, db: Database) -> None:
        self.config = app_for(db).config
        self.db = db

    def database(self) -> Database:
        return self.db


def make_app(db: Database) -> Flask:
    app = Flask("intake-test")
    app.extensions["coachbridge"] = _Runtime(db)
    app.register_blueprint(intake)
    return app


@pytest.fixture
def world(db: Database) -> tuple[FlaskClient, dict[str, int]]:
    return make_app(db).test_client(), company(db)


def url(person_id: int, *, now: datetime | None = None) -> str:
    return f"/intake/{make_token(SECRET, person_id, 'mentoring', now=now)}"


def _nonce(html: str) -> str:
    match = re.search(r'name="nonce" value="([0-9a-f]+)"', html)
    assert match
    return match.group(1)


def _rows(db: Database) -> list[tuple[int, list[str], str | None, list[str] | None, list[str]]]:
    with db.transaction() as s:
        return [
            (r.person_id, r.topics, r.goal, r.languages, r.availability)
            for r in s.scalars(select(ProfileRow).order_by(ProfileRow.person_id))
        ]


def _headers(res: object) -> None:
    headers = res.headers  # type: ignore[attr-defined]
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "form-action 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"


def test_the_learner_page_prefills_and_saves(
    world: tuple[FlaskClient, dict[str, int]], db: Database
) -> None:
    client, ids = world
    link = url(ids["lea"])
    page = client.get(link)
    assert page.status_code == 200
    _headers(page)
    html = page.get_data(as_text=True)
    assert "<script" not in html
    assert "Lea Tester1" in html and "Engineer 1" in html  # what the HRIS holds
    assert 'value="en, de"' in html  # the HRIS's languages, pre-filled
    # Labelled fields; checkbox groups in a fieldset with a legend; three ranked choices.
    for field in ("topic-1", "topic-2", "topic-3", "goal", "languages", "slot-mon-am"):
        assert f'for="{field}"' in html and f'id="{field}"' in html
    assert 'id="topic-4"' not in html
    assert html.count("<fieldset>") == 2 and html.count("<legend>") == 2
    form = {
        "nonce": _nonce(html),
        "topic": ["career change", "", "negotiation"],
        "goal": "Move to product\r\nmanagement",
        "languages": "de",
        "availability": ["tue-pm", "mon-am"],
    }
    res = client.post(link, data=form)
    assert res.status_code == 200 and "Thank you" in res.get_data(as_text=True)
    _headers(res)
    assert _rows(db) == [
        (
            ids["lea"],
            ["career change", "negotiation"],
            "Move to product\nmanagement",
            ["de"],
            ["tue-pm", "mon-am"],
        )
    ]
    # The earlier answer shows, and may be changed while unpaired.
    html = client.get(link).get_data(as_text=True)
    assert '<option value="career change" selected>' in html
    assert "Move to product\nmanagement</textarea>" in html and 'value="de"' in html
    assert 'id="slot-tue-pm" name="availability" value="tue-pm" checked' in html
    res = client.post(link, data={**form, "languages": "en, de", "topic": ["negotiation"]})
    assert res.status_code == 200
    # Languages left as the HRIS has them follow the HRIS.
    assert _rows(db)[0][1] == ["negotiation"] and _rows(db)[0][3] is None
    with db.transaction() as s:
        audits = list(s.scalars(select(AuditRow).where(AuditRow.object_type == "person")))
    assert [a.actor for a in audits] == [f"intake:{ids['lea']}"] * 2
    assert [a.details["by"] for a in audits] == ["self", "self"]
    assert "product" not in repr([a.details for a in audits])


def test_a_guide_ticks_any_number_of_topics(
    world: tuple[FlaskClient, dict[str, int]], db: Database
) -> None:
    client, ids = world
    link = url(ids["gus"])
    html = client.get(link).get_data(as_text=True)
    assert html.count('type="checkbox" id="topic-') == len(TOPICS)
    assert "How you can help" in html
    res = client.post(link, data={"nonce": _nonce(html), "topic": TOPICS})
    assert res.status_code == 200
    assert _rows(db)[0][1] == TOPICS


def test_bad_links_and_bad_answers(world: tuple[FlaskClient, dict[str, int]], db: Database) -> None:
    client, ids = world
    link = url(ids["lea"])
    nonce = _nonce(client.get(link).get_data(as_text=True))
    ok = {"nonce": nonce, "topic": ["negotiation"], "goal": "g", "languages": "en"}
    # Forged, foreign, tampered: 404. Expired: 410.
    assert client.get("/intake/not-a-token").status_code == 404
    assert client.get("/intake/" + "a" * 2000).status_code == 404
    tampered = link[:-3] + ("abc" if not link.endswith("abc") else "xyz")
    assert client.get(tampered).status_code == 404
    assert client.get(url(ids["out"])).status_code == 404  # not enrolled
    old = url(ids["lea"], now=datetime.now(UTC) - timedelta(days=22))
    res = client.get(old)
    assert res.status_code == 410 and "expired" in res.get_data(as_text=True)
    _headers(res)
    assert client.post(old, data=ok).status_code == 410
    # Not from our form: no nonce, or another link's nonce.
    assert client.post(link, data={**ok, "nonce": ""}).status_code == 400
    other = _nonce(client.get(url(ids["lou"])).get_data(as_text=True))
    assert client.post(link, data={**ok, "nonce": other}).status_code == 400
    # Answers that do not fit: 400, the question named on the page, the form kept.
    cases = [
        ({"topic": ["astrology"]}, "Topics:"),
        ({"topic": ["negotiation", "negotiation"]}, "Topics:"),
        ({"goal": "x" * 1001}, "Goal:"),
        ({"languages": "english"}, "Languages:"),
        ({"availability": ["sun-am"]}, "Availability:"),
    ]
    for change, label in cases:
        res = client.post(link, data={**ok, **change})
        html = res.get_data(as_text=True)
        assert res.status_code == 400, change
        assert label in html and 'role="alert"' in html and 'aria-invalid="true"' in html
        _headers(res)
    # Forced past the page: more topics than a learner may pick.
    res = client.post(link, data={**ok, "topic": TOPICS[:4]})
    assert res.status_code == 400 and "at most 3" in res.get_data(as_text=True)
    assert _rows(db) == []  # nothing half-written
    assert client.put(link).status_code == 405
    assert client.post(link, data={"goal": "x" * 70_000}).status_code == 413


def test_read_only_once_paired(world: tuple[FlaskClient, dict[str, int]], db: Database) -> None:
    client, ids = world
    app = app_for(db)
    set_profile(app, str(ids["lea"]), "mentoring", topics="negotiation", goal="My goal")
    link = url(ids["lea"])
    nonce = _nonce(client.get(link).get_data(as_text=True))
    pair(db, ids["lea"], ids["gus"])
    page = client.get(link)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "can no longer change" in html
    assert "<form" not in html and "negotiation" in html and "My goal" in html
    res = client.post(link, data={"nonce": nonce, "topic": ["career change"]})
    assert res.status_code == 409 and "can no longer change" in res.get_data(as_text=True)
    assert _rows(db)[0][1] == ["negotiation"]
    # The guide is paired too.
    assert "can no longer change" in client.get(url(ids["gus"])).get_data(as_text=True)


def test_a_program_asking_only_for_topics(db: Database) -> None:
    prog = program(goal=False, languages=False, availability=False)
    ids = company(db, prog)
    app = Flask("intake-only-topics")
    runtime = _Runtime(db)
    runtime.config = app_for(db, prog).config
    app.extensions["coachbridge"] = runtime
    app.register_blueprint(intake)
    client = app.test_client()
    link = url(ids["lea"])
    html = client.get(link).get_data(as_text=True)
    assert 'id="goal"' not in html and 'id="languages"' not in html and "slot-" not in html
    res = client.post(
        link, data={"nonce": _nonce(html), "topic": ["negotiation"], "goal": "ignored"}
    )
    assert res.status_code == 200
    assert _rows(db) == [(ids["lea"], ["negotiation"], None, None, [])]


def test_head_reads_the_page(world: tuple[FlaskClient, dict[str, int]], db: Database) -> None:
    """Mail systems' link checkers send HEAD: it reads like GET and never counts as a post."""
    client, ids = world
    res = client.head(url(ids["lea"]))
    assert res.status_code == 200 and res.get_data() == b""
    _headers(res)
    assert client.head("/intake/not-a-token").status_code == 404
    assert _rows(db) == []


def test_a_goal_with_a_control_character_is_refused(
    world: tuple[FlaskClient, dict[str, int]], db: Database
) -> None:
    """A NUL byte cannot be stored in PostgreSQL at all: refused as an answer, 400, not a 500."""
    client, ids = world
    link = url(ids["lea"])
    nonce = _nonce(client.get(link).get_data(as_text=True))
    for goal in ("lead\x00a team", "lead\x1b[1ma team"):
        res = client.post(link, data={"nonce": nonce, "topic": ["negotiation"], "goal": goal})
        html = res.get_data(as_text=True)
        assert res.status_code == 400 and "Goal:" in html and "control character" in html
    assert _rows(db) == []
    res = client.post(link, data={"nonce": nonce, "topic": ["negotiation"], "goal": "a\tb"})
    assert res.status_code == 200 and _rows(db)[0][2] == "a\tb"


def test_first_answers_posted_at_once_are_one_answer_the_last_one_kept(
    world: tuple[FlaskClient, dict[str, int]], db: Database
) -> None:
    """Two clicks or two tabs on a first answer: every post is saved (the later replaces the
    earlier, as an edit does), none answers 5xx, and the person has one answer."""
    client, ids = world
    link = url(ids["lea"])
    nonce = _nonce(client.get(link).get_data(as_text=True))
    app = make_app(db)
    statuses: list[int] = []
    start = threading.Barrier(4)

    def post(n: int) -> None:
        own = app.test_client()
        start.wait()
        res = own.post(link, data={"nonce": nonce, "topic": ["negotiation"], "goal": f"g{n}"})
        statuses.append(res.status_code)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 4
    rows = _rows(db)
    assert len(rows) == 1 and rows[0][2] in {"g0", "g1", "g2", "g3"}
    with db.transaction() as s:
        actions = [
            a.action for a in s.scalars(select(AuditRow).where(AuditRow.object_type == "person"))
        ]
    assert sorted(actions) == ["profile_answered"] + ["profile_replaced"] * 3
