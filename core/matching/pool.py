"""The matching pool of one program, read from the store: who may be matched, and to whom.

Learners: enrolled as learner, not opted out, active, without an open pairing in the program.
Guides: enrolled as guide, not opted out, active; free capacity is the enrollment's capacity
(else the program's) minus the guide's open (proposed, active, paused) pairings in the program.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from coachbridge.domain.pairing import OPEN
from coachbridge.domain.profile import ProfileAnswer, language_code
from coachbridge.domain.program import Program, ProgramKind
from coachbridge.domain.training import training_key
from coachbridge.errors import ConfigError
from coachbridge.matching.answers import answer_sides
from coachbridge.matching.criteria import ANSWER_CRITERIA, BUILTIN_CRITERIA, Criterion, Profile
from coachbridge.matching.features import Side, Vocabulary, euler_intervals, norm_tags
from coachbridge.matching.scoring import Scorer, ScoringSettings
from coachbridge.store.eligibility import (
    guide_ratings,
    guide_reason,
    load_guide_facts,
    needs_facts,
    stored_training_names,
)
from coachbridge.store.profiles import answered_profiles
from coachbridge.store.tables import EnrollmentRow, OfferRow, PairingRow, PairRuleRow, PersonRow
from numpy.typing import NDArray
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session


def check_weights(
    program: Program, criteria: Mapping[str, Criterion], *, index: int | None = None
) -> None:
    """Every name in ``[programs.weights]`` must be a built-in or plugin criterion."""
    where = f"programs[{index}]" if index is not None else f"programs[id={program.id!r}]"
    unknown = [n for n in program.weights if n not in BUILTIN_CRITERIA and n not in criteria]
    if unknown:
        known = ", ".join(sorted(BUILTIN_CRITERIA | set(criteria)))
        raise ConfigError(
            [f"{where}.weights.{n}: unknown matching criterion (known: {known})" for n in unknown]
        )


def scoring_settings(program: Program) -> ScoringSettings:
    """The built-in criteria's knobs for ``program`` (reverse mentoring mirrors seniority)."""
    return ScoringSettings(
        seniority_best_gap=float(program.settings.get("seniority_best_gap", 2)),
        working_hours=program.working_hours,
        seniority_reversed=program.kind == ProgramKind.REVERSE,
    )


def check_trained_in(s: Session, program: Program) -> list[str]:
    """A ``trained_in`` name no stored record holds is a config error naming the key; with no
    trainings stored at all (none synced yet) it is a warning, returned."""
    rules = program.guides
    if rules is None or rules.trained_in is None:
        return []
    held = stored_training_names(s)
    where = f"programs[id={program.id!r}].guides.trained_in"
    if held is None:
        return [
            f"{where}: no training records are stored yet (sync a connector that reads "
            "trainings); no guide qualifies"
        ]
    unknown = [name for name in rules.trained_in if training_key(name) not in held]
    if unknown:
        raise ConfigError(
            f"{where}: no training record holds {', '.join(repr(n) for n in unknown)} "
            "(check the name against the HRIS's training names)"
        )
    return []


def rating_scores(s: Session, guide_ids: list[int], min_ratings: int) -> NDArray[np.float64]:
    """The ``guide_rating`` criterion per guide: the average received rating on 0..1 (1 -> 0,
    5 -> 1); a guide with fewer than ``min_ratings`` ratings scores half (unknown)."""
    ratings = guide_ratings(s, guide_ids)
    out = np.full(len(guide_ids), np.nan, dtype=np.float64)
    for j, gid in enumerate(guide_ids):
        avg, count = ratings.get(gid, (0.0, 0))
        if count >= min_ratings:
            out[j] = (avg - 1.0) / 4.0
    return out


def utc_offset_hours(tz: str | None, now: datetime) -> float | None:
    """The zone's offset from UTC at ``now`` in hours, or None for a missing or unknown zone."""
    if not tz:
        return None
    try:
        offset = now.astimezone(ZoneInfo(tz)).utcoffset()
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    return None if offset is None else offset.total_seconds() / 3600.0


def free_capacity(s: Session, program: Program) -> dict[int, int]:
    """Free places per guide (active, enrolled as guide, not opted out) in ``program``."""
    load: dict[int, int] = dict(
        s.execute(
            select(PairingRow.guide_id, func.count())
            .where(PairingRow.program_id == program.id, PairingRow.status.in_(OPEN))
            .group_by(PairingRow.guide_id)
        ).all()
    )
    out: dict[int, int] = {}
    for e, person in s.execute(
        select(EnrollmentRow, PersonRow)
        .join(PersonRow, PersonRow.id == EnrollmentRow.person_id)
        .where(
            EnrollmentRow.program_id == program.id,
            EnrollmentRow.role == "guide",
            EnrollmentRow.opted_out.is_(False),
        )
    ):
        if person.status == "active" and not person.forgotten:
            cap = e.capacity if e.capacity is not None else program.capacity
            out[e.person_id] = max(0, cap - load.get(e.person_id, 0))
    return out


def unpaired_learners(s: Session, program: Program) -> set[int]:
    """Learners (active, not opted out) without an open pairing in ``program``."""
    paired = set(
        s.scalars(
            select(PairingRow.learner_id).where(
                PairingRow.program_id == program.id, PairingRow.status.in_(OPEN)
            )
        )
    )
    return {
        e.person_id
        for e, person in s.execute(
            select(EnrollmentRow, PersonRow)
            .join(PersonRow, PersonRow.id == EnrollmentRow.person_id)
            .where(
                EnrollmentRow.program_id == program.id,
                EnrollmentRow.role == "learner",
                EnrollmentRow.opted_out.is_(False),
            )
        )
        if person.status == "active" and not person.forgotten and e.person_id not in paired
    }


@dataclass
class Pool:
    """Everything matching needs for one program at one moment."""

    program: Program
    people: dict[int, PersonRow]
    learner_ids: list[int]
    guide_ids: list[int]
    free: NDArray[np.int64]  # free capacity per guide row
    scorer: Scorer
    learner_row: dict[int, int]
    guide_row: dict[int, int]
    forbidden: dict[int, set[int]]  # learner row -> guide rows (forbid rules, earlier pairings)
    pins: list[tuple[int, int]]  # (learner id, guide id) pinned by an admin
    department_code: dict[str, int] = field(default_factory=dict)
    # (guide row, department code) -> learners of that department the guide already has
    group_used: dict[tuple[int, int], int] = field(default_factory=dict)

    @property
    def limit(self) -> int | None:
        return self.program.limits.per_guide_per_department

    def group_of_row(self, learner_row: int) -> int:
        """The learner's department code for the fairness limit (unknown: a code of their own)."""
        code = int(self.scorer.learners.department[learner_row])
        return code if code >= 0 else 1_000_000_000 + learner_row


def _profile(
    person: PersonRow,
    prefs: Mapping[str, object],
    now: datetime,
    answer: ProfileAnswer | None = None,
) -> Profile:
    tz = prefs.get("timezone") if isinstance(prefs.get("timezone"), str) else None
    tz = tz or person.timezone
    if answer is not None and answer.languages is not None:
        # Languages given in an answer replace the HRIS's (and the enrollment preference):
        # for scoring and for ``require_common_language`` alike.
        langs = norm_tags(answer.languages)
    else:
        langs = norm_tags(person.languages) | norm_tags(prefs.get("language"))
    # An answer gives ISO 639-1 codes, an HRIS often names ("German"): compared as codes,
    # where ISO 639 has one, so that "de" and "German" are one language.
    langs = frozenset(language_code(tag) or tag for tag in langs)
    return Profile(
        person_id=person.id,
        level=person.level,
        department=person.department,
        division=person.division,
        location=person.location,
        timezone=tz,
        utc_offset_hours=utc_offset_hours(tz, now),
        skills=norm_tags(person.skills),
        interests=norm_tags(person.interests),
        languages=langs,
        wants=norm_tags(prefs.get("wants")),
        offers=norm_tags(prefs.get("offers")),
        topics=tuple(answer.topics) if answer is not None else (),
        goal=answer.goal if answer is not None else None,
        availability=frozenset(answer.availability) if answer is not None else frozenset(),
    )


def _side(
    profiles: list[Profile],
    goals: list[frozenset[str]],
    *,
    learner: bool,
    topics: Vocabulary,
    langs: Vocabulary,
    departments: dict[str, int],
    euler: Mapping[int, tuple[int, int]],
) -> Side:
    if learner:
        topic_sets = [p.wants or p.interests for p in profiles]
        goal_sets = goals
    else:
        topic_sets = [p.offers | p.skills for p in profiles]
        goal_sets = topic_sets
    return Side(
        ids=np.array([p.person_id for p in profiles], dtype=np.int64),
        level=np.array(
            [np.nan if p.level is None else float(p.level) for p in profiles], dtype=np.float64
        ),
        department=np.array(
            [departments.get((p.department or "").strip().lower(), -1) for p in profiles],
            dtype=np.int64,
        ),
        utc_offset=np.array(
            [np.nan if p.utc_offset_hours is None else p.utc_offset_hours for p in profiles],
            dtype=np.float64,
        ),
        topics=topics.matrix(topic_sets),
        goals=topics.matrix(goal_sets),
        languages=langs.matrix([p.languages for p in profiles]),
        tin=np.array([euler.get(p.person_id, (-1, -1))[0] for p in profiles], dtype=np.int64),
        tout=np.array([euler.get(p.person_id, (-1, -1))[1] for p in profiles], dtype=np.int64),
        profiles=profiles,
    )


def load_pool(
    s: Session,
    program: Program,
    criteria: Mapping[str, Criterion],
    *,
    now: datetime,
    only_learners: set[int] | None = None,
    include_paired: bool = False,
) -> Pool:
    """Read the program's enrollments, people, pairings and rules into a ``Pool``.

    ``include_paired`` keeps learners who already have an open pairing (to score pairs that
    exist, e.g. when a proposal comes back from a spreadsheet); matching never sets it.
    """
    check_weights(program, criteria)
    enrollment_query = select(EnrollmentRow).where(EnrollmentRow.program_id == program.id)
    pairing_query = select(PairingRow).where(PairingRow.program_id == program.id)
    if only_learners is not None:
        # Matching one learner (a rule, every review event) reads the guides, that learner and
        # the open pairings, not every learner and pairing the program ever had: the cost of
        # an event stays flat as the program grows.
        enrollment_query = enrollment_query.where(
            or_(EnrollmentRow.role != "learner", EnrollmentRow.person_id.in_(only_learners))
        )
        pairing_query = pairing_query.where(
            or_(PairingRow.status.in_(OPEN), PairingRow.learner_id.in_(only_learners))
        )
    enrollments = list(s.scalars(enrollment_query.order_by(EnrollmentRow.person_id)))
    pairings = list(s.scalars(pairing_query))
    managers = dict(s.execute(select(PersonRow.id, PersonRow.manager_id)).all())
    ids = {e.person_id for e in enrollments}
    people = {
        p.id: p
        for p in s.scalars(select(PersonRow).where(PersonRow.id.in_(ids)))
        if p.status == "active" and not p.forgotten
    }
    open_learners = {p.learner_id for p in pairings if p.status in OPEN}
    # A learner who declined the place held for them but still has open offers to pick from
    # is being matched: another round now would offer them guides twice.
    open_learners |= set(
        s.scalars(
            select(OfferRow.learner_id).where(
                OfferRow.program_id == program.id, OfferRow.status == "open"
            )
        )
    )
    load: dict[int, int] = {}
    for p in pairings:
        if p.status in OPEN:
            load[p.guide_id] = load.get(p.guide_id, 0) + 1

    # Guides must still meet the program's guide filters on trainings and rating (a training
    # may have expired since they were enrolled, or they were enrolled by hand).
    unqualified: set[int] = set()
    if needs_facts(program.guides):
        check_trained_in(s, program)
        guide_people = [e.person_id for e in enrollments if e.role == "guide"]
        facts = load_guide_facts(s, program.guides, guide_people)
        today = now.date()
        unqualified = {
            pid
            for pid in guide_people
            if guide_reason(pid, program.guides, facts, today=today) is not None
        }
    learners: list[EnrollmentRow] = []
    guides: list[EnrollmentRow] = []
    for e in enrollments:
        if e.opted_out or e.person_id not in people:
            continue
        if e.role == "learner" and (include_paired or e.person_id not in open_learners):
            if only_learners is None or e.person_id in only_learners:
                learners.append(e)
        elif e.role == "guide" and e.person_id not in unqualified:
            guides.append(e)

    answers = answered_profiles(s, program.id, [e.person_id for e in [*learners, *guides]])
    lprof = [
        _profile(people[e.person_id], e.preferences or {}, now, answers.get(e.person_id))
        for e in learners
    ]
    gprof = [
        _profile(people[e.person_id], e.preferences or {}, now, answers.get(e.person_id))
        for e in guides
    ]
    lgoals = [norm_tags((e.preferences or {}).get("goals")) for e in learners]
    topics, langs = Vocabulary(), Vocabulary()
    for p in lprof:
        topics.add(sorted(p.wants or p.interests))
        langs.add(sorted(p.languages))
    for g in lgoals:
        topics.add(sorted(g))
    for p in gprof:
        topics.add(sorted(p.offers | p.skills))
        langs.add(sorted(p.languages))
    departments: dict[str, int] = {}
    for p in [*lprof, *gprof]:
        if p.department:
            departments.setdefault(p.department.strip().lower(), len(departments))
    euler = euler_intervals(managers)
    lside = _side(
        lprof,
        lgoals,
        learner=True,
        topics=topics,
        langs=langs,
        departments=departments,
        euler=euler,
    )
    gside = _side(
        gprof,
        [],
        learner=False,
        topics=topics,
        langs=langs,
        departments=departments,
        euler=euler,
    )
    if program.weights.get("guide_rating"):
        min_ratings = program.guides.min_ratings if program.guides is not None else 5
        gside.rating = rating_scores(s, [e.person_id for e in guides], min_ratings)
    needed = {n for n in ANSWER_CRITERIA if program.weights.get(n)}
    if program.require_availability_overlap:
        needed.add("availability")
    if needed:
        lside.answers, gside.answers = answer_sides(lprof, gprof, frozenset(needed))
    learner_row = {e.person_id: i for i, e in enumerate(learners)}
    guide_row = {e.person_id: j for j, e in enumerate(guides)}
    free = np.array(
        [
            max(
                0,
                (e.capacity if e.capacity is not None else program.capacity)
                - load.get(e.person_id, 0),
            )
            for e in guides
        ],
        dtype=np.int64,
    )
    forbidden: dict[int, set[int]] = {}
    pins: list[tuple[int, int]] = []
    for rule in s.scalars(select(PairRuleRow).where(PairRuleRow.program_id == program.id)):
        if rule.kind == "pin":
            pins.append((rule.learner_id, rule.guide_id))
        elif rule.learner_id in learner_row and rule.guide_id in guide_row:
            forbidden.setdefault(learner_row[rule.learner_id], set()).add(guide_row[rule.guide_id])
    # An earlier pairing of the same two people is never proposed again, pinned or not: it
    # ended for a reason, and a re-match must not hand the learner back to the same guide.
    for p in pairings:
        if p.learner_id in learner_row and p.guide_id in guide_row:
            forbidden.setdefault(learner_row[p.learner_id], set()).add(guide_row[p.guide_id])

    def excluded(rows: NDArray[np.int64]) -> NDArray[np.bool_]:
        out = np.zeros((rows.size, len(guides)), dtype=np.bool_)
        for a, r in enumerate(rows.tolist()):
            cols = forbidden.get(r)
            if cols:
                out[a, list(cols)] = True
        return out

    settings = scoring_settings(program)
    scorer = Scorer(
        lside,
        gside,
        program.weights,
        plugins={n: c for n, c in criteria.items() if n in program.weights},
        settings=settings,
        excluded=excluded,
        excluded_pairs=forbidden,
        mentoring=program.kind == ProgramKind.MENTORING,
        require_common_language=program.require_common_language,
        require_availability_overlap=program.require_availability_overlap,
        chain_both_ways=program.kind in (ProgramKind.REVERSE, ProgramKind.PEER),
    )
    group_used: dict[tuple[int, int], int] = {}
    held = [p for p in pairings if p.status in OPEN and p.guide_id in guide_row]
    dept_of: dict[int, str] = {}
    if held and program.limits.per_guide_per_department is not None:
        dept_of = {
            pid: (dept or "").strip().lower()
            for pid, dept in s.execute(
                select(PersonRow.id, PersonRow.department).where(
                    PersonRow.id.in_({p.learner_id for p in held})
                )
            ).all()
        }
    for p in held if dept_of else []:
        dept = dept_of.get(p.learner_id, "")
        if dept in departments:
            key = (guide_row[p.guide_id], departments[dept])
            group_used[key] = group_used.get(key, 0) + 1
    return Pool(
        program=program,
        people=people,
        learner_ids=[e.person_id for e in learners],
        guide_ids=[e.person_id for e in guides],
        free=free,
        scorer=scorer,
        learner_row=learner_row,
        guide_row=guide_row,
        forbidden=forbidden,
        pins=pins,
        department_code=departments,
        group_used=group_used,
    )
