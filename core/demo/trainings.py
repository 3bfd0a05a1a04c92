"""The demo's trained-guides part: the sample company's HR export holds training records, and a
coaching programme admits as guides only people whose "Coaching fundamentals" is valid.

Runs on the demo's database at its "today", with the demo's configuration plus the trainings
file and one more program (written beside it): a sync stores the trainings, eligibility and
matching apply ``trained_in`` and ``training_valid_days``, and the guides' received ratings
from the year's sessions weigh in (``guide_rating``). The proposal is shown, not stored.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from coachbridge.app import App
from coachbridge.demo.sample_data import TRAININGS_FILE, sample_dir
from coachbridge.hris.sync import Syncer
from coachbridge.store.eligibility import guide_reason, load_guide_facts, passes_filters
from coachbridge.store.tables import PersonRow
from sqlalchemy import select


class Demo(Protocol):
    """What this part uses of the demo runner (``coachbridge.demo.story.Demo``)."""

    work: Path
    out: Path
    registry: Any

    def say(self, text: str = "") -> None: ...

    def _app(self, config: Path) -> App: ...


PROGRAM = "trained-coaching"
TRAINING = "Coaching fundamentals"
PROGRAM_TOML = f"""
[[programs]]
id = "{PROGRAM}"
name = "Coaching by trained coaches"
kind = "coaching"
objective = "Coaching for new team leads, only from people trained to coach"
duration_weeks = 12
cadence_days = 14
session_minutes = 45
capacity = 2
[programs.learners]
level = [3, 4]
min_tenure_days = 180
[programs.guides]
level = [5, 9]
trained_in = ["{TRAINING}"]
training_valid_days = 730
[programs.weights]
skills = 0.4
timezone = 0.2
department_diversity = 0.2
guide_rating = 0.2
"""


def config_with_trainings(base: Path, target: Path) -> Path:
    """``base`` (the demo's config) with the trainings file and the trained-coaching program."""
    lines = base.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("reviews = "))
    lines.insert(at + 1, f"trainings = {json.dumps(str(sample_dir() / TRAININGS_FILE))}")
    target.write_text("\n".join(lines) + "\n" + PROGRAM_TOML, encoding="utf-8")
    return target


def trained_guides(demo: Demo, app: App, now: datetime) -> None:
    """One paragraph: trainings synced, the guide pool they leave, the proposal it gives."""
    from coachbridge.matching.service import propose
    from coachbridge.programs.enrollment import enroll_eligible

    base = app.config.path or demo.out / "coachbridge.toml"
    config = config_with_trainings(base, demo.work / "coachbridge-trainings.toml")
    trained = demo._app(config)
    program = trained.config.program(PROGRAM)
    rules = program.guides
    assert rules is not None
    db = trained.database()
    syncer = Syncer(db, trained.connector("hr"), now=now, programs=trained.config.programs.values())
    report = syncer.run()
    today = now.date()
    s = db.session()  # shown, not stored: rolled back, the rest of the demo is unchanged
    try:
        people = list(s.scalars(select(PersonRow).order_by(PersonRow.id)))
        senior = [p.id for p in people if passes_filters(p, rules, today=today)]
        facts = load_guide_facts(s, rules, senior)
        reasons = Counter(guide_reason(pid, rules, facts, today=today) or "ok" for pid in senior)
        enrolled = enroll_eligible(s, program, today=today)
        proposal = propose(s, program, demo.registry, now=now)
        names = {p.id: p.name for p in people}
        levels = {p.id: p.level for p in people}
    finally:
        s.rollback()
        s.close()
    never = sum(n for r, n in reasons.items() if r.startswith("no "))
    lapsed = sum(n for r, n in reasons.items() if r.endswith("expired or too old"))
    demo.say()
    demo.say(f"{program.name} (guides need {TRAINING!r} completed within 730 days)")
    demo.say(
        f"  a sync stores the HR export's {report.trainings_new} training records; of the "
        f"{len(senior)} people at levels 5-9, {reasons['ok']} hold a valid {TRAINING!r}, "
        f"{lapsed} completed it more than two years ago, {never} never took it"
    )
    demo.say(
        f"  enrolled {enrolled.learner.added} learners and {enrolled.guide.added} trained guides; "
        f"{len(proposal.pairs)} pairings proposed, {proposal.guarantee} (guide_rating weighs "
        "the ratings each guide received this year)"
    )
    best = max(proposal.pairs, key=lambda p: (p.score, -p.learner_id), default=None)
    if best is not None:
        parts = " + ".join(f"{k} {v:.2f}" for k, v in sorted(best.breakdown.items()) if v)
        demo.say(
            f"    e.g. {names[best.learner_id]} with {names[best.guide_id]} "
            f"(L{levels[best.guide_id]}, trained): score {best.score:.2f} = {parts}"
        )
