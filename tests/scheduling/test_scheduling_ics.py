"""Calendar files: valid RFC 5545 (parsed back with icalendar), stable UIDs, cancellations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from coachbridge.pairings.calendar import SessionInfo, calendar_for, invitation_for_sessions
from coachbridge.store.tables import PairingRow, PersonRow, SessionRow
from icalendar import Calendar

from .scheduling_factories import program

START = datetime(2027, 1, 11, 14, 0, tzinfo=UTC)
STAMP = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)


def people() -> tuple[PersonRow, PersonRow, PersonRow]:
    ana = PersonRow(id=1, first_name="Ana", last_name="Díaz", email="ana@example.com")
    ben = PersonRow(id=2, first_name="Ben", last_name="Ode", email="ben@example.com")
    cleo = PersonRow(id=3, first_name="Cleo", last_name="Noemail", email=None)
    return ana, ben, cleo


def session(sid: int, pairing: int, seq: int, *, status: str = "scheduled", seqno: int = 0):
    return SessionRow(
        id=sid,
        pairing_id=pairing,
        seq=seq,
        start=START + timedelta(days=14 * (seq - 1)),
        minutes=45,
        status=status,
        ics_sequence=seqno,
        agenda="Career goals, next steps",
        private_notes="PRIVATE: thinking of leaving",
        created_at=STAMP,
        updated_at=STAMP,
    )


def infos() -> list[SessionInfo]:
    ana, ben, cleo = people()
    prog = program(name="Leadership mentoring")
    p1 = PairingRow(id=10, program_id=prog.id, learner_id=1, guide_id=2)
    p2 = PairingRow(id=11, program_id=prog.id, learner_id=3, guide_id=2)
    return [
        SessionInfo(session(100, 10, 1), p1, ana, ben, prog),
        SessionInfo(session(101, 10, 2, status="cancelled", seqno=1), p1, ana, ben, prog),
        SessionInfo(session(102, 11, 1), p2, cleo, ben, prog),
    ]


def events(data: bytes) -> dict[str, object]:
    cal = Calendar.from_ical(data)
    return {str(e["UID"]): e for e in cal.walk("VEVENT")}


def test_calendar_parses_back_with_stable_uids_and_utc_times() -> None:
    ana = people()[0]
    data = calendar_for(ana, infos())
    cal = Calendar.from_ical(data)
    assert str(cal["VERSION"]) == "2.0" and cal["PRODID"]
    assert str(cal["METHOD"]) == "REQUEST"
    found = events(data)
    assert set(found) == {"session-100@coachbridge", "session-101@coachbridge"}  # only Ana's
    first = found["session-100@coachbridge"]
    assert first.decoded("DTSTART") == START
    assert first.decoded("DTSTART").utcoffset() == timedelta(0)
    assert first.decoded("DTEND") == START + timedelta(minutes=45)
    assert str(first["SUMMARY"]) == "Mentoring: Ana Díaz & Ben Ode"
    assert int(first["SEQUENCE"]) == 0 and str(first["STATUS"]) == "CONFIRMED"
    attendees = sorted(str(a) for a in first["ATTENDEE"])
    assert attendees == ["mailto:ana@example.com", "mailto:ben@example.com"]
    assert str(first["ORGANIZER"]) == "mailto:ben@example.com"
    assert b"PRIVATE" not in data and b"leaving" not in data
    assert calendar_for(ana, infos()) == data  # re-export: identical bytes


def test_cancelled_session_is_a_cancellation_with_higher_sequence() -> None:
    ana = people()[0]
    found = events(calendar_for(ana, infos()))
    cancelled = found["session-101@coachbridge"]
    assert str(cancelled["STATUS"]) == "CANCELLED"
    assert int(cancelled["SEQUENCE"]) == 1


def test_person_without_email_gets_no_attendee_line() -> None:
    cleo = people()[2]
    found = events(calendar_for(cleo, infos()))
    event = found["session-102@coachbridge"]
    attendees = event["ATTENDEE"]
    attendees = attendees if isinstance(attendees, list) else [attendees]
    assert [str(a) for a in attendees] == ["mailto:ben@example.com"]


def test_invitation_for_mail_and_cancellation_method() -> None:
    ana, ben, _ = people()
    prog = program(owner="hr@example.com")
    pairing = PairingRow(id=10, program_id=prog.id, learner_id=1, guide_id=2)
    invite = Calendar.from_ical(
        invitation_for_sessions(
            [session(100, 10, 1)], pairing, ana, ben, prog, uid_domain="ab12cd34.coachbridge"
        )
    )
    assert str(invite["METHOD"]) == "REQUEST"
    [event] = invite.walk("VEVENT")
    assert str(event["ORGANIZER"]) == "mailto:hr@example.com"
    cancel = Calendar.from_ical(
        invitation_for_sessions(
            [session(100, 10, 1, status="cancelled", seqno=2)],
            pairing,
            ana,
            ben,
            prog,
            uid_domain="ab12cd34.coachbridge",
        )
    )
    assert str(cancel["METHOD"]) == "CANCEL"
    [event] = cancel.walk("VEVENT")
    assert str(event["UID"]) == "session-100@ab12cd34.coachbridge"
    assert int(event["SEQUENCE"]) == 2
