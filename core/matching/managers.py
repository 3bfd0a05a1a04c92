"""Manager coaching (``kind = "manager"``): each learner's guide is their current manager.

There is no matching: the HRIS's reporting line decides. A learner is paired with the manager
the store holds for them now, when that manager is active, not erased and has not opted out of
the program (as a guide or of the whole program). A manager never has a capacity; one with more
open pairings in the program than its ``max_reports`` is warned about, never refused.

The functions here return plain data; ``coachbridge.matching.service`` turns it into proposals
and pairings, and ``coachbridge.pairings.manager_changes`` follows a sync that moves people.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from coachbridge.context import Context
from coachbridge.domain.pairing import OPEN
from coachbridge.domain.program import Program, ProgramKind
from coachbridge.matching.pool import unpaired_learners
from coachbridge.store.chunks import in_chunks
from coachbridge.store.tables import EnrollmentRow, PairingRow, PersonRow
from sqlalchemy import func, select
from sqlalchemy.orm import Session

__all__ = [
    "DECIDED_BY",
    "MANAGER_CHANGED",
    "MANAGER_INACTIVE",
    "MANAGER_OPTED_OUT",
    "NO_MANAGER",
    "current_managers",
    "is_manager_program",
    "manager_pairs",
    "manager_warnings",
    "over_max_reports",
    "over_max_warning",
    "reports_count",
]

#: Why a learner of a manager program has no pairing.
NO_MANAGER = "no_manager"
MANAGER_INACTIVE = "manager_inactive"
MANAGER_OPTED_OUT = "manager_opted_out"
#: What decides a manager program's pairs, in words (instead of an optimality guarantee).
DECIDED_BY = "each learner paired with their current manager from the HRIS (no matching)"
#: The end reason of a manager pairing whose learner moved to another manager.
MANAGER_CHANGED = "manager changed"

REASON_TEXT = {
    NO_MANAGER: "the HRIS names no manager for this person",
    MANAGER_INACTIVE: "the person's manager is no longer active",
    MANAGER_OPTED_OUT: "the person's manager opted out of the program",
}


def is_manager_program(program: Program) -> bool:
    return program.kind == ProgramKind.MANAGER


def _opted_out_guides(s: Session, program_id: str) -> set[int]:
    """People who opted out of guiding in the program (an opt-out of the whole program
    records one for each role)."""
    return set(
        s.scalars(
            select(EnrollmentRow.person_id).where(
                EnrollmentRow.program_id == program_id,
                EnrollmentRow.opted_out.is_(True),
                EnrollmentRow.role == "guide",
            )
        )
    )


def current_managers(
    s: Session, program: Program, learner_ids: Iterable[int]
) -> dict[int, int | str]:
    """Learner -> their current manager's id, or the reason they have none to be paired with."""
    ids = sorted(set(learner_ids))
    if not ids:
        return {}
    managers: dict[int, int | None] = {}
    for part in in_chunks(ids):
        stmt = select(PersonRow.id, PersonRow.manager_id).where(PersonRow.id.in_(part))
        managers.update((pid, manager) for pid, manager in s.execute(stmt))
    wanted = sorted({m for m in managers.values() if m is not None})
    usable: set[int] = set()
    for part in in_chunks(wanted):
        usable.update(
            s.scalars(
                select(PersonRow.id).where(
                    PersonRow.id.in_(part),
                    PersonRow.status == "active",
                    PersonRow.forgotten.is_(False),
                )
            )
        )
    opted_out = _opted_out_guides(s, program.id)
    out: dict[int, int | str] = {}
    for learner in ids:
        manager = managers.get(learner)
        if manager is None:
            out[learner] = NO_MANAGER
        elif manager not in usable:
            out[learner] = MANAGER_INACTIVE
        elif manager in opted_out:
            out[learner] = MANAGER_OPTED_OUT
        else:
            out[learner] = manager
    return out


def manager_pairs(
    s: Session, program: Program, only_learners: set[int] | None = None
) -> tuple[list[tuple[int, int]], list[tuple[int, str]]]:
    """The program's unpaired learners with their current managers: ``(learner, manager)``
    pairs and ``(learner, reason)`` for those who cannot be paired, both by learner id."""
    waiting = unpaired_learners(s, program)
    if only_learners is not None:
        waiting &= only_learners
    pairs: list[tuple[int, int]] = []
    unmatched: list[tuple[int, str]] = []
    for learner, manager in current_managers(s, program, waiting).items():
        if isinstance(manager, int):
            pairs.append((learner, manager))
        else:
            unmatched.append((learner, manager))
    return pairs, unmatched


def reports_count(s: Session, program_id: str) -> Counter[int]:
    """Open pairings per manager in the program."""
    stmt = (
        select(PairingRow.guide_id, func.count())
        .where(PairingRow.program_id == program_id, PairingRow.status.in_(OPEN))
        .group_by(PairingRow.guide_id)
    )
    return Counter({guide: int(n) for guide, n in s.execute(stmt)})


def over_max_reports(
    program: Program, counts: Mapping[int, int], adding: Iterable[int] = ()
) -> dict[int, int]:
    """Managers above the program's ``max_reports`` with ``adding`` (guide ids, one per new
    pairing) counted in: manager -> reports. Empty without ``max_reports``."""
    if program.max_reports is None:
        return {}
    total = Counter(counts)
    total.update(adding)
    return {m: n for m, n in sorted(total.items()) if n > program.max_reports}


def over_max_warning(program: Program, manager_id: int, name: str, reports: int) -> str:
    who = f"{name} (person {manager_id})" if name else f"person {manager_id}"
    return (
        f"program {program.id!r}: manager {who} has {reports} reports in the program, above "
        f"max_reports {program.max_reports} (paired anyway: the HRIS decides who manages whom)"
    )


def manager_warnings(ctx: Context) -> list[str]:
    """Managers above ``max_reports`` in each manager program, counting the open pairings and
    the learners ``coachbridge match`` would pair with them now (``check`` prints these)."""
    out: list[str] = []
    programs = [p for p in ctx.config.programs.values() if is_manager_program(p)]
    if not any(p.max_reports is not None for p in programs):
        return out
    with ctx.database().transaction() as s:
        for program in programs:
            pairs, _ = manager_pairs(s, program)
            over = over_max_reports(program, reports_count(s, program.id), [m for _, m in pairs])
            names = {
                pid: name
                for pid, name in (
                    (row.id, row.name)
                    for row in s.scalars(select(PersonRow).where(PersonRow.id.in_(list(over))))
                )
            }
            out += [over_max_warning(program, m, names.get(m, ""), n) for m, n in over.items()]
    return out
