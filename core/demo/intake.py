"""The demo's intake round: the mentoring pilot asks its people a few questions before round two.

The pilot's learners and guides are invited by mail (``intake send``), answer on the intake
page's code path (``save_intake``), some only after a reminder and some never; the daily run
reminds those who have not answered, at most twice. Then the next round is proposed twice from
the same store: once weighing the answers' topics, once with the ``topics`` weight at 0, and
the demo counts how many learners who named topics got a guide offering one of them. Nothing is
paired: both are proposals. Everything goes through the same functions the commands use; only
the people's answers and the passing of days are simulated (seeded).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from coachbridge.app import App
from coachbridge.config import Config
from coachbridge.domain.profile import SLOTS, Intake, language_codes
from coachbridge.domain.program import Program
from coachbridge.errors import ConfigError
from coachbridge.matching.pool import check_weights
from coachbridge.matching.service import Proposal, propose
from coachbridge.plugins import Registry
from coachbridge.programs.intake import (
    make_token,
    read_token,
    save_intake,
    send_invitations,
    send_reminders,
)
from coachbridge.store import Database
from coachbridge.store.profiles import answered_profiles
from coachbridge.store.tables import PersonRow

__all__ = ["TOPICS", "intake_round"]

TOPICS = [
    "negotiation",
    "public speaking",
    "managing a first team",
    "career change",
    "data literacy",
    "giving feedback",
    "strategy",
    "cross-team influence",
]
#: What the questionnaire's topics weigh when the answers count (the other weights unchanged).
TOPICS_WEIGHT = 0.4
SEED = 1812
GOALS = (
    "Lead my team through next year's reorganisation with confidence.",
    "Prepare for a move into a product role.",
    "Present our results to the leadership team without notes.",
    "Negotiate budgets with other departments.",
)
HELP = (
    "Ten years of leading teams across two offices.",
    "I moved from engineering to product and can share how.",
    "I run the quarterly business review.",
)


@dataclass
class _Context:
    """The demo's app with the pilot's questionnaire added to its program."""

    config: Config
    registry: Registry
    db: Database

    def database(self) -> Database:
        return self.db


def _with_intake(program: Program) -> Program:
    return program.model_copy(
        update={"intake": Intake(topics=TOPICS, max_topics=3, link_days=21, remind_after_days=5)}
    )


def topics_known(registry: Registry) -> bool:
    """True when ``[programs.weights]`` accepts ``topics`` (a built-in or plugin criterion):
    asked of the same check a configured program goes through."""
    probe = Program.model_validate({"id": "probe", "kind": "mentoring", "weights": {"topics": 1}})
    try:
        check_weights(probe, registry.criteria)
    except ConfigError:
        return False
    return True


def _weighted(program: Program, weight: float) -> Program:
    weights = {k: v for k, v in program.weights.items() if k != "topics"}
    if weight:
        weights["topics"] = weight
    return program.model_copy(update={"weights": weights})


def _answer(
    rng: random.Random, role: str, person: PersonRow
) -> tuple[list[str], str | None, list[str] | None, list[str]]:
    if role == "learner":
        topics = rng.sample(TOPICS, rng.randint(1, 3))
        goal = rng.choice(GOALS)
    else:
        topics = rng.sample(TOPICS, rng.randint(2, 5))
        goal = rng.choice(HELP) if rng.random() < 0.7 else None
    known = language_codes(person.languages)
    languages = [*known, "en"] if known and "en" not in known and rng.random() < 0.5 else None
    slots = sorted(rng.sample(SLOTS, rng.randint(3, 7)), key=SLOTS.index)
    return topics, goal, languages, slots


def _hits(proposal: Proposal, wanted: dict[int, set[str]], offered: dict[int, set[str]]) -> int:
    """Learners who named topics and were proposed a guide offering one of them."""
    return sum(
        1
        for pair in proposal.pairs
        if wanted.get(pair.learner_id, set()) & offered.get(pair.guide_id, set())
    )


def intake_round(
    app: App,
    registry: Registry,
    say: Callable[[str], None],
    *,
    program_id: str,
    now: datetime,
) -> dict[str, Any]:
    """Run the intake round on the pilot ``program_id``; return its figures."""
    program = _with_intake(app.config.program(program_id))
    config = replace(app.config, programs={**app.config.programs, program_id: program})
    ctx = _Context(config, registry, app.database())
    db = ctx.database()
    rng = random.Random(SEED)

    invited = [i for i in send_invitations(ctx, program_id, now=now) if i.status == "sent"]
    roles = {item.person_id: item.role for item in invited}
    # Who answers, and when: most at once, some after a reminder, some never.
    plan: dict[int, int | None] = {}
    for pid in sorted(roles):
        draw = rng.random()
        plan[pid] = 1 if draw < 0.55 else 6 if draw < 0.75 else 11 if draw < 0.85 else None
    secret = config.server.secret_key

    def answer_due(day: int) -> int:
        answered = 0
        with db.transaction() as s:
            for pid in sorted(p for p, d in plan.items() if d == day):
                person = s.get(PersonRow, pid)
                assert person is not None
                topics, goal, languages, slots = _answer(rng, roles[pid], person)
                at = now + timedelta(days=day, hours=2)
                link = read_token(
                    secret, make_token(secret, pid, program_id, now=at), config.programs, now=at
                )
                save_intake(
                    s,
                    config.programs,
                    link,
                    topics=topics,
                    goal=goal,
                    languages=languages,
                    availability=slots,
                    now=at,
                )
                answered += 1
        return answered

    first = answer_due(1)
    reminders = [len(send_reminders(ctx, now=now + timedelta(days=5)))]
    later = answer_due(6)
    reminders.append(len(send_reminders(ctx, now=now + timedelta(days=10))))
    later += answer_due(11)
    reminders.append(len(send_reminders(ctx, now=now + timedelta(days=15))))  # none: two at most
    never = sum(1 for d in plan.values() if d is None)

    learners = [p for p, r in roles.items() if r == "learner"]
    guides = [p for p, r in roles.items() if r == "guide"]
    say("")
    say(
        f"{(now + timedelta(days=15)):%B %Y}: an intake round before the pilot's second round "
        f"(topics, goal, languages, free slots)"
    )
    say(
        f"  {len(invited)} people invited by mail ({len(learners)} learners, {len(guides)} "
        f"guides); {first} answered within a day, {later} after a reminder, {never} never"
    )
    say(
        f"  reminders sent: {reminders[0]} after 5 days, {reminders[1]} after 10, "
        f"{reminders[2]} after 15 (two at most)"
    )

    at = now + timedelta(days=15)
    with db.transaction() as s:
        answers = answered_profiles(s, program_id)
        wanted = {
            p: set(a.topics) for p, a in answers.items() if roles.get(p) == "learner" and a.topics
        }
        offered = {p: set(a.topics) for p, a in answers.items() if roles.get(p) == "guide"}
        # Without a `topics` criterion (not installed), the weight cannot be named at all.
        weight = TOPICS_WEIGHT if topics_known(registry) else 0.0
        with_answers = propose(s, _weighted(program, weight), registry, now=at)
        without = propose(s, _weighted(program, 0.0), registry, now=at)
    hit_with, hit_without = _hits(with_answers, wanted, offered), _hits(without, wanted, offered)
    say(
        f"  next round proposed twice: {len(wanted)} learners named topics; a guide offering one "
        f"of them for {hit_with} with the answers weighed, {hit_without} without"
    )
    if not topics_known(registry):
        say("  (no `topics` matching criterion is installed, so both proposals weigh the same)")
    return {
        "invited": len(invited),
        "answered": first + later,
        "never": never,
        "reminders": reminders,
        "topic_hits": (hit_with, hit_without),
    }
