"""The intake questionnaire in a report: how many answered, and topic counts, aggregates only.

Answers are personal data, so a report shows only counts: how many learners and guides answered,
how many learners asked for each topic and how many guides offer it, each count about fewer than
``[reports] min_group_size`` people suppressed. (A person picks several topics, so the topic
counts add up to no published total from which a hidden one could be worked out.) Never a goal
text, a language or a time slot.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from coachbridge.domain.program import Program
from coachbridge.reports.suppress import Suppressor
from coachbridge.store.tables import EnrollmentRow, PersonRow, ProfileRow
from sqlalchemy import select
from sqlalchemy.orm import Session

__all__ = ["intake_summary"]


def intake_summary(s: Session, program: Program, *, min_group_size: int) -> dict[str, Any] | None:
    """The report's ``intake`` part, or None when the program asks no questions."""
    if program.intake is None:
        return None
    sup = Suppressor(min_group_size)
    roles: dict[int, str] = {}
    for person_id, role in s.execute(
        select(EnrollmentRow.person_id, EnrollmentRow.role)
        .join(PersonRow, PersonRow.id == EnrollmentRow.person_id)
        .where(EnrollmentRow.program_id == program.id, PersonRow.forgotten.is_(False))
    ):
        if roles.get(person_id) != "learner":  # on both sides: counted as a learner
            roles[person_id] = role
    enrolled = Counter(roles.values())
    answered: Counter[str] = Counter()
    wanted: Counter[str] = Counter({t: 0 for t in program.intake.topics})
    offered: Counter[str] = Counter({t: 0 for t in program.intake.topics})
    for person_id, topics in s.execute(
        select(ProfileRow.person_id, ProfileRow.topics).where(
            ProfileRow.program_id == program.id, ProfileRow.answered_at.is_not(None)
        )
    ):
        role = roles.get(person_id)
        if role is None:
            continue
        answered[role] += 1
        for topic in topics or []:
            if topic in wanted:
                (wanted if role == "learner" else offered)[topic] += 1
    return {
        "learners_enrolled": sup.count(enrolled["learner"]),
        "learners_answered": sup.count(answered["learner"]),
        "guides_enrolled": sup.count(enrolled["guide"]),
        "guides_answered": sup.count(answered["guide"]),
        "topics_wanted": {topic: sup.count(n) for topic, n in wanted.items()},
        "topics_offered": {topic: sup.count(n) for topic, n in offered.items()},
    }
