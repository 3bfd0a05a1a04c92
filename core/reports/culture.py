"""The coaching-culture view (``coachbridge report --culture``): guides across programs.

For each configured program, and for all of them together (each person counted once):

* ``guides``: people who guide in it: enrolled as a guide (active, not opted out) or the guide
  of an open pairing (in a manager program: the managers with a pairing);
* ``guides_trained``: of those, how many hold a training record unexpired on the report's date
  (``trained_guides``; ``null`` while no connector has stored any training record);
* ``guides_active``: guides who held at least one session in the window (the
  ``window_days`` before the report's moment);
* ``learners_per_guide``: open pairings (active or paused) per guide with one;
* ``sessions_per_guide_per_month``: sessions held in the window per active guide, per 30 days;
* ``guides_over_capacity``: guides with more open pairings than their capacity (their own,
  else the program's; in a manager program ``max_reports``, and none without it);
* ``managers_held_checkins`` (manager programs): of the managers with check-ins due in the
  window (started by the report's moment, not cancelled), the share who held every one.

Every figure is an aggregate: a count about fewer than ``min_group_size`` people, and a mean or
share over fewer, is replaced by ``{"suppressed": true}`` as in every report. A count of some
of the guides (trained, active, over capacity) is hidden also when the rest are that few, and
the managers' share when those who held every check-in, or those who did not, are that few:
shown next to the whole, either gives the other away.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from coachbridge.domain.pairing import OPEN
from coachbridge.domain.program import Program, ProgramKind
from coachbridge.domain.training import training_counts
from coachbridge.reports.suppress import SUPPRESSED, Suppressor, is_suppressed
from coachbridge.store.eligibility import stored_training_names, trainings_of
from coachbridge.store.tables import EnrollmentRow, PairingRow, PersonRow, SessionRow
from sqlalchemy import select
from sqlalchemy.orm import Session

__all__ = ["WINDOW_DAYS", "culture_report", "render_culture_html", "trained_guides"]

WINDOW_DAYS = 90
MONTH_DAYS = 30


def trained_guides(s: Session, guide_ids: set[int], today: date) -> set[int] | None:
    """The guides among ``guide_ids`` holding a training that counts on ``today`` (its latest
    record unexpired, as the guide filters judge it), or None while the store keeps no
    training record at all (no connector reads trainings yet: unknown, not zero)."""
    if stored_training_names(s) is None:
        return None
    held = trainings_of(s, guide_ids)
    return {
        pid
        for pid, by_name in held.items()
        if any(training_counts(done, expires, today=today) for done, expires in by_name.values())
    }


@dataclass
class _Figures:
    """The people behind one row of the report (before suppression)."""

    guides: set[int] = field(default_factory=set)
    active: set[int] = field(default_factory=set)
    held: int = 0  # sessions held in the window
    open_pairings: int = 0
    guides_with_open: set[int] = field(default_factory=set)
    over: set[int] = field(default_factory=set)
    managers_due: set[int] = field(default_factory=set)
    managers_short: set[int] = field(default_factory=set)  # a due check-in not held
    manager_program: bool = False

    def add(self, other: _Figures) -> None:
        self.guides |= other.guides
        self.active |= other.active
        self.held += other.held
        self.open_pairings += other.open_pairings
        self.guides_with_open |= other.guides_with_open
        self.over |= other.over
        self.managers_due |= other.managers_due
        self.managers_short |= other.managers_short
        self.manager_program |= other.manager_program


def _program_figures(
    s: Session, program: Program, active_people: set[int], since: datetime, now: datetime
) -> _Figures:
    f = _Figures(manager_program=program.kind == ProgramKind.MANAGER)
    capacity: dict[int, int] = {}
    for person_id, cap in s.execute(
        select(EnrollmentRow.person_id, EnrollmentRow.capacity).where(
            EnrollmentRow.program_id == program.id,
            EnrollmentRow.role == "guide",
            EnrollmentRow.opted_out.is_(False),
        )
    ):
        if person_id in active_people:
            f.guides.add(person_id)
            if cap is not None:
                capacity[person_id] = cap
    load: dict[int, int] = defaultdict(int)
    for guide_id, status in s.execute(
        select(PairingRow.guide_id, PairingRow.status).where(
            PairingRow.program_id == program.id, PairingRow.status.in_(OPEN)
        )
    ):
        if status == "proposed":
            continue  # not coaching yet
        f.guides.add(guide_id)
        f.guides_with_open.add(guide_id)
        f.open_pairings += 1
        load[guide_id] += 1
    for guide_id, n in load.items():
        if f.manager_program:
            limit = program.max_reports
        else:
            limit = capacity.get(guide_id, program.capacity)
        if limit is not None and n > limit:
            f.over.add(guide_id)
    due: dict[int, list[str]] = defaultdict(list)
    for guide_id, status in s.execute(
        select(PairingRow.guide_id, SessionRow.status)
        .join(SessionRow, SessionRow.pairing_id == PairingRow.id)
        .where(
            PairingRow.program_id == program.id,
            SessionRow.start >= since,
            SessionRow.start <= now,
            SessionRow.status != "cancelled",
        )
    ):
        if status == "held":
            f.held += 1
            f.active.add(guide_id)
        due[guide_id].append(status)
    if f.manager_program:
        f.managers_due = set(due)
        f.managers_short = {m for m, statuses in due.items() if any(x != "held" for x in statuses)}
    return f


def _part(k: Suppressor, part: int, whole: int) -> Any:
    """A count of some of ``whole`` people: hidden when it, or the rest, is too few (shown
    with the whole, the one gives the other away)."""
    return k.cells({"part": part, "rest": whole - part})["part"]


def _row(f: _Figures, trained: set[int] | None, k: Suppressor, window_days: int) -> dict[str, Any]:
    months = window_days / MONTH_DAYS
    guides, active = len(f.guides), len(f.active & f.guides)
    with_open = len(f.guides_with_open)
    over = len(f.over & f.guides_with_open)
    row: dict[str, Any] = {
        "guides": k.count(guides),
        "guides_trained": None if trained is None else _part(k, len(trained & f.guides), guides),
        "guides_active": _part(k, active, guides),
        "learners_per_guide": k.figure(
            round(f.open_pairings / with_open, 2) if with_open else None, with_open
        ),
        "sessions_per_guide_per_month": k.figure(
            round(f.held / active / months, 2) if active else None, active
        ),
        "guides_over_capacity": _part(k, over, with_open),
    }
    if f.manager_program:
        due = len(f.managers_due)
        held_all = due - len(f.managers_short)
        share = round(held_all / due, 3) if due else None
        if is_suppressed(_part(k, held_all, due)):
            share = SUPPRESSED.copy()  # the share would tell how many fell short
        row["managers_held_checkins"] = {"managers": k.count(due), "share": k.figure(share, due)}
    return row


def culture_report(
    s: Session,
    programs: list[Program],
    *,
    min_group_size: int,
    now: datetime,
    window_days: int = WINDOW_DAYS,
) -> dict[str, Any]:
    """The coaching-culture figures of ``programs`` as of ``now`` (aggregates only)."""
    k = Suppressor(min_group_size)
    since = now - timedelta(days=window_days)
    active_people = set(
        s.scalars(
            select(PersonRow.id).where(PersonRow.status == "active", PersonRow.forgotten.is_(False))
        )
    )
    per_program = [(p, _program_figures(s, p, active_people, since, now)) for p in programs]
    overall = _Figures()
    for _, f in per_program:
        overall.add(f)
    trained = trained_guides(s, overall.guides, now.date())
    notes = []
    if trained is None:
        notes.append(
            "guides_trained: no connector has stored training records yet, so it is not measured"
        )
    rows = [
        {"program": p.id, "name": p.name, "kind": p.kind.value} | _row(f, trained, k, window_days)
        for p, f in per_program
    ]
    total = {"program": None, "name": "All programs", "kind": None}
    total |= _row(overall, trained, k, window_days)
    if not overall.manager_program:
        total["managers_held_checkins"] = None
    return {
        "report": "culture",
        "as_of": now.isoformat(),
        "window_days": window_days,
        "min_group_size": min_group_size,
        "overall": total,
        "programs": rows,
        "notes": notes,
    }


def render_culture_html(report: dict[str, Any]) -> str:
    """One self-contained page: the overall figures and a row per program."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("coachbridge.reports", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("culture.html").render(
        report=report, suppressed=SUPPRESSED, rows=[report["overall"], *report["programs"]]
    )
