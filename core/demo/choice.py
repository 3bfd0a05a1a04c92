"""The demo's choice round: people agree before a pairing starts (a program's ``choice``).

A small mentoring round with ``choice = "both"``: each learner is offered their best guide
plus up to two alternatives and picks one (some pick an alternative), then each guide is asked
to accept; one guide declines, and that learner is re-matched alone, exactly, without the
guide who declined. The answers are simulated (seeded by the people's ids); everything else
goes through the same services the ``offers`` command and the ``/offers`` and ``/requests``
pages use.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from coachbridge.config import Config
from coachbridge.domain.program import Program
from coachbridge.matching.service import match_program
from coachbridge.programs import choice
from coachbridge.programs.enrollment import enroll_person
from coachbridge.store import Database
from coachbridge.store.tables import OfferRow, PairingRow, PersonRow, SessionRow
from sqlalchemy import func, select

PROGRAM_ID = "mentoring-with-choice"
LEARNERS = 6
GUIDES = 12


@dataclasses.dataclass
class _Ctx:
    """The demo's context with one more program: the choice round's."""

    config: Config
    registry: Any
    db: Database

    def database(self) -> Database:
        return self.db


def _program() -> Program:
    return Program.model_validate(
        {
            "id": PROGRAM_ID,
            "name": "Mentoring with mutual choice",
            "kind": "mentoring",
            "owner": "anna.muller@northwind.example",
            "duration_weeks": 12,
            "cadence_days": 14,
            "capacity": 1,
            "choice": "both",
            "offer_alternatives": 2,
            "respond_within_days": 5,
            "weights": {"skills": 0.4, "seniority": 0.2, "timezone": 0.2, "language": 0.2},
        }
    )


def _cohort(db: Database) -> tuple[list[int], list[int]]:
    """Learners (levels 2-3) not in any open pairing and guides (levels 5-9; a guide's places
    are counted per program), by id."""
    with db.transaction() as s:
        busy = set(
            s.scalars(
                select(PairingRow.learner_id).where(PairingRow.status.in_(("active", "paused")))
            )
        ) | set(
            s.scalars(
                select(PairingRow.guide_id).where(PairingRow.status.in_(("active", "paused")))
            )
        )
        people = list(
            s.scalars(
                select(PersonRow)
                .where(PersonRow.status == "active", PersonRow.forgotten.is_(False))
                .order_by(PersonRow.id)
            )
        )
    learners = [p.id for p in people if p.level in (2, 3) and p.id not in busy][:LEARNERS]
    guides = [p.id for p in people if p.level in (5, 6, 7, 8, 9)][:GUIDES]
    return learners, guides


def _open(db: Database, kind: str) -> list[OfferRow]:
    with db.transaction() as s:
        return list(
            s.scalars(
                select(OfferRow)
                .where(
                    OfferRow.program_id == PROGRAM_ID,
                    OfferRow.kind == kind,
                    OfferRow.status == "open",
                )
                .order_by(OfferRow.learner_id, OfferRow.rank)
            )
        )


def run_choice_round(story: Any, app: Any, now: datetime) -> None:
    """Play one choice round on ``app``'s store at ``now`` and tell it through ``story.say``."""
    program = _program()
    config = dataclasses.replace(app.config, programs={**app.config.programs, program.id: program})
    ctx = _Ctx(config, story.registry, app.database())
    db = ctx.database()
    learners, guides = _cohort(db)
    with db.transaction() as s:
        for pid in learners:
            enroll_person(s, program, pid, "learner", source="demo")
        for pid in guides:
            enroll_person(s, program, pid, "guide", source="demo")
    match_program(ctx, PROGRAM_ID, store_as="active", now=now, actor="demo")
    offers = _open(db, "offer")
    rounds = {o.round_id for o in offers}
    story.say()
    story.say(
        f"{program.name} (choice = {program.choice.value}): {len(learners)} learners, "
        f"{len(guides)} guides, one learner each"
    )
    story.say(
        f"  {len(rounds)} learners offered their best match and up to "
        f"{program.offer_alternatives} alternatives ({len(offers)} offers, the best match's "
        "place held for each)"
    )
    # The learners answer: every third picks their best alternative still open.
    later = now + timedelta(hours=3)
    picks = {"best": 0, "alternative": 0}
    by_learner: dict[int, list[OfferRow]] = {}
    for o in offers:
        by_learner.setdefault(o.learner_id, []).append(o)
    for i, learner_id in enumerate(sorted(by_learner)):
        mine = [o.id for o in _open(db, "offer") if o.learner_id == learner_id]
        alternatives = [o for o in by_learner[learner_id] if o.rank > 1 and o.id in mine]
        pick = alternatives[0] if i % 3 == 0 and alternatives else by_learner[learner_id][0]
        if pick.id not in mine:
            continue
        choice.accept(ctx, pick.id, actor=f"demo:learner:{learner_id}", now=later)
        picks["alternative" if pick.rank > 1 else "best"] += 1
    story.say(
        f"  the learners chose: {picks['best']} their best match, {picks['alternative']} an "
        "alternative (its guide then disappears from others' offers once full)"
    )
    # The guides answer: the first one asked declines, the others accept.
    requests = _open(db, "request")
    answered = now + timedelta(days=1)
    declined = requests[0] if requests else None
    for req in requests:
        if req is declined:
            answer = choice.decline(
                ctx, req.id, reason="no time this quarter", actor="demo:guide", now=answered
            )
        else:
            choice.accept(ctx, req.id, actor="demo:guide", now=answered)
    if declined is not None:
        story.say(
            f"  {len(requests) - 1} guides accepted; one declined (its reason goes to the "
            "owner and is counted in the report, never shown with a name)"
        )
        story.say(
            f"  the declined learner was re-matched alone, the declining guide excluded: {answer.note}"
        )
        # The re-matched learner picks again, and that guide accepts.
        again = now + timedelta(days=2)
        for o in _open(db, "offer"):
            if o.learner_id == declined.learner_id and o.rank == 1:
                choice.accept(ctx, o.id, actor="demo:learner", now=again)
        for req in _open(db, "request"):
            choice.accept(ctx, req.id, actor="demo:guide", now=again)
    with db.transaction() as s:
        active = s.scalar(
            select(func.count()).where(
                PairingRow.program_id == PROGRAM_ID, PairingRow.status == "active"
            )
        )
        sessions = s.scalar(
            select(func.count())
            .select_from(SessionRow)
            .join(PairingRow, PairingRow.id == SessionRow.pairing_id)
            .where(PairingRow.program_id == PROGRAM_ID)
        )
    story.say(
        f"  {active} pairings active once both sides agreed, {sessions} sessions planned "
        "the moment each started"
    )
