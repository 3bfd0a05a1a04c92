"""A proposal edited in a spreadsheet comes back: ``pairings import FILE``.

The file is what ``pairings --status proposed --format csv`` wrote, with rows removed or a
guide changed (new rows without an ``id`` are accepted too). Every row is re-checked against
the same hard constraints matching uses; any rejected row rejects the whole file, with one
message per row naming the file and line, and nothing is written. Accepted, the file becomes
the program's proposal: proposed pairings not in the file are withdrawn (deleted: they never
became active), changed guides are re-scored.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from coachbridge.csvcells import read_records
from coachbridge.domain.program import Program
from coachbridge.errors import InputDataError
from coachbridge.matching.criteria import Criterion
from coachbridge.matching.pool import free_capacity, load_pool
from coachbridge.matching.scoring import CONSTRAINT_TEXT
from coachbridge.store.audit import audit
from coachbridge.store.people import chain_above, find_person
from coachbridge.store.tables import PairingRow, PairRuleRow, PersonRow
from sqlalchemy import select
from sqlalchemy.orm import Session


@dataclass
class ImportResult:
    kept: int = 0
    changed: int = 0
    added: int = 0
    withdrawn: int = 0
    programs: list[str] = field(default_factory=list)


@dataclass
class _Row:
    line: int
    program: str
    learner_id: int
    guide_id: int
    pairing_id: int | None


def _read(path: Path) -> list[tuple[int, dict[str, str]]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputDataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError:
            raise InputDataError(f"{path}: not a text file") from None
    if "\x00" in text:
        raise InputDataError(f"{path}: not a text file")
    sample = text[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    # strict: a quote never closed is an error at the end, not a cell that swallows the rest
    reader = csv.reader(io.StringIO(text, newline=""), dialect=dialect, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InputDataError(f"{path}:1: malformed CSV: {exc}") from None
    if not header or not any(h.strip() for h in header):
        raise InputDataError(f"{path}: empty file")
    names = [n.strip().lower() for n in header]
    missing = [c for c in ("learner_id", "guide_id") if c not in names]
    if missing:
        raise InputDataError(f"{path}:1: missing column(s) {', '.join(missing)}")
    rows, problems = read_records(path, reader, names)
    if problems:
        raise InputDataError("\n".join(problems))
    return rows


def import_proposal(
    s: Session,
    path: Path,
    programs: dict[str, Program],
    criteria: dict[str, Criterion],
    *,
    default_program: str | None,
    now: datetime,
    actor: str = "cli",
) -> ImportResult:
    """Check every row of ``path``; if all pass, make the file the programs' proposals."""
    problems: list[str] = []
    parsed: list[_Row] = []
    for line, cells in _read(path):
        where = f"{path}:{line}"
        program_id = cells.get("program") or default_program
        if not program_id:
            problems.append(f"{where}: no program (add a program column or give --program)")
            continue
        if program_id not in programs:
            problems.append(f"{where}: unknown program {program_id!r}")
            continue
        learner = find_person(s, cells["learner_id"]) if cells.get("learner_id") else None
        guide = find_person(s, cells["guide_id"]) if cells.get("guide_id") else None
        if learner is None:
            problems.append(f"{where}: unknown learner {cells.get('learner_id')!r}")
            continue
        if guide is None:
            problems.append(f"{where}: unknown guide {cells.get('guide_id')!r}")
            continue
        pid_text = cells.get("id", "")
        if pid_text and not pid_text.isdigit():
            problems.append(f"{where}: id {pid_text!r} is not a pairing id")
            continue
        parsed.append(
            _Row(line, program_id, learner.id, guide.id, int(pid_text) if pid_text else None)
        )

    managers = dict(s.execute(select(PersonRow.id, PersonRow.manager_id)).all())
    result = ImportResult()
    plans: list[tuple[_Row, PairingRow | None, dict[str, float], float]] = []
    for program_id in sorted({r.program for r in parsed}):
        program = programs[program_id]
        result.programs.append(program_id)
        rows = [r for r in parsed if r.program == program_id]
        pool = load_pool(s, program, criteria, now=now, include_paired=True)
        pairings = list(s.scalars(select(PairingRow).where(PairingRow.program_id == program_id)))
        proposed = {p.id: p for p in pairings if p.status == "proposed"}
        firm = [p for p in pairings if p.status in ("active", "paused")]
        firm_learners = {p.learner_id for p in firm}
        earlier = {
            (p.learner_id, p.guide_id) for p in pairings if p.status in ("ended", "completed")
        }
        rules = {
            (r.learner_id, r.guide_id): r.kind
            for r in s.scalars(select(PairRuleRow).where(PairRuleRow.program_id == program_id))
        }
        # Capacity without the proposals the file replaces.
        free = free_capacity(s, program)
        for p in proposed.values():
            if p.guide_id in free:
                free[p.guide_id] += 1
        seen_learners = Counter(r.learner_id for r in rows)
        load: Counter[int] = Counter()
        dept_load: Counter[tuple[int, str]] = Counter()
        for p in firm:
            learner_row = s.get(PersonRow, p.learner_id)
            dept_load[(p.guide_id, (learner_row.department or "") if learner_row else "")] += 1
        for r in rows:
            where = f"{path}:{r.line}"
            existing = None
            if r.pairing_id is not None:
                existing = proposed.get(r.pairing_id)
                if existing is None:
                    problems.append(
                        f"{where}: pairing {r.pairing_id} is not a proposed pairing of {program_id}"
                    )
                    continue
                if existing.learner_id != r.learner_id:
                    problems.append(
                        f"{where}: pairing {r.pairing_id} is learner {existing.learner_id}'s; "
                        f"a row may change the guide, not the learner"
                    )
                    continue
            why = _why_not(s, r, pool, managers, rules, earlier, firm_learners, seen_learners)
            if why is None and free.get(r.guide_id, 0) - load[r.guide_id] <= 0:
                why = f"guide {r.guide_id} has no free capacity left in {program_id}"
            dept = (s.get(PersonRow, r.learner_id).department or "") if why is None else ""
            limit = program.limits.per_guide_per_department
            if (
                why is None
                and limit is not None
                and dept
                and dept_load[(r.guide_id, dept)] >= limit
            ):
                why = f"guide {r.guide_id} already has {limit} learner(s) from {dept!r}"
            if why is None:
                lrow, grow = pool.learner_row[r.learner_id], pool.guide_row[r.guide_id]
                breakdown = pool.scorer.breakdown(lrow, grow)
                score = pool.scorer.pair_score(breakdown)
                pinned = rules.get((r.learner_id, r.guide_id)) == "pin"
                if score < program.min_score and not pinned:
                    why = f"score {score:.3f} is below the program's min_score {program.min_score}"
            if why is not None:
                problems.append(f"{where}: rejected: {why}")
                continue
            load[r.guide_id] += 1
            if dept:
                dept_load[(r.guide_id, dept)] += 1
            plans.append((r, existing, breakdown, score))
        if problems:
            continue
        in_file = {r.pairing_id for r in rows if r.pairing_id is not None}
        for pid, p in proposed.items():
            if pid not in in_file:
                audit(s, actor, "withdraw_proposal", "pairing", pid, program=program_id)
                s.delete(p)
                result.withdrawn += 1
    if problems:
        raise InputDataError("\n".join(problems))
    s.flush()
    for r, existing, breakdown, score in plans:
        if existing is None:
            row = PairingRow(
                program_id=r.program,
                learner_id=r.learner_id,
                guide_id=r.guide_id,
                score=score,
                breakdown=breakdown,
                status="proposed",
            )
            s.add(row)
            s.flush()
            audit(s, actor, "import_proposal", "pairing", row.id, added=True)
            result.added += 1
        elif existing.guide_id != r.guide_id:
            audit(
                s,
                actor,
                "import_proposal",
                "pairing",
                existing.id,
                old_guide=existing.guide_id,
                new_guide=r.guide_id,
            )
            existing.guide_id, existing.score, existing.breakdown = r.guide_id, score, breakdown
            result.changed += 1
        else:
            result.kept += 1
    return result


def _why_not(
    s: Session,
    r: _Row,
    pool: object,
    managers: dict[int, int | None],
    rules: dict[tuple[int, int], str],
    earlier: set[tuple[int, int]],
    firm_learners: set[int],
    seen: Counter[int],
) -> str | None:
    """The first hard constraint this row breaks, or None."""
    from coachbridge.matching.pool import Pool

    assert isinstance(pool, Pool)
    if seen[r.learner_id] > 1:
        return f"learner {r.learner_id} appears on more than one row"
    if r.learner_id == r.guide_id:
        return "a person cannot be their own guide"
    if r.learner_id not in pool.learner_row:
        return f"person {r.learner_id} is not an active, enrolled learner of {r.program}"
    if r.guide_id not in pool.guide_row:
        return f"person {r.guide_id} is not an active, enrolled guide of {r.program}"
    if r.learner_id in firm_learners:
        return f"learner {r.learner_id} already has an active pairing in {r.program}"
    if r.guide_id in chain_above(managers, r.learner_id):
        return f"guide {r.guide_id} is learner {r.learner_id}'s manager or above them"
    if pool.scorer.chain_both_ways and r.learner_id in chain_above(managers, r.guide_id):
        return f"learner {r.learner_id} is guide {r.guide_id}'s manager or above them"
    if rules.get((r.learner_id, r.guide_id)) == "forbid":
        return f"an admin forbade pairing {r.learner_id} with {r.guide_id}"
    if (r.learner_id, r.guide_id) in earlier:
        return f"{r.learner_id} and {r.guide_id} were paired before in {r.program}"
    refused = pool.scorer.refused_by(pool.learner_row[r.learner_id], pool.guide_row[r.guide_id])
    if refused:
        why = " and ".join(CONSTRAINT_TEXT[n] for n in refused)
        return f"{r.learner_id} and {r.guide_id} {why}"
    return None
