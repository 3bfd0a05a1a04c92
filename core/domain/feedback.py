"""Feedback on a session or a pairing, from either side."""

from __future__ import annotations

from coachbridge.domain._base import DomainModel
from pydantic import Field, model_validator


class Feedback(DomainModel):
    id: int | None = None
    session_id: int | None = None
    pairing_id: int
    from_person_id: int
    rating: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=5000)
    private_note: str | None = Field(default=None, max_length=5000, repr=False, exclude=True)

    @model_validator(mode="after")
    def _target(self) -> Feedback:
        if self.pairing_id is None and self.session_id is None:
            raise ValueError("feedback is about a session or a pairing")
        return self
