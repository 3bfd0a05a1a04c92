"""Outcome measures of one program, at Kirkpatrick's levels, with small groups suppressed.

- Reaction: ratings from both sides, response rate.
- Behaviour: sessions planned, held, missed; time to first session; goals.
- Results (from the HRIS): review-rating change, 12-month retention, promotions, each for the
  participants (the program's matched learners) beside a matched comparison group.

Index date: the program's ``start``; for a rolling program (no ``start``), each participant's
first held session, and for the comparison group the median of those dates. Rating change is
between the last review completed before the index date and the first completed after the
program's end (a rolling program: the index date plus ``duration_weeks``).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from coachbridge.domain.program import Program
from coachbridge.reports.comparison import match, start_of
from coachbridge.reports.data import MATCHED, Company, ProgramData
from coachbridge.reports.stats import (
    Curve,
    Estimate,
    kaplan_meier,
    mean_ci,
    proportion_ci,
    survival_at,
)
from coachbridge.reports.suppress import SUPPRESSED, Suppressor, is_suppressed

YEAR_DAYS = 365
#: Below this many people on either side, the report says the groups are too small to conclude.
CONCLUSIVE_N = 30


@dataclass
class Group:
    """People with their index dates (and, for rating change, the end of their window)."""

    index: dict[int, date]
    end: dict[int, date]


def _program_window(program: Program, data: ProgramData) -> tuple[date | None, date | None]:
    if program.start is not None:
        end = program.end or program.start + timedelta(weeks=program.duration_weeks)
        return program.start, end
    return None, None


def _participant_group(program: Program, data: ProgramData) -> tuple[Group, set[int]]:
    """Participants (matched learners) with their index dates; and every matched learner."""
    learners: dict[int, list[Any]] = defaultdict(list)
    for p in data.pairings.values():
        if p.status in MATCHED:
            learners[p.learner_id].append(p)
    start, end = _program_window(program, data)
    index: dict[int, date] = {}
    ends: dict[int, date] = {}
    for pid, pairings in learners.items():
        if start is not None and end is not None:
            index[pid], ends[pid] = start, end
            continue
        firsts = [p.first_held for p in pairings if p.first_held is not None]
        if firsts:  # rolling: from the first session of the person's first pairing
            day = min(firsts).date()
            index[pid] = day
            ends[pid] = day + timedelta(weeks=program.duration_weeks)
    return Group(index, ends), set(learners)


def _retention(
    company: Company, group: Group, today: date
) -> tuple[Curve | None, Estimate, list[float], float]:
    """The group's survival curve, its 12-month estimate, the days departures fell on and the
    longest follow-up (days)."""
    durations: list[float] = []
    events: list[bool] = []
    for pid, day in group.index.items():
        if not company.employed_on(pid, day) or day >= today:
            continue
        term = company.people[pid].termination_date
        horizon = min((today - day).days, YEAR_DAYS)
        if term is not None and term <= today and (term - day).days <= YEAR_DAYS:
            durations.append(float((term - day).days))
            events.append(True)
        else:
            durations.append(float(horizon))
            events.append(False)
    curve = kaplan_meier(durations, events)
    departures = [d for d, e in zip(durations, events, strict=True) if e]
    if curve is None:
        return None, Estimate(None, None, 0), departures, 0.0
    return curve, survival_at(curve, durations, YEAR_DAYS), departures, max(durations)


def _rating_change(company: Company, group: Group, now: datetime) -> Estimate:
    changes = []
    for pid, day in group.index.items():
        before = company.review_before(pid, start_of(day))
        end = start_of(group.end[pid])
        if before is None or end > now:
            continue
        after = company.review_after(pid, end)
        if after is not None:
            changes.append(after - before)
    return mean_ci(changes)


def _promotions(company: Company, group: Group, today: date) -> Estimate:
    n = promoted = 0
    for pid, day in group.index.items():
        if not company.employed_on(pid, day) or day >= today:
            continue
        n += 1
        if company.promoted(pid, day, min(day + timedelta(days=YEAR_DAYS), today)):
            promoted += 1
    return proportion_ci(promoted, n)


def _side(est: Estimate, sup: Suppressor) -> dict[str, Any]:
    if sup.small(est.n):
        return SUPPRESSED.copy()
    return est.as_dict()  # n == 0: shown as "no value yet", it is about nobody


def _conclusion(p: dict[str, Any], c: dict[str, Any], k: int, what: str) -> str:
    if is_suppressed(p) or is_suppressed(c):
        return (
            f"Too few people to report {what} (fewer than {k} in a group): the figure is "
            "suppressed and nothing can be concluded."
        )
    if p["value"] is None or c["value"] is None:
        return f"Not enough follow-up yet to measure {what}."
    if p["n"] < CONCLUSIVE_N or c["n"] < CONCLUSIVE_N:
        return (
            f"The groups are too small to conclude anything about {what} "
            f"({p['n']} participants, {c['n']} in the comparison group)."
        )
    if p["ci"] is None or c["ci"] is None:
        return f"No confidence interval for {what}: nothing can be concluded."
    if p["ci"][0] > c["ci"][1]:
        return f"Participants' {what} is higher than the comparison group's (95% intervals apart)."
    if p["ci"][1] < c["ci"][0]:
        return f"Participants' {what} is lower than the comparison group's (95% intervals apart)."
    return f"No clear difference in {what}: the 95% intervals overlap."


def _result(name: str, p: Estimate, c: Estimate, sup: Suppressor) -> dict[str, Any]:
    ps, cs = _side(p, sup), _side(c, sup)
    return {"participants": ps, "comparison": cs, "conclusion": _conclusion(ps, cs, sup.k, name)}


#: Days between the points of a published retention curve (quarters of the year).
CURVE_STEP_DAYS = 91


def _curve_dict(
    curve: Curve | None, departures: list[float], sup: Suppressor, followed: float = YEAR_DAYS
) -> dict[str, Any]:
    """The curve at quarterly points, up to 12 months (or the longest follow-up).

    Each step of a survival curve is someone leaving on that day, so a quarter's point is shown
    only when no departure, or ``min_group_size`` or more, lie between it and the point shown
    before; the 12-month point is always shown, since the retention table beside the chart
    publishes that very value. The curve therefore reaches the table's figure coarsely instead
    of stopping at the first small step."""
    if curve is None or curve.n < sup.k:
        return SUPPRESSED.copy()
    end = int(min(followed, YEAR_DAYS))
    points = [0]
    for day in [*range(CURVE_STEP_DAYS, end, CURVE_STEP_DAYS), end]:
        if day <= points[-1]:
            continue
        since = sum(1 for d in departures if points[-1] < d <= day)
        if since == 0 or not sup.small(since) or day == YEAR_DAYS:
            points.append(day)
    index = [max(i for i, t in enumerate(curve.times) if t <= day) for day in points]
    return {
        "n": curve.n,
        "days": [float(day) for day in points],
        "survival": [round(curve.survival[i], 4) for i in index],
        "low": [round(curve.low[i], 4) for i in index],
        "high": [round(curve.high[i], 4) for i in index],
    }


def _share(hits: int, n: int, sup: Suppressor) -> Any:
    """A share with its n, or the marker when fewer than ``min_group_size`` are behind it."""
    if n == 0:
        return {"share": None, "n": 0}
    return sup.figure({"share": round(hits / n, 3), "n": n}, n)


def _choice(program: Program, data: ProgramData, sup: Suppressor) -> dict[str, Any] | None:
    """Mutual choice before pairings start: time to match, offers and requests accepted, first
    offers chosen, decline reasons counted. Aggregates only, each suppressed below k; None for
    a program that never made an offer or request."""
    if program.choice == "none" and not data.offers:
        return None
    days = [
        (p.activated_at - data.enrolled_at[p.learner_id]).total_seconds() / 86400
        for p in data.pairings.values()
        if p.activated_at is not None
        and p.learner_id in data.enrolled_at
        and p.activated_at >= data.enrolled_at[p.learner_id]
    ]
    rounds: dict[int, list[tuple[int, str, str | None]]] = defaultdict(list)
    requests = []
    for kind, rank, round_id, status, _reason, by, _learner, _guide in data.offers:
        if kind == "offer" and round_id is not None:
            rounds[round_id].append((rank, status, by))
        elif kind == "request" and status != "open":
            requests.append(status)
    closed = [r for r in rounds.values() if all(st != "open" for _rk, st, _by in r)]
    # A round is accepted when the learner (or HR for them) picked an option; a round that ran
    # out of time took the held guide without a choice.
    picked = [rk for r in closed for rk, st, by in r if st == "accepted" and by != "daily"]
    # Who gave each decline: the guide of a request, the learner of an offer. A reason is
    # shown when at least k people gave it: one guide's "on leave until June", given to
    # several learners, is still one person's words.
    givers: dict[str, list[int]] = defaultdict(list)
    for kind, _r, _id, status, reason, _by, learner, guide in data.offers:
        if status == "declined" and reason:
            givers[" ".join(reason.lower().split())].append(guide if kind == "request" else learner)
    shown: dict[str, Any] = {
        r: len(who) for r, who in sorted(givers.items()) if not sup.small(len(set(who)))
    }
    rest = [p for r, who in givers.items() if r not in shown for p in who]
    if rest:
        # The reasons too rare to show, together; hidden too when fewer than k people gave them.
        shown["(other reasons)"] = sup.count(len(rest), people=len(set(rest)))
    return {
        "mode": program.choice.value if hasattr(program.choice, "value") else str(program.choice),
        "days_to_match": sup.figure(
            {"median": round(statistics.median(days), 1), "n": len(days)} if days else None,
            len(days),
        )
        if days
        else {"median": None, "n": 0},
        "offers_accepted": _share(len(picked), len(closed), sup),
        "chose_first_offer": _share(sum(1 for rk in picked if rk == 1), len(picked), sup),
        "requests_accepted": _share(
            sum(1 for st in requests if st == "accepted"), len(requests), sup
        ),
        "decline_reasons": shown,
    }


def _median_reference(group: Group) -> date | None:
    if not group.index:
        return None
    days = sorted(d.toordinal() for d in group.index.values())
    return date.fromordinal(days[len(days) // 2])


def _attention(
    program: Program, data: ProgramData, now: datetime, sup: Suppressor
) -> dict[str, Any]:
    first_days = int(program.settings.get("first_session_days", 14))
    stall = timedelta(days=program.cadence_days * int(program.settings.get("stall_periods", 2)))
    counts = Counter()
    for p in data.pairings.values():
        if p.status in ("active", "paused") and p.flag:
            counts["flagged"] += 1
        if p.status == "paused":
            counts["paused"] += 1
        if p.status == "active":
            made = p.activated_at or p.created_at
            if p.first_held is None and now - made >= timedelta(days=first_days):
                counts["no_first_session"] += 1
            elif p.last_held is not None and now - p.last_held >= stall:
                counts["stalled"] += 1
    keys = ("flagged", "paused", "no_first_session", "stalled")
    return {key: sup.count(counts[key]) for key in keys}


def _breakdown(
    label: str,
    values: dict[int, str | None],
    data: ProgramData,
    learners: set[int],
    sup: Suppressor,
) -> list[dict[str, Any]]:
    """Participants, held sessions and mean rating per category; small cells suppressed."""
    people: Counter[str] = Counter()
    held: Counter[str] = Counter()
    ratings: dict[str, list[int]] = defaultdict(list)
    raters: dict[str, set[int]] = defaultdict(set)
    for pid in learners:
        people[values.get(pid) or "(unknown)"] += 1
    for p in data.pairings.values():
        if p.learner_id in learners:
            held[values.get(p.learner_id) or "(unknown)"] += p.held
    learner_of = {p.id: p.learner_id for p in data.pairings.values()}
    for pairing_id, who, rating in data.feedback:
        lid = learner_of.get(pairing_id)
        if lid in learners:
            ratings[values.get(lid) or "(unknown)"].append(rating)
            raters[values.get(lid) or "(unknown)"].add(who)
    shown = sup.cells(dict(people))
    out = []
    for key in sorted(people):
        hidden = is_suppressed(shown[key])
        r = ratings.get(key, [])
        out.append(
            {
                label: key,
                "participants": shown[key],
                "sessions_held": SUPPRESSED.copy() if hidden else held[key],
                # A mean of fewer than k people's ratings is theirs, however big the cell.
                "rating_mean": SUPPRESSED.copy()
                if hidden or sup.small(len(raters.get(key, ())))
                else (round(statistics.fmean(r), 3) if r else None),
            }
        )
    return out


def program_report(
    company: Company,
    data: ProgramData,
    program: Program,
    *,
    min_group_size: int,
    now: datetime,
) -> dict[str, Any]:
    """Every figure of one program as a JSON-ready dict (suppressed where groups are small)."""
    sup = Suppressor(min_group_size)
    today = now.date()
    group, learners = _participant_group(program, data)
    matched_pairings = [p for p in data.pairings.values() if p.status in MATCHED]
    n_participants = len(learners)
    guides = {p.guide_id for p in matched_pairings}
    notes: list[str] = []
    too_small = n_participants < sup.k
    if too_small:
        notes.append(
            f"This program has fewer than {sup.k} participants ([reports] min_group_size): "
            "its figures are suppressed to protect the people in it."
        )

    def fig(value: Any, people: int = n_participants) -> Any:
        return SUPPRESSED.copy() if too_small else sup.figure(value, people)

    planned = sum(p.planned for p in data.pairings.values())
    held = sum(p.held for p in data.pairings.values())
    missed = sum(p.missed for p in data.pairings.values())
    all_ratings = [r for _pid, _who, r in data.feedback]
    raters = {who for _pid, who, _r in data.feedback}
    learner_of = {p.id: p.learner_id for p in data.pairings.values()}
    learner_ratings = [r for pid, who, r in data.feedback if learner_of.get(pid) == who]
    learner_raters = {who for pid, who, _r in data.feedback if learner_of.get(pid) == who}
    guide_ratings = [r for pid, who, r in data.feedback if learner_of.get(pid) != who]
    guide_raters = {who for pid, who, _r in data.feedback if learner_of.get(pid) != who}

    def rating_obj(values: list[int], people: set[int]) -> Any:
        if too_small or sup.small(len(people)):
            return SUPPRESSED.copy()
        if not values:
            return {"mean": None, "n": 0}
        return {"mean": round(statistics.fmean(values), 3), "n": len(values)}

    waits = [
        (p.first_held - (p.activated_at or p.created_at)).total_seconds() / 86400
        for p in matched_pairings
        if p.first_held is not None
    ]
    goals_people = {owner for owner, _progress, _status in data.goals}
    goals = {
        "created": len(data.goals),
        "progressed": sum(
            1
            for _o, progress, st in data.goals
            if progress > 0 or st in ("in_progress", "completed")
        ),
        "completed": sum(1 for _o, _p, st in data.goals if st == "completed"),
    }

    # Results, participants beside the comparison group.
    reference = program.start or _median_reference(group)
    if reference is not None and not too_small:
        excluded = data.ever_enrolled | learners | guides
        comp = match(
            company,
            list(group.index.items()),
            reference,
            excluded,
            seed=f"coachbridge:{program.id}",
        )
        comp_end = (program.end if program.start and program.end else None) or (
            reference + timedelta(weeks=program.duration_weeks)
        )
        span = comp_end - reference
        comparison = Group(dict(comp.index), {pid: d + span for pid, d in comp.index.items()})
        if comp.unmatched_participants:
            shown = sup.count(comp.unmatched_participants)
            many = "Some" if is_suppressed(shown) else str(shown)
            notes.append(
                f"{many} participant(s) had nobody comparable (same department, level, tenure "
                "band and prior rating) in the comparison pool."
            )
    else:
        comparison = Group({}, {})
        comp = None
    p_curve, p_ret, p_left, p_followed = _retention(company, group, today)
    c_curve, c_ret, c_left, c_followed = _retention(company, comparison, today)
    retention = _result("12-month retention", p_ret, c_ret, sup)
    rating_change = _result(
        "review rating change",
        _rating_change(company, group, now),
        _rating_change(company, comparison, now),
        sup,
    )
    promotions = _result(
        "promotion rate",
        _promotions(company, group, today),
        _promotions(company, comparison, today),
        sup,
    )
    if too_small:
        for result in (retention, rating_change, promotions):
            result["participants"] = SUPPRESSED.copy()
            result["comparison"] = SUPPRESSED.copy()
            result["conclusion"] = _conclusion(SUPPRESSED, SUPPRESSED, sup.k, "this")

    # Sessions held per month, each month shown only when enough learners took part.
    per_month: dict[str, int] = Counter()
    month_people: dict[str, set[int]] = defaultdict(set)
    for pairing_id, start in data.held_sessions:
        key = f"{start:%Y-%m}"
        per_month[key] += 1
        month_people[key].add(learner_of[pairing_id])
    # Months are cells of one breakdown: a hidden month is not the total minus the others.
    month_cells = sup.cells({m: len(month_people[m]) for m in per_month})
    over_time = [
        {
            "month": m,
            "held": SUPPRESSED.copy() if is_suppressed(month_cells[m]) else fig(per_month[m]),
        }
        for m in sorted(per_month)
    ]
    dist_counts = Counter(all_ratings)
    dist_people: dict[int, set[int]] = defaultdict(set)
    for _pid, who, r in data.feedback:
        dist_people[r].add(who)
    distribution = sup.cells({str(r): len(dist_people[r]) for r in range(1, 6)})
    # With the mean and n shown, any hidden buckets could be solved from the shown ones: the
    # distribution is shown whole or not at all.
    whole = not too_small and not any(is_suppressed(v) for v in distribution.values())
    rating_distribution = {
        str(r): dist_counts.get(r, 0) if whole else SUPPRESSED.copy() for r in range(1, 6)
    }

    first_session = {p.learner_id for p in matched_pairings if p.first_held is not None}
    active = {p.learner_id for p in matched_pairings if p.status == "active"}
    completed = {p.learner_id for p in matched_pairings if p.status == "completed"}
    enrolled = data.enrolled_learners | learners
    funnel_counts = {
        "enrolled": len(enrolled),
        "matched": len(learners),
        "first_session": len(first_session),
        "active": len(active),
        "completed": len(completed),
    }
    funnel = {
        k: (SUPPRESSED.copy() if too_small else sup.count(v)) for k, v in funnel_counts.items()
    }

    index_day = {pid: day for pid, day in group.index.items()}
    departments = {
        pid: company.department_on(pid, index_day.get(pid, today))
        for pid in learners
        if pid in company.people
    }
    locations = {pid: company.people[pid].location for pid in learners if pid in company.people}

    reaction = {
        "learners": rating_obj(learner_ratings, learner_raters),
        "guides": rating_obj(guide_ratings, guide_raters),
    }
    if any(is_suppressed(v) for v in reaction.values()):
        # The overall rating and one side would give the other side: both sides go.
        reaction = {side: SUPPRESSED.copy() for side in reaction}
    unmatched = sup.count(comp.unmatched_participants) if comp is not None else None

    report: dict[str, Any] = {
        "program": program.id,
        "name": program.name,
        "kind": program.kind.value,
        "owner": program.owner,
        "start": program.start,
        "end": _program_window(program, data)[1],
        "rolling": program.start is None,
        "generated_at": now,
        "min_group_size": sup.k,
        "participants": fig(n_participants),
        "guides": fig(len(guides), len(guides)),
        "pairings": fig(len(data.pairings)),
        "sessions": {"planned": fig(planned), "held": fig(held), "missed": fig(missed)},
        "rating": rating_obj(all_ratings, raters),
        "reaction": {
            **reaction,
            "response_rate": fig(round(len(all_ratings) / (2 * held), 3) if held else None),
        },
        "behaviour": {
            "sessions_per_pairing": fig(
                round(held / len(matched_pairings), 2) if matched_pairings else None
            ),
            "days_to_first_session": fig(
                {
                    "median": round(statistics.median(waits), 1),
                    "n": len(waits),
                }
                if waits
                else None,
                len(waits) if waits else n_participants,
            ),
            # A handful of goals completed is a handful of people: counts below k are hidden.
            "goals": {
                k: fig(v if k == "created" else sup.count(v), len(goals_people))
                for k, v in goals.items()
            },
        },
        "retention_12m": retention,
        "rating_change": rating_change,
        "promotions": promotions,
        "comparison_group": SUPPRESSED.copy()
        if too_small or comp is None
        else {
            "matched_on": ["department", "level", "tenure_band", "prior_rating_band"],
            "reference_date": reference,
            "n": sup.count(len(comp.people)),
            # Participants minus matched would give a hidden unmatched count.
            "matched_participants": SUPPRESSED.copy()
            if is_suppressed(unmatched)
            else sup.count(comp.matched_participants),
            "unmatched_participants": unmatched,
        },
        "funnel": funnel,
        "sessions_over_time": over_time,
        "rating_distribution": rating_distribution,
        "retention_curves": {
            "participants": SUPPRESSED.copy()
            if too_small
            else _curve_dict(p_curve, p_left, sup, p_followed),
            "comparison": SUPPRESSED.copy()
            if too_small
            else _curve_dict(c_curve, c_left, sup, c_followed),
        },
        "attention": {
            k: SUPPRESSED.copy() for k in ("flagged", "paused", "no_first_session", "stalled")
        }
        if too_small
        else _attention(program, data, now, sup),
        "by_department": []
        if too_small
        else _breakdown("department", departments, data, learners, sup),
        "by_location": [] if too_small else _breakdown("location", locations, data, learners, sup),
        "notes": notes,
    }
    choice = _choice(program, data, sup)
    if choice is not None:
        report["choice"] = (
            {k: SUPPRESSED.copy() for k in choice if k != "mode"} | {"mode": choice["mode"]}
            if too_small
            else choice
        )
    return report
