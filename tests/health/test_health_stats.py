"""Statistics and suppression helpers, checked against hand-computed values."""

from __future__ import annotations

import pytest
from coachbridge.reports.comparison import rating_band, tenure_band
from coachbridge.reports.stats import kaplan_meier, mean_ci, proportion_ci, survival_at
from coachbridge.reports.suppress import Suppressor


def test_kaplan_meier_by_hand() -> None:
    # Departures at day 100 and 200, two people followed a full year, one censored at day 150.
    durations = [100, 150, 200, 365, 365]
    events = [True, False, True, False, False]
    curve = kaplan_meier(durations, events)
    assert curve is not None
    # S(100) = 4/5; censoring at 150 leaves 3 at risk; S(200) = 4/5 * 2/3 = 8/15.
    est = survival_at(curve, durations, 365)
    assert est.value == pytest.approx(8 / 15)
    assert est.ci is not None and est.ci[0] < 8 / 15 < est.ci[1] and est.n == 5
    assert survival_at(curve, durations, 150).value == pytest.approx(4 / 5)


def test_kaplan_meier_without_departures_and_short_follow_up() -> None:
    durations = [365.0] * 10
    curve = kaplan_meier(durations, [False] * 10)
    assert curve is not None
    est = survival_at(curve, durations, 365)
    assert est.value == 1.0 and est.ci is not None and est.ci[1] == 1.0 and 0.6 < est.ci[0] < 0.8
    short = [90.0] * 10
    assert survival_at(kaplan_meier(short, [False] * 10), short, 365).value is None
    assert kaplan_meier([], []) is None


def test_mean_and_proportion_intervals() -> None:
    est = mean_ci([0.25, 0.5, 0.25, 0.5])
    assert est.value == pytest.approx(0.375) and est.ci[0] < 0.375 < est.ci[1]
    # t(0.975, 3) = 3.182; sd = 0.1443; half-width = 3.182 * 0.1443 / 2 = 0.2297
    assert est.ci[1] - 0.375 == pytest.approx(0.2297, abs=1e-3)
    assert mean_ci([]).value is None and mean_ci([0.1]).ci is None
    p = proportion_ci(5, 20)
    assert p.value == 0.25 and p.ci[0] == pytest.approx(0.1119, abs=1e-3)  # Wilson


def test_suppression_cells() -> None:
    sup = Suppressor(5)
    assert sup.count(0) == 0 and sup.count(3) == {"suppressed": True} and sup.count(5) == 5
    cells = sup.cells({"a": 40, "b": 2, "c": 9, "d": 30})
    # b is small; c is hidden too, so a + c + d minus the total cannot reveal b.
    assert cells == {"a": 40, "b": {"suppressed": True}, "c": {"suppressed": True}, "d": 30}
    assert sup.cells({"a": 40, "b": 2, "c": 3}) == {
        "a": 40,
        "b": {"suppressed": True},
        "c": {"suppressed": True},
    }


def test_bands() -> None:
    from datetime import date

    assert tenure_band(None, date(2025, 1, 1)) == "unknown"
    assert tenure_band(date(2024, 6, 1), date(2025, 1, 1)) == "<1"
    assert tenure_band(date(2010, 1, 1), date(2025, 1, 1)) == "10+"
    assert [rating_band(x) for x in (None, 0.0, 0.5, 0.75)] == ["none", "low", "middle", "high"]
