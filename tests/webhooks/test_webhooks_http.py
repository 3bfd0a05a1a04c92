"""The delivery endpoint over the Flask test client: every status code, in the documented order."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path

import pytest
from coachbridge.store import Database
from coachbridge.store.tables import InboxRow
from coachbridge_webhooks import create_app, standard_webhooks
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.webhooks.conftest import SECRET, Env, review, signed


@pytest.fixture
def client(swenv: Env) -> FlaskClient:
    app = create_app(swenv.config, database=swenv.db, registry=swenv.registry)
    return app.test_client()


@pytest.fixture
def both(wenv: Env) -> FlaskClient:
    """A client on SQLite and on PostgreSQL, for what touches the store."""
    app = create_app(wenv.config, database=wenv.db, registry=wenv.registry)
    return app.test_client()


def _inbox(db: Database) -> list[InboxRow]:
    with db.transaction() as s:
        return list(s.scalars(select(InboxRow).order_by(InboxRow.id)))


def test_new_delivery_is_stored_and_a_repeat_is_a_duplicate(both: FlaskClient, wenv: Env):
    body, headers = signed(review(), msg_id="msg_1")
    first = both.post("/webhooks/reviews", data=body, headers=headers)
    assert first.status_code == 202
    assert first.get_json() == {"status": "accepted", "delivery_id": "msg_1"}
    again = both.post("/webhooks/reviews", data=body, headers=headers)
    assert again.status_code == 200
    assert again.get_json()["status"] == "duplicate"
    rows = _inbox(wenv.db)
    assert [(r.connector, r.delivery_id, r.status, r.body) for r in rows] == [
        ("reviews", "msg_1", "pending", body)
    ]


def test_unknown_connector_and_connector_without_webhooks_are_404(client: FlaskClient):
    body, headers = signed(review())
    assert client.post("/webhooks/nope", data=body, headers=headers).status_code == 404
    # "hr" is a CSV connector: it exists but receives no webhooks.
    assert client.post("/webhooks/hr", data=body, headers=headers).status_code == 404


def test_404_comes_before_every_other_check(client: FlaskClient):
    response = client.post(
        "/webhooks/nope", data=b"x" * (2 * 1024 * 1024), headers={"content-type": "text/plain"}
    )
    assert response.status_code == 404
    assert response.get_json() == {"error": "not found"}


def test_body_over_the_limit_is_413_by_header_and_by_real_size(client: FlaskClient, swenv: Env):
    big = json.dumps(review(note="x" * (1024 * 1024))).encode()
    body, headers = signed(big)
    response = client.post("/webhooks/reviews", data=body, headers=headers)
    assert response.status_code == 413

    # No Content-Length at all (a chunked upload): the real size counts.
    response = client.post(
        "/webhooks/reviews",
        input_stream=io.BytesIO(b"y" * (1024 * 1024 + 10)),
        headers={**headers, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert _inbox(swenv.db) == []


def test_413_comes_before_415_and_401(client: FlaskClient):
    response = client.post(
        "/webhooks/reviews", data=b"z" * (1024 * 1024 + 1), headers={"content-type": "text/plain"}
    )
    assert response.status_code == 413


def test_wrong_content_type_is_415_before_the_signature(client: FlaskClient):
    body, headers = signed(review())
    headers["content-type"] = "text/plain"
    assert client.post("/webhooks/reviews", data=body, headers=headers).status_code == 415
    # Even without any signature: 415 is checked first.
    response = client.post("/webhooks/reviews", data=body, headers={"content-type": "text/xml"})
    assert response.status_code == 415


def test_json_with_charset_parameter_is_accepted(client: FlaskClient):
    body, headers = signed(review())
    headers["content-type"] = "application/json; charset=utf-8"
    assert client.post("/webhooks/reviews", data=body, headers=headers).status_code == 202


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda h: h.pop("webhook-signature"), id="missing-signature"),
        pytest.param(lambda h: h.pop("webhook-id"), id="missing-id"),
        pytest.param(lambda h: h.update({"webhook-signature": "v1,AAAA"}), id="wrong-signature"),
        pytest.param(lambda h: h.update({"webhook-id": "msg_other"}), id="id-not-signed"),
        pytest.param(lambda h: h.update({"webhook-timestamp": "soon"}), id="timestamp-garbage"),
    ],
)
def test_bad_signatures_are_401_and_store_nothing(client: FlaskClient, swenv: Env, mutate):
    body, headers = signed(review())
    mutate(headers)
    response = client.post("/webhooks/reviews", data=body, headers=headers)
    assert response.status_code == 401
    assert response.get_json() == {"error": "signature missing, invalid or stale"}
    assert SECRET not in response.get_data(as_text=True)
    assert _inbox(swenv.db) == []


def test_replayed_delivery_with_valid_signature_but_old_timestamp_is_401(client: FlaskClient):
    old = int(time.time()) - 3600
    body, headers = signed(review(), msg_id="msg_old", timestamp=old)
    assert client.post("/webhooks/reviews", data=body, headers=headers).status_code == 401
    future = int(time.time()) + 3600
    body, headers = signed(review(), msg_id="msg_future", timestamp=future)
    assert client.post("/webhooks/reviews", data=body, headers=headers).status_code == 401
    within = int(time.time()) - 200
    body, headers = signed(review(), msg_id="msg_recent", timestamp=within)
    assert client.post("/webhooks/reviews", data=body, headers=headers).status_code == 202


def test_signature_header_with_garbage_entries_still_verifies(client: FlaskClient):
    body, headers = signed(review(), msg_id="msg_g")
    good = headers["webhook-signature"]
    headers["webhook-signature"] = f"garbage v2,xyz v1,!!notbase64!! v1, ,,, {good} v1,AAAA"
    assert client.post("/webhooks/reviews", data=body, headers=headers).status_code == 202
    headers["webhook-signature"] = "garbage v2,xyz v1,!!notbase64!! \x00"
    body, headers2 = signed(review(), msg_id="msg_h")
    headers2["webhook-signature"] = "garbage v2,xyz v1,!!notbase64!!"
    assert client.post("/webhooks/reviews", data=body, headers=headers2).status_code == 401


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b"[1, 2]", id="json-array"),
        pytest.param(json.dumps({"type": "review.completed"}).encode(), id="no-data"),
        pytest.param(json.dumps({"type": "salary.changed", "data": {}}).encode(), id="bad-type"),
        pytest.param(json.dumps(review(rating=9)).encode(), id="rating-off-scale"),
        pytest.param(json.dumps(review(rating="two")).encode(), id="rating-text"),
        # Lax parsing made these the lowest rating, and acted on them.
        pytest.param(json.dumps(review(rating=True)).encode(), id="rating-true"),
        pytest.param(json.dumps(review(rating="1")).encode(), id="rating-numeric-text"),
        pytest.param(json.dumps(review(rating_scale_max="5")).encode(), id="scale-text"),
        # A NUL cannot be stored in PostgreSQL: refused here, not dead-lettered by the worker.
        pytest.param(json.dumps(review(cycle="2026\u0000H2")).encode(), id="nul-in-cycle"),
        pytest.param(json.dumps(review(employee="E\u00001")).encode(), id="nul-in-employee"),
        pytest.param(
            json.dumps(review(email="a\u0007@example.com", employee=None)).encode(),
            id="bell-in-email",
        ),
        pytest.param(json.dumps(review(employee=None)).encode(), id="no-person"),
        pytest.param(
            json.dumps(
                {"type": "review.completed", "data": {**review()["data"], "cycle_id": ""}}
            ).encode(),
            id="empty-cycle",
        ),
        pytest.param(
            json.dumps({"type": "review_cycle.launched", "data": {"cycle_id": 7}}).encode(),
            id="cycle-id-number",
        ),
    ],
)
def test_valid_signature_but_malformed_body_is_400(client: FlaskClient, swenv: Env, payload):
    body, headers = signed(payload)
    response = client.post("/webhooks/reviews", data=body, headers=headers)
    assert response.status_code == 400
    assert response.get_json() == {"error": "malformed delivery"}
    assert _inbox(swenv.db) == []


def test_401_is_checked_before_400(client: FlaskClient):
    response = client.post(
        "/webhooks/reviews", data=b"not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 401


def test_cycle_events_are_accepted(client: FlaskClient):
    for kind in ("review_cycle.launched", "review_cycle.closed"):
        body, headers = signed({"type": kind, "data": {"cycle_id": "2026-H2"}})
        assert client.post("/webhooks/reviews", data=body, headers=headers).status_code == 202


def test_other_methods_and_paths_answer_generic_json(client: FlaskClient):
    response = client.get("/webhooks/reviews")
    assert response.status_code == 405
    assert response.get_json() == {"error": "method not allowed"}
    assert client.get("/nothing").get_json() == {"error": "not found"}
    assert client.post("/_bench/bare", data=b"{}").get_json() == {"error": "not found"}


def test_concurrent_duplicate_insert_is_answered_as_duplicate(wenv: Env):
    from coachbridge_webhooks import inbox

    assert inbox.accept(wenv.db, "reviews", "same", "application/json", b"{}") is True
    assert inbox.accept(wenv.db, "reviews", "same", "application/json", b"{}") is False
    with wenv.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(InboxRow)) == 1


def test_health_and_readiness(client: FlaskClient):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ok", "database": "ok"}


def test_readyz_is_503_when_migrations_are_pending(tmp_path: Path, swenv: Env):
    empty = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    app = create_app(swenv.config, database=empty, registry=swenv.registry)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "migrations pending"


def test_readyz_is_503_when_the_database_is_unreachable(swenv: Env):
    down = Database("postgresql://nobody@127.0.0.1:1/none")
    app = create_app(swenv.config, database=down, registry=swenv.registry)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert "nobody" not in response.get_data(as_text=True)


def test_generic_secret_must_be_whsec_base64(tmp_path: Path):
    with pytest.raises(ValueError):
        standard_webhooks.secret_key("whsec_not base64!")
    with pytest.raises(ValueError):
        standard_webhooks.secret_key("whsec_" + base64.b64encode(b"short").decode())
    assert len(standard_webhooks.secret_key(SECRET)) == 32


def test_group_commit_answers_each_concurrent_delivery_exactly(wenv: Env):
    """Concurrent deliveries share commits; identical ids still get one 'new' between them."""
    from concurrent.futures import ThreadPoolExecutor

    from coachbridge_webhooks.inbox import GroupCommitter

    committer = GroupCommitter(wenv.db)
    ids = [f"same-{n % 5}" for n in range(40)] + [f"unique-{n}" for n in range(40)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(
            pool.map(lambda d: committer.submit("reviews", d, "application/json", b"{}"), ids)
        )
    new_same = sum(1 for d, new in zip(ids, answers, strict=True) if new and d.startswith("same"))
    assert new_same == 5
    assert all(answers[40:])
    with wenv.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(InboxRow)) == 45
    # and a repeat later is a duplicate
    assert committer.submit("reviews", "unique-1", "application/json", b"{}") is False


def test_two_long_subjects_in_one_cycle_are_two_reviews(client: FlaskClient, swenv: Env):
    """The review's key is at most 300 characters: a cut-off key made two people's reviews one,
    the second overwriting the first."""
    from coachbridge.store.tables import ReviewEventRow

    cycle = "c" * 200
    alice, bob = "a" * 90 + "alice@example.com", "a" * 90 + "bob@example.com"
    for email in (alice, bob):
        body, headers = signed(review(None, cycle=cycle, email=email))
        assert client.post("/webhooks/reviews", data=body, headers=headers).status_code == 202
    from coachbridge_webhooks.worker import Worker

    Worker(swenv.runtime(), worker_id="test-worker", scheduler=False).drain()
    with swenv.db.transaction() as s:
        events = list(s.scalars(select(ReviewEventRow)))
    assert sorted(e.subject_email for e in events) == sorted([alice, bob])
    assert len({e.source_event_id for e in events}) == 2
    assert all(len(e.source_event_id) <= 300 for e in events)


@pytest.mark.parametrize(
    "spell",
    [
        lambda ts: "+" + ts,
        lambda ts: ts[0] + "_" + ts[1:],
        lambda ts: ts.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),
    ],
    ids=["sign", "underscore", "arabic-indic"],
)
def test_a_timestamp_is_ascii_digits_only_even_when_signed(client: FlaskClient, spell):
    """The contract (and the OpenAPI document) says ^[0-9]{1,12}$; int() takes more. Each
    stamp below is the current time, signed as sent, so only its spelling is wrong."""
    stamp = spell(str(int(time.time())))
    body = json.dumps(review()).encode()
    headers = {
        "webhook-id": "msg_stamp",
        "webhook-timestamp": stamp,
        "webhook-signature": standard_webhooks.sign(SECRET, "msg_stamp", stamp, body),
        "content-type": "application/json",
    }
    assert client.post("/webhooks/reviews", data=body, headers=headers).status_code == 401
