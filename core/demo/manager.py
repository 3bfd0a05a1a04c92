"""The demo's manager-coaching paragraph: one department's managers coach their own teams.

Runs on the demo's database after the year is over: the Engineering department's people are
paired with their managers (no matching), check-ins are planned, a reorg moves one person to
another manager and the sync follows it, eight weeks of check-ins pass, then the
coaching-culture view across every program.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from coachbridge.demo.sample_data import PEOPLE_FILE, sample_dir
from coachbridge.hris.sync import Syncer
from coachbridge.store.tables import ExternalIdRow, PersonRow
from sqlalchemy import select

__all__ = ["DEPARTMENT", "PROGRAM_ID", "manager_coaching"]

PROGRAM_ID = "engineering-check-ins"
WEEKS = 8  # how long the check-ins run before the culture view
DEPARTMENT = "Engineering"
PROGRAM = f"""
[[programs]]
id = "{PROGRAM_ID}"
name = "Engineering check-ins"
kind = "manager"
objective = "Every manager coaches their own team between reviews"
owner = "anna.muller@northwind.example"
duration_weeks = 52
cadence_days = 14
session_minutes = 30
max_reports = 4
[programs.learners]
departments = ["{DEPARTMENT}"]
"""


def _moved_export(source: Path, target: Path, person: str, manager: str) -> None:
    """The sample export with ``person`` reporting to ``manager`` (a reorg)."""
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    for row in rows:
        if row["id"] == person:
            row["manager_id"] = manager
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def manager_coaching(
    app_for: Callable[[Path], Any],
    config: Path,
    work: Path,
    say: Callable[[str], None],
    now: datetime,
) -> None:
    """Manager coaching for one department on the demo's database; prints one paragraph.

    ``app_for(path)`` opens the demo's database with the config at ``path``; ``config`` is
    the demo's own config, to which the manager program is added.
    """
    from coachbridge.matching.managers import over_max_reports, reports_count
    from coachbridge.matching.service import apply, propose
    from coachbridge.pairings.scheduling import schedule_pairings
    from coachbridge.programs.enrollment import enroll_eligible
    from coachbridge.reports.culture import culture_report

    text = config.read_text(encoding="utf-8") + PROGRAM
    here = work / "coachbridge-managers.toml"
    here.write_text(text, encoding="utf-8")
    app = app_for(here)
    program = app.config.program(PROGRAM_ID)
    with app.database().transaction() as s:
        enroll_eligible(s, program, today=now.date())
        proposal = propose(s, program, None, now=now)
        rows = apply(s, program, proposal, actor="demo", now=now)
        sessions = schedule_pairings(s, program, [r.id for r in rows], now=now)
        over = over_max_reports(program, reports_count(s, program.id))
        managers = {r.guide_id for r in rows}
        names = {p.id: p.name for p in s.scalars(select(PersonRow))}
        inside = {
            p.id for p in s.scalars(select(PersonRow).where(PersonRow.department == DEPARTMENT))
        }
        # The reorg: the first report of the department's manager with the most reports moves
        # to its manager with the fewest (the lowest ids on ties: the same on every run).
        load = reports_count(s, program.id)
        local = managers & inside
        busiest = min(local, key=lambda m: (-load[m], m))
        quietest = min(local - {busiest}, key=lambda m: (load[m], m))
        mover = min(r.learner_id for r in rows if r.guide_id == busiest)
        ext = {
            pid: external
            for external, pid in s.execute(
                select(ExternalIdRow.external_id, ExternalIdRow.person_id).where(
                    ExternalIdRow.connector == "hr"
                )
            )
        }
    say("")
    say(
        f"{program.name} ({program.kind.value}: the {DEPARTMENT} department, a "
        f"{program.session_minutes}-minute 1:1 every {program.cadence_days} days)"
    )
    say(
        f"  {len(rows)} people paired with their {len(managers)} managers from the HRIS (no "
        f"matching), {len(sessions)} check-ins scheduled; {len(over)} managers above "
        f"max_reports {program.max_reports} (warned about, paired anyway)"
        + (f"; {len(proposal.unmatched)} without a manager to pair" if proposal.unmatched else "")
    )

    # A reorg: the HRIS moves one person to another manager; the sync follows it.
    people = sample_dir() / PEOPLE_FILE
    moved = work / "people-reorg.csv"
    _moved_export(people, moved, ext[mover], ext[quietest])
    reorg = here.with_name("coachbridge-reorg.toml")
    reorg.write_text(
        text.replace(json.dumps(str(people)), json.dumps(str(moved))), encoding="utf-8"
    )
    later = app_for(reorg)
    when = now + timedelta(days=1)
    report = Syncer(
        later.database(), later.connector("hr"), now=when, programs=later.config.programs
    ).run()
    again = Syncer(
        later.database(), later.connector("hr"), now=when, programs=later.config.programs
    ).run()
    say(
        f"  a reorg moves {names[mover]} from {names[busiest]} to {names[quietest]}: the sync "
        f"ended {report.manager_pairings_ended} pairing (manager changed), cancelled "
        f"{report.manager_sessions_cancelled} future check-ins and started "
        f"{report.manager_pairings_started} with the new manager; the same sync again: "
        f"{again.manager_pairings_ended} ended, {again.manager_pairings_started} started"
    )

    until = when + timedelta(weeks=WEEKS)
    held, missed = _check_ins_happen(later, until)
    with later.database().transaction() as s:
        culture = culture_report(
            s,
            list(later.config.programs.values()),
            min_group_size=later.config.reports.min_group_size,
            now=until,
        )
    say(
        f"  the next {WEEKS} weeks: {held} check-ins held, {missed} missed; coaching culture "
        f"on {until:%d %B %Y} (report --culture): " + _culture_line(culture)
    )


def _check_ins_happen(app: Any, until: datetime) -> tuple[int, int]:
    """Seeded outcomes for the program's check-ins before ``until``: most are held; the
    teams of one manager in four skip about a third of theirs, the others one in fifty."""
    from coachbridge.pairings.scheduling import mark_session
    from coachbridge.store.tables import PairingRow, SessionRow

    held = missed = 0
    with app.database().transaction() as s:
        found = s.execute(
            select(SessionRow.id, PairingRow.guide_id)
            .join(PairingRow, PairingRow.id == SessionRow.pairing_id)
            .where(
                PairingRow.program_id == PROGRAM_ID,
                SessionRow.status == "scheduled",
                SessionRow.start < until,
            )
            .order_by(SessionRow.id)
        ).all()
        for session_id, guide_id in found:
            busy = _stable("busy", guide_id) % 4 == 0
            skip = _stable("check-in", session_id) % 100 < (35 if busy else 2)
            mark_session(s, session_id, "missed" if skip else "held", now=until, actor="demo")
            missed += skip
            held += not skip
    return held, missed


def _stable(*parts: object) -> int:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _figure(value: Any) -> str:
    if isinstance(value, dict) and value.get("suppressed"):
        return "suppressed (group too small)"
    return "n/a" if value is None else str(value)


def _culture_line(report: dict[str, Any]) -> str:
    o = report["overall"]
    held = o.get("managers_held_checkins") or {}
    return (
        f"{_figure(o['guides'])} guides, {_figure(o['guides_active'])} active in the last "
        f"{report['window_days']} days, {_figure(o['learners_per_guide'])} learners per guide, "
        f"{_figure(o['sessions_per_guide_per_month'])} sessions per guide per month, "
        f"{_figure(o['guides_over_capacity'])} over capacity; managers who held every "
        f"check-in: {_figure(held.get('share'))}"
    )
