"""Robust statistics for forecasts and anomalies, in pure Python.

* Trend: the Theil-Sen slope (the median of the slopes between every pair of points)
  with Sen's (1968) distribution-free confidence interval, read from the order
  statistics of those pair slopes with the variance of Kendall's S. Why: usage
  histories are short, irregularly spaced and carry jumps (a bulk load, a cleanup); a
  least-squares line is dragged by one jump, Theil-Sen ignores up to ~29 % of wild
  points, and Sen's interval needs no normality and no resampling (so the answer is
  the same every time, unlike a bootstrap). The pair slopes of a few hundred points
  (tens of thousands of pairs) cost milliseconds; numpy would not earn its import.
* Anomalies: the robust z-score of Iglewicz and Hoaglin (1993),
  ``0.6745 (x - median) / MAD``, flagged past 3.5; where more than half the values
  are equal (MAD 0), the mean absolute deviation scaled by 1.2533 stands in. The
  spread (``MAD / 0.6745``, a standard deviation's equivalent) has a floor: 1 % of the
  median's magnitude, and 1 when every value is a whole number (counts such as rows
  added, whose resolution is one). Without it a history of nine 0s and one 1 (MAD 0,
  mean deviation 0.1) scored about 8 and raised the alarm for a single row, and
  1,000 rows/s nine times and 999 once was a "slump"; with it a value must stray more
  than 3.5 units and 3.5 % of the median, which a real jump does.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ANOMALY_THRESHOLD", "Trend", "robust_z_scores", "spread_floor", "theil_sen"]

#: |robust z| past which a value is an anomaly (Iglewicz and Hoaglin's recommendation).
ANOMALY_THRESHOLD = 3.5


@dataclass(frozen=True)
class Trend:
    """A robust line ``y = intercept + slope * x`` with a confidence band on the slope."""

    slope: float
    intercept: float
    slope_low: float
    slope_high: float
    points: int
    confidence: float

    def at(self, x: float) -> float:
        """The line's value at ``x``."""
        return self.intercept + self.slope * x


def theil_sen(xs: Sequence[float], ys: Sequence[float], *, confidence: float = 0.9) -> Trend | None:
    """The Theil-Sen line through the points and Sen's ``confidence`` interval of its
    slope; ``None`` with fewer than 3 points or no two at different ``x``."""
    if len(xs) != len(ys):
        raise ValueError("xs and ys differ in length")
    n = len(xs)
    slopes = sorted(
        (ys[j] - ys[i]) / (xs[j] - xs[i])
        for i in range(n)
        for j in range(i + 1, n)
        if xs[j] != xs[i]
    )
    if n < 3 or not slopes:
        return None
    slope = statistics.median(slopes)
    intercept = statistics.median(y - slope * x for x, y in zip(xs, ys, strict=True))
    # Sen's interval: C = z * sqrt(Var S), Var S = n(n-1)(2n+5)/18 (Kendall's S, no ties);
    # the bounds are the (N-C)/2-th and ((N+C)/2 + 1)-th of the N ordered pair slopes.
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2)
    c = z * math.sqrt(n * (n - 1) * (2 * n + 5) / 18)
    count = len(slopes)
    lower = max(math.floor((count - c) / 2) - 1, 0)
    upper = min(math.ceil((count + c) / 2), count - 1)
    return Trend(slope, intercept, slopes[lower], slopes[upper], n, confidence)


def robust_z_scores(values: Sequence[float]) -> list[float]:
    """Each value's robust z-score against all of them (0 where they do not spread);
    the spread is at least :func:`spread_floor` of the values."""
    if not values:
        return []
    middle = statistics.median(values)
    deviations = [abs(v - middle) for v in values]
    mad = statistics.median(deviations)
    # A standard deviation's equivalent: MAD / 0.6745, or the scaled mean deviation.
    spread = mad / 0.6745 if mad > 0 else 1.253314 * statistics.fmean(deviations)
    if spread == 0:
        return [0.0 for _ in values]
    spread = max(spread, spread_floor(values, middle))
    return [(v - middle) / spread for v in values]


def spread_floor(values: Sequence[float], middle: float) -> float:
    """The least spread a z-score is measured against: 1 % of the median's magnitude,
    and the resolution 1 when every value is a whole number (a count)."""
    resolution = 1.0 if all(float(v).is_integer() for v in values) else 0.0
    return max(resolution, 0.01 * abs(middle))
