"""A participant's own answers for one program: the intake questionnaire.

The HRIS rarely holds what a coaching or mentoring relationship depends on, so each program
may ask its learners and guides a few questions (``[programs.intake]``). A learner picks the
topics they want to work on (earlier picks matter more); a guide ticks every topic they can
offer. The same shape holds answers given on the intake page, by HR on the command line and
from a spreadsheet.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Final

from coachbridge.domain._base import DomainModel, plain_text
from pydantic import Field, StrictBool, StrictInt, field_validator, model_validator

#: Weekday half-days a person can meet in, in their own time zone: ``mon-am`` is Monday
#: morning (before noon), ``mon-pm`` Monday afternoon.
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri")
SLOTS: Final = tuple(f"{day}-{half}" for day in WEEKDAYS for half in ("am", "pm"))

#: A goal or "how I can help" text longer than this is refused, not cut.
GOAL_MAX_CHARS: Final = 1000

_LANGUAGE = re.compile(r"^[a-z]{2}$")


@functools.lru_cache(maxsize=4096)
def language_code(value: str) -> str | None:
    """The ISO 639-1 code of one language as an HRIS or a person writes it (``"German"``,
    ``"de"``, ``"EN"``), or None when ISO 639 has no two-letter code for it."""
    import pycountry  # its data is loaded on first use

    text = value.strip()
    if not text:
        return None
    if _LANGUAGE.match(text.lower()):
        found = pycountry.languages.get(alpha_2=text.lower())
    else:
        try:
            found = pycountry.languages.lookup(text)
        except LookupError:
            found = None
    code = getattr(found, "alpha_2", None)
    return str(code) if code else None


def language_codes(values: Iterable[str] | None) -> list[str]:
    """ISO 639-1 codes for languages as an HRIS keeps them (``"German"``, ``"de"``, ``"EN"``).

    Names are looked up in ISO 639 (pycountry); a value with no two-letter code is left out.
    The page pre-fills the languages question with these, and an answer is always codes.
    """
    out: list[str] = []
    for value in values or []:
        code = language_code(str(value))
        if code and code not in out:
            out.append(code)
    return out


class Intake(DomainModel):
    """``[programs.intake]``: what a program asks its participants."""

    topics: list[str] = Field(min_length=1)
    max_topics: StrictInt = Field(default=3, ge=1, le=50)
    goal: StrictBool = True
    languages: StrictBool = True
    availability: StrictBool = True
    link_days: StrictInt = Field(default=21, ge=1, le=365)
    remind_after_days: StrictInt = Field(default=5, ge=1, le=365)

    @field_validator("topics")
    @classmethod
    def _topics(cls, topics: list[str]) -> list[str]:
        cleaned = [t.strip() for t in topics]
        if any(not t for t in cleaned):
            raise ValueError("a topic is empty")
        for topic in cleaned:
            # HR lists several topics in one option or cell, separated by these.
            if "," in topic or ";" in topic:
                raise ValueError(f"topic {topic!r} contains ',' or ';' (they separate topics)")
        seen: set[str] = set()
        for topic in cleaned:
            if topic.casefold() in seen:
                raise ValueError(f"topic {topic!r} is listed twice")
            seen.add(topic.casefold())
        return cleaned


class ProfileAnswer(DomainModel):
    """One person's answers in one program. ``None`` means "not asked or not answered"."""

    topics: list[str] = Field(default_factory=list)
    goal: str | None = None
    languages: list[str] | None = None
    availability: list[str] = Field(default_factory=list)
    answered_at: datetime | None = None

    @field_validator("goal")
    @classmethod
    def _goal(cls, goal: str | None) -> str | None:
        if goal is None or not goal.strip():
            return None
        goal = plain_text(goal)
        if len(goal) > GOAL_MAX_CHARS:
            raise ValueError(f"goal is {len(goal)} characters; at most {GOAL_MAX_CHARS}")
        return goal.strip()

    @field_validator("languages")
    @classmethod
    def _languages(cls, languages: list[str] | None) -> list[str] | None:
        if languages is None:
            return None
        codes = [code.strip().lower() for code in languages if code.strip()]
        for code in codes:
            # Two letters that ISO 639-1 assigns ('zz' is not a language anyone meets in).
            if not _LANGUAGE.match(code) or language_code(code) != code:
                raise ValueError(f"language {code!r} is not an ISO 639-1 code such as 'en'")
        return list(dict.fromkeys(codes))

    @field_validator("availability")
    @classmethod
    def _availability(cls, slots: list[str]) -> list[str]:
        cleaned = [slot.strip().lower() for slot in slots if slot.strip()]
        for slot in cleaned:
            if slot not in SLOTS:
                raise ValueError(
                    f"availability {slot!r} is not a slot; use mon-am .. fri-pm (e.g. tue-pm)"
                )
        return list(dict.fromkeys(cleaned))

    @model_validator(mode="after")
    def _distinct_topics(self) -> ProfileAnswer:
        if len({t.casefold() for t in self.topics}) != len(self.topics):
            raise ValueError("a topic is picked twice")
        return self

    def check_against(self, intake: Intake, *, role: str) -> None:
        """``ValueError`` naming the field when the answer does not fit the program's intake.

        A learner picks at most ``max_topics``; a guide may tick any number. Topics must come
        from the program's list (matched without regard to case, stored as the list spells
        them).
        """
        allowed = {t.casefold(): t for t in intake.topics}
        unknown = [t for t in self.topics if t.casefold() not in allowed]
        if unknown:
            raise ValueError(f"topics: {unknown[0]!r} is not one of this program's topics")
        if role == "learner" and len(self.topics) > intake.max_topics:
            raise ValueError(
                f"topics: {len(self.topics)} picked; a learner picks at most {intake.max_topics}"
            )
        self.topics = [allowed[t.casefold()] for t in self.topics]
