"""The demo: a year in the life of the bundled sample company, through the real code paths.

``coachbridge demo`` plays the product's whole loop on the sample data with a fixed clock, so the
same input always prints the same summary:

1. October 2025, first sync of the HR export (as it looked then): review history is stored, but
   no old review starts anything.
2. A leadership-mentoring pilot: eligibility, certified optimal matching with reasons, sessions
   scheduled.
3. February 2026, a sync after the 2025-H2 review cycle: its low ratings start performance
   coaching through a rule (enroll, match a coach, schedule sessions, create a goal).
4. The months pass: sessions are held or missed and rated (seeded), pairings complete.
5. November 2026, the current export: leavers, promotions, the 2026-H1 cycle and its coaching.
6. Calendar files, the daily health check and the outcome report.

Everything goes through the same functions the commands use; only the passing of time and the
people's answers are simulated.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from coachbridge.app import App
from coachbridge.demo.choice import run_choice_round
from coachbridge.demo.intake import intake_round
from coachbridge.demo.manager import manager_coaching
from coachbridge.demo.peer import peer_and_reverse
from coachbridge.demo.sample_data import PEOPLE_FILE, REVIEWS_FILE, sample_dir
from coachbridge.hris.sync import Syncer
from coachbridge.plugins import Registry
from coachbridge.store.tables import (
    GoalRow,
    PairingRow,
    PersonRow,
    SessionRow,
)
from sqlalchemy import func, select, update

FIRST_SYNC = datetime(2025, 10, 6, 8, 0, tzinfo=UTC)
MID_SYNC = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)
TODAY = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
SEED = 2026
MENTORING = "leadership-mentoring"
COACHING = "performance-coaching"

CONFIG_TEMPLATE = """\
# Written by `coachbridge demo`: the sample company's configuration.
[connectors.hr]
plugin = "csv"
people = {people}
reviews = {reviews}

[[programs]]
id = "{mentoring}"
name = "Leadership mentoring pilot"
kind = "mentoring"
objective = "Grow the next generation of team leads"
owner = "anna.muller@northwind.example"
start = 2025-10-13
duration_weeks = 20
cadence_days = 14
session_minutes = 45
capacity = 2
min_score = 0.2
holidays = "DE"
[programs.learners]               # a pilot in four offices; the others are the comparison
level = [2, 4]
locations = ["Berlin", "London", "New York", "Warsaw"]
[programs.guides]
level = [5, 8]
[programs.weights]
skills = 0.4
seniority = 0.2
timezone = 0.2
department_diversity = 0.2

[[programs]]
id = "{coaching}"
name = "Performance coaching"
kind = "coaching"
objective = "Close the gap named in a review within a quarter"
owner = "anna.muller@northwind.example"
duration_weeks = 12
cadence_days = 14
session_minutes = 30
capacity = 3
min_score = 0.1
[programs.guides]
level = [5, 9]
[programs.weights]
skills = 0.5
timezone = 0.3
language = 0.2

[[rules]]
on = "review.completed"
when = [{{ field = "rating", op = "<=", value = 0.25 }}]
then = {{ enroll = "{coaching}", role = "learner", goal = "Coaching plan after the {{cycle}} review" }}
cooldown_days = 180

[notify.log]

[server]
secret_key = "demo-only-not-a-secret"   # signs feedback links; use "${{COACHBRIDGE_SECRET_KEY}}"
"""

COMMENTS = (
    "Very practical session, we agreed on two next steps.",
    "Good conversation about delegation.",
    "We ran out of time; next time a tighter agenda.",
    "Helpful perspective from another department.",
)


@dataclass
class DemoResult:
    """Figures of one demo run, and the lines of its summary."""

    lines: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

    def say(self, text: str = "") -> None:
        self.lines.append(text)


def _stable(*parts: object) -> int:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def write_snapshot(source: Path, target: Path, at: date) -> int:
    """The sample export as it looked on ``at``: later hires absent, later leavers active,
    about one in eight people one level lower (promoted since). Returns the row count."""
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    kept = []
    present = {r["id"] for r in rows if date.fromisoformat(r["hire_date"]) <= at}
    for row in rows:
        if row["id"] not in present:
            continue
        row = dict(row)
        if row["manager_id"] and row["manager_id"] not in present:
            row["manager_id"] = ""
        ended = row.get("termination_date")
        if ended and date.fromisoformat(ended) > at:
            row["status"], row["termination_date"] = "Active", ""
        level = int(row["level"]) if row["level"] else 0
        if 2 <= level <= 7 and _stable("promoted", row["id"]) % 8 == 0:
            row["level"] = str(level - 1)
        kept.append(row)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
    return len(kept)


def write_reviews_until(source: Path, target: Path, until: datetime) -> int:
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or [])
        rows = [
            r
            for r in reader
            if datetime.fromisoformat(r["completed_at"].replace("Z", "+00:00")) <= until
        ]
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def write_config(path: Path, people: Path, reviews: Path) -> Path:
    path.write_text(
        CONFIG_TEMPLATE.format(
            people=json.dumps(str(people)),
            reviews=json.dumps(str(reviews)),
            mentoring=MENTORING,
            coaching=COACHING,
        ),
        encoding="utf-8",
    )
    return path


class Demo:
    """Runs the demo into ``work`` (config and snapshots) and ``out`` (calendars, report)."""

    def __init__(self, work: Path, out: Path, db_url: str, registry: Registry) -> None:
        self.work, self.out, self.db_url, self.registry = work, out, db_url, registry
        self.result = DemoResult()
        self.say = self.result.say

    def _app(self, config: Path) -> App:
        app = App(config_option=str(config), db_option=self.db_url)
        app._registry = self.registry
        return app

    def _snapshot_app(self, at: datetime) -> App:
        """An app whose connector reads the sample export as it looked at ``at``."""
        source = sample_dir()
        people = self.work / f"people-{at:%Y-%m}.csv"
        reviews = self.work / f"reviews-{at:%Y-%m}.csv"
        write_snapshot(source / PEOPLE_FILE, people, at.date())
        write_reviews_until(source / REVIEWS_FILE, reviews, at)
        return self._app(write_config(self.work / f"coachbridge-{at:%Y-%m}.toml", people, reviews))

    def run(self) -> DemoResult:
        source = sample_dir()
        # The current config goes next to the report, so the result can be explored with it.
        now_config = write_config(
            self.out / "coachbridge.toml", source / PEOPLE_FILE, source / REVIEWS_FILE
        )
        self.result.files["config"] = now_config
        self.say("coachbridge demo: Northwind, the sample company bundled with coachbridge")
        self.say(
            f"(a fixed clock from {FIRST_SYNC:%d %B %Y} to {TODAY:%d %B %Y}: "
            "same input, same output)"
        )

        first = self._snapshot_app(FIRST_SYNC)
        from coachbridge.store.tables import InstallationRow

        with first.database().transaction() as s:
            installation = s.get(InstallationRow, 1)
            if installation is not None:  # a fixed tag: the same calendar files on every run
                installation.calendar_tag = "demo"
        report = Syncer(first.database(), first.connector("hr"), now=FIRST_SYNC).run(full=True)
        self.say()
        self.say(f"{FIRST_SYNC:%B %Y}: first sync of the HR export")
        self.say(
            f"  {len(report.new)} people from hr, {report.reviews_new} review results "
            f"(cycle 2025-H1); the rules ran on {len(report.reviews_for_rules)} of them: "
            "results completed before the first sync are history, and history never enrolls anyone"
        )
        self._mentoring(first)

        mid = self._snapshot_app(MID_SYNC)
        self._simulate(mid, until=MID_SYNC)
        self._review_cycle(mid, MID_SYNC, "2025-H2")
        self._simulate(mid, until=TODAY)

        late = self._app(now_config)
        self._complete(late)
        self._review_cycle(late, TODAY, "2026-H1")
        peer_and_reverse(late, self.registry, self.say, now=TODAY)
        self._calendars(late)
        self._health(late)
        intake_round(late, self.registry, self.say, program_id=MENTORING, now=TODAY)
        run_choice_round(self, late, TODAY)
        self._report(late)
        manager_coaching(self._app, now_config, self.work, self.say, TODAY)
        return self.result

    # -- mentoring -------------------------------------------------------------------------
    def _mentoring(self, app: App) -> None:
        from coachbridge.matching.service import apply, propose
        from coachbridge.pairings.scheduling import schedule_pairings
        from coachbridge.programs.enrollment import enroll_eligible

        program = app.config.program(MENTORING)
        db = app.database()
        with db.transaction() as s:
            enrolled = enroll_eligible(s, program, today=FIRST_SYNC.date())
            proposal = propose(s, program, self.registry, now=FIRST_SYNC)
            rows = apply(s, program, proposal, actor="demo", now=FIRST_SYNC, registry=self.registry)
            sessions = schedule_pairings(s, program, [r.id for r in rows], now=FIRST_SYNC)
            people = {p.id: p for p in s.scalars(select(PersonRow))}
        self.say()
        self.say(
            f"{program.name} ({program.kind.value}, from {program.start}, "
            f"{program.duration_weeks} weeks, a session every {program.cadence_days} days)"
        )
        self.say(
            f"  enrolled {enrolled.learner.added} learners (levels 2-4 in Berlin, London, New York "
            f"and Warsaw) and {enrolled.guide.added} guides (levels 5-8), {program.capacity} "
            "learners per guide"
        )
        reasons = Counter(u.reason for u in proposal.unmatched)
        why = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
        self.say(
            f"  {len(rows)} pairings, {proposal.guarantee}; {len(proposal.unmatched)} learners "
            f"unmatched" + (f" ({why})" if why else "")
        )
        self.say("  the best pairings, and why (each criterion's weighted share of the score):")
        for pair in sorted(proposal.pairs, key=lambda p: (-p.score, p.learner_id))[:3]:
            learner, guide = people[pair.learner_id], people[pair.guide_id]
            parts = " + ".join(f"{k} {v:.2f}" for k, v in sorted(pair.breakdown.items()) if v)
            self.say(
                f"    {learner.name} (L{learner.level} {learner.department}, {learner.location}) "
                f"with {guide.name} (L{guide.level} {guide.department}, {guide.location})"
            )
            self.say(f"      score {pair.score:.2f} = {parts}")
        for miss in proposal.unmatched[:2]:
            learner = people[miss.learner_id]
            self.say(f"    unmatched: {learner.name} (L{learner.level}): {miss.reason}")
        if sessions:
            first = min(x.start for x in sessions).date()
            last = max(x.start for x in sessions).date()
            self.say(
                f"  {len(sessions)} sessions scheduled between {first} and {last}, inside both "
                "people's working hours, never on weekends or German public holidays"
            )

    # -- time passes -----------------------------------------------------------------------
    def _simulate(self, app: App, *, until: datetime) -> None:
        """Seeded outcomes and ratings for every session planned before ``until``."""
        from coachbridge.pairings.feedback import record_feedback
        from coachbridge.pairings.scheduling import mark_session

        outcomes: Counter[str] = Counter()
        ratings: list[int] = []
        with app.database().transaction() as s:
            rows = list(
                s.scalars(
                    select(SessionRow)
                    .where(SessionRow.status == "scheduled", SessionRow.start < until)
                    .order_by(SessionRow.id)
                )
            )
            pairings = {p.id: p for p in s.scalars(select(PairingRow))}
            people = {p.id: p for p in s.scalars(select(PersonRow))}
            for session in rows:
                pairing = pairings[session.pairing_id]
                rng = random.Random(_stable(SEED, session.id))
                # About one pairing in eight drifts: its later sessions are mostly missed.
                drifting = _stable("drift", pairing.id) % 8 == 0
                late = session.seq is not None and session.seq > 3
                missed_share = 0.55 if drifting and late else 0.12
                roll = rng.random()
                status = "held"
                if roll < missed_share:
                    status = "missed"
                elif roll < missed_share + 0.06:
                    status = "cancelled"
                if pairing.status != "active" or people[pairing.learner_id].status != "active":
                    status = "cancelled"
                mark_session(s, session.id, status, now=until, actor="demo")
                outcomes[status] += 1
                if status != "held":
                    continue
                for person_id in (pairing.learner_id, pairing.guide_id):
                    if rng.random() > 0.65:
                        continue
                    bad_fit = drifting and session.seq == 1
                    rating = rng.choice([1, 2]) if bad_fit else rng.choice([3, 4, 4, 5, 5, 5])
                    comment = rng.choice(COMMENTS) if rng.random() < 0.2 else None
                    record_feedback(
                        s, session.id, people[person_id], rating, comment=comment, actor="demo"
                    )
                    ratings.append(rating)
        self.say()
        self.say(f"until {until - timedelta(days=1):%d %B %Y}: sessions happen")
        self.say(
            f"  held {outcomes['held']}, missed {outcomes['missed']}, cancelled "
            f"{outcomes['cancelled']}; {len(ratings)} feedback ratings, mean "
            f"{sum(ratings) / max(len(ratings), 1):.1f} of 5"
        )

    def _complete(self, app: App) -> None:
        from coachbridge.pairings.lifecycle import complete_finished_pairings

        with app.database().transaction() as s:
            done = {
                program.id: complete_finished_pairings(s, program, TODAY)
                for program in app.config.programs.values()
            }
        text = ", ".join(f"{pid} {n}" for pid, n in done.items())
        self.say(f"  pairings completed at the end of their term: {text}")

    # -- review cycles ---------------------------------------------------------------------
    def _review_cycle(self, app: App, now: datetime, cycle: str) -> None:
        """Sync the export after a review cycle; low ratings start coaching through the rule."""
        from coachbridge.programs.automation import process_review_events
        from coachbridge.programs.enrollment import enroll_eligible

        db = app.database()
        coaching = app.config.program(COACHING)
        report = Syncer(db, app.connector("hr"), now=now).run()
        with db.transaction() as s:
            enroll_eligible(s, coaching, today=now.date())
            before = set(s.scalars(select(PairingRow.id).where(PairingRow.program_id == COACHING)))
        outcomes = process_review_events(app, report.reviews_for_rules, now=now)
        results = Counter(
            r.get("result", "") for outcome in outcomes.values() for r in outcome.get("rules", [])
        )
        with db.transaction() as s:
            new = [
                pid
                for pid in s.scalars(select(PairingRow.id).where(PairingRow.program_id == COACHING))
                if pid not in before
            ]
            sessions = s.scalar(
                select(func.count()).select_from(SessionRow).where(SessionRow.pairing_id.in_(new))
            )
            goals = s.scalar(
                select(func.count()).select_from(GoalRow).where(GoalRow.pairing_id.in_(new))
            )
            active = s.scalar(
                select(func.count()).select_from(PersonRow).where(PersonRow.status == "active")
            )
        self.say()
        self.say(f"{now:%B %Y}: sync after the {cycle} review cycle")
        self.say(
            f"  {len(report.new)} joiners, {len(report.changed)} changed"
            + (" (promotions among them)" if report.changed else "")
            + f", {len(report.leaving)} leavers ({report.pairings_ended} of their pairings ended, "
            f"{report.sessions_cancelled} future sessions cancelled); {active} people active"
        )
        fired = sum(results.values())
        self.say(
            f"  {report.reviews_new} new review results; the rule 'rating <= 0.25 -> "
            f"{coaching.name}' fired for {fired} of them"
        )
        waiting = results.get("no guide available", 0)
        self.say(
            f"  {len(new)} matched with a coach, {sessions} sessions scheduled from "
            f"{now.date()}, {goals} goals created, invitations sent"
            + (f"; {waiting} waiting for a coach with free capacity" if waiting else "")
        )

    # -- 5 ---------------------------------------------------------------------------------
    def _calendars(self, app: App) -> None:
        from coachbridge.pairings.calendar import write_calendars

        folder = self.out / "calendars"
        with app.database().transaction() as s:
            # The files' DTSTAMP comes from each row's last change: on the demo's clock, so the
            # same input gives byte-identical calendars.
            s.execute(update(SessionRow).values(updated_at=TODAY))
            found = [
                (row, pairing)
                for row, pairing in s.execute(
                    select(SessionRow, PairingRow)
                    .join(PairingRow, SessionRow.pairing_id == PairingRow.id)
                    .order_by(SessionRow.id)
                ).all()
            ]
            count = write_calendars(s, found, folder, lambda pid: app.config.programs.get(pid))
        self.result.files["calendars"] = folder
        self.say()
        self.say(f"calendar invitations (RFC 5545): {count} files in {folder}/")

    def _health(self, app: App) -> None:
        from coachbridge.jobs.health import counts_by_condition, run_health_checks

        nudges = run_health_checks(app, now=TODAY, dry_run=True)
        counts = counts_by_condition(nudges)
        text = ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "nothing to do"
        self.say(f"daily health check on {TODAY.date()} (dry run): {text}")

    def _report(self, app: App) -> None:
        from coachbridge.reports import build_reports, render_html

        programs = list(app.config.programs.values())
        size = app.config.reports.min_group_size
        with app.database().transaction() as s:
            reports = build_reports(s, programs, min_group_size=size, now=TODAY)
        path = self.out / "report.html"
        path.write_text(render_html(reports, now=TODAY, min_group_size=size), encoding="utf-8")
        self.result.files["report"] = path
        for report in reports:
            summary = _report_line(report)
            self.say(f"outcomes, {report.get('program')}: {summary}")
        self.say(f"report: {path}")


def _figure(value: Any) -> str:
    if not isinstance(value, dict) or value.get("suppressed"):
        return "suppressed (group too small)"
    if value.get("value") is None:
        return "not measurable yet"
    ci = value.get("ci") or [None, None]
    low, high = ci if len(ci) == 2 else (None, None)
    interval = f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else ""
    return f"{value['value']:.2f}{interval} (n={value.get('n')})"


def _report_line(report: dict[str, Any]) -> str:
    retention = report.get("retention_12m") or {}
    change = report.get("rating_change") or {}
    return (
        f"{report.get('participants')} participants; 12-month retention "
        f"{_figure(retention.get('participants'))} vs comparison "
        f"{_figure(retention.get('comparison'))}; rating change "
        f"{_figure(change.get('participants'))} vs {_figure(change.get('comparison'))}"
    )
