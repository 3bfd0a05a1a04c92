"""The ``programs`` table mirrors the programs of the configuration, so that rows can refer to
them and reports can read a program's settings as they were."""

from __future__ import annotations

from coachbridge.domain.program import Program
from coachbridge.store.tables import ProgramRow
from sqlalchemy.orm import Session


def ensure_program_row(s: Session, program: Program) -> ProgramRow:
    """Insert or update the ``programs`` row that mirrors ``program`` from the config."""
    settings = program.model_dump(mode="json")
    row = s.get(ProgramRow, program.id)
    if row is None:
        row = ProgramRow(
            id=program.id, name=program.name, kind=program.kind.value, settings=settings
        )
        s.add(row)
        s.flush()
        return row
    if row.name != program.name or row.kind != program.kind.value or row.settings != settings:
        row.name = program.name
        row.kind = program.kind.value
        row.settings = settings
    return row
