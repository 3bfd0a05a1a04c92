"""Trained guides: what ``coachbridge check`` says about programs that filter guides on a
training (``[programs.guides] trained_in``) or on their rating (``min_guide_rating``)."""

from __future__ import annotations

from datetime import UTC, datetime

from coachbridge.context import Context
from coachbridge.matching.pool import check_trained_in
from coachbridge.store.eligibility import guide_reason, load_guide_facts, passes_filters
from coachbridge.store.tables import PersonRow
from sqlalchemy import select

__all__ = ["guide_pool_warnings"]


def guide_pool_warnings(ctx: Context, *, today: datetime | None = None) -> list[str]:
    """One line per program whose training filter empties its guide pool (people admitted by
    the other guide filters, none of them holding the training), or whose trainings cannot be
    judged yet (none stored). A ``trained_in`` name that no stored record holds raises
    ``ConfigError`` naming the key."""
    day = (today or datetime.now(UTC)).date()
    out: list[str] = []
    with ctx.database().transaction() as s:
        people: list[PersonRow] | None = None
        for program in ctx.config.programs.values():
            rules = program.guides
            if rules is None or rules.trained_in is None:
                continue
            pending = check_trained_in(s, program)
            if pending:
                out.extend(pending)
                continue
            if people is None:
                people = list(s.scalars(select(PersonRow).where(PersonRow.forgotten.is_(False))))
            admitted = [p.id for p in people if passes_filters(p, rules, today=day)]
            facts = load_guide_facts(s, rules, admitted)
            trained = [p for p in admitted if guide_reason(p, rules, facts, today=day) is None]
            if admitted and not trained:
                names = ", ".join(repr(n) for n in rules.trained_in)
                valid = (
                    f" completed within {rules.training_valid_days} days"
                    if rules.training_valid_days
                    else ""
                )
                out.append(
                    f"program {program.id!r}: none of the {len(admitted)} people "
                    f"[programs.guides] admits holds a valid {names} training{valid}: "
                    "trained_in leaves the program without guides"
                )
    return out
