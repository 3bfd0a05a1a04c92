"""Matching a program in the store: propose, explain, apply, match one learner, re-match.

``match_program`` and ``explain_match`` are the use cases of ``coachbridge match``: each runs
in one transaction of its own and returns plain data ready for output.

``propose`` never writes; ``apply`` turns a proposal into pairings, filling only free capacity
(existing open pairings are never touched). Active pairings created here are announced to
plugins through ``registry.pairing_created`` *after* the caller's transaction commits (a
session ``after_commit`` hook), so an observer never sees a pairing that was rolled back.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from coachbridge.context import Context, Hooks
from coachbridge.domain.pairing import OPEN, Pairing, PairingStatus
from coachbridge.domain.program import Program, ProgramKind
from coachbridge.errors import UserError
from coachbridge.matching import grouping
from coachbridge.matching.certify import allowed_pair_count
from coachbridge.matching.criteria import Criterion
from coachbridge.matching.engine import match_rows
from coachbridge.matching.managers import (
    DECIDED_BY,
    current_managers,
    is_manager_program,
    manager_pairs,
    over_max_reports,
    over_max_warning,
    reports_count,
)
from coachbridge.matching.managers import (
    REASON_TEXT as MANAGER_REASON_TEXT,
)
from coachbridge.matching.offers import first_status, open_choices
from coachbridge.matching.peer_match import (
    NO_PARTNER,
    ODD_ONE_OUT,
    PARTNERS_BELOW_MIN_SCORE,
    PARTNERS_TAKEN,
    PeerProposal,
    peer_allowed_pairs,
    peer_apply,
    peer_explain,
    peer_propose,
)
from coachbridge.matching.pool import (
    Pool,
    check_weights,
    free_capacity,
    load_pool,
    unpaired_learners,
)
from coachbridge.matching.scoring import CONSTRAINT_TEXT, full_row
from coachbridge.store.audit import audit
from coachbridge.store.people import chain_above, resolve_person
from coachbridge.store.programs import ensure_program_row
from coachbridge.store.tables import PairingRow, PersonRow
from numpy.typing import NDArray
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

MAX_ALL_PAIRS = 20_000_000  # ``match --all-pairs`` refuses more (a file of about a gigabyte)

NO_ELIGIBLE_GUIDE = "no_eligible_guide"
GUIDES_FULL = "guides_full"
BELOW_MIN_SCORE = "below_min_score"
EXCLUDED_BY_CONSTRAINT = "excluded_by_constraint"

REASON_TEXT = {
    NO_ELIGIBLE_GUIDE: "no guide is enrolled (and active, not opted out) in the program",
    GUIDES_FULL: "every guide that fits is full or taken by a better overall assignment",
    BELOW_MIN_SCORE: "every allowed guide scores below the program's min_score",
    EXCLUDED_BY_CONSTRAINT: "every guide is excluded by a hard constraint "
    "(themselves, their reporting chain, a forbid rule, an earlier pairing, or the program's "
    "require_common_language / require_availability_overlap)",
    **MANAGER_REASON_TEXT,
    NO_PARTNER: "nobody else is in the pool (enrolled, active, not opted out, not paired yet)",
    ODD_ONE_OUT: "the pool has an odd number of people who can pair: everyone else is paired, "
    "and leaving this person out gave the highest total",
    PARTNERS_TAKEN: "every partner that fits is paired with someone else in the best overall "
    "result (most people paired, then the highest total)",
    PARTNERS_BELOW_MIN_SCORE: "every allowed partner scores below the program's min_score",
    grouping.CIRCLE_BELOW_MINIMUM: "a guide that fits has room, but no circle with them "
    "could reach the program's minimum size",
}


@dataclass
class ProposedPair:
    """One proposed pairing with the per-criterion contributions that add up to its score."""

    learner_id: int
    guide_id: int
    score: float
    breakdown: dict[str, float]
    pinned: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "learner_id": self.learner_id,
            "guide_id": self.guide_id,
            "score": self.score,
            "breakdown": dict(self.breakdown),
            "pinned": self.pinned,
        }


@dataclass
class Unmatched:
    learner_id: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"learner_id": self.learner_id, "reason": self.reason}


@dataclass
class Proposal:
    """What ``propose`` found for one program; nothing of it is stored."""

    program: str
    pairs: list[ProposedPair] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    candidates: int = 0  # candidate arcs the solver saw
    widened: int = 0  # augmenting paths added beyond the top-K lists
    certified: bool = False  # proved optimal over every allowed pair
    # The candidate pairs the engine scored after hard constraints (coachbridge ids, scores
    # as optimised): what ``match --candidates`` writes.
    arcs: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]] | None = None
    allowed_pairs: int = 0  # pairs the hard constraints allow (counted when certified)
    top_k: int = 0
    # Set when no optimisation chose the pairs (a manager program: the HRIS's reporting lines).
    decided_by: str | None = None
    peer: bool = False  # a peer program: pairs within one pool (``matching.peer``)
    peer_complete: bool = False  # peer: the candidates were every allowed pair

    @property
    def guarantee(self) -> str:
        """What the proposal is proved to be, in words (``match`` and the demo print it)."""
        if self.decided_by:
            return self.decided_by
        if self.peer and self.peer_complete:  # solved on every pair: nothing left to price
            return f"optimal over all {self.allowed_pairs:,} allowed pairs (every one solved)"
        if self.peer:
            return f"optimal within each person's {self.top_k} best partners"
        if self.certified:
            return f"certified optimal over {self.allowed_pairs:,} allowed pairs"
        return f"optimal within each learner's {self.top_k} best guides"

    def as_dict(self) -> dict[str, Any]:
        return {
            "program": self.program,
            "pairs": [p.as_dict() for p in self.pairs],
            "unmatched": [u.as_dict() for u in self.unmatched],
            "warnings": list(self.warnings),
            "guarantee": self.guarantee,
            "certified": self.certified,
            "allowed_pairs": self.allowed_pairs if self.certified else None,
        }


def _criteria(registry: Hooks | None) -> Mapping[str, Criterion]:
    return registry.criteria if registry is not None else {}


def _pair(
    pool: Pool, lrow: int, grow: int, *, pinned: bool = False, score: float | None = None
) -> ProposedPair:
    """One pair with its breakdown; ``score`` is the one the solver optimised, when it did."""
    breakdown = pool.scorer.breakdown(lrow, grow)
    return ProposedPair(
        learner_id=pool.learner_ids[lrow],
        guide_id=pool.guide_ids[grow],
        score=pool.scorer.pair_score(breakdown) if score is None else score,
        breakdown=breakdown,
        pinned=pinned,
    )


def _apply_pins(pool: Pool, proposal: Proposal) -> tuple[set[int], dict[tuple[int, int], int]]:
    """Pins first: each pinned pair whose guide has room is taken before optimising."""
    taken: set[int] = set()
    used = dict(pool.group_used)
    for learner_id, guide_id in sorted(pool.pins):
        lrow, grow = pool.learner_row.get(learner_id), pool.guide_row.get(guide_id)
        if lrow is None or grow is None or lrow in taken:
            if learner_id in pool.learner_row or guide_id in pool.guide_row:
                proposal.warnings.append(
                    f"pin {learner_id}->{guide_id}: both must be enrolled, active and the learner "
                    f"not paired yet; pin skipped"
                )
            continue
        allowed = pool.scorer.allowed(np.array([lrow], dtype=np.int64))[0, grow]
        if not allowed:
            refused = pool.scorer.refused_by(lrow, grow)
            why = (
                "the two " + " and ".join(CONSTRAINT_TEXT[n] for n in refused)
                if refused
                else "the guide is the learner's manager or above, or the two were paired before"
            )
            proposal.warnings.append(f"pin {learner_id}->{guide_id}: {why}; pin skipped")
            continue
        if pool.free[grow] <= 0:
            proposal.warnings.append(f"pin {learner_id}->{guide_id}: the guide is full; skipped")
            continue
        key = (grow, pool.group_of_row(lrow))
        if pool.limit is not None and used.get(key, 0) >= pool.limit:
            proposal.warnings.append(
                f"pin {learner_id}->{guide_id}: per_guide_per_department limit reached; skipped"
            )
            continue
        pool.free[grow] -= 1
        used[key] = used.get(key, 0) + 1
        taken.add(lrow)
        proposal.pairs.append(_pair(pool, lrow, grow, pinned=True))
    return taken, used


def _reason(pool: Pool, lrow: int) -> str:
    """Why one learner stayed unmatched (checked against every guide, not only the top K)."""
    if not pool.guide_ids:
        return NO_ELIGIBLE_GUIDE
    scores, ok = pool.scorer.block(np.array([lrow], dtype=np.int64))
    if not ok[0].any():
        return EXCLUDED_BY_CONSTRAINT
    if not (scores[0][ok[0]] >= pool.program.min_score).any():
        return BELOW_MIN_SCORE
    return GUIDES_FULL


def optimise(
    pool: Pool, proposal: Proposal, exclude: set[int], used: dict
) -> tuple[dict[int, int], dict[int, float]]:
    """Top-K candidates, widening, one solve and (unless ``certify = false``) certification.

    Returns learner row -> guide row and learner row -> the score the solver optimised.
    """
    rows = np.array([i for i in range(len(pool.learner_ids)) if i not in exclude], dtype=np.int64)
    result = match_rows(
        pool.scorer,
        pool.free,
        k=pool.program.top_k,
        min_score=pool.program.min_score,
        rows=rows,
        group_of=pool.group_of_row,
        limit=pool.limit,
        group_used=used,
        certify=pool.program.certify,
    )
    proposal.candidates = int(result.candidates.score.size)
    c = result.candidates
    lids, gids = (
        np.array(pool.learner_ids, dtype=np.int64),
        np.array(pool.guide_ids, dtype=np.int64),
    )
    order = np.lexsort((gids[c.guide], lids[c.learner])) if c.score.size else np.empty(0, int)
    proposal.arcs = (lids[c.learner][order], gids[c.guide][order], c.score[order])
    proposal.widened = result.widened
    proposal.certified = result.certified
    proposal.allowed_pairs = result.allowed_pairs
    return result.match, result.scores


def propose(
    s: Session,
    program: Program,
    registry: Hooks | None,
    *,
    now: datetime,
    only_learners: set[int] | None = None,
) -> Proposal:
    """The best assignment of the program's unpaired learners to guides' free capacity.

    Most learners matched, then the highest total score (pins first, the fairness limit inside
    the optimisation). Every pair carries its breakdown; every unmatched learner a reason.
    ``only_learners`` restricts it to those learners (a burst of review events matched as a
    cohort); the guides' free capacity is what every open pairing leaves. Nothing is written.
    A peer program is paired within its one pool (``peer_match.peer_propose``).
    """
    if is_manager_program(program):
        return propose_managers(s, program, only_learners=only_learners)
    if program.kind == ProgramKind.PEER:
        if only_learners is not None:  # a peer pool is paired as a whole, by ``match``
            return Proposal(program=program.id, top_k=program.top_k, peer=True)
        return _peer_proposal(program, peer_propose(s, program, _criteria(registry), now=now))
    pool = load_pool(s, program, _criteria(registry), now=now, only_learners=only_learners)
    proposal = Proposal(program=program.id, top_k=program.top_k)
    taken, used = _apply_pins(pool, proposal)
    circles = None
    if grouping.is_group(program):
        circles = _optimise_circles(s, pool, proposal, taken, used)
        match, scores = circles.solution.match, circles.solution.scores
    else:
        match, scores = optimise(pool, proposal, taken, used)
    for lrow, grow in sorted(match.items()):
        proposal.pairs.append(_pair(pool, lrow, grow, score=scores[lrow]))
    proposal.pairs.sort(key=lambda p: p.learner_id)
    for lrow, learner_id in enumerate(pool.learner_ids):
        if lrow not in match and lrow not in taken:
            reason = _reason(pool, lrow)
            if circles is not None:
                reason = grouping.unplaced_reason(pool, lrow, circles, reason)
            proposal.unmatched.append(Unmatched(learner_id, reason))
    return proposal


def propose_managers(
    s: Session, program: Program, *, only_learners: set[int] | None = None
) -> Proposal:
    """A manager program's proposal: each unpaired learner with their current manager (no
    scores, no solve); a manager the proposal takes above ``max_reports`` is a warning."""
    pairs, unmatched = manager_pairs(s, program, only_learners)
    proposal = Proposal(program=program.id, top_k=program.top_k, decided_by=DECIDED_BY)
    proposal.pairs = [ProposedPair(learner, manager, 0.0, {}) for learner, manager in pairs]
    proposal.unmatched = [Unmatched(learner, reason) for learner, reason in unmatched]
    over = over_max_reports(program, reports_count(s, program.id), [m for _, m in pairs])
    names = person_names(s, set(over))
    proposal.warnings += [
        over_max_warning(program, m, names.get(m, ""), n) for m, n in over.items()
    ]
    return proposal


def _peer_proposal(program: Program, found: PeerProposal) -> Proposal:
    """A peer program's result as a ``Proposal`` (each pair once, the lower id as learner)."""
    return Proposal(
        program=program.id,
        pairs=[ProposedPair(**p) for p in found.pairs],
        unmatched=[Unmatched(pid, reason) for pid, reason in found.unmatched],
        warnings=found.warnings,
        candidates=found.candidates,
        widened=found.widened,
        arcs=found.arcs,
        allowed_pairs=found.candidates if found.complete else 0,
        top_k=program.top_k,
        peer=True,
        peer_complete=found.complete,
    )


def _optimise_circles(
    s: Session, pool: Pool, proposal: Proposal, taken: set[int], used: dict
) -> grouping.GroupResult:
    """A group program's exact solve: no guide opens a circle below ``circle_size``'s minimum."""
    pinned: dict[int, int] = {}
    for pair in proposal.pairs:
        grow = pool.guide_row[pair.guide_id]
        pinned[grow] = pinned.get(grow, 0) + 1
    result = grouping.solve_pool(
        pool, grouping.circle_loads(s, pool.program.id), taken, used, pinned
    )
    c = result.candidates
    lids = np.array(pool.learner_ids, dtype=np.int64)
    gids = np.array(pool.guide_ids, dtype=np.int64)
    order = np.lexsort((gids[c.guide], lids[c.learner])) if c.score.size else np.empty(0, int)
    proposal.arcs = (lids[c.learner][order], gids[c.guide][order], c.score[order])
    proposal.candidates = int(c.score.size)
    proposal.certified = result.certified
    proposal.allowed_pairs = result.allowed_pairs
    if not result.solution.optimal:
        proposal.warnings.append(
            "the circle solver stopped before proving its answer optimal; it is the best found"
        )
    return result


def _manager_blocks(
    pairs: list[tuple[int, int]],
) -> tuple[int, Iterator[tuple[list[int], list[int], list[float]]]]:
    """A manager program's pairs as candidate blocks (score 0: nothing was scored)."""
    pairs = sorted(pairs)
    return len(pairs), iter(
        [([lid for lid, _ in pairs], [gid for _, gid in pairs], [0.0] * len(pairs))]
    )


def allowed_pairs(
    s: Session, program: Program, registry: Hooks | None, *, now: datetime
) -> tuple[int, Iterator[tuple[list[int], list[int], list[float]]]]:
    """Every pair the hard constraints allow between waiting learners and enrolled guides.

    Learners enrolled, active and still without a pairing; guides enrolled and active, with
    or without free places. Pairs of the same person, a guide in the learner's reporting chain,
    a forbid rule or an earlier pairing are left out; ``min_score`` is not applied (it is the
    solver's rule, not a hard constraint). Returns the count and an iterator of
    ``(learner ids, guide ids, scores)`` blocks, scored block-wise like matching. Refuses more
    than ``MAX_ALL_PAIRS`` pairs. A peer program lists each unordered pair once.
    """
    if program.kind == ProgramKind.PEER:
        criteria = _criteria(registry)
        return peer_allowed_pairs(s, program, criteria, now=now, max_pairs=MAX_ALL_PAIRS)
    if is_manager_program(program):
        # No matching: the one pair a waiting learner can have is with their current manager.
        return _manager_blocks(manager_pairs(s, program)[0])
    pool = load_pool(s, program, _criteria(registry), now=now)
    scorer = pool.scorer
    rows = np.arange(len(pool.learner_ids), dtype=np.int64)
    everyone = np.ones(len(pool.guide_ids), dtype=np.int64)
    count = allowed_pair_count(scorer, rows, everyone, pool.forbidden)
    if count > MAX_ALL_PAIRS:
        raise UserError(
            f"--all-pairs: program {program.id!r} has {count:,} allowed pairs "
            f"({len(rows):,} waiting learners x {len(pool.guide_ids):,} guides, less excluded "
            f"pairs), more than {MAX_ALL_PAIRS:,}; write the engine's candidates "
            f"(--candidates without --all-pairs) instead"
        )
    lids = np.array(pool.learner_ids, dtype=np.int64)
    gids = np.array(pool.guide_ids, dtype=np.int64)

    def blocks() -> Iterator[tuple[list[int], list[int], list[float]]]:
        for block in scorer.blocks(rows):
            scores, ok = scorer.block(block)
            r, c = np.nonzero(ok)
            yield lids[block[r]].tolist(), gids[c].tolist(), scores[r, c].tolist()

    return count, blocks()


@dataclass
class Alternative:
    guide_id: int
    score: float
    breakdown: dict[str, float]
    allowed: bool
    why_not: str
    criteria: list[dict[str, Any]] = field(default_factory=list)


def criterion_shares(
    pool: Pool, lrow: int, grow: int, breakdown: Mapping[str, float], score: float
) -> list[dict[str, Any]]:
    """Every weighted criterion of one pair: its value, weight, contribution and share.

    ``share`` is the contribution over the score (the shares add up to 1, as the
    contributions add up to the score); ``note`` says when the value is the neutral 0.5
    because an answer (or a fact) is missing, e.g. "no answer: 0.5 (guide)".
    """
    notes = pool.scorer.notes(lrow, grow)
    rows = np.array([lrow], dtype=np.int64)
    out = []
    for name, contribution in breakdown.items():
        weight = pool.scorer.weights[name]
        out.append(
            {
                "criterion": name,
                "weight": weight,
                "value": float(pool.scorer.criterion(name, rows)[0, grow]),
                "contribution": contribution,
                "share": contribution / score if score else 0.0,
                "note": notes.get(name, ""),
            }
        )
    return out


def explain(
    s: Session,
    program: Program,
    learner_id: int,
    registry: Hooks | None,
    *,
    now: datetime,
    proposal: Proposal | None = None,
    limit: int = 5,
) -> list[Alternative]:
    """The learner's best guides by score, each with why it was not (or was) the choice."""
    if program.kind == ProgramKind.PEER:  # the best partners, by the symmetric score
        proposal = proposal or propose(s, program, registry, now=now)
        partner = {p.learner_id: p.guide_id for p in proposal.pairs}
        partner |= {p.guide_id: p.learner_id for p in proposal.pairs}
        found = peer_explain(
            s, program, _criteria(registry), learner_id, now=now, partner=partner, limit=limit
        )
        return [Alternative(**row) for row in found]
    pool = load_pool(s, program, _criteria(registry), now=now)
    lrow = pool.learner_row.get(learner_id)
    if lrow is None:
        raise UserError(
            f"person {learner_id} is not an unpaired learner in program {program.id!r} "
            f"(enrolled as learner, active, not opted out, without an open pairing)"
        )
    proposal = proposal or propose(s, program, registry, now=now)
    chosen = {p.learner_id: p.guide_id for p in proposal.pairs}
    load: dict[int, int] = {}
    for p in proposal.pairs:
        load[p.guide_id] = load.get(p.guide_id, 0) + 1
    scores, ok = pool.scorer.block(np.array([lrow], dtype=np.int64))
    order = np.lexsort((np.arange(scores.shape[1]), -scores[0]))
    out: list[Alternative] = []
    for grow in order[:limit].tolist():
        gid = pool.guide_ids[grow]
        score = float(scores[0, grow])
        if chosen.get(learner_id) == gid:
            why = "chosen"
        elif not ok[0, grow]:
            refused = pool.scorer.refused_by(lrow, grow)
            why = (
                "excluded: the two " + " and ".join(CONSTRAINT_TEXT[n] for n in refused)
                if refused
                else "excluded: same person, reporting chain, forbid rule or earlier pairing"
            )
        elif score < program.min_score:
            why = f"score below min_score {program.min_score}"
        elif pool.free[grow] <= 0:
            why = "guide has no free capacity"
        elif load.get(gid, 0) >= pool.free[grow]:
            why = "guide's free places went to others: more learners matched (or a higher total)"
        else:
            why = "another guide gave a better overall assignment"
        breakdown = pool.scorer.breakdown(lrow, grow)
        total = pool.scorer.pair_score(breakdown)
        out.append(
            Alternative(
                gid,
                total,
                breakdown,
                bool(ok[0, grow]),
                why,
                criterion_shares(pool, lrow, grow, breakdown, total),
            )
        )
    return out


# -- writing ------------------------------------------------------------------------------------
def to_pairing(row: PairingRow) -> Pairing:
    """The pydantic ``Pairing`` of a stored row."""
    return Pairing(
        id=row.id,
        program=row.program_id,
        learner_id=row.learner_id,
        guide_id=row.guide_id,
        score=row.score,
        breakdown=dict(row.breakdown or {}),
        status=PairingStatus(row.status),
        end_reason=row.end_reason,
        flag=row.flag,
        created_at=row.created_at,
        ended_at=row.ended_at,
    )


def announce_after_commit(s: Session, registry: Hooks | None, rows: Sequence[PairingRow]) -> None:
    """Call ``registry.pairing_created`` for active ``rows`` once ``s`` commits (never on rollback)."""
    active = [r for r in rows if r.status == PairingStatus.ACTIVE.value]
    if registry is None or not active:
        return

    def _fire(_session: Session) -> None:
        for row in active:
            registry.pairing_created(to_pairing(row))

    event.listen(s, "after_commit", _fire, once=True)


def _open_load(s: Session, program_id: str, guide_id: int) -> int:
    return int(
        s.scalar(
            select(func.count()).where(
                PairingRow.program_id == program_id,
                PairingRow.guide_id == guide_id,
                PairingRow.status.in_(OPEN),
            )
        )
        or 0
    )


def apply(
    s: Session,
    program: Program,
    proposal: Proposal,
    *,
    status: str = "active",
    actor: str = "cli",
    now: datetime | None = None,
    registry: Hooks | None = None,
) -> list[PairingRow]:
    """Store a proposal as pairings (``active`` or ``proposed``), filling only free capacity.

    A pair whose learner meanwhile has an open pairing, or whose guide is meanwhile full, is
    skipped; existing pairings are never changed. Returns the new rows.
    """
    if status not in (PairingStatus.ACTIVE.value, PairingStatus.PROPOSED.value):
        raise UserError(f"pairings are applied as active or proposed, not {status!r}")
    if status == PairingStatus.ACTIVE.value:
        # With a program's ``choice``, "active" means: as far as it goes before someone answers.
        status = first_status(program)
    now = now or datetime.now(UTC)
    if program.kind == ProgramKind.PEER:
        pairs = [(p.learner_id, p.guide_id, p.score, p.breakdown) for p in proposal.pairs]
        rows = peer_apply(s, program, pairs, status=status, actor=actor, now=now)
        announce_after_commit(s, registry, rows)
        return rows
    ensure_program_row(s, program)
    free = free_capacity(s, program)  # as it is now, not as it was when proposed
    if is_manager_program(program):  # no capacity: a pair holds while the manager is current
        free = _manager_room(s, program, proposal)
    waiting = unpaired_learners(s, program)
    rows: list[PairingRow] = []
    for pair in proposal.pairs:
        if pair.learner_id not in waiting or free.get(pair.guide_id, 0) <= 0:
            continue
        free[pair.guide_id] -= 1
        row = PairingRow(
            program_id=program.id,
            learner_id=pair.learner_id,
            guide_id=pair.guide_id,
            score=pair.score,
            breakdown=dict(pair.breakdown),
            status=status,
            activated_at=now if status == PairingStatus.ACTIVE.value else None,
        )
        s.add(row)
        rows.append(row)
        waiting.discard(pair.learner_id)
    s.flush()
    open_choices(s, program, _criteria(registry), rows, now=now, actor=actor)
    grouping.join_circles(s, program, rows)
    for row in rows:
        audit(
            s,
            actor,
            "create_pairing",
            "pairing",
            row.id,
            program=program.id,
            status=status,
            learner_id=row.learner_id,
            guide_id=row.guide_id,
        )
    announce_after_commit(s, registry, rows)
    return rows


def _manager_room(s: Session, program: Program, proposal: Proposal) -> dict[int, int]:
    """Room per manager for the proposal's pairs whose guide is still the learner's manager."""
    current = current_managers(s, program, [p.learner_id for p in proposal.pairs])
    room: dict[int, int] = {}
    for pair in proposal.pairs:
        if current.get(pair.learner_id) == pair.guide_id:
            room[pair.guide_id] = room.get(pair.guide_id, 0) + 1
    return room


def match_one(
    s: Session,
    program: Program,
    learner_id: int,
    registry: Hooks | None,
    *,
    now: datetime,
    actor: str = "automation",
) -> PairingRow | None:
    """Pair one learner with the best guide that has room, as an ACTIVE pairing (or, with the
    program's ``choice``, an ``offered`` or ``requested`` one with its offers or request).

    Hard constraints, pins and the fairness limit hold as in ``propose``; nobody else is moved.
    A learner who already has an active pairing in the program gets that one back (so a
    repeated event changes nothing); None, with nothing written, when no guide fits.
    """
    existing = s.scalars(
        select(PairingRow).where(
            PairingRow.program_id == program.id,
            PairingRow.learner_id == learner_id,
            PairingRow.status == PairingStatus.ACTIVE.value,
        )
    ).first()
    if existing is not None:
        return existing
    if is_manager_program(program):
        proposal = propose_managers(s, program, only_learners={learner_id})
        rows = apply(s, program, proposal, actor=actor, now=now, registry=registry)
        return rows[0] if rows else None
    if program.kind == ProgramKind.PEER:
        return None  # a peer pool is paired as a whole, by ``coachbridge match``
    ensure_program_row(s, program)
    pool = load_pool(s, program, _criteria(registry), now=now, only_learners={learner_id})
    lrow = pool.learner_row.get(learner_id)
    if lrow is None:
        return None
    choice: tuple[int, bool] | None = None
    for pl, pg in sorted(pool.pins):
        grow = pool.guide_row.get(pg)
        if (
            pl == learner_id
            and grow is not None
            and pool.free[grow] > 0
            and pool.scorer.allowed(np.array([lrow], dtype=np.int64))[0, grow]
        ):
            choice = (grow, True)
            break
    if choice is None:
        room = pool.free > 0
        if grouping.is_group(program):
            # One learner alone never opens a circle: they join one that is open and has room.
            loads = grouping.circle_loads(s, program.id)
            assert program.circle_size is not None
            room &= np.array(
                [0 < loads.get(g, 0) < program.circle_size[1] for g in pool.guide_ids],
                dtype=np.bool_,
            )
        guides, scores = full_row(pool.scorer, lrow, program.min_score, room)
        if pool.limit is not None and guides.size:
            key = pool.group_of_row(lrow)
            room = np.array(
                [pool.group_used.get((g, key), 0) < pool.limit for g in guides.tolist()]
            )
            guides, scores = guides[room], scores[room]
        if guides.size == 0:
            return None
        best = int(np.lexsort((guides, -scores))[0])  # highest score; ties: first enrolled
        choice = (int(guides[best]), False)
    pair = _pair(pool, lrow, choice[0], pinned=choice[1])
    status = first_status(program)
    row = PairingRow(
        program_id=program.id,
        learner_id=learner_id,
        guide_id=pair.guide_id,
        score=pair.score,
        breakdown=pair.breakdown,
        status=status,
        activated_at=now if status == PairingStatus.ACTIVE.value else None,
    )
    s.add(row)
    s.flush()
    open_choices(s, program, _criteria(registry), [row], now=now, actor=actor)
    grouping.join_circles(s, program, [row])
    audit(s, actor, "create_pairing", "pairing", row.id, program=program.id, status=status)
    announce_after_commit(s, registry, [row])
    return row


def reporting_conflict(s: Session, learner_id: int, guide_id: int) -> bool:
    """True when the guide is the learner's manager or anyone above them."""
    managers = dict(s.execute(select(PersonRow.id, PersonRow.manager_id)).all())
    return guide_id in chain_above(managers, learner_id)


# -- use cases ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class MatchOutcome:
    """What ``match_program`` found, with people's names for the listing."""

    program: str
    pairs: list[dict[str, Any]]  # ProposedPair.as_dict() plus "learner" and "guide" names
    unmatched: list[dict[str, Any]]  # Unmatched.as_dict() plus the "learner" name
    warnings: list[str]
    created: list[int] | None  # ids of the pairings stored; None when nothing was to be stored
    guarantee: str = ""  # what the result is optimal over, in words (Proposal.guarantee)
    certified: bool = False
    allowed_pairs: int | None = None  # with ``certified``: how many pairs it is optimal over
    written: int | None = None  # pairs written to ``candidates`` (None: no file asked for)
    peer: bool = False  # pairs within one pool: learner_id is the lower id, no leader


@dataclass(frozen=True)
class Explanation:
    """Why a learner got what: their best guides, each with its outcome."""

    learner_id: int
    learner: str
    alternatives: list[dict[str, Any]]  # guide_id, guide, score, breakdown, outcome


def configured_program(ctx: Context, program_id: str) -> Program:
    """The program from the config, its criteria weights checked against the plugins'."""
    program = ctx.config.program(program_id)
    index = list(ctx.config.programs).index(program.id)
    check_weights(program, ctx.registry.criteria, index=index)
    return program


def person_names(s: Session, ids: set[int]) -> dict[int, str]:
    """People's names by id (for listings)."""
    if not ids:
        return {}
    return {p.id: p.name for p in s.scalars(select(PersonRow).where(PersonRow.id.in_(ids)))}


def match_program(
    ctx: Context,
    program_id: str,
    *,
    store_as: str | None = None,
    candidates: Path | None = None,
    all_pairs: bool = False,
    now: datetime | None = None,
    actor: str = "cli",
) -> MatchOutcome:
    """Propose pairings for a program; with ``store_as`` (``active`` or ``proposed``) store
    them, filling only free capacity. New active pairings are announced after the commit.

    With ``candidates``, every candidate pair the engine scored is written there as
    ``learner_id,guide_id,score`` (``all_pairs``: every pair the hard constraints allow, see
    ``allowed_pairs``), scores at full precision, the file replaced atomically."""
    program = configured_program(ctx, program_id)
    now = now or datetime.now(UTC)
    written = None
    with ctx.database().transaction() as s:
        if candidates is not None and all_pairs:
            written, blocks = allowed_pairs(s, program, ctx.registry, now=now)
            write_pairs(candidates, blocks)
        proposal = propose(s, program, ctx.registry, now=now)
        if candidates is not None and not all_pairs and proposal.arcs is not None:
            lids, gids, scores = proposal.arcs
            write_pairs(candidates, iter([(lids.tolist(), gids.tolist(), scores.tolist())]))
            written = int(scores.size)
        elif candidates is not None and not all_pairs and proposal.decided_by:
            # A manager program scores nothing: its candidates are the pairs the HRIS decides.
            written, blocks = _manager_blocks([(p.learner_id, p.guide_id) for p in proposal.pairs])
            write_pairs(candidates, blocks)
        created = None
        if store_as is not None:
            rows = apply(
                s, program, proposal, status=store_as, actor=actor, now=now, registry=ctx.registry
            )
            created = [r.id for r in rows]
        names = person_names(
            s,
            {p.learner_id for p in proposal.pairs}
            | {p.guide_id for p in proposal.pairs}
            | {u.learner_id for u in proposal.unmatched},
        )
    pairs = [
        p.as_dict() | {"learner": names.get(p.learner_id, ""), "guide": names.get(p.guide_id, "")}
        for p in proposal.pairs
    ]
    unmatched = [u.as_dict() | {"learner": names.get(u.learner_id, "")} for u in proposal.unmatched]
    return MatchOutcome(
        program.id,
        pairs,
        unmatched,
        list(proposal.warnings),
        created,
        guarantee=proposal.guarantee,
        certified=proposal.certified,
        allowed_pairs=proposal.allowed_pairs if proposal.certified else None,
        written=0 if candidates is not None and written is None else written,
        peer=proposal.peer,
    )


def write_pairs(path: Path, blocks: Iterator[tuple[list[int], list[int], list[float]]]) -> None:
    """``learner_id,guide_id,score`` rows, scores at full precision (``repr``), atomically."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write("learner_id,guide_id,score\n")
            for lids, gids, scores in blocks:
                fh.writelines(
                    f"{a},{b},{c!r}\n" for a, b, c in zip(lids, gids, scores, strict=True)
                )
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"--candidates {path}: cannot write: {exc.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def explain_match(
    ctx: Context, program_id: str, person_ref: str, *, now: datetime | None = None
) -> Explanation:
    """A learner's best guides in a program, each with why it was (not) the choice."""
    program = configured_program(ctx, program_id)
    now = now or datetime.now(UTC)
    with ctx.database().transaction() as s:
        person = resolve_person(s, person_ref)
        alternatives = explain(s, program, person.id, ctx.registry, now=now)
        names = person_names(s, {a.guide_id for a in alternatives})
        rows = [
            {
                "guide_id": a.guide_id,
                "guide": names.get(a.guide_id, ""),
                "score": a.score,
                "breakdown": a.breakdown,
                "criteria": a.criteria,
                "outcome": a.why_not,
            }
            for a in alternatives
        ]
        return Explanation(person.id, person.name, rows)
