"""What the rules do with one review event, inside the caller's transaction: enroll, match,
schedule, create a goal, queue messages.

Every effect has a natural key, so applying the rules to an event again changes nothing:

* enrollment: unique (program, person, role);
* pairing: ``source_key = "rule:<event id>:<rule index>"`` (an open pairing of the learner in
  the program is reused rather than doubled);
* sessions: unique (pairing, seq); goal: ``source_key = "rule:<rule>:pairing:<id>:goal"``, one
  per pairing and rule, so the same rating seen again (by webhook, then by a sync, with
  different event ids) never gives the pairing a second goal;
* notifications: a ``NotificationRow`` per stable key, sent after the commit (at least once).

``apply_rules_batch`` runs several events at once (the webhook worker's batches): the learners
they enroll are matched together, one exact solve per program, then each event finishes with
the same keys as above.

Running events through this one transaction at a time, and what happens after each commit, is
``coachbridge.programs.automation``; learners left without a guide are retried by
``coachbridge.programs.waiting``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from coachbridge import metrics
from coachbridge.context import Context, Hooks
from coachbridge.domain import Program
from coachbridge.domain.pairing import OPEN
from coachbridge.domain.rule import Rule
from coachbridge.errors import CoachbridgeError, UserError
from coachbridge.hris.reviews import resolve_subject
from coachbridge.pairings.goals import TEXT_LIMIT, create_goal
from coachbridge.store.audit import audit
from coachbridge.store.chunks import in_chunks
from coachbridge.store.people import people_state
from coachbridge.store.tables import (
    AuditRow,
    PairingRow,
    PersonRow,
    ProgramRow,
    ReviewEventRow,
    SessionRow,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session, SessionTransaction

if TYPE_CHECKING:
    from coachbridge.notify.dispatch import Dispatcher

NO_GUIDE = "no guide available"
#: Event types about a whole cycle, not a person: recorded, never enrolled.
CYCLE_EVENT_TYPES = ("review_cycle.launched", "review_cycle.closed")


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
            PairingRow.status.in_(OPEN),
        )
        .order_by(PairingRow.id)
    ).first()


def _match(
    s: Session, program: Program, learner_id: int, registry: Hooks, now: datetime
) -> PairingRow | None:
    from coachbridge.matching.service import match_one

    return match_one(s, program, learner_id, registry, now=now)


@dataclass
class _Pending:
    """A learner a rule enrolled who still needs a guide: matched later, with the cohort."""

    index: int
    rule: Rule
    program: Program
    event: ReviewEventRow
    person: PersonRow
    facts: dict[str, Any]
    result: dict[str, Any]
    retry: bool = False


def _start_rule(
    s: Session,
    ctx: Context,
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
) -> dict[str, Any] | _Pending:
    """Everything a rule does up to matching: the finished result, or the learner to match."""
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
    from coachbridge.programs.enrollment import enroll_person

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
    pending = _Pending(index, rule, program, event, person, facts, result, retry)
    pairing = s.scalars(
        select(PairingRow).where(PairingRow.source_key == _source_key(event, index))
    ).first()
    pairing = pairing or _open_pairing(s, program.id, person.id)
    if pairing is None:
        return pending
    _finish_rule(s, pending, pairing, False, now, dispatcher, effects)
    return result


def _source_key(event: ReviewEventRow, index: int) -> str:
    return f"rule:{event.id}:{index}"


def _plan_for(rule: Rule, program: Program) -> Program:
    if rule.then.sessions is None:
        return program
    return _Capped(**program.model_dump(), cap=rule.then.sessions)


def _session_counts(s: Session, pairing_ids: Iterable[int]) -> dict[int, int]:
    counts = dict.fromkeys(pairing_ids, 0)
    for chunk in in_chunks(counts):
        rows = s.execute(
            select(SessionRow.pairing_id, func.count())
            .where(SessionRow.pairing_id.in_(chunk))
            .group_by(SessionRow.pairing_id)
        )
        counts.update((pairing_id, count) for pairing_id, count in rows)
    return counts


def _finish_rule(
    s: Session,
    p: _Pending,
    pairing: PairingRow | None,
    new_pairing: bool,
    now: datetime,
    dispatcher: Dispatcher | None,
    effects: Effects,
    *,
    session_counts: Mapping[int, int] | None = None,
) -> None:
    """The rest of a learner rule once its learner's pairing is known (None: no guide):
    sessions, goal, messages, each with its natural key.

    ``session_counts``: the pairing's sessions were already planned with the rest of its
    cohort (``_plan_cohort``); this is how many it has.
    """
    from coachbridge.pairings.scheduling import schedule_pairings

    rule, program, result = p.rule, p.program, p.result
    if pairing is None:
        result["result"] = NO_GUIDE
        return
    if new_pairing:
        pairing.source_key = _source_key(p.event, p.index)
        effects.pairings.append(pairing.id)
    result.update(pairing_id=pairing.id, guide_id=pairing.guide_id)

    if session_counts is not None:
        result["sessions"] = session_counts.get(pairing.id, 0)
    else:
        if rule.then.sessions != 0 and pairing.status == "active":
            # Sessions start from when the pairing is made, never in the past (a synced event
            # may have been completed months ago).
            created = schedule_pairings(s, _plan_for(rule, program), [pairing.id], now=now)
            effects.sessions += [row.id for row in created]
        result["sessions"] = _session_counts(s, [pairing.id])[pairing.id]

    if pairing.status != "active":
        # Offered to the learner or requested of the guide (the program's ``choice``): the goal
        # and the messages wait until it starts (``finish_activated``).
        result["result"] = pairing.status if new_pairing else f"already {pairing.status}"
        return
    if rule.then.goal:
        key = _rule_key(p.index, rule)
        start = (now if p.retry else p.event.completed_at or now).date()
        due = program.end or start + timedelta(weeks=program.duration_weeks)
        goal, _ = create_goal(
            s,
            owner_id=p.person.id,
            pairing_id=pairing.id,
            program_id=program.id,
            title=render(rule.then.goal, p.facts)[:TEXT_LIMIT],
            due_date=due if isinstance(due, date) else None,
            # one per pairing and rule: the same rating seen again adds no second goal
            source_key=f"rule:{key[:150]}:pairing:{pairing.id}:goal",
        )
        result["goal_id"] = goal.id

    if rule.then.notify and dispatcher is not None and new_pairing:
        effects.notification_keys += dispatcher.queue_pairing(
            s, pairing.id, {"learner": pairing.learner_id, "guide": pairing.guide_id}
        )
    result["result"] = "paired" if new_pairing else "already paired"


def finish_activated(
    s: Session,
    ctx: Context,
    pairing: PairingRow,
    now: datetime,
    dispatcher: Dispatcher | None,
    effects: Effects,
) -> bool:
    """A pairing a rule made has just become active (its offer or request was accepted): do
    what the rule does for a new active pairing (sessions, goal, messages), each with its
    natural key. False when no rule made it (or that rule or event is gone)."""
    parts = (pairing.source_key or "").split(":")
    if len(parts) != 3 or parts[0] != "rule" or not (parts[1].isdigit() and parts[2].isdigit()):
        return False
    event = s.get(ReviewEventRow, int(parts[1]))
    index = int(parts[2])
    if event is None or index >= len(ctx.config.rules):
        return False
    rule = ctx.config.rules[index]
    program = ctx.config.programs.get(rule.then.enroll)
    person = s.get(PersonRow, pairing.learner_id)
    if program is None or person is None or program.id != pairing.program_id:
        return False
    facts = event_facts(event, person)
    pending = _Pending(index, rule, program, event, person, facts, {}, retry=True)
    _finish_rule(s, pending, pairing, True, now, dispatcher, effects)
    return True


def _apply_rule(
    s: Session,
    ctx: Context,
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
    """One rule on one event, its learner matched alone (``match_one``)."""
    out = _start_rule(
        s, ctx, index, rule, event, person, facts, now, dispatcher, effects, retry=retry
    )
    if not isinstance(out, _Pending):
        return out
    pairing = _match(s, out.program, person.id, ctx.registry, now)
    if pairing is None and _enroll_new_guides(s, out.program, now):
        pairing = _match(s, out.program, person.id, ctx.registry, now)
    _finish_rule(s, out, pairing, pairing is not None, now, dispatcher, effects)
    return out.result


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
    mark = (*people_state(s), now.date())  # the date: tenure filters admit people as days pass
    key = (str(s.get_bind().url), program.id)
    if _guides_looked_for.get(key) == mark:
        return 0
    added = enroll_eligible(s, program, today=now.date(), roles=(Role.GUIDE,)).guide.added

    def remember(_session: Session) -> None:
        _guides_looked_for[key] = mark

    event.listen(s, "after_commit", remember, once=True)
    return added


def lock_rule_programs(s: Session, ctx: Context) -> None:
    """Take the row lock of every program the rules enroll into, in id order, before a unit of
    work writes anything. A worker's batch stores review events (which key-share-lock their
    people) before its rules take the program lock; taken first, the program locks order
    every batch behind the one matching, instead of two batches each holding what the other
    waits for."""
    for program_id in sorted({rule.then.enroll for rule in ctx.config.rules}):
        program = ctx.config.programs.get(program_id)
        if program is not None:
            _lock_program(s, program)


def _lock_program(s: Session, program: Program) -> None:
    """Serialise rule work per program across workers (PostgreSQL row lock).

    Two workers pairing learners of one program at once could both see the same guide's last
    free slot; and enrollment inserts (key-share locks on the program row) interleaved with
    updates of that row deadlock. Taking the program row first, always, avoids both.
    """
    from coachbridge.store.programs import ensure_program_row

    # A row lock lasts until the transaction ends: a batch of events takes it once.
    held = _program_locks.setdefault(s.get_transaction() or s.begin(), set())
    if program.id in held:
        return
    if s.get(ProgramRow, program.id, with_for_update=True) is None:
        ensure_program_row(s, program)
        s.get(ProgramRow, program.id, with_for_update=True)
    held.add(program.id)


#: The programs whose row each open transaction has locked (entries go with the transaction).
_program_locks: WeakKeyDictionary[SessionTransaction, set[str]] = WeakKeyDictionary()


def _people_from(ctx: Context, source: str) -> str | None:
    cfg = ctx.config.connectors.get(source)
    return cfg.people_from if cfg is not None else None


def _resolve(s: Session, ctx: Context, event: ReviewEventRow, effects: Effects) -> PersonRow | None:
    """The event's person when its rules are to run; None when there is nothing to run (the
    event is done, a cycle event, or about someone not in the store yet: status recorded)."""
    if event.rules_status not in ("pending", "unknown_person", "failed"):
        return None
    if event.type in CYCLE_EVENT_TYPES and event.person_id is None:
        event.rules_status = "processed"
        event.outcome = {"rules": [], "note": "cycle event recorded"}
        effects.outcomes[event.id] = event.outcome
        return None
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
            metrics.rule_outcome("unknown person")
            return None
    person = s.get(PersonRow, event.person_id)
    assert person is not None
    return person


def _run_rules(
    s: Session,
    ctx: Context,
    event: ReviewEventRow,
    person: PersonRow,
    now: datetime,
    dispatcher: Dispatcher | None,
    effects: Effects,
    cohort: list[_Pending] | None,
) -> list[dict[str, Any]]:
    """The event's rule results, in rule order. With ``cohort``, learners still needing a
    guide are appended to it and their results completed once the cohort is matched."""
    facts = event_facts(event, person)
    # Rules run again on a corrected event (reviews.store_review_event): what a rule already did
    # for the event stands and is not redone (a learner it found no guide for is retried by
    # retry_waiting_learners, not here).
    fired = {
        r["rule"]: r
        for r in (event.outcome or {}).get("rules", [])
        if isinstance(r, dict) and "enrolled" in r and "rule" in r
    }
    results: list[dict[str, Any]] = []
    for index, rule in enumerate(ctx.config.rules):
        if _rule_key(index, rule) in fired:
            results.append(fired[_rule_key(index, rule)])
        elif not rule.matches(facts):
            continue
        elif cohort is None:
            result = _apply_rule(
                s, ctx, index, rule, event, person, facts, now, dispatcher, effects
            )
            # "not enrolled: <why>" counts as "not enrolled": a label value must stay bounded.
            metrics.rule_outcome(str(result.get("result", "")).split(":", 1)[0])
            results.append(result)
        else:
            out = _start_rule(s, ctx, index, rule, event, person, facts, now, dispatcher, effects)
            if isinstance(out, _Pending):
                cohort.append(out)
                results.append(out.result)
            else:
                metrics.rule_outcome(str(out.get("result", "")).split(":", 1)[0])
                results.append(out)
    return results


def apply_rules(
    s: Session,
    ctx: Context,
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
    person = _resolve(s, ctx, event, effects)
    if person is None:
        return effects
    results = _run_rules(s, ctx, event, person, now, dispatcher, effects, None)
    event.rules_status = "processed"
    event.outcome = {"rules": results}
    effects.outcomes[event.id] = event.outcome
    return effects


def apply_rules_batch(
    s: Session,
    ctx: Context,
    events: Sequence[ReviewEventRow],
    *,
    now: datetime,
    dispatcher: Dispatcher | None = None,
) -> Effects:
    """Run the rules on several stored events inside the caller's transaction, matching the
    learners they enroll as one cohort per program. Idempotent.

    Every rule runs for every event in order (enrollment, cooldown, audit), as ``apply_rules``
    would; the learners left needing a guide are then matched together, per program, by one
    exact solve (``matching.service.propose`` restricted to them, then ``apply``: existing
    pairings, pins and the fairness limit hold, in chunks of the program's ``burst_max``), so
    the cohort gets the pairings ``match --apply`` gives when they are the program's waiting
    learners. Then each event's rules finish (pairing source key, sessions, goal, messages),
    each effect with its natural key. A learner two events of the batch enroll is paired once,
    for the first of them, as one event after the other would have done.
    """
    effects = Effects()
    cohort: list[_Pending] = []
    ran: list[tuple[ReviewEventRow, list[dict[str, Any]]]] = []
    for event in events:
        person = _resolve(s, ctx, event, effects)
        if person is None:
            continue
        ran.append((event, _run_rules(s, ctx, event, person, now, dispatcher, effects, cohort)))
        event.rules_status = "processed"  # a second copy of the event in the batch is skipped
    found = _match_cohort(s, ctx, cohort, now)
    counts = _plan_cohort(s, cohort, found, now, effects)
    done: set[tuple[str, int]] = set()
    for pending in cohort:
        key = (pending.program.id, pending.person.id)
        pairing = found.get(key)
        _finish_rule(
            s,
            pending,
            pairing,
            pairing is not None and key not in done,
            now,
            dispatcher,
            effects,
            session_counts=counts,
        )
        if pairing is not None:
            done.add(key)
        metrics.rule_outcome(str(pending.result.get("result", "")).split(":", 1)[0])
    for event, results in ran:
        # A new list: the results were completed after the first assignment, and the column
        # does not track changes inside it.
        event.outcome = {"rules": [dict(r) for r in results]}
        effects.outcomes[event.id] = event.outcome
    return effects


def _plan_cohort(
    s: Session,
    cohort: list[_Pending],
    found: Mapping[tuple[str, int], PairingRow],
    now: datetime,
    effects: Effects,
) -> dict[int, int]:
    """Plan the sessions of the cohort's pairings together, one scheduling run per program
    and session plan (a rule's ``sessions = N``), in the cohort's order; returns each
    pairing's session count. One run reads everyone's calendar once, where a run per pairing
    would read it once per pairing."""
    from coachbridge.pairings.scheduling import schedule_pairings

    groups: dict[tuple[str, int | None], tuple[Program, list[int]]] = {}
    pairing_ids: list[int] = []
    for pending in cohort:
        pairing = found.get((pending.program.id, pending.person.id))
        if pairing is None:
            continue
        pairing_ids.append(pairing.id)
        if pending.rule.then.sessions == 0 or pairing.status != "active":
            continue
        group = groups.setdefault(
            (pending.program.id, pending.rule.then.sessions),
            (_plan_for(pending.rule, pending.program), []),
        )
        if pairing.id not in group[1]:
            group[1].append(pairing.id)
    for plan, ids in groups.values():
        created = schedule_pairings(s, plan, ids, now=now)
        effects.sessions += [row.id for row in created]
    return _session_counts(s, pairing_ids)


def _match_cohort(
    s: Session, ctx: Context, cohort: list[_Pending], now: datetime
) -> dict[tuple[str, int], PairingRow]:
    """Match the cohort's learners, per program, in one exact solve per ``burst_max`` of them."""
    from coachbridge.matching.service import apply, propose

    learners: dict[str, list[int]] = {}
    programs: dict[str, Program] = {}
    for pending in cohort:
        ids = learners.setdefault(pending.program.id, [])
        programs[pending.program.id] = pending.program
        if pending.person.id not in ids:
            ids.append(pending.person.id)
    found: dict[tuple[str, int], PairingRow] = {}
    for program_id, ids in learners.items():
        program = programs[program_id]
        for start in range(0, len(ids), program.burst_max):
            chunk = set(ids[start : start + program.burst_max])
            for attempt in range(2):
                proposal = propose(s, program, ctx.registry, now=now, only_learners=chunk)
                rows = apply(
                    s, program, proposal, actor="automation", now=now, registry=ctx.registry
                )
                for row in rows:
                    found[(program_id, row.learner_id)] = row
                    chunk.discard(row.learner_id)
                # As one learner at a time: no enrolled guide has room, so whoever has become
                # eligible as a guide is enrolled and the rest of the cohort matched again.
                if attempt or not chunk or not _enroll_new_guides(s, program, now):
                    break
    return found


def retry_no_guide(
    s: Session,
    ctx: Context,
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
        paired += result.get("result") in ("paired", "offered", "requested")
    if paired:
        event.outcome = {**(event.outcome or {}), "rules": results}
        effects.outcomes[event.id] = event.outcome  # observers hear of it only when it changed
    return effects, paired
