"""Outcome reports give nothing away by differencing: hidden cells stay hidden against totals,
means, the other side of a pairing and the shape of a retention curve."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from coachbridge.reports import build_reports
from coachbridge.reports.suppress import Suppressor
from coachbridge.store import Database
from coachbridge.store.tables import GoalRow

from tests.health.health_world import World, program

NOW = datetime(2026, 6, 1, tzinfo=UTC)
START, END = date(2025, 1, 1), date(2025, 12, 31)
HIDDEN = {"suppressed": True}


def test_hidden_cells_together_reach_the_group_size() -> None:
    cells = Suppressor(5).cells({"Legal": 1, "Sales": 3, "Finance": 20, "Engineering": 30})
    # Legal and Sales are 4 people together: the next smallest goes too, or 54 - 50 = 4.
    assert cells == {"Legal": HIDDEN, "Sales": HIDDEN, "Finance": HIDDEN, "Engineering": 30}
    assert Suppressor(5).cells({"a": 2, "b": 9, "c": 9}) == {"a": HIDDEN, "b": HIDDEN, "c": 9}
    assert Suppressor(5).cells({"a": 5, "b": 9}) == {"a": 5, "b": 9}  # nothing small


def _world(db: Database) -> dict[str, Any]:
    prog = program(start=START, end=END)
    with db.transaction() as s:
        w = World(s, prog, now=NOW)
        guides = [w.person("Guide", level=6, department="Engineering") for _ in range(3)]
        learners = []
        for i in range(12):
            dept = "Sales" if i < 5 else "Support"
            leaves = date(2025, 2, 20) if i == 11 else None  # one departure, day 40
            p = w.person("Lea", department=dept, level=3, hire=date(2020, 1, 1), termination=leaves)
            learners.append(p)
            pairing = w.pair(p, guides[i % 3], made=datetime(2025, 1, 1, tzinfo=UTC))
            # Ten learners met in March, two (only) in April.
            held = w.session(pairing, (NOW - datetime(2025, 3, 10, tzinfo=UTC)).days, "held", seq=1)
            if i < 2:
                w.session(pairing, (NOW - datetime(2025, 4, 10, tzinfo=UTC)).days, "held", seq=2)
            # Sales: one learner rates; Support: all seven do. Two guides rate too.
            if i == 0 or i >= 5:
                w.feedback(held, p, 4 if i in (5, 6) else 5)
            if i in (0, 1):
                w.feedback(held, guides[i % 3], 3)
            s.add(
                GoalRow(
                    owner_id=p.id,
                    pairing_id=pairing.id,
                    program_id=prog.id,
                    title="Lead a review",
                    status="completed" if i == 3 else "open",
                    progress=100 if i == 3 else 0,
                )
            )
    with db.transaction() as s:
        return build_reports(s, [prog], min_group_size=5, now=NOW)[0]


def test_nothing_about_fewer_than_five_can_be_worked_out(db: Database) -> None:
    r = _world(db)
    assert r["participants"] == 12
    # One Sales learner rated: Sales' mean would be their rating.
    by_dept = {row["department"]: row for row in r["by_department"]}
    assert by_dept["Sales"]["participants"] == 5 and by_dept["Sales"]["rating_mean"] == HIDDEN
    assert by_dept["Support"]["rating_mean"] == 4.714
    # Two guides rated: their side is hidden, and so is the learners' side, or the overall
    # mean and n would give the guides' ratings.
    assert r["rating"]["n"] == 10
    assert r["reaction"]["guides"] == HIDDEN and r["reaction"]["learners"] == HIDDEN
    # Some ratings of 3 and of 4 come from fewer than five people: the mean and n would solve
    # any hidden buckets, so the distribution is hidden whole.
    assert r["rating_distribution"] == {str(n): HIDDEN for n in range(1, 6)}
    # April's sessions are two learners'; March's would give them as the total minus March.
    assert [m["held"] for m in r["sessions_over_time"]] == [HIDDEN, HIDDEN]
    # One goal completed is one person.
    goals = r["behaviour"]["goals"]
    assert goals["created"] == 12 and goals["completed"] == HIDDEN
    # The curve: quarterly points, none before 12 months showing the single departure on day
    # 40; the 12-month point is the retention table's own figure, never contradicted.
    curve = r["retention_curves"]["participants"]
    assert curve["n"] == 12
    assert all(day % 91 == 0 or day == 365 for day in curve["days"])
    assert set(curve["survival"][:-1]) == {1.0}
    table = r["retention_12m"]["participants"]["value"]
    if table is not None:
        assert curve["days"][-1] == 365.0 and curve["survival"][-1] == table


def test_a_curve_shows_departures_in_fives(db: Database) -> None:
    prog = program(start=START, end=END)
    with db.transaction() as s:
        w = World(s, prog, now=NOW)
        guide = w.person("Guide", level=6)
        for i in range(20):
            # Five leave in the second month, one in the fourth.
            leaves = START + timedelta(days=45) if i < 5 else None
            leaves = START + timedelta(days=100) if i == 5 else leaves
            p = w.person("Lea", level=3, hire=date(2020, 1, 1), termination=leaves)
            w.pair(p, guide, made=datetime(2025, 1, 1, tzinfo=UTC))
    with db.transaction() as s:
        r = build_reports(s, [prog], min_group_size=5, now=NOW)[0]
    curve = r["retention_curves"]["participants"]
    points = dict(zip(curve["days"], curve["survival"], strict=True))
    assert points[0.0] == 1.0 and points[91.0] == 0.75  # five of twenty: shown
    # The lone departure's quarters are left out; the curve still reaches 12 months, where it
    # shows the retention table's figure (which counts that departure too).
    assert 182.0 not in points and 273.0 not in points
    assert points[365.0] == r["retention_12m"]["participants"]["value"] == 0.7


def test_the_chart_reaches_the_tables_12_month_value(db: Database) -> None:
    """Fewer departures than min_group_size in the whole year (the demo's case): the curve is
    not cut at the first small step; its last point is the 12-month value of the table."""
    from coachbridge.reports.charts import retention_curves

    prog = program(start=START, end=END)
    with db.transaction() as s:
        w = World(s, prog, now=NOW)
        guide = w.person("Guide", level=6)
        for i in range(20):
            days = {0: 45, 1: 150, 2: 300}.get(i)
            leaves = START + timedelta(days=days) if days is not None else None
            p = w.person("Lea", level=3, hire=date(2020, 1, 1), termination=leaves)
            w.pair(p, guide, made=datetime(2025, 1, 1, tzinfo=UTC))
    with db.transaction() as s:
        r = build_reports(s, [prog], min_group_size=5, now=NOW)[0]
    curve = r["retention_curves"]["participants"]
    table = r["retention_12m"]["participants"]
    assert table["value"] == 0.85 and table["n"] == 20
    assert curve["days"][-1] == 365.0
    assert curve["survival"][-1] == table["value"]
    # Before 12 months no point shows any of the three departures.
    assert set(curve["survival"][:-1]) == {1.0}
    svg = retention_curves(r["retention_curves"])
    assert svg is not None and "Retention over 12 months" in svg
