"""The statistics behind the report, all from scipy.stats (a well-kept, peer-reviewed library).

- Kaplan-Meier retention: ``scipy.stats.ecdf`` on right-censored data, with log-log 95%
  confidence bands (Greenwood's variance).
- Means (rating change): Student's t interval (``scipy.stats.ttest_1samp``).
- Proportions (promotions): Wilson score interval (``scipy.stats.binomtest``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


@dataclass
class Estimate:
    """A figure with its 95% confidence interval and the number of people behind it."""

    value: float | None
    ci: tuple[float, float] | None
    n: int

    def as_dict(self) -> dict[str, object]:
        return {
            "value": None if self.value is None else round(self.value, 4),
            "ci": None if self.ci is None else [round(self.ci[0], 4), round(self.ci[1], 4)],
            "n": self.n,
        }


@dataclass
class Curve:
    """A Kaplan-Meier survival curve: times (days) and the survival with its band."""

    times: list[float]
    survival: list[float]
    low: list[float]
    high: list[float]
    n: int


def _finite(x: float) -> bool:
    return x is not None and math.isfinite(x)


def mean_ci(values: Sequence[float]) -> Estimate:
    """Mean with a t-based 95% interval (no interval below two values)."""
    n = len(values)
    if n == 0:
        return Estimate(None, None, 0)
    arr = np.asarray(values, dtype=float)
    mean = float(arr.mean())
    if n < 2 or float(arr.std()) == 0.0:
        return Estimate(mean, (mean, mean) if n >= 2 else None, n)
    ci = stats.ttest_1samp(arr, 0.0).confidence_interval(CONFIDENCE)
    return Estimate(mean, (float(ci.low), float(ci.high)), n)


def proportion_ci(successes: int, n: int) -> Estimate:
    """A proportion with its Wilson 95% interval."""
    if n == 0:
        return Estimate(None, None, 0)
    ci = stats.binomtest(successes, n).proportion_ci(CONFIDENCE, method="wilson")
    return Estimate(successes / n, (float(ci.low), float(ci.high)), n)


def kaplan_meier(durations: Sequence[float], events: Sequence[bool]) -> Curve | None:
    """Kaplan-Meier survival from follow-up ``durations`` (days) and whether each ended in a departure."""
    n = len(durations)
    if n == 0:
        return None
    d = np.asarray(durations, dtype=float)
    e = np.asarray(events, dtype=bool)
    data = stats.CensoredData(uncensored=d[e], right=d[~e])
    result = stats.ecdf(data)
    sf = result.sf
    times = [0.0, *(float(t) for t in sf.quantiles)]
    surv = [1.0, *(float(p) for p in sf.probabilities)]
    with warnings.catch_warnings():
        # Undefined where the survival is exactly 1 or 0; those points get a degenerate band.
        warnings.simplefilter("ignore", RuntimeWarning)
        band = sf.confidence_interval(CONFIDENCE, method="log-log")
        lows = [1.0, *(float(x) for x in band.low.evaluate(sf.quantiles))]
        highs = [1.0, *(float(x) for x in band.high.evaluate(sf.quantiles))]
    lows = [lo if _finite(lo) else s for lo, s in zip(lows, surv, strict=True)]
    highs = [hi if _finite(hi) else s for hi, s in zip(highs, surv, strict=True)]
    return Curve(times, surv, lows, highs, n)


def survival_at(curve: Curve, durations: Sequence[float], day: float) -> Estimate:
    """The curve's value at ``day`` with its band; None when nobody was followed that long.

    With no departure at all the log-log band is undefined; the exact (Clopper-Pearson)
    interval for "everyone followed to ``day`` stayed" is used instead.
    """
    followed = sum(1 for x in durations if x >= day)
    if followed == 0:
        return Estimate(None, None, curve.n)
    idx = max(i for i, t in enumerate(curve.times) if t <= day)
    value, low, high = curve.survival[idx], curve.low[idx], curve.high[idx]
    if value >= 1.0 and low >= 1.0:
        ci = stats.binomtest(followed, followed).proportion_ci(CONFIDENCE, method="exact")
        low, high = float(ci.low), 1.0
    return Estimate(value, (low, high), curve.n)
