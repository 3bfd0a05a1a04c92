"""HR answering the intake questionnaire on someone's behalf: one person, or a spreadsheet.

``set_profile``, ``import_profiles`` and ``show_profiles`` are the use cases of ``coachbridge
profile set``, ``profile import`` and ``profile show``. The same checks hold as on the intake
page (``programs.intake.build_answer``): topics from the program's list, at most ``max_topics``
for a learner, a goal of at most 1000 characters, ISO 639-1 languages, weekday half-day slots.
An import is checked whole before anything is written; each problem names the file, the
physical line (the header is line 1) and the column.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coachbridge.context import Context, check_program
from coachbridge.csvcells import read_records
from coachbridge.domain.profile import ProfileAnswer
from coachbridge.domain.program import Program
from coachbridge.errors import InputDataError, UserError
from coachbridge.programs.intake import (
    AnswerError,
    build_answer,
    intake_program,
    roles_in,
    save_answer,
)
from coachbridge.store.people import find_person, resolve_person
from coachbridge.store.profiles import profile_answer
from coachbridge.store.tables import PersonRow, ProfileRow
from sqlalchemy import select
from sqlalchemy.orm import Session

__all__ = [
    "COLUMNS",
    "ProfileSaved",
    "import_profiles",
    "set_profile",
    "show_profiles",
    "split_list",
]

#: The columns of ``profile import``; ``person`` is required, the others may be left out.
COLUMNS = ("person", "topics", "goal", "languages", "availability")
#: Several values in one spreadsheet cell.
CELL_SEPARATOR = ";"


def split_list(value: str | None, separator: str = ",") -> list[str]:
    """``"a, b"`` -> ``["a", "b"]`` (empty parts dropped)."""
    if value is None:
        return []
    return [part.strip() for part in value.split(separator) if part.strip()]


def _actor() -> str:
    return f"cli:{os.environ.get('USER') or 'unknown'}"[:100]


def _enrolled_role(s: Session, program: Program, person: PersonRow) -> str:
    role = roles_in(s, program.id, [person.id]).get(person.id)
    if role is None:
        raise UserError(
            f"person {person.id} is not enrolled in {program.id} (enroll them first: "
            f"coachbridge enroll {program.id} --person {person.id} --role learner|guide)"
        )
    if person.forgotten:
        raise UserError(f"person {person.id} has been erased")
    return role


def _current(s: Session, program_id: str, person_id: int) -> ProfileAnswer | None:
    row = s.scalars(
        select(ProfileRow).where(
            ProfileRow.program_id == program_id, ProfileRow.person_id == person_id
        )
    ).first()
    return profile_answer(row) if row is not None and row.answered_at is not None else None


@dataclass(frozen=True)
class ProfileSaved:
    person_id: int
    program: str
    replaced: bool


def set_profile(
    ctx: Context,
    person_ref: str,
    program_id: str,
    *,
    topics: str | None = None,
    goal: str | None = None,
    languages: str | None = None,
    availability: str | None = None,
    now: datetime | None = None,
) -> ProfileSaved:
    """Answer for someone: the options given replace those answers, the others are kept.

    Lists are comma-separated; ``languages=""`` goes back to the languages the HRIS holds.
    """
    now = now or datetime.now(UTC)
    program = intake_program(ctx, program_id)
    if all(v is None for v in (topics, goal, languages, availability)):
        raise UserError("give at least one of --topics, --goal, --languages, --availability")
    with ctx.database().transaction() as s:
        person = resolve_person(s, person_ref)
        role = _enrolled_role(s, program, person)
        before = _current(s, program.id, person.id) or ProfileAnswer()
        # An empty --languages goes back to what the HRIS holds.
        new_languages = before.languages if languages is None else split_list(languages) or None
        try:
            answer = build_answer(
                program,
                role,
                topics=before.topics if topics is None else split_list(topics),
                goal=before.goal if goal is None else goal,
                languages=new_languages,
                availability=before.availability
                if availability is None
                else split_list(availability),
            )
        except AnswerError as exc:
            message = str(exc).removeprefix(exc.field + ": ")
            given = {
                "topics": topics,
                "goal": goal,
                "languages": languages,
                "availability": availability,
            }
            if exc.field in given and given[exc.field] is None:
                # Kept from the stored answer, which no longer fits (the program changed since).
                raise UserError(
                    f"the stored answer to {exc.field} no longer fits the program: {message} "
                    f"(give --{exc.field} to replace it)"
                ) from None
            raise UserError(f"--{exc.field}: {message}") from None
        replaced = save_answer(
            s, program, person.id, answer, actor=_actor(), answered_by="cli", now=now
        )
        return ProfileSaved(person.id, program.id, replaced)


def _decode(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputDataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputDataError(f"{path}: not UTF-8 text (save the sheet as CSV UTF-8)") from None
    if "\x00" in text:
        raise InputDataError(f"{path}: not a text file")
    return text


def _rows(path: Path, text: str) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    """(first physical line, cells) per record, the header being line 1, and the problems of
    records that do not fit the header (one line each)."""
    # strict: a quote never closed is an error at the end, not a cell that swallows the rest
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise InputDataError(
            f"{path}: empty file (expected the header {','.join(COLUMNS)})"
        ) from None
    except csv.Error as exc:
        raise InputDataError(f"{path}:1: malformed CSV: {exc}") from None
    names = [h.strip().lower() for h in header]
    if len(names) == 1 and CELL_SEPARATOR in names[0]:
        raise InputDataError(
            f"{path}:1: the columns are separated by ';': save the sheet as CSV with commas "
            "between columns (';' separates several values within one cell)"
        )
    problems = []
    for index, name in enumerate(names, start=1):
        if name not in COLUMNS:
            problems.append(
                f"{path}:1: column {index} {name!r}: unknown column (known: {', '.join(COLUMNS)})"
            )
    if names.count("person") != 1:
        problems.append(f"{path}:1: column 'person' is required once")
    dup = sorted({n for n in names if names.count(n) > 1 and n in COLUMNS and n != "person"})
    problems.extend(f"{path}:1: column {n!r} appears twice" for n in dup)
    if problems:
        raise InputDataError("\n".join(problems))
    rows, more = read_records(path, reader, names)
    return rows, problems + more


def import_profiles(
    ctx: Context, path: Path, program_id: str, *, now: datetime | None = None
) -> list[ProfileSaved]:
    """Answers for many people from a CSV file; every row is checked before any is written.

    Each row replaces the person's whole answer (a left-out column or an empty cell means no
    answer to that question; empty languages means the HRIS's). Any problem rejects the file.
    """
    now = now or datetime.now(UTC)
    program = intake_program(ctx, program_id)
    rows, problems = _rows(path, _decode(path))
    if not rows and not problems:
        raise InputDataError(f"{path}: no rows below the header")
    with ctx.database().transaction() as s:
        plans: list[tuple[int, ProfileAnswer]] = []
        seen: dict[int, int] = {}
        for line, cells in rows:
            where = f"{path}:{line}"
            ref = cells.get("person", "")
            person = find_person(s, ref) if ref else None
            if person is None:
                problems.append(
                    f"{where}: column person: unknown person {ref!r} (a coachbridge id, "
                    "CONNECTOR:ID or work email)"
                )
                continue
            if person.id in seen:
                problems.append(
                    f"{where}: column person: person {person.id} is already on line {seen[person.id]}"
                )
                continue
            seen[person.id] = line
            try:
                role = _enrolled_role(s, program, person)
            except UserError as exc:
                problems.append(f"{where}: column person: {exc}")
                continue
            try:
                answer = build_answer(
                    program,
                    role,
                    topics=split_list(cells.get("topics"), CELL_SEPARATOR),
                    goal=cells.get("goal") or None,
                    languages=split_list(cells.get("languages"), CELL_SEPARATOR) or None,
                    availability=split_list(cells.get("availability"), CELL_SEPARATOR),
                )
            except AnswerError as exc:
                message = str(exc).removeprefix(exc.field + ": ")
                problems.append(f"{where}: column {exc.field}: {message}")
                continue
            plans.append((person.id, answer))
        if problems:
            # Each problem starts "PATH:LINE:": in the file's order, whichever check found it.
            problems.sort(key=lambda p: int(p[len(str(path)) + 1 :].split(":", 1)[0]))
            # Raised inside the transaction: it rolls back, though nothing was written yet.
            raise InputDataError("\n".join(problems[:50]) + _more(problems))
        out = []
        for person_id, answer in plans:
            replaced = save_answer(
                s, program, person_id, answer, actor=_actor(), answered_by="import", now=now
            )
            out.append(ProfileSaved(person_id, program.id, replaced))
        return out


def _more(problems: list[str]) -> str:
    return f"\n... and {len(problems) - 50} more problem(s)" if len(problems) > 50 else ""


def show_profiles(
    ctx: Context, person_ref: str, program_id: str | None = None
) -> list[dict[str, Any]]:
    """A person's answers, one row per program they answered (or were invited) in."""
    with ctx.database().transaction() as s:
        if program_id is not None:
            check_program(ctx, s, program_id)
        person = resolve_person(s, person_ref)
        query = select(ProfileRow).where(ProfileRow.person_id == person.id)
        if program_id is not None:
            query = query.where(ProfileRow.program_id == program_id)
        out = []
        for row in s.scalars(query.order_by(ProfileRow.program_id)):
            out.append(
                {
                    "person_id": person.id,
                    "program": row.program_id,
                    "topics": list(row.topics or []),
                    "goal": row.goal,
                    "languages": None if row.languages is None else list(row.languages),
                    "availability": list(row.availability or []),
                    "answered_at": row.answered_at,
                }
            )
        return out
