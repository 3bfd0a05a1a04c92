"""A small company for the choice tests: a runtime (config, plugins, store) and people."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from coachbridge.config import Config, ReportsSettings, ServerSettings
from coachbridge.domain.program import Program
from coachbridge.notify.base import Message, Notifier, NotifierConfig
from coachbridge.plugins import Registry, make_plugin_manager
from coachbridge.store import Database
from pydantic import SecretStr

from tests.matching.matching_factory import enroll, person

SECRET = "choice-test-secret-not-for-production"
NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)

#: Every message any test runtime sent, in order (the "outbox" channel below).
OUTBOX: list[Message] = []


class Outbox(Notifier):
    """A channel that keeps what it is given (``[notify.outbox]``)."""

    config_model = NotifierConfig

    def send(self, message: Message) -> str:
        OUTBOX.append(message)
        return "sent"


class _Plugin:
    from coachbridge import hookimpl

    @hookimpl
    def coachbridge_register_notifiers(self, register: Any) -> None:
        register("outbox", Outbox)


def program(**fields: Any) -> Program:
    data: dict[str, Any] = {
        "id": "mentoring",
        "name": "Mentoring",
        "kind": "mentoring",
        "owner": "owner@example.com",
        "capacity": 1,
        "duration_weeks": 12,
        "cadence_days": 14,
        "weights": {"skills": 1.0},
        "choice": "learner_picks",
    }
    data.update(fields)
    return Program.model_validate(data)


@dataclass
class Ctx:
    """A ``Context``: the config, the plugins' registry and the store."""

    db: Database
    prog: Program
    config: Config = field(init=False)
    registry: Registry = field(init=False)

    def __post_init__(self) -> None:
        self.config = Config(
            path=None,
            programs={self.prog.id: self.prog},
            notify={"outbox": {}},
            reports=ReportsSettings(min_group_size=2),
            server=ServerSettings(secret_key=SecretStr(SECRET), public_url="http://cb.test"),
        )
        pm = make_plugin_manager(load_entry_points=False)
        pm.register(_Plugin())
        self.registry = Registry.build(pm)

    def database(self) -> Database:
        return self.db


def company(ctx: Ctx, learners: int = 3, guides: int = 4) -> tuple[list[int], list[int]]:
    """Learners 1.. want python; guides 101.. offer python (the lower id, the better the fit)."""
    lids = list(range(1, learners + 1))
    gids = list(range(101, 101 + guides))
    with ctx.db.transaction() as s:
        for g in gids:
            # Guides differ in how many of the learners' interests they cover: 101 covers most.
            skills = ["python", "sql", "leadership", "design"][: max(1, 4 - (g - 101))]
            person(s, g, level=6, skills=skills, department="Sales")
            enroll(s, ctx.prog, g, "guide")
        for lid in lids:
            person(s, lid, level=2, interests=["python", "sql", "leadership", "design"])
            enroll(s, ctx.prog, lid, "learner")
    return lids, gids


def rule_and_review(ctx: Ctx) -> int:
    """A review rule (a rating at most 0.25 enrolls the learner with a goal and 2 sessions),
    learner 7 who wants python, and that learner's low review stored: its event id."""
    import dataclasses

    from coachbridge.domain.rule import Rule
    from coachbridge.store.tables import ReviewEventRow

    rule = Rule.model_validate(
        {
            "on": "review.completed",
            "when": [{"field": "rating", "op": "<=", "value": 0.25}],
            "then": {
                "enroll": "mentoring",
                "role": "learner",
                "goal": "Plan after the {cycle} review",
                "sessions": 2,
            },
        }
    )
    ctx.config = dataclasses.replace(ctx.config, rules=[rule])
    with ctx.db.transaction() as s:
        person(s, 7, level=2, interests=["python"])
        event = ReviewEventRow(
            type="review.completed",
            person_id=7,
            cycle="2027-H1",
            rating=0.2,
            source="hr",
            source_event_id="e1",
            completed_at=NOW,
        )
        s.add(event)
        s.flush()
        return int(event.id)
