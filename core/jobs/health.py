"""The daily program health check: nudges, fit checks, pauses and feedback requests.

``run_health_checks`` looks at every open pairing of every configured program and finds:

- ``no_first_session``: no held session ``first_session_days`` after the pairing was made:
  remind both people; after ``first_session_owner_days`` tell the program owner too;
- ``stalled``: a first session was held but none for ``stall_periods`` cadence periods: nudge both;
- ``fit_check``: a rating at or below ``fit_check_max_rating`` on the first held session from
  either side: flag the pairing and tell the owner (who may run ``coachbridge rematch ID``);
- ``missed_in_a_row``: the last ``missed_in_a_row`` past sessions were all missed: pause the
  pairing with that reason and tell both people and the owner;
- ``feedback_request``: a session ended in the last 14 days: send both people a feedback link;
- ``waiting_for_guide``: a learner a rule enrolled has waited ``waiting_owner_days`` for a guide
  with room (they are paired as soon as one has room): tell the owner, once per event;
- ``manager_over_max_reports``: in a manager program, a manager has more open pairings than
  ``max_reports``: tell the owner, once per manager and number of reports.

Each message has a stable key in ``notifications`` (``health:<condition>:<pairing>:<who>``), so
every nudge goes out at most once per condition and pairing, however often the check runs;
``stalled`` keys add the date of the last held session (once per stall), ``missed_in_a_row``
keys the pause's round (once per pause), ``waiting_for_guide`` keys are
``health:waiting_for_guide:<program>:<person>:<event>`` (once per event), and feedback requests
go once per session and person.
People who opted out of the program, left, or were erased get nothing. Thresholds are program
settings (``[programs.settings]``); see ``THRESHOLDS``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from coachbridge.context import Context
from coachbridge.domain.program import Program
from coachbridge.notify.base import Message, Notifier
from coachbridge.pairings.feedback import LINK_MAX_AGE_SECONDS, link_url, make_token
from coachbridge.pairings.lifecycle import pause_pairing
from coachbridge.pairings.terms import term_end
from coachbridge.store.audit import audit
from coachbridge.store.tables import (
    AuditRow,
    EnrollmentRow,
    FeedbackRow,
    NotificationRow,
    PairingRow,
    PersonRow,
    ReviewEventRow,
    SessionRow,
)
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

log = logging.getLogger(__name__)

#: Program settings read by the health check, with their defaults.
THRESHOLDS: dict[str, int | bool] = {
    "first_session_days": 14,
    "first_session_owner_days": 21,
    "stall_periods": 2,
    "fit_check_max_rating": 2,
    "missed_in_a_row": 3,
    "feedback_requests": True,
    "waiting_owner_days": 7,
}
PAUSE_REASON = "{n} missed sessions in a row"
FIT_FLAG = "fit check: first-session rating of {rating} from the {side}"


@dataclass
class Nudge:
    """One message the check sends (or would send, on a dry run), and what it changed."""

    condition: str
    program: str
    pairing_id: int | None
    key: str
    recipient_id: int | None
    to_email: str | None
    to_name: str
    subject: str
    body: str = field(repr=False)
    action: str | None = None  # "flagged" | "paused" when the pairing changed
    status: str = "pending"

    def as_row(self) -> dict[str, Any]:
        """The listing ``coachbridge nudge`` prints (no body: it can name people)."""
        return {
            "condition": self.condition,
            "program": self.program,
            "pairing_id": self.pairing_id,
            "recipient_id": self.recipient_id,
            "action": self.action,
            "status": self.status,
            "key": self.key,
        }


def setting(program: Program, name: str) -> Any:
    """A health threshold for ``program``: its ``settings`` value or the default."""
    default = THRESHOLDS[name]
    value = program.settings.get(name, default)
    if isinstance(default, bool):
        return bool(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        from coachbridge.errors import ConfigError

        raise ConfigError(
            f"programs.{program.id}.settings.{name}: must be a whole number, not {value!r}"
        ) from None


@dataclass
class _PairingFacts:
    pairing: PairingRow
    first_held: SessionRow | None = None
    last_held_start: datetime | None = None
    # (status, start) of past held/missed sessions, newest first
    recent: list[tuple[str, datetime]] = field(default_factory=list)


class _Checker:
    def __init__(self, s: Session, config: Any, now: datetime, existing: set[str]) -> None:
        self.s = s
        self.config = config
        self.now = now
        self.existing = existing
        # Per pairing: when the last "stalled" nudge under an undated key went out.
        self.stalled_sent: dict[int, datetime] = {}
        self.nudges: list[Nudge] = []
        self.people: dict[int, PersonRow] = {}
        self.opted_out: set[tuple[str, int]] = set()
        self._owners: dict[str, int | None] = {}
        self.pauses: dict[int, tuple[int, datetime]] = {}  # pairing -> (times paused, last)

    # -- recipients ---------------------------------------------------------------------------
    def owner_id(self, email: str) -> int | None:
        """The owner's person id when they are in the store (looked up once per run)."""
        key = email.lower()
        if key not in self._owners:
            self._owners[key] = self.s.scalars(
                select(PersonRow.id).where(PersonRow.email_key == key)
            ).first()
        return self._owners[key]

    def load_people(self, ids: Iterable[int]) -> None:
        wanted = [i for i in set(ids) if i not in self.people]
        for chunk in range(0, len(wanted), 900):
            part = wanted[chunk : chunk + 900]
            for row in self.s.scalars(select(PersonRow).where(PersonRow.id.in_(part))):
                self.people[row.id] = row

    def reachable(self, program: str, person_id: int) -> PersonRow | None:
        person = self.people.get(person_id)
        if person is None or person.forgotten or person.status != "active":
            return None
        if (program, person_id) in self.opted_out:
            return None
        return person

    def add(
        self,
        condition: str,
        program: Program,
        pairing: PairingRow | None,
        key: str,
        recipient: PersonRow | None,
        subject: str,
        body: str,
        *,
        owner: bool = False,
        action: str | None = None,
    ) -> bool:
        if key in self.existing:
            return False
        if owner:
            if not program.owner:
                return False
            email, name = program.owner, program.owner
            rid = self.owner_id(program.owner)
        else:
            if recipient is None:
                return False
            email, name, rid = recipient.email, recipient.name, recipient.id
        self.existing.add(key)
        self.nudges.append(
            Nudge(
                condition=condition,
                program=program.id,
                pairing_id=pairing.id if pairing is not None else None,
                key=key,
                recipient_id=rid,
                to_email=email,
                to_name=name,
                subject=subject,
                body=body,
                action=action,
            )
        )
        return True

    def both(
        self,
        condition: str,
        program: Program,
        pairing: PairingRow,
        subject: str,
        body: str,
        *,
        suffix: str = "",
    ) -> None:
        for pid in (pairing.learner_id, pairing.guide_id):
            person = self.reachable(program.id, pid)
            key = f"health:{condition}:{pairing.id}:{pid}{suffix}"
            self.add(condition, program, pairing, key, person, subject, body)

    # -- conditions ---------------------------------------------------------------------------
    def check_pairing(self, program: Program, facts: _PairingFacts, first_rating: Any) -> None:
        pairing = facts.pairing
        made = pairing.activated_at or pairing.created_at
        age = self.now - made
        if facts.first_held is None:
            if pairing.status == "active" and age >= timedelta(
                days=setting(program, "first_session_days")
            ):
                self.both(
                    "no_first_session",
                    program,
                    pairing,
                    f"{program.name}: time for your first session",
                    f"Your {program.name} pairing was made {age.days} days ago and no session "
                    "has been held yet. Pick a time that suits you both.",
                )
            if pairing.status == "active" and age >= timedelta(
                days=setting(program, "first_session_owner_days")
            ):
                self.add(
                    "no_first_session_owner",
                    program,
                    pairing,
                    f"health:no_first_session_owner:{pairing.id}",
                    None,
                    f"{program.name}: pairing {pairing.id} has not met",
                    f"Pairing {pairing.id} in {program.name} was made {age.days} days ago and "
                    "has held no session. The learner and guide have been reminded.",
                    owner=True,
                )
        elif pairing.status == "active" and facts.last_held_start is not None:
            last = facts.last_held_start
            quiet = self.now - last
            limit = timedelta(days=program.cadence_days * setting(program, "stall_periods"))
            # Once per stall: a pairing that met again and then went quiet again is nudged
            # again (the key names the last session held), one still in the same stall is not.
            nudged = self.stalled_sent.get(pairing.id)
            if quiet >= limit and (nudged is None or nudged < last):
                self.both(
                    "stalled",
                    program,
                    pairing,
                    f"{program.name}: it has been a while",
                    f"No {program.name} session has been held for {quiet.days} days. "
                    "A short check-in keeps the momentum.",
                    suffix=f":{last.astimezone(UTC):%Y%m%d}",
                )
        if first_rating is not None and pairing.status in ("active", "paused"):
            rating, side = first_rating
            key = f"health:fit_check:{pairing.id}"
            if key not in self.existing:
                flag = FIT_FLAG.format(rating=rating, side=side)
                if (
                    self.add(
                        "fit_check",
                        program,
                        pairing,
                        key,
                        None,
                        f"{program.name}: fit check for pairing {pairing.id}",
                        f"The first session of pairing {pairing.id} was rated {rating} of 5 by the "
                        f"{side}. Talk to them; if the fit is wrong, run "
                        f"`coachbridge rematch {pairing.id}`.",
                        owner=True,
                        action="flagged",
                    )
                    or not program.owner
                ):
                    self.existing.add(key)
                    if not self.dry_run and pairing.flag != flag:
                        pairing.flag = flag
                        audit(self.s, "health", "flag_pairing", "pairing", pairing.id, reason=flag)
        n_missed = setting(program, "missed_in_a_row")
        # Only sessions after this check last paused the pairing count: a pairing the owner
        # resumed is not paused again for the same missed sessions.
        rounds, last_pause = self.pauses.get(pairing.id, (0, None))
        streak = [st for st, start in facts.recent if last_pause is None or start > last_pause]
        if (
            pairing.status == "active"
            and len(streak) >= n_missed
            and all(st == "missed" for st in streak[:n_missed])
        ):
            reason = PAUSE_REASON.format(n=n_missed)
            subject = f"{program.name}: pairing paused"
            body = (
                f"Pairing {pairing.id} in {program.name} is paused: {reason}. "
                "Reply to the program owner to resume it."
            )
            suffix = f":{rounds}" if rounds else ""
            self.both("missed_in_a_row", program, pairing, subject, body, suffix=suffix)
            self.add(
                "missed_in_a_row_owner",
                program,
                pairing,
                f"health:missed_in_a_row_owner:{pairing.id}{suffix}",
                None,
                subject,
                body,
                owner=True,
                action="paused",
            )
            if not self.dry_run:
                # Dated by the check's clock: the next run compares session starts with it.
                pause_pairing(self.s, pairing, reason, self.now, actor="health")

    dry_run: bool = False


def _first_ratings(
    s: Session, first_held: dict[int, SessionRow], max_rating: dict[int, int]
) -> dict[int, tuple[int, str]]:
    """Per pairing: the lowest first-session rating at or below its threshold, and from whom."""
    ids = [sess.id for sess in first_held.values()]
    out: dict[int, tuple[int, str]] = {}
    by_session = {sess.id: pid for pid, sess in first_held.items()}
    for chunk in range(0, len(ids), 900):
        part = ids[chunk : chunk + 900]
        for fb in s.scalars(select(FeedbackRow).where(FeedbackRow.session_id.in_(part))):
            pid = by_session[fb.session_id]
            if fb.rating > max_rating.get(pid, 2):
                continue
            if pid not in out or fb.rating < out[pid][0]:
                out[pid] = (fb.rating, str(fb.from_person_id))
    return out


def _gather(s: Session, program_ids: list[str], now: datetime) -> dict[int, _PairingFacts]:
    pairings = list(
        s.scalars(
            select(PairingRow).where(
                PairingRow.program_id.in_(program_ids), PairingRow.status.in_(["active", "paused"])
            )
        )
    )
    facts = {p.id: _PairingFacts(p) for p in pairings}
    if not facts:
        return facts
    open_ids = select(PairingRow.id).where(
        PairingRow.program_id.in_(program_ids), PairingRow.status.in_(["active", "paused"])
    )
    # Past sessions of open pairings, newest first: one pass gives first/last held and the streak.
    rows = s.execute(
        select(SessionRow.pairing_id, SessionRow.id, SessionRow.start, SessionRow.status)
        .where(
            SessionRow.pairing_id.in_(open_ids),
            SessionRow.start <= now,
            SessionRow.status.in_(["held", "missed"]),
        )
        .order_by(SessionRow.pairing_id, SessionRow.start.desc())
    )
    first_ids: dict[int, int] = {}
    for pairing_id, session_id, start, status in rows:
        f = facts[pairing_id]
        f.recent.append((status, start))
        if status == "held":
            if f.last_held_start is None:
                f.last_held_start = start
            first_ids[pairing_id] = session_id  # ordered newest first: the last one wins
    if first_ids:
        ids = list(first_ids.values())
        loaded: dict[int, SessionRow] = {}
        for chunk in range(0, len(ids), 900):
            for row in s.scalars(
                select(SessionRow).where(SessionRow.id.in_(ids[chunk : chunk + 900]))
            ):
                loaded[row.id] = row
        for pairing_id, session_id in first_ids.items():
            facts[pairing_id].first_held = loaded[session_id]
    return facts


def _feedback_requests(
    checker: _Checker, s: Session, programs: dict[str, Program], now: datetime
) -> None:
    server = checker.config.server
    if server.secret_key is None:
        log.warning("feedback requests skipped: [server] secret_key is not set")
        return
    wanted = [p.id for p in programs.values() if setting(p, "feedback_requests")]
    if not wanted:
        return
    since = now - timedelta(seconds=LINK_MAX_AGE_SECONDS)
    rows = s.execute(
        select(SessionRow.id, SessionRow.start, SessionRow.minutes, PairingRow)
        .join(PairingRow, PairingRow.id == SessionRow.pairing_id)
        .where(
            PairingRow.program_id.in_(wanted),
            PairingRow.status.in_(["active", "paused", "completed"]),
            SessionRow.status.in_(["scheduled", "held"]),
            SessionRow.start >= since - timedelta(hours=8),
            SessionRow.start <= now,
        )
    ).all()
    answered = set(
        s.execute(
            select(FeedbackRow.session_id, FeedbackRow.from_person_id).where(
                FeedbackRow.session_id.in_([r[0] for r in rows] or [-1])
            )
        ).all()
    )
    checker.load_people(pid for r in rows for pid in (r[3].learner_id, r[3].guide_id))
    for session_id, start, minutes, pairing in rows:
        if start + timedelta(minutes=minutes) > now:
            continue
        program = programs[pairing.program_id]
        for pid in (pairing.learner_id, pairing.guide_id):
            key = f"feedback_request:{session_id}:{pid}"
            if key in checker.existing or (session_id, pid) in answered:
                continue
            person = checker.reachable(program.id, pid)
            if person is None:
                continue
            token = make_token(server.secret_key, session_id, pid)
            checker.add(
                "feedback_request",
                program,
                pairing,
                key,
                person,
                f"{program.name}: how did your session go?",
                "Two minutes, no login: tell us whether your session on "
                f"{start:%Y-%m-%d} happened and how it went.\n\n"
                f"{link_url(server.public_url, token)}\n\nThis link works once, for 14 days.",
            )


def find_nudges(s: Session, config: Any, *, now: datetime, dry_run: bool = False) -> list[Nudge]:
    """Run every check inside the open transaction ``s``; apply flags and pauses unless dry."""
    programs: dict[str, Program] = dict(config.programs)
    if not programs:
        return []
    existing = set(
        s.scalars(
            select(NotificationRow.key).where(
                NotificationRow.key.like("health:%")
                | NotificationRow.key.like("feedback_request:%")
            )
        )
    )
    checker = _Checker(s, config, now, existing)
    checker.dry_run = dry_run
    # Keys without the stall's date (health:stalled:<pairing>:<person>, as coachbridge wrote
    # them before): when they were sent tells which stall they covered. Dated keys need no
    # look: the key itself is once per stall.
    for key, created in s.execute(
        select(NotificationRow.key, NotificationRow.created_at).where(
            NotificationRow.key.like("health:stalled:%")
        )
    ):
        parts = key.split(":")
        if len(parts) != 4 or not parts[2].isdigit() or created is None:
            continue
        pairing_id = int(parts[2])
        if created > checker.stalled_sent.get(pairing_id, _EPOCH):
            checker.stalled_sent[pairing_id] = created
    checker.opted_out = {
        (pid, person)
        for pid, person in s.execute(
            select(EnrollmentRow.program_id, EnrollmentRow.person_id).where(
                EnrollmentRow.opted_out.is_(True)
            )
        )
    }
    facts = _gather(s, list(programs), now)
    # Any pause, this check's or an owner's (`pairings pause`), starts the missed count afresh.
    for object_id, count, last in s.execute(
        select(AuditRow.object_id, func.count(), func.max(AuditRow.at))
        .where(AuditRow.action == "pause_pairing")
        .group_by(AuditRow.object_id)
    ):
        checker.pauses[int(object_id)] = (int(count), last)
    checker.load_people(
        pid for f in facts.values() for pid in (f.pairing.learner_id, f.pairing.guide_id)
    )
    first_held = {pid: f.first_held for pid, f in facts.items() if f.first_held is not None}
    thresholds = {
        pid: setting(programs[f.pairing.program_id], "fit_check_max_rating")
        for pid, f in facts.items()
    }
    ratings = _first_ratings(s, first_held, thresholds)
    for pairing_id in sorted(facts):
        f = facts[pairing_id]
        if term_end(programs[f.pairing.program_id], f.pairing) <= now:
            # Over: the daily run completes it first; a dry run must not nudge it either.
            continue
        first = None
        if pairing_id in ratings:
            rating, who = ratings[pairing_id]
            side = "learner" if int(who) == f.pairing.learner_id else "guide"
            first = (rating, side)
        checker.check_pairing(programs[f.pairing.program_id], f, first)
    _feedback_requests(checker, s, programs, now)
    _waiting_for_guides(checker, s, programs, now)
    _managers_over_max_reports(checker, s, programs)
    return checker.nudges


def _managers_over_max_reports(checker: _Checker, s: Session, programs: dict[str, Program]) -> None:
    """Tell the owner of a manager program about each manager above its ``max_reports``: once
    per manager and number of reports (a manager who gains another report is named again)."""
    from coachbridge.matching.managers import (
        is_manager_program,
        over_max_reports,
        over_max_warning,
        reports_count,
    )

    for program in programs.values():
        if not is_manager_program(program):
            continue
        over = over_max_reports(program, reports_count(s, program.id))
        checker.load_people(over)
        for manager, reports in over.items():
            person = checker.people.get(manager)
            checker.add(
                "manager_over_max_reports",
                program,
                None,
                f"health:manager_over_max_reports:{program.id}:{manager}:{reports}",
                None,
                f"{program.name}: a manager has more reports than max_reports",
                over_max_warning(program, manager, person.name if person else "", reports),
                owner=True,
            )


def _waiting_for_guides(
    checker: _Checker, s: Session, programs: dict[str, Program], now: datetime
) -> None:
    """Tell the owner about learners a rule enrolled who still have no guide: without it, a
    full program leaves them waiting unseen."""
    from coachbridge.programs.waiting import no_guide_programs, waiting_learner_events

    ids = waiting_learner_events(s)
    if not ids:
        return
    events = list(s.scalars(select(ReviewEventRow).where(ReviewEventRow.id.in_(ids))))
    checker.load_people(e.person_id for e in events if e.person_id is not None)
    for event in events:
        person = checker.people.get(event.person_id) if event.person_id is not None else None
        if person is None:
            continue
        for program_id in sorted(no_guide_programs(event.outcome)):
            program = programs.get(program_id)
            if program is None:
                continue
            waited = now - event.received_at
            if waited < timedelta(days=setting(program, "waiting_owner_days")):
                continue
            checker.add(
                "waiting_for_guide",
                program,
                None,
                f"health:waiting_for_guide:{program.id}:{person.id}:{event.id}",
                None,
                f"{program.name}: a learner is waiting for a coach",
                f"{person.name} (person {person.id}) was enrolled in {program.name} by a review "
                f"rule {waited.days} days ago, and no guide with room suits them yet. Enroll "
                "more guides or raise the program's capacity: they are paired as soon as a "
                "guide has room.",
                owner=True,
            )


def notifiers_for(config: Any, registry: Any) -> list[Notifier]:
    """The channels ``[notify.<name>]`` enables (the log channel when none is configured)."""
    from coachbridge.notify.dispatch import build_notifiers

    return list(build_notifiers(config.notify, registry.notifiers, config.label).values())


def deliver(db: Any, nudges: list[Nudge], notifiers: list[Notifier], now: datetime) -> None:
    """Send each recorded nudge through every channel and store how it went.

    The notification rows were committed first, so a crash here never sends a nudge twice on
    the next run; the message key lets a channel recognise a repeat.
    """
    outcomes: dict[tuple[str, str], list[str]] = defaultdict(list)
    for nudge in nudges:
        message = Message(
            key=nudge.key,
            to_name=nudge.to_name,
            to_email=nudge.to_email,
            subject=nudge.subject,
            body=nudge.body,
            recipient_id=nudge.recipient_id,
        )
        results = []
        for notifier in notifiers:
            try:
                results.append(notifier.send(message))
            except Exception as exc:  # one failing channel must not stop the others
                log.warning(
                    "notifier %s failed for %s: %s", type(notifier).__name__, nudge.key, exc
                )
                results.append(f"failed: {type(exc).__name__}")
        nudge.status = (
            "failed" if results and all(r.startswith("failed") for r in results) else "sent"
        )
        outcomes[(nudge.status, "; ".join(results)[:1000])].append(nudge.key)
    # One transaction for the outcome of the whole run, not one per message.
    with db.transaction() as s:
        for (status, detail), keys in outcomes.items():
            for i in range(0, len(keys), 500):
                s.execute(
                    update(NotificationRow)
                    .where(NotificationRow.key.in_(keys[i : i + 500]))
                    .values(status=status, detail=detail, sent_at=now if status == "sent" else None)
                )
    for notifier in notifiers:
        notifier.close()


def run_health_checks(app: Context, *, now: datetime, dry_run: bool = False) -> list[Nudge]:
    """The daily check over every program. A dry run changes and sends nothing.

    Flags, pauses and the notification rows are committed in one transaction before anything
    is sent, so each nudge is recorded exactly once.
    """
    config = app.config
    db = app.database()
    notifiers = [] if dry_run else notifiers_for(config, app.registry)
    if dry_run:
        s = db.session()
        try:
            nudges = find_nudges(s, config, now=now, dry_run=True)
        finally:
            s.rollback()
            s.close()
        for n in nudges:
            n.status = "dry-run"
        return nudges
    with db.transaction() as s:
        nudges = find_nudges(s, config, now=now)
        for n in nudges:
            s.add(
                NotificationRow(
                    key=n.key,
                    channel=",".join(type(x).__name__ for x in notifiers)[:50],
                    recipient_id=n.recipient_id,
                    subject=n.subject[:500],
                    status="pending",
                    created_at=now,
                )
            )
    deliver(db, nudges, notifiers, now)
    return nudges


def counts_by_condition(nudges: Iterable[Nudge]) -> dict[str, int]:
    """How many nudges of each condition (for summaries and logs without names)."""
    out: dict[str, int] = defaultdict(int)
    for n in nudges:
        out[n.condition] += 1
    return dict(out)
