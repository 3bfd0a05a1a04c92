"""The intake services on SQLite and PostgreSQL: links, invitations, reminders, HR's answers,
erasure and the audit trail."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from coachbridge.errors import ConfigError, InputDataError, NotFoundError, UserError
from coachbridge.hris.privacy import forget
from coachbridge.links import LinkExpired, LinkForged
from coachbridge.programs.intake import (
    MAX_REMINDERS,
    intake_links,
    make_token,
    read_token,
    send_invitations,
    send_reminders,
)
from coachbridge.programs.profiles import import_profiles, set_profile, show_profiles
from coachbridge.store import Database
from coachbridge.store.tables import AuditRow, NotificationRow, ProfileRow
from sqlalchemy import func, select

from tests.participants.participants_world import (
    NOW,
    PUBLIC,
    SECRET,
    Capture,
    app_for,
    company,
    pair,
    program,
)


def _profiles(db: Database) -> dict[int, ProfileRow]:
    with db.transaction() as s:
        return {r.person_id: r for r in s.scalars(select(ProfileRow))}


def test_a_token_names_one_person_and_one_program_and_expires_after_link_days() -> None:
    programs = {"mentoring": program(link_days=21)}
    token = make_token(SECRET, 7, "mentoring", now=NOW)
    link = read_token(SECRET, token, programs, now=NOW)
    assert (link.person_id, link.program_id) == (7, "mentoring")
    assert read_token(SECRET, token, programs, now=NOW + timedelta(days=21))
    with pytest.raises(LinkExpired, match="21 days"):
        read_token(SECRET, token, programs, now=NOW + timedelta(days=21, seconds=1))
    with pytest.raises(LinkForged):
        read_token("another-secret", token, programs)
    with pytest.raises(LinkForged):
        read_token(SECRET, token[:-2] + "xx", programs)
    with pytest.raises(LinkForged):  # a program without an intake (or unknown) is no link
        read_token(SECRET, make_token(SECRET, 7, "other"), programs)


def test_links_list_everyone_enrolled_with_status(db: Database) -> None:
    ids = company(db)
    app = app_for(db)
    set_profile(app, str(ids["lea"]), "mentoring", topics="negotiation", now=NOW)
    rows = intake_links(app, "mentoring", now=NOW)
    assert [r["person_id"] for r in rows] == [ids["lea"], ids["lou"], ids["gus"], ids["gia"]]
    assert {r["person_id"]: r["status"] for r in rows}[ids["lea"]] == "answered"
    assert {r["status"] for r in rows[1:]} == {"pending"}
    assert rows[2]["role"] == "guide" and rows[0]["email"] == "lea@example.com"
    for row in rows:
        assert row["url"].startswith(f"{PUBLIC}/intake/")
        token = row["url"].rsplit("/", 1)[1]
        link = read_token(SECRET, token, app.config.programs, now=NOW)
        assert (link.person_id, link.program_id) == (row["person_id"], "mentoring")
    with pytest.raises(NotFoundError):
        intake_links(app, "nope")


def test_a_program_without_an_intake_is_a_config_error(db: Database) -> None:
    from coachbridge.domain.program import Program

    plain = Program.model_validate({"id": "mentoring", "kind": "mentoring"})
    app = app_for(db, plain)
    with pytest.raises(ConfigError, match=r"programs\.mentoring\.intake"):
        send_invitations(app, "mentoring")


def test_send_mails_those_without_an_answer_once_a_day(db: Database) -> None:
    ids = company(db)
    app = app_for(db)
    set_profile(app, "gus@example.com", "mentoring", topics="negotiation,career change", now=NOW)
    dry = send_invitations(app, "mentoring", dry_run=True, now=NOW)
    assert {i.person_id for i in dry} == {ids["lea"], ids["lou"], ids["gia"]}
    assert {i.status for i in dry} == {"dry-run"} and Capture.sent == []
    assert set(_profiles(db)) == {ids["gus"]}  # the dry run wrote nothing
    sent = send_invitations(app, "mentoring", now=NOW)
    assert {i.person_id for i in sent} == {ids["lea"], ids["lou"], ids["gia"]}
    assert {i.status for i in sent} == {"sent"}
    assert len(Capture.sent) == 3
    message = next(m for m in Capture.sent if m.recipient_id == ids["lea"])
    assert message.to_email == "lea@example.com" and f"{PUBLIC}/intake/" in message.body
    token = message.body.split(f"{PUBLIC}/intake/")[1].split()[0]
    assert read_token(SECRET, token, app.config.programs, now=NOW).person_id == ids["lea"]
    rows = _profiles(db)
    assert rows[ids["lea"]].invited_at == NOW and rows[ids["lea"]].answered_at is None
    # The same day again: nobody twice.
    assert send_invitations(app, "mentoring", now=NOW + timedelta(hours=1)) == []
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(NotificationRow)) == 3
        statuses = set(s.scalars(select(NotificationRow.status)))
    assert statuses == {"sent"}
    # Someone without a work email is listed, not mailed.
    with db.transaction() as s:
        from coachbridge.store.tables import PersonRow

        s.get(PersonRow, ids["lou"]).email = None  # type: ignore[union-attr]
    later = send_invitations(app, "mentoring", now=NOW + timedelta(days=1))
    assert {(i.person_id, i.status) for i in later} == {
        (ids["lea"], "sent"),
        (ids["lou"], "no email"),
        (ids["gia"], "sent"),
    }
    assert len(Capture.sent) == 5


def test_at_most_two_reminders_remind_after_days_apart(db: Database) -> None:
    ids = company(db)
    app = app_for(db, program(remind_after_days=5))
    send_invitations(app, "mentoring", now=NOW)
    Capture.sent.clear()
    set_profile(app, str(ids["lou"]), "mentoring", topics="negotiation", now=NOW)  # answered
    pair(db, ids["lea"], ids["gia"])  # Lea paired without answering: nothing to ask any more
    assert send_reminders(app, now=NOW + timedelta(days=4)) == []
    first = send_reminders(app, now=NOW + timedelta(days=5))
    assert [(r.person_id, r.kind) for r in first] == [(ids["gus"], "reminder")]
    assert send_reminders(app, now=NOW + timedelta(days=9)) == []  # 4 days after the first
    dry = send_reminders(app, now=NOW + timedelta(days=10), dry_run=True)
    assert [r.status for r in dry] == ["dry-run"]
    second = send_reminders(app, now=NOW + timedelta(days=10))
    assert [r.person_id for r in second] == [ids["gus"]]
    for day in (15, 20, 40):
        assert send_reminders(app, now=NOW + timedelta(days=day)) == []
    assert [m.recipient_id for m in Capture.sent] == [ids["gus"]] * MAX_REMINDERS
    assert "reminder" in Capture.sent[0].subject
    row = _profiles(db)[ids["gus"]]
    assert row.reminders_sent == 2 and row.last_reminded_at == NOW + timedelta(days=10)


def test_the_daily_run_sends_the_reminders(db: Database) -> None:
    from coachbridge.jobs.daily import run_daily

    ids = company(db)
    app = app_for(db, program(remind_after_days=3))
    send_invitations(app, "mentoring", now=NOW)
    daily = run_daily(app, now=NOW + timedelta(days=3))  # type: ignore[arg-type]
    assert {r.person_id for r in daily.intake_reminders} == {
        ids["lea"],
        ids["lou"],
        ids["gus"],
        ids["gia"],
    }


def test_profile_set_validates_and_keeps_what_is_not_given(db: Database) -> None:
    ids = company(db)
    app = app_for(db)
    saved = set_profile(
        app,
        "lea@example.com",
        "mentoring",
        topics="Public speaking, negotiation",
        goal="Lead my first negotiation",
        languages="de,EN",
        availability="mon-am,tue-pm",
        now=NOW,
    )
    assert not saved.replaced
    saved = set_profile(app, str(ids["lea"]), "mentoring", goal="Speak at the all-hands", now=NOW)
    assert saved.replaced
    [row] = show_profiles(app, str(ids["lea"]))
    assert row == {
        "person_id": ids["lea"],
        "program": "mentoring",
        "topics": ["public speaking", "negotiation"],  # spelled as the program lists them
        "goal": "Speak at the all-hands",
        "languages": ["de", "en"],
        "availability": ["mon-am", "tue-pm"],
        "answered_at": NOW,
    }
    # Back to the HRIS's languages.
    set_profile(app, str(ids["lea"]), "mentoring", languages="", now=NOW)
    assert show_profiles(app, str(ids["lea"]), "mentoring")[0]["languages"] is None
    before = _profiles(db)[ids["lea"]].topics
    bad = [
        ({"topics": "negotiation,astrology"}, "--topics"),
        ({"topics": "negotiation,career change,data literacy,public speaking"}, "at most 3"),
        ({"goal": "x" * 1001}, "--goal"),
        ({"languages": "german"}, "--languages"),
        ({"availability": "sat-am"}, "--availability"),
        ({}, "at least one"),
    ]
    for kwargs, needle in bad:
        with pytest.raises(UserError, match=needle):
            set_profile(app, str(ids["lea"]), "mentoring", now=NOW, **kwargs)  # type: ignore[arg-type]
    assert _profiles(db)[ids["lea"]].topics == before
    # A guide may tick any number of topics.
    set_profile(app, str(ids["gus"]), "mentoring", topics=",".join(program().intake.topics))  # type: ignore[union-attr]
    with pytest.raises(UserError, match="not enrolled"):
        set_profile(app, str(ids["out"]), "mentoring", topics="negotiation")
    with pytest.raises(NotFoundError):
        set_profile(app, "nobody@example.com", "mentoring", topics="negotiation")


def test_the_audit_names_who_and_which_fields_never_the_text(db: Database) -> None:
    ids = company(db)
    app = app_for(db)
    set_profile(
        app, str(ids["lea"]), "mentoring", topics="negotiation", goal="SECRET-GOAL", now=NOW
    )
    set_profile(app, str(ids["lea"]), "mentoring", goal="SECRET-GOAL-2", now=NOW)
    with db.transaction() as s:
        rows = list(s.scalars(select(AuditRow).where(AuditRow.object_type == "person")))
    assert [r.action for r in rows] == ["profile_answered", "profile_replaced"]
    assert rows[0].details["fields"] == ["topics", "goal", "languages", "availability"]
    assert rows[1].details["fields"] == ["goal"]
    assert rows[1].actor.startswith("cli:") and rows[1].details["by"] == "cli"
    assert "SECRET" not in repr([r.details for r in rows])


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "answers.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_import_names_line_and_column_and_writes_nothing_on_error(
    db: Database, tmp_path: Path
) -> None:
    ids = company(db)
    app = app_for(db)
    good = _csv(
        tmp_path,
        "person,topics,goal,languages,availability\n"
        f"lea@example.com,negotiation;career change,Get better,de;en,mon-am;fri-pm\n"
        f'{ids["gus"]},negotiation;data literacy;public speaking;career change,"Ten years\nof deals",,\n'
        f"{ids['lou']},,,,\n",
    )
    saved = import_profiles(app, good, "mentoring", now=NOW)
    assert [x.person_id for x in saved] == [ids["lea"], ids["gus"], ids["lou"]]
    rows = _profiles(db)
    assert rows[ids["lea"]].topics == ["negotiation", "career change"]
    assert rows[ids["lea"]].availability == ["mon-am", "fri-pm"]
    assert rows[ids["gus"]].goal == "Ten years\nof deals" and rows[ids["gus"]].languages is None
    assert rows[ids["lou"]].answered_at == NOW and rows[ids["lou"]].topics == []

    before = {k: (v.topics, v.goal, v.answered_at) for k, v in _profiles(db).items()}
    bad = _csv(
        tmp_path,
        "person,topics,goal\n"
        f'{ids["gus"]},negotiation,"two\nlines"\n'  # lines 2-3: fine
        f"lea@example.com,astrology,\n"  # line 4: unknown topic
        f"nobody@example.com,negotiation,\n"  # line 5: unknown person
        f"{ids['lou']},negotiation,{'x' * 1001}\n"  # line 6: goal too long
        f"{ids['out']},negotiation,\n",  # line 7: not enrolled
    )
    with pytest.raises(InputDataError) as err:
        import_profiles(app, bad, "mentoring", now=NOW + timedelta(days=1))
    lines = str(err.value).splitlines()
    assert lines[0].startswith(f"{bad}:4: column topics:") and "astrology" in lines[0]
    assert lines[1].startswith(f"{bad}:5: column person:")
    assert lines[2].startswith(f"{bad}:6: column goal:")
    assert lines[3].startswith(f"{bad}:7: column person:") and "not enrolled" in lines[3]
    assert len(lines) == 4
    after = {k: (v.topics, v.goal, v.answered_at) for k, v in _profiles(db).items()}
    assert after == before  # the good row on line 2 was not written either

    header = _csv(tmp_path, "person,topic\n1,negotiation\n")
    with pytest.raises(InputDataError, match=r":1: column 2 'topic': unknown column"):
        import_profiles(app, header, "mentoring")
    semi = _csv(tmp_path, "person;topics\n1;negotiation\n")
    with pytest.raises(InputDataError, match=r":1: the columns are separated by ';'"):
        import_profiles(app, semi, "mentoring")
    crlf = _csv(tmp_path, f"\ufeffperson,topics\r\n{ids['lou']},career change\r\n")
    assert [x.person_id for x in import_profiles(app, crlf, "mentoring", now=NOW)] == [ids["lou"]]
    twice = _csv(tmp_path, f"person,topics\n{ids['lea']},negotiation\nlea@example.com,\n")
    with pytest.raises(InputDataError, match=r":3: column person: .* already on line 2"):
        import_profiles(app, twice, "mentoring")
    over = _csv(tmp_path, f"person,topics\n{ids['lea']},negotiation,extra\n")
    with pytest.raises(InputDataError, match=r":2: 3 cells"):
        import_profiles(app, over, "mentoring")


def test_forget_erases_answers_and_invitations(db: Database) -> None:
    ids = company(db)
    app = app_for(db)
    send_invitations(app, "mentoring", now=NOW)
    set_profile(app, str(ids["lea"]), "mentoring", topics="negotiation", goal="MY-GOAL", now=NOW)
    result = forget(app, str(ids["lea"]), actor="dpo")  # type: ignore[arg-type]
    assert result.profiles == 1
    rows = _profiles(db)
    assert ids["lea"] not in rows and ids["lou"] in rows
    with pytest.raises(UserError):
        set_profile(app, str(ids["lea"]), "mentoring", topics="negotiation")
    assert show_profiles(app, str(ids["lea"])) == []
    # Nobody erased is reminded or listed.
    reminded = send_reminders(app, now=NOW + timedelta(days=30))
    assert ids["lea"] not in {r.person_id for r in reminded}
    assert ids["lea"] not in {r["person_id"] for r in intake_links(app, "mentoring")}


def test_reports_show_only_suppressed_topic_counts(db: Database) -> None:
    from coachbridge.reports import build_reports, render_html
    from coachbridge.store.tables import EnrollmentRow

    from tests.participants.participants_world import person

    prog = program()
    ids = company(db, prog)
    app = app_for(db, prog)
    with db.transaction() as s:
        extra = []
        for n in range(6):
            row = person(s, f"Extra{n}", 20 + n)
            s.add(EnrollmentRow(program_id="mentoring", person_id=row.id, role="learner"))
            extra.append(row.id)
    for pid in extra:
        set_profile(app, str(pid), "mentoring", topics="negotiation", goal="SECRET-GOAL", now=NOW)
    set_profile(app, str(ids["lea"]), "mentoring", topics="negotiation,career change", now=NOW)
    set_profile(app, str(ids["gus"]), "mentoring", topics="negotiation", now=NOW)
    with db.transaction() as s:
        [report] = build_reports(s, [prog], min_group_size=5, now=NOW)
    intake = report["intake"]
    assert intake["learners_enrolled"] == 8 and intake["learners_answered"] == 7
    assert intake["guides_answered"] == {"suppressed": True}
    assert intake["topics_wanted"]["negotiation"] == 7
    assert intake["topics_wanted"]["career change"] == {"suppressed": True}  # one learner
    assert intake["topics_wanted"]["data literacy"] == 0
    assert intake["topics_offered"]["negotiation"] == {"suppressed": True}
    html = render_html([report], now=NOW, min_group_size=5)
    assert "Intake questionnaire" in html and "learners asking" in html
    assert "SECRET-GOAL" not in html and "SECRET-GOAL" not in repr(report)


def test_an_invitation_no_channel_sent_is_sent_again_and_starts_no_reminders(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = company(db)
    app = app_for(db)

    def refuse(self: Capture, message: object) -> str:
        raise OSError("connection refused")

    monkeypatch.setattr(Capture, "send", refuse)
    failed = send_invitations(app, "mentoring", now=NOW)
    assert {i.status for i in failed} == {"failed"} and len(failed) == 4
    # Not invited: no reminder clock, nothing due later.
    assert all(row.invited_at is None for row in _profiles(db).values())
    assert send_reminders(app, now=NOW + timedelta(days=6)) == []
    monkeypatch.undo()
    # Mail works again the same day: the same invitations go out (the same keys, one row each).
    again = send_invitations(app, "mentoring", now=NOW + timedelta(hours=1))
    assert {i.status for i in again} == {"sent"} and len(again) == 4
    assert {m.recipient_id for m in Capture.sent} == {
        ids["lea"],
        ids["lou"],
        ids["gia"],
        ids["gus"],
    }
    with db.transaction() as s:
        rows = list(s.scalars(select(NotificationRow)))
    assert len(rows) == 4 and {r.status for r in rows} == {"sent"}
    assert all(row.invited_at == NOW + timedelta(hours=1) for row in _profiles(db).values())
    # Once sent, not twice the same day.
    assert send_invitations(app, "mentoring", now=NOW + timedelta(hours=2)) == []


def test_a_failed_reinvitation_keeps_the_earlier_invitations_reminders(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    company(db)
    app = app_for(db)
    send_invitations(app, "mentoring", now=NOW)
    monkeypatch.setattr(Capture, "send", lambda self, message: (_ for _ in ()).throw(OSError()))
    failed = send_invitations(app, "mentoring", now=NOW + timedelta(days=1))
    assert {i.status for i in failed} == {"failed"}
    assert all(row.invited_at == NOW for row in _profiles(db).values())


def test_a_stored_answer_the_program_no_longer_takes_is_named_as_stored(db: Database) -> None:
    """The program's max_topics went down after Lea answered: changing only her goal names her
    stored topics as the problem, not a --topics option she did not give."""
    ids = company(db)
    app = app_for(db)
    set_profile(app, str(ids["lea"]), "mentoring", topics="negotiation,career change", now=NOW)
    stricter = program(max_topics=1)
    app = app_for(db, stricter)
    with pytest.raises(UserError, match="stored answer to topics no longer fits") as caught:
        set_profile(app, str(ids["lea"]), "mentoring", goal="Grow", now=NOW)
    assert "give --topics to replace it" in str(caught.value)
    saved = set_profile(app, str(ids["lea"]), "mentoring", topics="negotiation", goal="Grow")
    assert saved.replaced
