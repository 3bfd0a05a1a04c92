"""Review events through the rules: enroll, match, schedule, create a goal, notify.

Each event is handled in one unit of work (``apply_rules`` runs inside the caller's
transaction), and every effect has a natural key, so processing an event again changes nothing:

* enrollment: unique (program, person, role);
* pairing: ``source_key = "rule:<event id>:<rule index>"`` (an open pairing of the learner in
  the program is reused rather than doubled);
* sessions: unique (pairing, seq); goal: ``source_key = "rule:<rule>:pairing:<id>:goal"``, one
  per pairing and rule, so the same rating seen again (by webhook, then by a sync, with
  different event ids) never gives the pairing a second goal;
* notifications: a ``NotificationRow`` per stable key, sent after the commit (at least once).

Callers: ``coachbridge sync`` (events found by a sync after the connector's ``rules_since``) and
the webhook worker (every delivered event). Events about a person not yet in the store stay
``unknown_person``; ``retry_unknown_person_events`` runs them once a sync brings the person
(callers that poll, such as the worker, check ``people_watermark`` first so an event about
someone who never arrives is not re-run every round).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from coachbridge.domain import Program
from coachbridge.domain.rule import Rule
from coachbridge.errors import CoachbridgeError, UserError
from coachbridge.hris.reviews import resolve_subject
from coachbridge.store import Database
from coachbridge.store.audit import audit
from coachbridge.store.tables import (
    AuditRow,
    EnrollmentRow,
    GoalRow,
    PairingRow,
    PersonRow,
    ProgramRow,
    ReviewEventRow,
    SessionRow,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from coachbridge.config import Config
    from coachbridge.notify.dispatch import Dispatcher
    from coachbridge.plugins import Registry

log = logging.getLogger(__name__)

NO_GUIDE = "no guide available"
#: Event types about a whole cycle, not a person: recorded, never enrolled.
CYCLE_EVENT_TYPES = ("review_cycle.launched", "review_cycle.closed")


class AutomationContext(Protocol):
    """What the rules need: the CLI's ``App`` and the worker's runtime both provide it."""

    @property
    def config(self) -> Config: ...

    @property
    def registry(self) -> Registry: ...

    def database(self) -> Database: ...


class RuleFailure(CoachbridgeError):
    """A rule cannot run as configured (e.g. its program is gone): permanent, not retried."""

    exit_code = 2


@dataclass
class Effects:
    """What one unit of work did, for the caller to act on after the commit."""

    notification_keys: list[str] = field(default_factory=list)
    pairings: list[int] = field(default_factory=list)
    sessions: list[int] = field(default_factory=list)
    outcomes: dict[int, dict[str, Any]] = field(default_factory=dict)

    def merge(self, other: Effects) -> None:
        self.notification_keys += other.notification_keys
        self.pairings += other.pairings
        self.sessions += other.sessions
        self.outcomes.update(other.outcomes)


class _Capped(Program):
    """A program whose plan is ``cap`` sessions (a rule's ``sessions = N``)."""

    cap: int = 0

    @property
    def sessions_planned(self) -> int:
        return self.cap


def _person_facts(person: PersonRow) -> dict[str, Any]:
    return {
        "person.id": person.id,
        "person.name": person.name,
        "person.email": person.email,
        "person.job_title": person.job_title,
        "person.department": person.department,
        "person.division": person.division,
        "person.location": person.location,
        "person.timezone": person.timezone,
        "person.level": person.level,
        "person.status": person.status,
        "person.hire_date": person.hire_date,
        **{f"person.extra.{name}": value for name, value in (person.extra or {}).items()},
    }


def event_facts(event: ReviewEventRow, person: PersonRow | None) -> dict[str, Any]:
    """The values rule conditions and text placeholders may use."""
    facts: dict[str, Any] = {
        "type": event.type,
        "cycle": event.cycle,
        "rating": event.rating,
        "raw_rating": event.raw_rating,
        "scale_min": event.scale_min,
        "scale_max": event.scale_max,
        "completed_at": event.completed_at,
        "source": event.source,
    }
    if person is not None:
        facts.update(_person_facts(person))
    return facts


class _Blank(dict[str, Any]):
    # Placeholders are checked at load time; what can still be missing is a person's extra
    # field the HRIS left empty for them, which reads as nothing.
    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, facts: dict[str, Any]) -> str:
    """Fill ``{cycle}``, ``{person_department}`` and ``{person_extra_<name>}`` placeholders."""
    values = _Blank({key.replace(".", "_"): ("" if v is None else v) for key, v in facts.items()})
    return template.format_map(values)


def _rule_key(index: int, rule: Rule) -> str:
    return rule.name or f"rules[{index}]"


def _in_cooldown(
    s: Session, rule_key: str, person_id: int, days: int, now: datetime, event_id: int
) -> bool:
    """The rule fired for this person within ``days``, for another event than ``event_id``
    (a retry of the same event, for a learner still waiting for a guide, is no new firing)."""
    since = now - timedelta(days=days)
    return any(
        (details or {}).get("event_id") != event_id
        for details in s.scalars(
            select(AuditRow.details).where(
                AuditRow.object_type == "rule",
                AuditRow.action == "rule_fired",
                AuditRow.object_id == f"{rule_key}:person:{person_id}",
                AuditRow.at >= since,
            )
        )
    )


def _open_pairing(s: Session, program_id: str, learner_id: int) -> PairingRow | None:
    return s.scalars(
        select(PairingRow)
        .where(
            PairingRow.program_id == program_id,
            PairingRow.learner_id == learner_id,
            PairingRow.status.in_(("proposed", "active", "paused")),
        )
        .order_by(PairingRow.id)
    ).first()


def _match(
    s: Session, program: Program, learner_id: int, registry: Registry, now: datetime
) -> PairingRow | None:
    from coachbridge.matching.service import match_one

    return match_one(s, program, learner_id, registry, now=now)


def _apply_rule(
    s: Session,
    ctx: AutomationContext,
    index: int,
    rule: Rule,
    event: ReviewEventRow,
    person: PersonRow,
    facts: dict[str, Any],
    now: datetime,
    dispatcher: Dispatcher | None,
    effects: Effects,
    *,
    retry: bool = False,
) -> dict[str, Any]:
    from coachbridge.pairings.scheduling import schedule_pairings
    from coachbridge.programs.enrollment import enroll_person

    key = _rule_key(index, rule)
    result: dict[str, Any] = {"rule": key, "program": rule.then.enroll}
    program = ctx.config.programs.get(rule.then.enroll)
    if program is None:
        raise RuleFailure(f"{key}: unknown program {rule.then.enroll!r} (not in the config)")
    _lock_program(s, program)
    cooling = rule.cooldown_days and not retry  # a retry is the same firing, not a new one
    if cooling and _in_cooldown(s, key, person.id, rule.cooldown_days, now, event.id):
        result["result"] = f"cooldown: fired for this person within {rule.cooldown_days} days"
        return result
    try:
        enrollment = enroll_person(s, program, person.id, rule.then.role, source="rule")
    except UserError as exc:  # e.g. the person left: recorded as the outcome, not retried
        result["result"] = f"not enrolled: {exc}"
        return result
    if enrollment.opted_out:
        result["result"] = "not enrolled: the person opted out of this program"
        return result
    result["enrolled"] = rule.then.role.value
    if not retry:
        audit(
            s, "rules", "rule_fired", "rule", f"{key}:person:{person.id}", at=now, event_id=event.id
        )
    if rule.then.role.value != "learner":
        result["result"] = "enrolled"
        return result

    source_key = f"rule:{event.id}:{index}"
    pairing = s.scalars(select(PairingRow).where(PairingRow.source_key == source_key)).first()
    pairing = pairing or _open_pairing(s, program.id, person.id)
    new_pairing = False
    if pairing is None:
        pairing = _match(s, program, person.id, ctx.registry, now)
        if pairing is None and _enroll_new_guides(s, program, now):
            pairing = _match(s, program, person.id, ctx.registry, now)
        if pairing is None:
            result["result"] = NO_GUIDE
            return result
        pairing.source_key = source_key
        new_pairing = True
        effects.pairings.append(pairing.id)
    result.update(pairing_id=pairing.id, guide_id=pairing.guide_id)

    if rule.then.sessions != 0 and pairing.status == "active":
        plan = program
        if rule.then.sessions is not None:
            plan = _Capped(**program.model_dump(), cap=rule.then.sessions)
        # Sessions start from when the pairing is made, never in the past (a synced event
        # may have been completed months ago).
        created = schedule_pairings(s, plan, [pairing.id], now=now)
        effects.sessions += [row.id for row in created]
    result["sessions"] = len(
        list(s.scalars(select(SessionRow.id).where(SessionRow.pairing_id == pairing.id)))
    )

    if rule.then.goal:
        goal_key = f"rule:{key[:150]}:pairing:{pairing.id}:goal"
        goal = s.scalars(select(GoalRow).where(GoalRow.source_key == goal_key)).first()
        if goal is None:
            start = (now if retry else event.completed_at or now).date()
            due = program.end or start + timedelta(weeks=program.duration_weeks)
            goal = GoalRow(
                owner_id=person.id,
                pairing_id=pairing.id,
                program_id=program.id,
                title=render(rule.then.goal, facts)[:500],
                due_date=due if isinstance(due, date) else None,
                source_key=goal_key,
            )
            s.add(goal)
            s.flush()
        result["goal_id"] = goal.id

    if rule.then.notify and dispatcher is not None and new_pairing:
        effects.notification_keys += dispatcher.queue_pairing(
            s, pairing.id, {"learner": pairing.learner_id, "guide": pairing.guide_id}
        )
    result["result"] = "paired" if new_pairing else "already paired"
    return result


#: (database, program) -> the people table's state when its guides were last looked for.
_guides_looked_for: dict[tuple[str, str], tuple[Any, ...]] = {}


def _enroll_new_guides(s: Session, program: Program, now: datetime) -> int:
    """No enrolled guide has room: enroll whoever has become eligible under the program's
    ``[programs.guides]`` (as ``coachbridge enroll`` would; opt-outs stand). Returns how many.

    Only when every enrolled guide is full: a learner no guide with room suits (score,
    reporting line, forbids) must not pull the whole eligible list into a hand-picked pool.
    It reads every person, so it runs at most once per change of the people table and day;
    that is remembered only once the transaction has committed, since enrollments a rollback
    undoes must be looked for again.
    """
    from coachbridge.domain import Role
    from coachbridge.matching.pool import free_capacity
    from coachbridge.programs.enrollment import enroll_eligible
    from sqlalchemy import event

    if program.guides is None or any(free_capacity(s, program).values()):
        return 0
    mark = (*_people_state(s), now.date())  # the date: tenure filters admit people as days pass
    key = (str(s.get_bind().url), program.id)
    if _guides_looked_for.get(key) == mark:
        return 0
    added = enroll_eligible(s, program, today=now.date(), roles=(Role.GUIDE,)).guide.added

    def remember(_session: Session) -> None:
        _guides_looked_for[key] = mark

    event.listen(s, "after_commit", remember, once=True)
    return added


def _lock_program(s: Session, program: Program) -> None:
    """Serialise rule work per program across workers (PostgreSQL row lock).

    Two workers pairing learners of one program at once could both see the same guide's last
    free slot; and enrollment inserts (key-share locks on the program row) interleaved with
    updates of that row deadlock. Taking the program row first, always, avoids both.
    """
    from coachbridge.programs.enrollment import ensure_program_row

    if s.get(ProgramRow, program.id, with_for_update=True) is None:
        ensure_program_row(s, program)
        s.get(ProgramRow, program.id, with_for_update=True)


def _people_from(ctx: AutomationContext, source: str) -> str | None:
    cfg = ctx.config.connectors.get(source)
    return cfg.people_from if cfg is not None else None


def apply_rules(
    s: Session,
    ctx: AutomationContext,
    event: ReviewEventRow,
    *,
    now: datetime,
    dispatcher: Dispatcher | None = None,
) -> Effects:
    """Run the config's rules on one stored event inside the caller's transaction. Idempotent.

    ``RuleFailure`` (a rule that cannot run as configured) propagates so the caller can
    dead-letter the delivery; "no guide available" and similar are recorded as the outcome.
    """
    effects = Effects()
    if event.rules_status not in ("pending", "unknown_person", "failed"):
        return effects
    if event.type in CYCLE_EVENT_TYPES and event.person_id is None:
        event.rules_status = "processed"
        event.outcome = {"rules": [], "note": "cycle event recorded"}
        effects.outcomes[event.id] = event.outcome
        return effects
    if event.person_id is None:
        from coachbridge.domain import ReviewEvent

        probe = ReviewEvent(
            type=event.type,
            subject_external_id=event.subject_external_id,
            subject_email=event.subject_email,
            source=event.source,
            source_event_id=event.source_event_id,
        )
        event.person_id = resolve_subject(s, probe, _people_from(ctx, event.source))
        if event.person_id is None:
            event.rules_status = "unknown_person"
            return effects
    person = s.get(PersonRow, event.person_id)
    assert person is not None
    facts = event_facts(event, person)
    # Rules run again on a corrected event (reviews.store_review_event): what a rule already did
    # for the event stands and is not redone (a learner it found no guide for is retried by
    # retry_waiting_learners, not here).
    fired = {
        r["rule"]: r
        for r in (event.outcome or {}).get("rules", [])
        if isinstance(r, dict) and "enrolled" in r and "rule" in r
    }
    results = []
    for index, rule in enumerate(ctx.config.rules):
        if _rule_key(index, rule) in fired:
            results.append(fired[_rule_key(index, rule)])
        elif rule.matches(facts):
            results.append(
                _apply_rule(s, ctx, index, rule, event, person, facts, now, dispatcher, effects)
            )
    event.rules_status = "processed"
    event.outcome = {"rules": results}
    effects.outcomes[event.id] = event.outcome
    return effects


def retry_no_guide(
    s: Session,
    ctx: AutomationContext,
    event: ReviewEventRow,
    *,
    now: datetime,
    dispatcher: Dispatcher | None = None,
) -> tuple[Effects, int]:
    """Redo the event's "no guide available" results, nothing else, inside the caller's
    transaction; returns the effects and how many of them are now paired.

    A result is redone only while its rule still exists under the same key, enrolls learners
    into the same program and matches the event; every other result is kept as it was. The
    rule does not fire anew (no second ``rule_fired`` audit, so it extends no cooldown), and
    the goal's due date counts from ``now``, when the coaching starts.
    """
    effects = Effects()
    person = s.get(PersonRow, event.person_id) if event.person_id is not None else None
    if person is None or event.rules_status != "processed":
        return effects, 0
    facts = event_facts(event, person)
    rules = {_rule_key(i, rule): (i, rule) for i, rule in enumerate(ctx.config.rules)}
    results: list[Any] = []
    paired = 0
    for old in (event.outcome or {}).get("rules", []):
        found = rules.get(old.get("rule", "")) if isinstance(old, dict) else None
        if (
            found is None
            or old.get("result") != NO_GUIDE
            or found[1].then.enroll != old.get("program")
            or found[1].then.role.value != "learner"
            or not found[1].matches(facts)
        ):
            results.append(old)
            continue
        index, rule = found
        result = _apply_rule(
            s, ctx, index, rule, event, person, facts, now, dispatcher, effects, retry=True
        )
        results.append(result)
        paired += result.get("result") == "paired"
    if paired:
        event.outcome = {**(event.outcome or {}), "rules": results}
        effects.outcomes[event.id] = event.outcome  # observers hear of it only when it changed
    return effects, paired


def after_commit(
    ctx: AutomationContext, effects: Effects, dispatcher: Dispatcher | None = None
) -> None:
    """Send the queued notifications and tell observers, once the store has committed."""
    if dispatcher is not None and effects.notification_keys:
        dispatcher.send_pending(ctx.database(), effects.notification_keys)
    if effects.outcomes:
        _observe_review_events(ctx, effects.outcomes)
    # New pairings were announced by the matching service when their transaction committed.
    if not effects.sessions:
        return
    from coachbridge.pairings.scheduling import session_model

    with ctx.database().transaction() as s:
        for srow in s.scalars(select(SessionRow).where(SessionRow.id.in_(effects.sessions))):
            try:
                model = session_model(srow)
            except Exception:  # observers are best-effort; a model mismatch must not block
                log.debug("session %s not passed to observers", srow.id, exc_info=True)
                continue
            ctx.registry.session_scheduled(model)


def _observe_review_events(ctx: AutomationContext, outcomes: dict[int, dict[str, Any]]) -> None:
    """Tell ``coachbridge_on_review_event`` observers what the rules did with each event."""
    from coachbridge.domain import ReviewEvent
    from pydantic import ValidationError

    with ctx.database().transaction() as s:
        rows = list(s.scalars(select(ReviewEventRow).where(ReviewEventRow.id.in_(list(outcomes)))))
    for row in rows:
        try:
            model = ReviewEvent(
                type=row.type,
                cycle=row.cycle,
                person_id=row.person_id,
                subject_external_id=row.subject_external_id,
                subject_email=row.subject_email,
                raw_rating=row.raw_rating,
                scale_min=row.scale_min,
                scale_max=row.scale_max,
                rating=row.rating,
                completed_at=row.completed_at,
                source=row.source,
                source_event_id=row.source_event_id,
            )
        except ValidationError:  # observers are best-effort; a stored oddity must not block
            log.debug("review event %s not passed to observers", row.id, exc_info=True)
            continue
        ctx.registry.review_event(model, outcomes[row.id])


def dispatcher_for(ctx: AutomationContext) -> Dispatcher:
    """The notification dispatcher for the config's ``[notify.*]`` sections."""
    from coachbridge.notify.dispatch import Dispatcher, build_notifiers

    return Dispatcher(build_notifiers(ctx.config.notify, ctx.registry.notifiers, ctx.config.label))


def process_review_events(
    app: AutomationContext,
    event_ids: Sequence[int],
    *,
    now: datetime | None = None,
    retry_unknown: bool = True,
) -> dict[int, dict[str, Any]]:
    """Apply the rules to the stored events ``event_ids``, one transaction each. Idempotent.

    Then (``retry_unknown``) events still waiting for their person are retried, since the sync
    that called this may have just brought them. Returns the outcome per processed event.
    """
    now = now or datetime.now(UTC)
    db = app.database()
    dispatcher = dispatcher_for(app)
    outcomes: dict[int, dict[str, Any]] = {}
    for event_id in event_ids:
        with db.transaction() as s:
            event = s.get(ReviewEventRow, event_id)
            if event is None:
                continue
            try:
                effects = apply_rules(s, app, event, now=now, dispatcher=dispatcher)
            except RuleFailure as exc:
                event.rules_status = "failed"
                event.outcome = {"error": str(exc)}
                log.warning("review event %s: %s", event_id, exc)
                continue
        outcomes.update(effects.outcomes)
        after_commit(app, effects, dispatcher)
    if retry_unknown:
        outcomes.update(retry_unknown_person_events(app, now=now, dispatcher=dispatcher))
    return outcomes


def no_guide_programs(outcome: dict[str, Any] | None) -> set[str]:
    """The programs an event's stored outcome says a rule found no guide in."""
    return {
        r["program"]
        for r in (outcome or {}).get("rules", [])
        if isinstance(r, dict) and r.get("result") == NO_GUIDE and isinstance(r.get("program"), str)
    }


def waiting_learner_events(s: Session) -> list[int]:
    """Events whose rule enrolled a learner but found no guide, for learners who are still
    active, enrolled (not opted out) and without any pairing in that program since the event:
    the ones to try again once guides have room. Oldest first."""
    from sqlalchemy import String, cast

    rows = s.execute(
        select(
            ReviewEventRow.id,
            ReviewEventRow.person_id,
            ReviewEventRow.received_at,
            ReviewEventRow.outcome,
            EnrollmentRow.program_id,
        )
        .join(
            EnrollmentRow,
            (EnrollmentRow.person_id == ReviewEventRow.person_id)
            & (EnrollmentRow.role == "learner")
            & EnrollmentRow.opted_out.is_(False),
        )
        .join(PersonRow, PersonRow.id == ReviewEventRow.person_id)
        .where(
            ReviewEventRow.rules_status == "processed",
            # Narrowed in SQL: only events an outcome says found no guide are read in Python.
            cast(ReviewEventRow.outcome, String).like(f"%{NO_GUIDE}%"),
            PersonRow.status == "active",
            PersonRow.forgotten.is_(False),
        )
        .order_by(ReviewEventRow.id)
    ).all()
    if not rows:
        return []
    learners = sorted({person_id for _, person_id, _, _, _ in rows})
    newest: dict[tuple[str, int], datetime] = {}  # each learner's newest pairing per program
    for chunk in range(0, len(learners), 900):
        for program_id, learner_id, created in s.execute(
            select(PairingRow.program_id, PairingRow.learner_id, PairingRow.created_at).where(
                PairingRow.learner_id.in_(learners[chunk : chunk + 900])
            )
        ):
            key = (program_id, learner_id)
            if key not in newest or created > newest[key]:
                newest[key] = created
    found: list[int] = []
    for event_id, person_id, received, outcome, program_id in rows:
        key = (program_id, person_id)
        if key in newest and newest[key] >= received:
            continue  # paired since (by hand, or by a later event), whatever became of it
        if program_id in no_guide_programs(outcome) and (not found or found[-1] != event_id):
            found.append(event_id)
    return found


def retry_waiting_learners(app: AutomationContext, *, now: datetime | None = None) -> int:
    """Try again to pair the learners rules enrolled but found no guide for (a guide may have
    room now: a pairing completed or ended, a guide joined). Only the events' "no guide
    available" results are redone (``retry_no_guide``), one event per transaction, so a learner
    paired now gets the sessions, goal and messages the rule would have given. While a program
    has no free place, only its first waiting learner is tried (that try may enroll newly
    eligible guides); the rest wait for the next run. Returns how many learners were paired."""
    from coachbridge.matching.pool import free_capacity

    now = now or datetime.now(UTC)
    db = app.database()
    with db.transaction() as s:
        ids = waiting_learner_events(s)
    if not ids:
        return 0
    dispatcher = dispatcher_for(app)
    full_and_tried: set[str] = set()
    paired = 0
    for event_id in ids:
        try:
            with db.transaction() as s:
                event = s.get(ReviewEventRow, event_id)
                if event is None:
                    continue
                wanted = [
                    app.config.programs[p]
                    for p in sorted(no_guide_programs(event.outcome))
                    if p in app.config.programs
                ]
                room = [p for p in wanted if sum(free_capacity(s, p).values()) > 0]
                if not room and all(p.id in full_and_tried for p in wanted):
                    continue
                full_and_tried.update(p.id for p in wanted if p not in room)
                effects, count = retry_no_guide(s, app, event, now=now, dispatcher=dispatcher)
        except CoachbridgeError as exc:  # one event's trouble must not stop the daily run
            log.warning("waiting learner of review event %s: %s", event_id, exc)
            continue
        except Exception:  # nor a bug (its transaction was rolled back)
            log.exception("waiting learner of review event %s: retry failed", event_id)
            continue
        paired += count
        after_commit(app, effects, dispatcher)
    return paired


def people_watermark(db: Database) -> tuple[int, int | None, datetime | None, int]:
    """What changes whenever a person is added, updated or linked to another connector's id:
    (count, max id, last update, number of external ids).

    Events waiting for their person can only resolve after one of these moved (a sync that only
    links an existing person to a new connector's id changes just the last), so a poller
    remembers this and retries only when it moved.
    """
    with db.transaction() as s:
        return _people_state(s)


def _people_state(s: Session) -> tuple[int, int | None, datetime | None, int]:
    from coachbridge.store.tables import ExternalIdRow
    from sqlalchemy import func

    count, top, updated = s.execute(
        select(func.count(PersonRow.id), func.max(PersonRow.id), func.max(PersonRow.updated_at))
    ).one()
    links = s.scalar(select(func.count()).select_from(ExternalIdRow))
    return int(count), top, updated, int(links or 0)


def retry_unknown_person_events(
    app: AutomationContext, *, now: datetime | None = None, dispatcher: Dispatcher | None = None
) -> dict[int, dict[str, Any]]:
    """Run the rules on events whose person was unknown and is now in the store."""
    now = now or datetime.now(UTC)
    db = app.database()
    dispatcher = dispatcher or dispatcher_for(app)
    with db.transaction() as s:
        ids = list(
            s.scalars(
                select(ReviewEventRow.id)
                .where(ReviewEventRow.rules_status == "unknown_person")
                .order_by(ReviewEventRow.id)
            )
        )
    outcomes: dict[int, dict[str, Any]] = {}
    for event_id in ids:
        with db.transaction() as s:
            event = s.get(ReviewEventRow, event_id)
            if event is None or event.rules_status != "unknown_person":
                continue
            try:
                effects = apply_rules(s, app, event, now=now, dispatcher=dispatcher)
            except RuleFailure as exc:
                event.rules_status = "failed"
                event.outcome = {"error": str(exc)}
                continue
        outcomes.update(effects.outcomes)
        after_commit(app, effects, dispatcher)
    return outcomes
