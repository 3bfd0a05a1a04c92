"""The demo's group circles: one circle programme for Engineering's senior engineers.

Six guides (levels 6-7) each take none or three to five learners (level 4); the circles meet
every two weeks at a time inside every member's working hours, and each learner's attendance is
recorded (seeded). The programme is built in code rather than read from the demo's config, so
the rest of the demo and its config file stay as they are.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta

from coachbridge.app import App
from coachbridge.domain.program import Program
from coachbridge.plugins import Registry
from coachbridge.store.tables import SessionAttendanceRow, SessionRow
from sqlalchemy import select

__all__ = ["CIRCLES", "run_circles"]

CIRCLES = Program.model_validate(
    {
        "id": "engineering-circles",
        "name": "Engineering leadership circles",
        "kind": "group",
        "objective": "Senior engineers learn to lead together",
        "start": date(2026, 8, 3),
        "duration_weeks": 12,
        "cadence_days": 14,
        "session_minutes": 60,
        "circle_size": [3, 5],
        "holidays": "DE",
        "learners": {"level": [4, 4], "departments": ["Engineering"]},
        "guides": {"level": [6, 7], "departments": ["Engineering"]},
        "weights": {"timezone": 0.6, "skills": 0.3, "seniority": 0.1},
    }
)


def run_circles(app: App, registry: Registry, now: datetime, say: Callable[[str], None]) -> None:
    """Enroll, match into circles, plan the meetings and record attendance until ``now``."""
    from coachbridge.matching.service import apply, propose
    from coachbridge.pairings.scheduling import mark_session, schedule_pairings
    from coachbridge.programs.enrollment import enroll_eligible

    program = CIRCLES
    start = datetime.combine(program.start or now.date(), datetime.min.time(), tzinfo=now.tzinfo)
    attendance: Counter[str] = Counter()
    with app.database().transaction() as s:
        enrolled = enroll_eligible(s, program, today=start.date())
        proposal = propose(s, program, registry, now=start)
        rows = apply(s, program, proposal, actor="demo", now=start, registry=registry)
        meetings = schedule_pairings(s, program, [r.id for r in rows], now=start)
        outside = sum(1 for m in meetings if m.outside_hours)
        for meeting in sorted(meetings, key=lambda m: m.id):
            if meeting.start >= now:
                continue
            people = s.scalars(
                select(SessionAttendanceRow.person_id)
                .where(SessionAttendanceRow.session_id == meeting.id)
                .order_by(SessionAttendanceRow.person_id)
            ).all()
            rng = random.Random(f"circle-{meeting.id}")
            for person_id in people:
                status = "missed" if rng.random() < 0.15 else "held"
                mark_session(s, meeting.id, status, now=now, actor="demo", person_id=person_id)
                attendance[status] += 1
        held = s.scalars(
            select(SessionRow.id).where(
                SessionRow.circle_id.is_not(None), SessionRow.status == "held"
            )
        ).all()
    sizes = Counter(r.circle_id for r in rows)
    reasons = Counter(u.reason for u in proposal.unmatched)
    why = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
    low, high = program.circle_size or (0, 0)
    say("")
    say(
        f"{program.name} (group, from {program.start}, circles of {low}-{high} meeting every "
        f"{program.cadence_days} days)"
    )
    say(
        f"  enrolled {enrolled.learner.added} learners and {enrolled.guide.added} guides; "
        f"{len(sizes)} circles of {', '.join(str(n) for n in sorted(sizes.values()))} learners, "
        f"{proposal.guarantee}; {len(proposal.unmatched)} learners left out"
        + (f" ({why})" if why else "")
    )
    say(
        f"  {len(meetings)} meetings, one calendar event each, "
        + (
            "all inside every member's working hours"
            if not outside
            else f"{outside} where no time suits everyone (the most members' hours)"
        )
        + f"; by {now - timedelta(days=1):%d %B %Y} {len(held)} held, attendance "
        f"{attendance['held']} present and {attendance['missed']} absent"
    )
