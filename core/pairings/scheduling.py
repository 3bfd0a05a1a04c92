"""Scheduling a pairing's sessions, and recording what happened to them.

A pairing gets ``program.sessions_planned`` sessions, one per cadence period. Each is placed at
the earliest free slot of its period that is

* inside working hours in both people's time zones (else, when those never overlap, inside
  the learner's working hours), and when both people answered the program's availability
  question (intake), preferably inside a half-day slot both named (``mon-am`` is 08:00-12:00,
  ``mon-pm`` 13:00-17:00 in each person's own zone; see ``matching.answers``),
* on a weekday and not a public holiday of the program's calendar in both local zones,
* clear of every other scheduled or held session of either person, in any program.

Planning is deterministic (same store, same ``now``: same times) and idempotent: a session is
identified by ``(pairing_id, seq)``, and a re-run only fills sequence numbers that are missing.
Times are stored in UTC.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib
from coachbridge.domain import utc
from coachbridge.domain.program import Program
from coachbridge.domain.session import Session as SessionModel
from coachbridge.domain.session import SessionStatus
from coachbridge.errors import ConfigError, NotFoundError, UserError
from coachbridge.matching.answers import SLOT_HOURS, WEEKDAYS
from coachbridge.pairings.terms import term_end
from coachbridge.store.audit import audit
from coachbridge.store.profiles import answered_profiles
from coachbridge.store.tables import (
    CircleRow,
    PairingRow,
    PersonRow,
    SessionAttendanceRow,
    SessionRow,
)
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

__all__ = [
    "BUSY_STATUSES",
    "conflicts",
    "holiday_checker",
    "leave_circle",
    "log_session",
    "mark_session",
    "parse_when",
    "person_zone",
    "reschedule_session",
    "schedule_pairings",
    "slot_notes",
]

log = logging.getLogger(__name__)

SLOT_STEP = timedelta(minutes=15)
# Sessions that occupy someone's time. Missed ones did too, but they are in the past.
BUSY_STATUSES = (SessionStatus.SCHEDULED.value, SessionStatus.HELD.value)
# How far past its own period a session may slip when the period has no free slot at all.
MAX_SLIP_DAYS = 60

Interval = tuple[datetime, datetime]


# -- time zones and holidays ---------------------------------------------------------------


def person_zone(person: PersonRow | None) -> ZoneInfo | None:
    """The person's IANA time zone, or None when it is unknown or not a valid zone name."""
    if person is None or not person.timezone:
        return None
    try:
        return ZoneInfo(person.timezone.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        log.warning("person %s has an unknown time zone; treating it as missing", person.id)
        return None


@lru_cache(maxsize=32)
def _holiday_calendar(code: str) -> holidays_lib.HolidayBase:
    country, _, subdiv = code.strip().partition("-")
    return holidays_lib.country_holidays(country.upper(), subdiv=subdiv.upper() or None)


def holiday_checker(program_id: str, code: str | None) -> Callable[[date], bool]:
    """A test ``day -> is a public holiday`` for the program's ``holidays`` calendar.

    ``code`` is an ISO country (``"DE"``) or country and subdivision (``"US-CA"``), as the
    ``holidays`` library names them. Without a code no day is a holiday.
    """
    if not code:
        return lambda _day: False
    try:
        calendar = _holiday_calendar(code)
    except NotImplementedError as exc:
        raise ConfigError(
            f"programs.{program_id}.holidays: unknown holiday calendar {code!r} ({exc}); "
            'use a country code such as "DE" or a country and subdivision such as "US-CA"'
        ) from None
    return lambda day: day in calendar


# -- busy time -----------------------------------------------------------------------------


def _overlaps(intervals: Iterable[Interval], start: datetime, end: datetime) -> bool:
    return any(s < end and start < e for s, e in intervals)


def _busy_by_person(
    s: Session, person_ids: Iterable[int], since: datetime, *, exclude_session: int | None = None
) -> dict[int, list[Interval]]:
    """Each person's scheduled and held sessions ending after ``since``, across all programs."""
    ids = set(person_ids)
    out: dict[int, list[Interval]] = {pid: [] for pid in ids}
    if not ids:
        return out
    stmt = (
        select(SessionRow, PairingRow.learner_id, PairingRow.guide_id)
        .join(PairingRow, PairingRow.id == SessionRow.pairing_id)
        .where(
            SessionRow.status.in_(BUSY_STATUSES),
            # Sessions are at most a working day long, so one day of margin finds every overlap.
            SessionRow.start >= since - timedelta(days=1),
            or_(PairingRow.learner_id.in_(ids), PairingRow.guide_id.in_(ids)),
        )
    )
    for session, learner_id, guide_id in s.execute(stmt):
        if session.id == exclude_session:
            continue
        interval = (session.start, session.start + timedelta(minutes=session.minutes))
        # A circle meeting hangs off its first pairing: its learners are its attendees.
        for pid in (guide_id,) if session.circle_id is not None else (learner_id, guide_id):
            if pid in out:
                out[pid].append(interval)
    attending = (
        select(SessionRow, SessionAttendanceRow.person_id)
        .join(SessionAttendanceRow, SessionAttendanceRow.session_id == SessionRow.id)
        .where(
            SessionRow.status.in_(BUSY_STATUSES),
            SessionRow.start >= since - timedelta(days=1),
            SessionAttendanceRow.person_id.in_(ids),
        )
    )
    for session, pid in s.execute(attending):
        if session.id != exclude_session:
            out[pid].append((session.start, session.start + timedelta(minutes=session.minutes)))
    return out


def _lock_people(s: Session, person_ids: Iterable[int]) -> dict[int, PersonRow]:
    """Load (and on PostgreSQL row-lock, in id order) the people whose calendars we change.

    Two processes planning sessions for the same person then run one after the other, so the
    second sees the first's sessions and cannot double-book. SQLite has one writer anyway.
    ``FOR NO KEY UPDATE``, not ``FOR UPDATE``: it does not wait for transactions that merely
    insert rows referring to these people (a foreign key takes ``FOR KEY SHARE``), such as a
    worker storing review events, which could otherwise wait for this one in turn (deadlock).
    """
    stmt = (
        select(PersonRow)
        .where(PersonRow.id.in_(sorted(set(person_ids))))
        .order_by(PersonRow.id)
        .with_for_update(key_share=True)
    )
    return {row.id: row for row in s.scalars(stmt)}


def conflicts(
    s: Session,
    person_ids: Iterable[int],
    start: datetime,
    minutes: int,
    *,
    exclude_session: int | None = None,
) -> list[int]:
    """The people among ``person_ids`` who already have a session overlapping this time."""
    end = start + timedelta(minutes=minutes)
    busy = _busy_by_person(s, person_ids, start, exclude_session=exclude_session)
    return sorted(pid for pid, intervals in busy.items() if _overlaps(intervals, start, end))


# -- planning ------------------------------------------------------------------------------


@dataclass
class _Planner:
    working_hours: tuple[int, int]
    minutes: int
    is_holiday: Callable[[date], bool]
    busy: dict[int, list[Interval]] = field(default_factory=dict)
    # Each person's answered availability (``mon-am`` ..), for those who gave one.
    available: dict[int, frozenset[str]] = field(default_factory=dict)
    # Slots that pass every check but "is anyone busy", per (zones, day, both-hours): shared
    # by all pairings in the same two zones, so each day is worked out once per run.
    _static: dict[tuple[ZoneInfo, ZoneInfo, date, bool], tuple[datetime, ...]] = field(
        default_factory=dict
    )
    _holidays: dict[date, bool] = field(default_factory=dict)

    def _holiday(self, day: date) -> bool:
        known = self._holidays.get(day)
        if known is None:
            known = self._holidays[day] = self.is_holiday(day)
        return known

    def _fits_zone(self, start: datetime, zone: ZoneInfo, *, hours: bool) -> bool:
        local = start.astimezone(zone)
        if local.weekday() >= 5 or self._holiday(local.date()):
            return False
        if not hours:
            return True
        begin = local.hour * 60 + local.minute
        low, high = self.working_hours
        return low * 60 <= begin and begin + self.minutes <= high * 60

    def _candidates(self, day: date, zone: ZoneInfo) -> Iterable[datetime]:
        low, high = self.working_hours
        local = datetime.combine(day, time(low), tzinfo=zone)
        last = datetime.combine(day, time(0), tzinfo=zone) + timedelta(
            hours=high, minutes=-self.minutes
        )
        while local <= last:
            yield local.astimezone(UTC)
            local += SLOT_STEP

    def _slots(
        self, learner_zone: ZoneInfo, guide_zone: ZoneInfo, day: date, both: bool
    ) -> tuple[datetime, ...]:
        key = (learner_zone, guide_zone, day, both)
        slots = self._static.get(key)
        if slots is None:
            if day.weekday() >= 5 or self._holiday(day):
                slots = ()  # the learner's own day off: no need to look at its hours
            else:
                slots = tuple(
                    start
                    for start in self._candidates(day, learner_zone)
                    if self._fits_zone(start, learner_zone, hours=True)
                    and self._fits_zone(start, guide_zone, hours=both)
                )
            self._static[key] = slots
        return slots

    def _available(self, start: datetime, zone: ZoneInfo, slots: frozenset[str]) -> bool:
        """Whether the session lies inside one of the person's answered half-day slots."""
        local = start.astimezone(zone)
        if local.weekday() >= len(WEEKDAYS):
            return False
        begin = local.hour * 60 + local.minute
        day = WEEKDAYS[local.weekday()]
        return any(
            f"{day}-{half}" in slots and low * 60 <= begin and begin + self.minutes <= high * 60
            for half, (low, high) in SLOT_HOURS.items()
        )

    def find(
        self,
        people: tuple[int, int],
        zones: tuple[ZoneInfo, ZoneInfo],
        first_day: date,
        last_day: date,
        earliest: datetime,
    ) -> datetime | None:
        """The earliest slot in the local days ``first_day..last_day`` of the learner's zone."""
        learner_zone, guide_zone = zones
        length = timedelta(minutes=self.minutes)
        busy = [self.busy.get(pid, []) for pid in people]
        answered = [self.available.get(pid) for pid in people]
        # When both answered availability, a time inside both people's slots (and working
        # hours) first; then both people's working hours; the learner's alone only when that
        # finds nothing.
        passes = [(True, False), (False, False)]
        if answered[0] and answered[1]:
            passes.insert(0, (True, True))
        for both, preferred in passes:
            day = first_day
            while day <= last_day:
                for start in self._slots(learner_zone, guide_zone, day, both):
                    if start < earliest:
                        continue
                    if preferred and not (
                        self._available(start, learner_zone, answered[0])  # type: ignore[arg-type]
                        and self._available(start, guide_zone, answered[1])  # type: ignore[arg-type]
                    ):
                        continue
                    end = start + length
                    if any(_overlaps(intervals, start, end) for intervals in busy):
                        continue
                    return start
                day += timedelta(days=1)
        return None

    def book(self, people: Iterable[int], start: datetime) -> None:
        for pid in people:
            self.busy.setdefault(pid, []).append((start, start + timedelta(minutes=self.minutes)))


def _round_up(moment: datetime) -> datetime:
    """``moment`` rounded up to the next whole slot, so that plans do not depend on seconds."""
    moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
    step = int(SLOT_STEP.total_seconds() // 60)
    extra = (-moment.minute) % step
    return moment + timedelta(minutes=extra)


def schedule_pairings(
    s: Session,
    program: Program,
    pairing_ids: Sequence[int] | None = None,
    *,
    now: datetime,
) -> list[SessionRow]:
    """Plan the missing sessions of the program's active pairings; return the new rows.

    ``pairing_ids`` limits the run to those pairings (others, and pairings of other programs
    or not active, are left alone); None means every active pairing of the program. Session
    ``n`` falls in the ``n``-th cadence period counted from ``program.start``, or for a rolling
    program from the day the pairing was made; when the period of the first missing session is
    already past, the missing sessions' periods all move forward by as much, so the first falls
    in the period that starts today and nothing is planned in the past. Nothing is planned
    after the pairing's term ends (``terms.term_end``): a pairing made late in a fixed-term
    program, or resumed late, gets the sessions that still fit.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    now = now.astimezone(UTC)
    is_holiday = holiday_checker(program.id, program.holidays)
    stmt = select(PairingRow).where(
        PairingRow.program_id == program.id, PairingRow.status == "active"
    )
    if pairing_ids is not None:
        stmt = stmt.where(PairingRow.id.in_(list(pairing_ids)))
    pairings = list(s.scalars(stmt.order_by(PairingRow.id)))
    total = program.sessions_planned
    if not pairings or total < 1:
        return []
    # A circle's learners meet together: one session per period for the whole circle.
    circle_ids = {p.circle_id for p in pairings if p.circle_id is not None}
    if circle_ids:
        pairings = [p for p in pairings if p.circle_id is None]
        circled = _schedule_circles(s, program, circle_ids, now=now, total=total)
        return circled + schedule_pairings(s, program, [p.id for p in pairings], now=now)
    pairing_map = {p.id: p for p in pairings}
    have: dict[int, dict[int, SessionRow]] = {p.id: {} for p in pairings}
    for row in s.scalars(
        select(SessionRow).where(
            SessionRow.pairing_id.in_(list(pairing_map)), SessionRow.seq.is_not(None)
        )
    ):
        have[row.pairing_id][row.seq] = row  # type: ignore[index]
    todo = [p for p in pairings if len(have[p.id]) < total]
    if not todo:
        return []
    people_ids = {p.learner_id for p in todo} | {p.guide_id for p in todo}
    people = _lock_people(s, people_ids)
    earliest = _round_up(now)
    planner = _Planner(
        working_hours=program.working_hours,
        minutes=program.session_minutes,
        is_holiday=is_holiday,
        busy=_busy_by_person(s, people_ids, earliest),
        available={
            pid: frozenset(answer.availability)
            for pid, answer in answered_profiles(s, program.id, people_ids).items()
            if answer.availability
        },
    )
    created: list[SessionRow] = []
    cadence = timedelta(days=program.cadence_days)
    for pairing in todo:
        learner_zone = person_zone(people.get(pairing.learner_id))
        guide_zone = person_zone(people.get(pairing.guide_id))
        # A missing zone borrows the other person's; with neither, UTC.
        learner_zone = learner_zone or guide_zone or ZoneInfo("UTC")
        guide_zone = guide_zone or learner_zone
        today = now.astimezone(learner_zone).date()
        made = pairing.activated_at or pairing.created_at or now
        anchor = program.start or made.astimezone(learner_zone).date()
        # Periods already past move forward together: the first missing session falls in the
        # current period and the rest keep the cadence from it. For a new pairing that is
        # "count from today"; for a resumed one (or one whose session found no slot before)
        # it leaves no gap of the periods that went by.
        first_missing = min(seq for seq in range(1, total + 1) if seq not in have[pairing.id])
        anchor += max(today - (anchor + cadence * (first_missing - 1)), timedelta(0))
        pair = (pairing.learner_id, pairing.guide_id)
        previous_end = earliest
        ends = term_end(program, pairing)
        for seq in range(1, total + 1):
            existing = have[pairing.id].get(seq)
            if existing is not None:
                previous_end = max(
                    previous_end, existing.start + timedelta(minutes=existing.minutes)
                )
                continue
            first_day = anchor + cadence * (seq - 1)
            last_day = anchor + cadence * seq - timedelta(days=1)
            start = planner.find(
                pair, (learner_zone, guide_zone), first_day, last_day, previous_end
            )
            if start is None:  # the whole period is blocked: take the first free slot after it
                start = planner.find(
                    pair,
                    (learner_zone, guide_zone),
                    last_day + timedelta(days=1),
                    last_day + timedelta(days=MAX_SLIP_DAYS),
                    previous_end,
                )
            if start is not None and start + timedelta(minutes=program.session_minutes) > ends:
                # A late or resumed pairing: the term ends (and the pairing completes) first.
                log.info(
                    "pairing %s: sessions %s-%s of %s would fall after its term ends on %s; "
                    "not planned",
                    pairing.id,
                    seq,
                    total,
                    total,
                    ends.date().isoformat(),
                )
                break
            if start is None:
                log.warning(
                    "pairing %s: no free slot for session %s of %s; left unplanned",
                    pairing.id,
                    seq,
                    total,
                )
                continue
            planner.book(pair, start)
            row = SessionRow(
                pairing_id=pairing.id,
                seq=seq,
                start=start,
                minutes=program.session_minutes,
                status=SessionStatus.SCHEDULED.value,
                ics_sequence=0,
            )
            s.add(row)
            created.append(row)
            previous_end = start + timedelta(minutes=program.session_minutes)
    s.flush()
    return created


def _circle_slot(
    planner: _Planner,
    members: Sequence[tuple[int, ZoneInfo]],
    first_day: date,
    last_day: date,
    earliest: datetime,
) -> tuple[datetime, list[int]] | None:
    """The earliest slot clear of every member's sessions and inside every member's working
    hours (local weekdays, not holidays); when none is, the earliest inside the most members'.
    Days are the guide's (the first member's) local days. Returns (start, members outside)."""
    length = timedelta(minutes=planner.minutes)
    zone = members[0][1]
    busy = [planner.busy.get(pid, []) for pid, _ in members]
    best: tuple[int, datetime, list[int]] | None = None
    day = first_day
    while day <= last_day:
        local = datetime.combine(day, time(0), tzinfo=zone)
        while local.date() == day:
            start = local.astimezone(UTC)
            local += SLOT_STEP
            if start < earliest or any(_overlaps(b, start, start + length) for b in busy):
                continue
            outside = [pid for pid, z in members if not planner._fits_zone(start, z, hours=True)]
            if not outside:
                return start, []
            inside = len(members) - len(outside)
            if inside and (best is None or inside > best[0]):
                best = (inside, start, outside)
        day += timedelta(days=1)
    return None if best is None else (best[1], best[2])


def _schedule_circles(
    s: Session, program: Program, circle_ids: set[int], *, now: datetime, total: int
) -> list[SessionRow]:
    """Plan the missing meetings of each circle (its guide and active learners together).

    Meeting ``n`` falls in the ``n``-th cadence period, counted as for a pairing from the
    program's start or the circle's first pairing, at ``_circle_slot``. Each meeting is one
    session (one calendar UID) hanging off the circle's first pairing, with an attendance row
    per learner; a learner who joined later is added to the circle's future meetings.
    """
    members_of: dict[int, list[PairingRow]] = {}
    for p in s.scalars(
        select(PairingRow)
        .where(PairingRow.circle_id.in_(sorted(circle_ids)), PairingRow.status == "active")
        .order_by(PairingRow.id)
    ):
        members_of.setdefault(p.circle_id, []).append(p)  # type: ignore[arg-type]
    if not members_of:
        return []
    circles = {c.id: c for c in s.scalars(select(CircleRow).where(CircleRow.id.in_(circle_ids)))}
    people_ids = {p.learner_id for ps in members_of.values() for p in ps} | {
        c.guide_id for c in circles.values()
    }
    people = _lock_people(s, people_ids)
    earliest = _round_up(now)
    planner = _Planner(
        working_hours=program.working_hours,
        minutes=program.session_minutes,
        is_holiday=holiday_checker(program.id, program.holidays),
        busy=_busy_by_person(s, people_ids, earliest),
    )
    cadence = timedelta(days=program.cadence_days)
    created: list[SessionRow] = []
    for circle_id in sorted(members_of):
        learners = members_of[circle_id]
        circle = circles[circle_id]
        have = {
            row.seq: row
            for row in s.scalars(
                select(SessionRow).where(
                    SessionRow.circle_id == circle_id, SessionRow.seq.is_not(None)
                )
            )
        }
        _add_late_joiners(s, list(have.values()), learners, earliest)
        missing = [seq for seq in range(1, total + 1) if seq not in have]
        if not missing:
            continue
        anchor_pairing = next(iter(have.values())).pairing_id if have else learners[0].id
        zone = person_zone(people.get(circle.guide_id)) or ZoneInfo("UTC")
        members = [(circle.guide_id, zone)] + [
            (p.learner_id, person_zone(people.get(p.learner_id)) or zone) for p in learners
        ]
        today = now.astimezone(zone).date()
        made = learners[0].activated_at or learners[0].created_at or now
        anchor = program.start or made.astimezone(zone).date()
        anchor += max(today - (anchor + cadence * (missing[0] - 1)), timedelta(0))
        ends = term_end(program, learners[0])
        previous_end = earliest
        for seq in range(1, total + 1):
            if seq in have:
                row = have[seq]
                previous_end = max(previous_end, row.start + timedelta(minutes=row.minutes))
                continue
            first_day = anchor + cadence * (seq - 1)
            last_day = anchor + cadence * seq - timedelta(days=1)
            found = _circle_slot(planner, members, first_day, last_day, previous_end)
            if found is None:
                found = _circle_slot(
                    planner,
                    members,
                    last_day + timedelta(days=1),
                    last_day + timedelta(days=MAX_SLIP_DAYS),
                    previous_end,
                )
            if found is None:
                log.warning("circle %s: no free slot for meeting %s of %s", circle_id, seq, total)
                continue
            start, outside = found
            if start + timedelta(minutes=program.session_minutes) > ends:
                break
            planner.book([pid for pid, _ in members], start)
            row = SessionRow(
                pairing_id=anchor_pairing,
                circle_id=circle_id,
                seq=seq,
                start=start,
                minutes=program.session_minutes,
                status=SessionStatus.SCHEDULED.value,
                ics_sequence=0,
                outside_hours=outside or None,
            )
            s.add(row)
            s.flush()
            for p in learners:
                s.add(
                    SessionAttendanceRow(session_id=row.id, person_id=p.learner_id, pairing_id=p.id)
                )
            created.append(row)
            previous_end = start + timedelta(minutes=program.session_minutes)
    s.flush()
    return created


def _add_late_joiners(
    s: Session, sessions: Sequence[SessionRow], learners: Sequence[PairingRow], after: datetime
) -> None:
    """A learner who joined the circle after its meetings were planned attends the future ones."""
    future = [r for r in sessions if r.status == SessionStatus.SCHEDULED.value and r.start >= after]
    if not future:
        return
    there = set(
        s.execute(
            select(SessionAttendanceRow.session_id, SessionAttendanceRow.person_id).where(
                SessionAttendanceRow.session_id.in_([r.id for r in future])
            )
        ).all()
    )
    for row in future:
        for p in learners:
            if (row.id, p.learner_id) not in there:
                s.add(
                    SessionAttendanceRow(session_id=row.id, person_id=p.learner_id, pairing_id=p.id)
                )


def leave_circle(s: Session, pairing: PairingRow, now: datetime) -> list[int]:
    """A circle learner's pairing stops (ended or paused): they leave the circle's meetings
    that have not started. When no open pairing is left in the circle, those meetings are
    cancelled; returns the ids of the meetings cancelled."""
    future = list(
        s.scalars(
            select(SessionRow).where(
                SessionRow.circle_id == pairing.circle_id,
                SessionRow.status == SessionStatus.SCHEDULED.value,
                SessionRow.start > now,
            )
        )
    )
    for row in future:
        attendance = s.get(SessionAttendanceRow, (row.id, pairing.learner_id))
        if attendance is not None:
            s.delete(attendance)
            row.ics_sequence += 1  # the invitation changes: one attendee fewer
    s.flush()
    others = s.scalar(
        select(func.count()).where(
            PairingRow.circle_id == pairing.circle_id,
            PairingRow.id != pairing.id,
            PairingRow.status.in_(("active", "proposed")),
        )
    )
    if others:
        return []
    for row in future:
        row.status = SessionStatus.CANCELLED.value
    return sorted(row.id for row in future)


def slot_notes(
    program: Program,
    start: datetime,
    minutes: int,
    zones: Sequence[tuple[str, ZoneInfo | None]],
) -> list[str]:
    """Why a time chosen by hand is unusual (weekend, holiday, outside working hours), if it is.

    ``zones`` pairs a label (``"learner"``) with that person's zone. Nothing here forbids the
    time: a person may choose it; the notes just say what the planner would have avoided.
    """
    is_holiday = holiday_checker(program.id, program.holidays)
    low, high = program.working_hours
    notes = []
    for label, zone in zones:
        if zone is None:
            continue
        local = start.astimezone(zone)
        begin = local.hour * 60 + local.minute
        when = f"{local:%a %Y-%m-%d %H:%M} for the {label} ({zone.key})"
        if local.weekday() >= 5:
            notes.append(f"{when} is a weekend")
        elif is_holiday(local.date()):
            notes.append(f"{when} is a public holiday ({program.holidays})")
        elif not (low * 60 <= begin and begin + minutes <= high * 60):
            notes.append(f"{when} is outside working hours {low}-{high}")
    return notes


# -- recording what happened ---------------------------------------------------------------


def session_model(row: SessionRow) -> SessionModel:
    """The session as plugins' observers see it: private notes are never part of it."""
    return SessionModel(
        id=row.id,
        pairing_id=row.pairing_id,
        start=row.start,
        minutes=row.minutes,
        status=SessionStatus(row.status),
        agenda=row.agenda,
    )


def parse_when(value: str, zone: ZoneInfo | None) -> datetime:
    """An ISO 8601 date and time; without an offset it is taken in ``zone`` (else UTC)."""
    text = value.strip()
    try:
        date.fromisoformat(text)
    except ValueError:
        pass
    else:
        raise UserError(f"{value!r} is a date without a time: give e.g. {text}T10:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"{value!r} is not an ISO 8601 date and time (e.g. 2027-03-01T10:00 or "
            "2027-03-01T10:00+01:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone or UTC)
    try:
        return utc(moment)
    except ValueError as exc:
        raise UserError(f"{value!r}: {exc}") from None


def _session(s: Session, session_id: int) -> SessionRow:
    row = s.get(SessionRow, session_id)
    if row is None:
        raise NotFoundError(f"unknown session id {session_id}")
    return row


def mark_session(
    s: Session,
    session_id: int,
    status: str,
    *,
    now: datetime,
    actor: str = "cli",
    person_id: int | None = None,
) -> tuple[SessionRow, bool]:
    """Record that a session was held, missed or cancelled; returns (row, changed).

    Held and missed need the session's start to have passed; a held session cannot be
    cancelled, and a cancelled one is not marked held or missed (log the meeting that did
    happen with ``log_session``). Cancelling bumps the invitation's SEQUENCE.

    A circle meeting records each learner's attendance: ``person_id`` marks that attendee
    held (came) or missed, and the meeting is held once anyone came (missed once all missed).
    Without ``person_id``, held or missed marks the meeting and every attendee not yet marked.
    """
    try:
        wanted = SessionStatus(status)
    except ValueError:
        raise UserError(
            f"unknown session status {status!r}: use held, missed or cancelled"
        ) from None
    if wanted is SessionStatus.SCHEDULED:
        raise UserError("a session cannot be marked scheduled; use `sessions reschedule`")
    row = _session(s, session_id)
    if person_id is not None:
        return _mark_attendee(s, row, person_id, wanted, now=now, actor=actor)
    if row.circle_id is not None and wanted is not SessionStatus.CANCELLED:
        _check_markable(row, wanted, now)
        for attendance in _attendance(s, row.id):
            if attendance.status == SessionStatus.SCHEDULED.value:
                attendance.status = wanted.value
                attendance.marked_at = now
    if row.status == wanted.value:
        return row, False
    if wanted in (SessionStatus.HELD, SessionStatus.MISSED):
        if row.start > now:
            raise UserError(
                f"session {row.id} starts {row.start.isoformat()}; it can be marked "
                f"{wanted.value} only once it has started"
            )
        if row.status == SessionStatus.CANCELLED.value:
            raise UserError(
                f"session {row.id} was cancelled; record a meeting that happened anyway with "
                "`sessions log`"
            )
    if wanted is SessionStatus.CANCELLED:
        if row.status == SessionStatus.HELD.value:
            raise UserError(f"session {row.id} was held and cannot be cancelled")
        row.ics_sequence += 1
    before = row.status
    row.status = wanted.value
    audit(s, actor, f"session_{wanted.value}", "session", row.id, before=before)
    return row, True


def _check_markable(row: SessionRow, wanted: SessionStatus, now: datetime) -> None:
    if row.start > now:
        raise UserError(
            f"session {row.id} starts {row.start.isoformat()}; it can be marked "
            f"{wanted.value} only once it has started"
        )
    if row.status == SessionStatus.CANCELLED.value:
        raise UserError(
            f"session {row.id} was cancelled; record a meeting that happened anyway with "
            "`sessions log`"
        )


def _attendance(s: Session, session_id: int) -> list[SessionAttendanceRow]:
    return list(
        s.scalars(
            select(SessionAttendanceRow)
            .where(SessionAttendanceRow.session_id == session_id)
            .order_by(SessionAttendanceRow.person_id)
        )
    )


def _mark_attendee(
    s: Session, row: SessionRow, person_id: int, wanted: SessionStatus, *, now: datetime, actor: str
) -> tuple[SessionRow, bool]:
    """One learner came to (held) or missed a circle meeting."""
    if row.circle_id is None:
        raise UserError(
            f"--person applies to circle meetings; session {row.id} is one-to-one: mark it "
            "without --person"
        )
    if wanted is SessionStatus.CANCELLED:
        raise UserError("--person records attendance: use held (came) or missed")
    _check_markable(row, wanted, now)
    attendance = s.get(SessionAttendanceRow, (row.id, person_id))
    if attendance is None:
        raise UserError(f"person {person_id} is not an attendee of session {row.id}")
    if attendance.status == wanted.value:
        return row, False
    before = attendance.status
    attendance.status = wanted.value
    attendance.marked_at = now
    audit(
        s, actor, f"attendance_{wanted.value}", "session", row.id, person=person_id, before=before
    )
    statuses = [a.status for a in _attendance(s, row.id)]
    meeting = (
        SessionStatus.HELD
        if SessionStatus.HELD.value in statuses
        else SessionStatus.MISSED
        if all(x == SessionStatus.MISSED.value for x in statuses)
        else None
    )
    if meeting is not None and row.status != meeting.value:
        before = row.status
        row.status = meeting.value
        audit(s, actor, f"session_{meeting.value}", "session", row.id, before=before)
    return row, True


def log_session(
    s: Session, pairing_id: int, start: datetime, minutes: int, *, now: datetime, actor: str = "cli"
) -> tuple[SessionRow, bool]:
    """Record a session that already happened outside the plan (held, no sequence number).

    Logging the same pairing and start again returns the existing row: (row, created).
    """
    pairing = s.get(PairingRow, pairing_id)
    if pairing is None:
        raise NotFoundError(f"unknown pairing id {pairing_id}")
    if pairing.status == "proposed":
        raise UserError(
            f"pairing {pairing_id} is only proposed; approve it before logging sessions"
        )
    if not 5 <= minutes <= 480:
        raise UserError(f"--minutes must be between 5 and 480, not {minutes}")
    if start > now:
        raise UserError(
            f"{start.isoformat()} is in the future: `sessions log` records sessions that "
            "already happened"
        )
    existing = s.scalars(
        select(SessionRow).where(
            SessionRow.pairing_id == pairing_id,
            SessionRow.start == start,
            SessionRow.seq.is_(None),
            # Not a session a pause cancelled (left the plan on resume) at that time.
            SessionRow.status == SessionStatus.HELD.value,
        )
    ).first()
    if existing is not None:
        return existing, False
    row = SessionRow(
        pairing_id=pairing_id,
        seq=None,
        start=start,
        minutes=minutes,
        status=SessionStatus.HELD.value,
    )
    s.add(row)
    s.flush()
    audit(s, actor, "session_logged", "session", row.id, pairing=pairing_id)
    return row, True


def reschedule_session(
    s: Session, session_id: int, start: datetime, *, now: datetime, actor: str = "cli"
) -> SessionRow:
    """Move a scheduled session to ``start`` (future, clear of both people's other sessions).

    Bumps the invitation's SEQUENCE so calendars update the event instead of adding one.
    """
    row = _session(s, session_id)
    if row.status != SessionStatus.SCHEDULED.value:
        raise UserError(f"session {row.id} is {row.status}; only scheduled sessions can move")
    if start <= now:
        raise UserError(
            f"{start.isoformat()} is in the past; use `sessions log` for a session that happened"
        )
    if start == row.start:
        return row
    pairing = s.get(PairingRow, row.pairing_id)
    assert pairing is not None  # foreign key
    # A circle meeting moves for its guide and every attendee.
    members = (
        (pairing.learner_id, pairing.guide_id)
        if row.circle_id is None
        else (pairing.guide_id, *(a.person_id for a in _attendance(s, row.id)))
    )
    _lock_people(s, members)
    busy = conflicts(s, members, start, row.minutes, exclude_session=row.id)
    if busy:
        who = ", ".join(str(pid) for pid in busy)
        raise UserError(
            f"cannot move session {row.id} to {start.isoformat()}: person {who} already has a "
            "session then"
        )
    before = row.start
    row.start = start
    row.ics_sequence += 1
    audit(
        s,
        actor,
        "session_rescheduled",
        "session",
        row.id,
        before=before.isoformat(),
        after=start.isoformat(),
    )
    return row
