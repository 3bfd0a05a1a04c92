"""The demo's peer program and reverse-mentoring pilot: one paragraph of output each.

Both programs are defined here (not in the demo's config file) and matched through the same
service functions ``coachbridge match --apply`` uses, on the sample company as it is today.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime

from coachbridge.app import App
from coachbridge.domain.program import Program
from coachbridge.plugins import Registry
from coachbridge.store.tables import PersonRow
from sqlalchemy import select

__all__ = ["PEER", "REVERSE", "peer_and_reverse"]

PEER = Program.model_validate(
    {
        "id": "engineering-peers",
        "name": "Engineering peer mentoring",
        "kind": "peer",
        "start": "2026-11-09",
        "duration_weeks": 12,
        "cadence_days": 14,
        "session_minutes": 30,
        "top_k": 100,  # larger than the pool: every allowed pair is solved
        "participants": {"departments": ["Engineering"], "level": [2, 4]},
        "weights": {"skills": 0.5, "timezone": 0.3, "department_diversity": 0.0, "language": 0.2},
    }
)
REVERSE = Program.model_validate(
    {
        "id": "reverse-pilot",
        "name": "Reverse mentoring pilot",
        "kind": "reverse",
        "start": "2026-11-09",
        "duration_weeks": 12,
        "cadence_days": 28,
        "capacity": 1,
        "learners": {"level": [7, 9]},
        "guides": {"level": [1, 3], "departments": ["Engineering", "Data", "Product"]},
        "weights": {"seniority": 0.3, "skills": 0.3, "timezone": 0.2, "department_diversity": 0.2},
        "settings": {"seniority_best_gap": 5},
    }
)


def _names(s: object, ids: set[int]) -> dict[int, PersonRow]:
    return {p.id: p for p in s.scalars(select(PersonRow).where(PersonRow.id.in_(ids)))}  # type: ignore[attr-defined]


def peer_and_reverse(
    app: App, registry: Registry, say: Callable[[str], None], *, now: datetime
) -> None:
    """Enroll, match and store both programs; say one paragraph about each."""
    from coachbridge.matching.service import apply, propose
    from coachbridge.pairings.scheduling import schedule_pairings
    from coachbridge.programs.enrollment import enroll_eligible

    with app.database().transaction() as s:
        for program in (PEER, REVERSE):
            enrolled = enroll_eligible(s, program, today=now.date())
            proposal = propose(s, program, registry, now=now)
            rows = apply(s, program, proposal, actor="demo", now=now, registry=registry)
            sessions = schedule_pairings(s, program, [r.id for r in rows], now=now)
            people = _names(
                s,
                {p.learner_id for p in proposal.pairs}
                | {p.guide_id for p in proposal.pairs}
                | {u.learner_id for u in proposal.unmatched},
            )
            say("")
            say(f"{program.name} ({program.kind.value}, from {program.start})")
            reasons = Counter(u.reason for u in proposal.unmatched)
            why = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items()))
            if program is PEER:
                say(
                    f"  {enrolled.learner.added} engineers (levels 2-4) in one pool, each both "
                    f"learner and guide; {len(rows)} pairs, {proposal.guarantee}, scores "
                    "symmetric, nobody with someone in their reporting line"
                )
            else:
                say(
                    f"  {enrolled.learner.added} senior leaders (levels 7-9) each learn from one "
                    f"of {enrolled.guide.added} juniors (levels 1-3); {len(rows)} pairs, "
                    f"{proposal.guarantee}; never within one reporting line, either way"
                )
            say(f"  left out: {len(proposal.unmatched)}" + (f" ({why})" if why else ""))
            best = max(proposal.pairs, key=lambda p: (p.score, -p.learner_id), default=None)
            if best is not None:
                a, b = people[best.learner_id], people[best.guide_id]
                link = "&" if program is PEER else "learns from"
                say(
                    f"  e.g. {a.name} (L{a.level} {a.job_title}) {link} {b.name} "
                    f"(L{b.level} {b.job_title}): score {best.score:.2f}"
                )
            if sessions:
                say(
                    f"  {len(sessions)} sessions scheduled from {min(x.start for x in sessions).date()}"
                )
