"""The daily health check on a circle: feedback requests go to every attending learner, and a
learner who attended is not nudged for having no first session."""

from __future__ import annotations

from datetime import timedelta

from coachbridge.jobs.health import find_nudges
from coachbridge.matching.service import apply, propose
from coachbridge.pairings.scheduling import mark_session, schedule_pairings
from coachbridge.store import Database
from coachbridge.store.tables import SessionAttendanceRow

from tests.health.health_world import NOW, config, program
from tests.matching.matching_factory import enroll, person

GROUP = program(id="circles", kind="group", circle_size=[3, 3], cadence_days=7, duration_weeks=4)


def test_health_check_sees_every_attendee(db: Database) -> None:
    made = NOW - timedelta(days=40)
    with db.transaction() as s:
        learners = [person(s, 1 + i, level=2).id for i in range(3)]
        guide = person(s, 10, level=7).id
        for pid in learners:
            enroll(s, GROUP, pid, "learner")
        enroll(s, GROUP, guide, "guide")
        rows = apply(s, GROUP, propose(s, GROUP, None, now=made), now=made)
        assert len(rows) == 3
        meetings = schedule_pairings(s, GROUP, now=made)
        last = max(meetings, key=lambda m: m.start)
        for meeting in meetings:
            # Everyone came to every meeting; the last one ended hours before the check.
            mark_session(s, meeting.id, "held", now=NOW)
        assert last.start < NOW
        assert {
            a.person_id for a in s.query(SessionAttendanceRow).filter_by(session_id=last.id)
        } == set(learners)
    with db.transaction() as s:
        nudges = find_nudges(s, config(GROUP), now=last.start + timedelta(hours=3), dry_run=True)
    asked = {n.recipient_id for n in nudges if n.condition == "feedback_request"}
    assert asked == {*learners, guide}
    assert not [n for n in nudges if n.condition not in ("feedback_request",)], [
        (n.condition, n.recipient_id) for n in nudges
    ]
