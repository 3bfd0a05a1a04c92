"""Group matching in the store: circle_below_minimum, joining an open circle, leaving one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from coachbridge.domain.program import Program
from coachbridge.matching.service import apply, match_one, propose
from coachbridge.pairings.lifecycle import end_pairing
from coachbridge.pairings.scheduling import schedule_pairings
from coachbridge.store import Database
from coachbridge.store.tables import PairingRow, SessionAttendanceRow, SessionRow
from sqlalchemy import select

from tests.matching.matching_factory import enroll, person

NOW = datetime(2027, 3, 1, 6, tzinfo=UTC)  # a Monday
GROUP = Program.model_validate(
    {
        "id": "circles",
        "kind": "group",
        "circle_size": [3, 4],
        "duration_weeks": 6,
        "cadence_days": 14,
        "weights": {"skills": 0.5, "language": 0.5},
    }
)


def _world(db: Database, learners: int, guides: int) -> tuple[list[int], list[int]]:
    with db.transaction() as s:
        lids = [person(s, 1 + i, level=2).id for i in range(learners)]
        gids = [person(s, 100 + j, level=7).id for j in range(guides)]
        for pid in lids:
            enroll(s, GROUP, pid, "learner")
        for pid in gids:
            enroll(s, GROUP, pid, "guide")
    return lids, gids


def test_a_learner_who_cannot_make_a_circle_is_reported(db: Database) -> None:
    _world(db, 5, 2)  # 5 learners: one circle of 4; 3 + 2 would break the minimum
    with db.transaction() as s:
        proposal = propose(s, GROUP, None, now=NOW)
    assert len(proposal.pairs) == 4
    assert len({p.guide_id for p in proposal.pairs}) == 1
    assert [u.reason for u in proposal.unmatched] == ["circle_below_minimum"]
    assert proposal.certified  # top_k covers both guides and the MIP proved both stages


def test_circles_are_stored_joined_and_left(db: Database) -> None:
    _world(db, 3, 1)
    with db.transaction() as s:
        rows = apply(s, GROUP, propose(s, GROUP, None, now=NOW), now=NOW)
        assert len(rows) == 3 and len({r.circle_id for r in rows}) == 1
        circle = rows[0].circle_id
        meetings = schedule_pairings(s, GROUP, now=NOW)
        assert len(meetings) == 3 and {m.circle_id for m in meetings} == {circle}
    # A learner enrolled later joins the open circle (one alone never opens one).
    with db.transaction() as s:
        late = person(s, 50, level=2).id
        enroll(s, GROUP, late, "learner")
        row = match_one(s, GROUP, late, None, now=NOW)
        assert row is not None and row.circle_id == circle
        schedule_pairings(s, GROUP, [row.id], now=NOW)
        attending = s.scalars(
            select(SessionAttendanceRow.session_id).where(SessionAttendanceRow.person_id == late)
        ).all()
        assert len(attending) == 3  # every future meeting of the circle
    # One learner leaves: the circle meets on without them; the last one leaving cancels it.
    with db.transaction() as s:
        pairings = list(s.scalars(select(PairingRow).order_by(PairingRow.id)))
        end_pairing(s, pairings[0], "moved on", NOW + timedelta(minutes=1))
        statuses = set(s.scalars(select(SessionRow.status).where(SessionRow.circle_id == circle)))
        assert statuses == {"scheduled"}
        assert not s.scalars(
            select(SessionAttendanceRow).where(
                SessionAttendanceRow.person_id == pairings[0].learner_id
            )
        ).all()
        for pairing in pairings[1:]:
            end_pairing(s, pairing, "circle closed", NOW + timedelta(minutes=1))
        statuses = set(s.scalars(select(SessionRow.status).where(SessionRow.circle_id == circle)))
        assert statuses == {"cancelled"}


def test_one_to_one_programs_have_no_circles(db: Database) -> None:
    mentoring = Program.model_validate({"id": "m", "kind": "mentoring", "capacity": 1})
    with db.transaction() as s:
        a, b = person(s, 1, level=2).id, person(s, 2, level=7).id
        enroll(s, mentoring, a, "learner")
        enroll(s, mentoring, b, "guide")
        rows = apply(s, mentoring, propose(s, mentoring, None, now=NOW), now=NOW)
        assert len(rows) == 1 and rows[0].circle_id is None
        sessions = schedule_pairings(s, mentoring, now=NOW)
        assert sessions and all(r.circle_id is None for r in sessions)


def test_a_circle_learners_mail_invites_to_the_circles_meetings(db: Database) -> None:
    from coachbridge.notify.messages import pairing_key, pairing_message
    from icalendar import Calendar

    _world(db, 3, 1)
    with db.transaction() as s:
        rows = apply(s, GROUP, propose(s, GROUP, None, now=NOW), now=NOW)
        meetings = schedule_pairings(s, GROUP, now=NOW)
        last = max(rows, key=lambda r: r.id)  # not the pairing the meetings hang off
        message = pairing_message(s, pairing_key(last.id, "learner", "smtp"))
        assert message is not None and message.attachments
        events = Calendar.from_ical(message.attachments[0].data).walk("VEVENT")
        assert {str(e["uid"]).split("@")[0] for e in events} == {
            f"session-{m.id}" for m in meetings
        }
        emails = {f"mailto:p{r.learner_id}@example.com" for r in rows}
        for event in events:
            assert {str(a) for a in event["attendee"]} == emails
            assert str(event["organizer"]) == f"mailto:p{rows[0].guide_id}@example.com"


def test_a_circle_meeting_moves_only_to_a_time_every_member_is_free(db: Database) -> None:
    from coachbridge.errors import UserError
    from coachbridge.pairings.scheduling import reschedule_session
    from coachbridge.store.tables import SessionRow

    _world(db, 3, 1)
    other = Program.model_validate({"id": "m", "kind": "mentoring", "capacity": 1})
    with db.transaction() as s:
        rows = apply(s, GROUP, propose(s, GROUP, None, now=NOW), now=NOW)
        meeting = min(schedule_pairings(s, GROUP, now=NOW), key=lambda m: m.start)
        last = max(rows, key=lambda r: r.id)  # an attendee, not the first pairing's learner
        # That attendee has a one-to-one session at the time the meeting would move to.
        busy_at = meeting.start + timedelta(days=1)
        mentor = person(s, 300, level=8).id
        enroll(s, other, last.learner_id, "learner")
        enroll(s, other, mentor, "guide")
        pairing = PairingRow(
            program_id="m", learner_id=last.learner_id, guide_id=mentor, status="active"
        )
        s.add(pairing)
        s.flush()
        s.add(SessionRow(pairing_id=pairing.id, seq=1, start=busy_at, minutes=30))
        s.flush()
        with pytest.raises(UserError, match=f"person {last.learner_id} already has a session"):
            reschedule_session(s, meeting.id, busy_at, now=NOW)
