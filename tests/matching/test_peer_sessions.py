"""A peer pair's invitations and messages name no leader: neither is 'the guide'."""

from __future__ import annotations

from datetime import UTC, datetime

from coachbridge.domain.program import Program
from coachbridge.notify.messages import pairing_key, pairing_message
from coachbridge.pairings.calendar import invitation_for_sessions
from coachbridge.store import Database
from coachbridge.store.programs import ensure_program_row
from coachbridge.store.tables import PairingRow, PersonRow, SessionRow
from icalendar import Calendar

from tests.matching.matching_factory import person

START = datetime(2027, 1, 11, 14, 0, tzinfo=UTC)


def peer(**fields) -> Program:
    return Program.model_validate({"id": "peers", "name": "Peer circle", "kind": "peer", **fields})


def event(program: Program, a: PersonRow, b: PersonRow) -> object:
    pairing = PairingRow(id=10, program_id=program.id, learner_id=a.id, guide_id=b.id)
    row = SessionRow(id=100, pairing_id=10, seq=1, start=START, minutes=45, status="scheduled")
    row.ics_sequence, row.created_at = 0, START
    [found] = Calendar.from_ical(
        invitation_for_sessions([row], pairing, a, b, program, uid_domain="coachbridge")
    ).walk("VEVENT")
    return found


def test_peer_sessions_have_no_leader_as_organizer() -> None:
    a = PersonRow(id=1, first_name="Ana", last_name="Díaz", email="ana@example.com")
    b = PersonRow(id=2, first_name="Ben", last_name="Ode", email="ben@example.com")
    plain = event(peer(), a, b)
    assert "ORGANIZER" not in plain
    assert sorted(str(x) for x in plain["ATTENDEE"]) == [
        "mailto:ana@example.com",
        "mailto:ben@example.com",
    ]
    assert str(plain["SUMMARY"]) == "Peer mentoring: Ana Díaz & Ben Ode"
    owned = event(peer(owner="hr@example.com"), a, b)
    assert str(owned["ORGANIZER"]) == "mailto:hr@example.com"
    # A mentoring session keeps its guide as organizer.
    mentoring = Program.model_validate({"id": "m", "kind": "mentoring"})
    assert str(event(mentoring, a, b)["ORGANIZER"]) == "mailto:ben@example.com"


def test_peer_messages_say_the_same_to_both(db: Database) -> None:
    program = peer()
    with db.transaction() as s:
        person(s, 1, job_title="Engineer")
        person(s, 2, job_title="Designer")
        ensure_program_row(s, program)
        pairing = PairingRow(program_id="peers", learner_id=1, guide_id=2, status="active")
        s.add(pairing)
        s.flush()
        first = pairing_message(s, pairing_key(pairing.id, "learner", "log"))
        second = pairing_message(s, pairing_key(pairing.id, "guide", "log"))
    assert first is not None and second is not None
    assert first.subject == second.subject == "Peer circle: your peer partner"
    assert "Your peer partner is P2 Test (Designer)" in first.body
    assert "Your peer partner is P1 Test (Engineer)" in second.body
    for body in (first.body, second.body):
        assert "coach" not in body and "mentor" not in body and "guide" not in body
