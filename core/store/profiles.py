"""Reading participants' intake answers, for matching and for the pages that show them."""

from __future__ import annotations

from collections.abc import Iterable

from coachbridge.domain.profile import ProfileAnswer
from coachbridge.store.chunks import in_chunks
from coachbridge.store.tables import ProfileRow
from sqlalchemy import select
from sqlalchemy.orm import Session

__all__ = ["answered_profiles", "profile_answer"]


def profile_answer(row: ProfileRow) -> ProfileAnswer:
    """The stored answer as the domain shape (already validated when it was written)."""
    return ProfileAnswer.model_construct(
        topics=list(row.topics or []),
        goal=row.goal,
        languages=None if row.languages is None else list(row.languages),
        availability=list(row.availability or []),
        answered_at=row.answered_at,
    )


def answered_profiles(
    session: Session, program_id: str, person_ids: Iterable[int] | None = None
) -> dict[int, ProfileAnswer]:
    """Person id -> answer, for the people of ``program_id`` who answered (invitations left out).

    ``person_ids`` narrows the read to those people (in chunks the database accepts).
    """
    query = select(ProfileRow).where(
        ProfileRow.program_id == program_id, ProfileRow.answered_at.is_not(None)
    )
    if person_ids is None:
        return {row.person_id: profile_answer(row) for row in session.scalars(query)}
    answers: dict[int, ProfileAnswer] = {}
    for chunk in in_chunks(person_ids):
        for row in session.scalars(query.where(ProfileRow.person_id.in_(chunk))):
            answers[row.person_id] = profile_answer(row)
    return answers
