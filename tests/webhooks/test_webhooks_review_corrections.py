"""A corrected review (the same review sent again with another rating) is applied: the stored
rating changes, the rules run again, and what they already did for it stands."""

from __future__ import annotations

import json

from coachbridge.hris.sync import Syncer
from coachbridge.store.tables import AuditRow, PairingRow, ReviewEventRow, SessionRow
from coachbridge_webhooks.worker import Worker
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.webhooks.conftest import Env, post, review


def the_event(env: Env) -> ReviewEventRow:
    with env.db.transaction() as s:
        [event] = s.scalars(select(ReviewEventRow))
        s.expunge(event)
        return event


def pairings(env: Env) -> int:
    with env.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(PairingRow)))


def test_a_rating_corrected_downwards_starts_coaching(
    wenv: Env, client: FlaskClient, worker: Worker
) -> None:
    assert post(client, review("E1", rating=4)) == 202
    worker.drain()
    assert the_event(wenv).outcome == {"rules": []} and pairings(wenv) == 0

    assert post(client, review("E1", rating=2)) == 202  # entered wrongly, corrected
    assert worker.drain() == 1
    event = the_event(wenv)
    assert (event.raw_rating, event.rating, event.rules_status) == (2, 0.25, "processed")
    [outcome] = event.outcome["rules"]
    assert outcome["result"] == "paired"
    assert pairings(wenv) == 1
    with wenv.db.transaction() as s:
        [audit] = s.scalars(select(AuditRow).where(AuditRow.action == "review_corrected"))
        assert audit.object_id == str(event.id)
        assert audit.details["raw_rating"] == {"before": 4.0, "after": 2.0}
        assert audit.details["rating"] == {"before": 0.75, "after": 0.25}


def test_a_rating_corrected_upwards_keeps_the_coaching_it_started(
    wenv: Env, client: FlaskClient, worker: Worker
) -> None:
    assert post(client, review("E1", rating=2)) == 202
    worker.drain()
    first = the_event(wenv).outcome
    assert first["rules"][0]["result"] == "paired"

    assert post(client, review("E1", rating=4)) == 202
    assert worker.drain() == 1
    event = the_event(wenv)
    assert event.rating == 0.75  # reports see the corrected rating
    # The pairing, its sessions and goal stand (HR ends it if they wish); the outcome still
    # says what the rule did, not "cooldown" against its own firing.
    assert event.outcome == first
    assert pairings(wenv) == 1
    with wenv.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(SessionRow)) == 3

    assert post(client, review("E1", rating=4)) == 202  # the same again: nothing to correct
    worker.drain()
    with wenv.db.transaction() as s:
        corrected = select(func.count()).where(AuditRow.action == "review_corrected")
        assert s.scalar(corrected) == 1


def test_a_corrected_csv_review_is_applied_by_the_next_sync(wenv: Env) -> None:
    folder = wenv.path.parent
    reviews = folder / "reviews.csv"
    reviews.write_text(
        "employee_id,cycle,rating,completed_at\nE1,2026-H2,4,2099-01-01\n", encoding="utf-8"
    )
    config = wenv.path.read_text(encoding="utf-8").replace(
        'people = "people.csv"', 'people = "people.csv"\nreviews = "reviews.csv"'
    )
    wenv.path.write_text(config, encoding="utf-8")
    from tests.webhooks.conftest import load

    env = Env(wenv.path, wenv.db_url, load(wenv.path, wenv.registry), wenv.registry, wenv.db)
    connector = env.runtime().connector("hr")
    first = Syncer(env.db, connector).run()
    assert first.reviews_new == 1 and first.reviews_for_rules

    reviews.write_text(
        "employee_id,cycle,rating,completed_at\nE1,2026-H2,2,2099-01-01\n", encoding="utf-8"
    )
    preview = Syncer(env.db, connector).run(dry_run=True)
    assert (preview.reviews_new, preview.reviews_corrected) == (0, 1)
    again = Syncer(env.db, connector).run()
    assert (again.reviews_new, again.reviews_corrected) == (0, 1)
    assert again.as_dict()["reviews_corrected"] == 1
    event = the_event(env)
    assert event.raw_rating == 2 and again.reviews_for_rules == [event.id]
    assert json.dumps(again.as_dict())  # the CLI's JSON report stays serialisable


def test_a_resent_review_with_only_another_date_is_no_correction(
    wenv: Env, client: FlaskClient, worker: Worker
) -> None:
    # Without completed_at the generic connector dates a review by its message.
    first = review("E1", rating=4, completed_at=None)
    assert post(client, first) == 202
    again = {**first, "timestamp": "2026-11-21T08:00:00Z"}
    assert post(client, again) == 202
    worker.drain()
    with wenv.db.transaction() as s:
        assert not list(s.scalars(select(AuditRow).where(AuditRow.action == "review_corrected")))
    assert the_event(wenv).outcome == {"rules": []}


def test_a_correction_of_history_stays_history(wenv: Env) -> None:
    folder = wenv.path.parent
    reviews = folder / "reviews.csv"
    reviews.write_text("employee_id,cycle,rating,completed_at\nE1,2019-H2,4,2019-12-01\n")
    wenv.path.write_text(
        wenv.path.read_text().replace(
            'people = "people.csv"', 'people = "people.csv"\nreviews = "reviews.csv"'
        )
    )
    from tests.webhooks.conftest import load

    env = Env(wenv.path, wenv.db_url, load(wenv.path, wenv.registry), wenv.registry, wenv.db)
    connector = env.runtime().connector("hr")
    assert Syncer(env.db, connector).run().reviews_for_rules == []  # before rules_since
    reviews.write_text("employee_id,cycle,rating,completed_at\nE1,2019-H2,1,2019-12-01\n")
    again = Syncer(env.db, connector).run()
    assert again.reviews_corrected == 1 and again.reviews_for_rules == []
    event = the_event(env)
    assert (event.raw_rating, event.rules_status) == (1, "skipped")


def test_a_rule_held_back_by_a_cooldown_can_fire_on_a_later_correction(wenv: Env) -> None:
    from datetime import UTC, datetime, timedelta

    from coachbridge.domain import ReviewEvent
    from coachbridge.hris.reviews import store_review_event
    from coachbridge.programs.rules import apply_rules

    def event(cycle: str, raw: float) -> ReviewEvent:
        return ReviewEvent(
            cycle=cycle,
            subject_external_id="E1",
            raw_rating=raw,
            scale_max=5,
            completed_at=datetime(2026, 11, 20, tzinfo=UTC),
            source="reviews",
            source_event_id=f"review.completed:{cycle}:E1",
        )

    now = datetime.now(UTC)
    rt = wenv.runtime()
    with wenv.db.transaction() as s:
        earlier = store_review_event(s, event("2026-H1", 2), via="webhook").row
        apply_rules(s, rt, earlier, now=now)
        assert earlier.outcome["rules"][0]["result"] == "paired"
    with wenv.db.transaction() as s:
        later = store_review_event(s, event("2026-H2", 2), via="webhook").row
        apply_rules(s, rt, later, now=now + timedelta(days=1))
        assert later.outcome["rules"][0]["result"].startswith("cooldown")
        later_id = later.id
    # Its pairing ended meanwhile, the cooldown ran out, and the rating is corrected lower.
    with wenv.db.transaction() as s:
        for pairing in s.scalars(select(PairingRow)):
            pairing.status = "ended"
    with wenv.db.transaction() as s:
        stored = store_review_event(s, event("2026-H2", 1), via="webhook")
        assert stored.corrected and stored.row.id == later_id
        apply_rules(s, rt, stored.row, now=now + timedelta(days=200))
        assert stored.row.outcome["rules"][0]["result"] == "paired"  # run again, not kept
