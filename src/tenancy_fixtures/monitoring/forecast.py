"""Predictive maintenance: days until each limit is reached, and anomalies in loads.

From a tenant's usage snapshots, each counted limit (users, workspaces, storage...) is
fitted with a Theil-Sen trend (see :mod:`.statistics` for the method and why); the
days to the limit are ``(maximum - level now) / slope``, with a band from Sen's
confidence interval of the slope, each bound a line through the fit at the median
time (the steeper slope gives the earliest day, the shallower the latest, unbounded
when it is not growing). Anomalies are robust
z-scores against the tenant's own history: load throughput (rows/s) and duration
(seconds) of the loads that wrote rows, and growth (data rows added between
consecutive snapshots).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import pairwise
from typing import Any

from tenancy_fixtures.monitoring.statistics import (
    ANOMALY_THRESHOLD,
    robust_z_scores,
    theil_sen,
)
from tenancy_fixtures.store.usage_ledger import RunPerformance, UsageSnapshot

__all__ = [
    "ANOMALY_MIN_POINTS",
    "Anomaly",
    "LimitForecast",
    "TenantForecast",
    "find_anomalies",
    "forecast_limit",
    "forecast_tenant",
]

#: History a metric needs before a value of it can be called an anomaly.
ANOMALY_MIN_POINTS = 8
_DAY = 86_400.0


@dataclass(frozen=True)
class LimitForecast:
    """When one limit of one tenant will be reached, if its trend holds.

    ``days_to_limit`` is ``None`` when usage is not growing (never), 0 when it is
    already there; ``days_earliest``/``days_latest`` bound it at ``confidence``.
    """

    tenant_id: str
    limit: str
    value: int
    maximum: int
    points: int
    slope_per_day: float | None = None
    slope_low: float | None = None
    slope_high: float | None = None
    days_to_limit: float | None = None
    days_earliest: float | None = None
    days_latest: float | None = None
    confidence: float = 0.9
    method: str = "theil-sen, Sen's interval"
    #: The trend's value at the newest snapshot (the level ``days_to_limit`` grows from).
    level: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""

        def rounded(value: float | None) -> float | None:
            return round(value, 3) if value is not None else None

        return {
            "tenant_id": self.tenant_id,
            "limit": self.limit,
            "value": self.value,
            "maximum": self.maximum,
            "points": self.points,
            "slope_per_day": rounded(self.slope_per_day),
            "slope_band": [rounded(self.slope_low), rounded(self.slope_high)],
            "days_to_limit": rounded(self.days_to_limit),
            "days_band": [rounded(self.days_earliest), rounded(self.days_latest)],
            "confidence": self.confidence,
            "method": self.method,
            "level": rounded(self.level),
        }


@dataclass(frozen=True)
class Anomaly:
    """A value of a metric far from the tenant's own history."""

    tenant_id: str
    metric: str
    at: datetime
    value: float
    median: float
    score: float
    latest: bool = False

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "tenant_id": self.tenant_id,
            "metric": self.metric,
            "at": self.at.isoformat(),
            "value": round(self.value, 3),
            "median": round(self.median, 3),
            "score": round(self.score, 2),
            "latest": self.latest,
        }


@dataclass(frozen=True)
class TenantForecast:
    """A tenant's limit forecasts and the anomalies in its history."""

    tenant_id: str
    limits: tuple[LimitForecast, ...]
    anomalies: tuple[Anomaly, ...] = ()
    #: Per metric looked at: whether its latest value is an anomaly.
    latest: Mapping[str, bool] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "tenant_id": self.tenant_id,
            "limits": [f.as_dict() for f in self.limits],
            "anomalies": [a.as_dict() for a in self.anomalies],
            "latest_anomalous": dict(self.latest),
        }


def forecast_limit(
    tenant_id: str,
    limit: str,
    maximum: int,
    times: Sequence[datetime],
    values: Sequence[int],
    *,
    confidence: float = 0.9,
) -> LimitForecast:
    """The forecast of one limit from its values at ``times`` (oldest first)."""
    value = values[-1] if values else 0
    there = 0.0 if values and value >= maximum else None
    base = LimitForecast(tenant_id, limit, value, maximum, len(values), confidence=confidence)
    base = replace(base, days_to_limit=there, days_earliest=there, days_latest=there)
    if not values:
        return base
    start = times[0]
    xs = [(t - start).total_seconds() / _DAY for t in times]
    trend = theil_sen(xs, [float(v) for v in values], confidence=confidence)
    if trend is None:
        return base  # too few snapshots for a trend; a limit already reached still is
    # Every line of the band pivots on the fit at the median time, so the band carries
    # the uncertainty of the level now as well as of the slope.
    pivot = statistics.median(xs)
    anchor = trend.at(pivot)
    level = trend.at(xs[-1])

    def days(slope: float) -> float | None:
        if there is not None:
            return there
        if slope <= 0:
            return None
        if level >= maximum:
            # The fit passes the limit the usage has not reached (it dropped after a
            # cleanup, say): from the usage as it is, at the trend's pace.
            return (maximum - value) / slope
        return max((maximum - anchor) / slope - (xs[-1] - pivot), 0.0)

    return LimitForecast(
        tenant_id,
        limit,
        value,
        maximum,
        trend.points,
        trend.slope,
        trend.slope_low,
        trend.slope_high,
        days(trend.slope),
        days(trend.slope_high),
        days(trend.slope_low),
        confidence,
        level=level,
    )


def find_anomalies(
    tenant_id: str,
    metric: str,
    times: Sequence[datetime],
    values: Sequence[float],
    *,
    threshold: float = ANOMALY_THRESHOLD,
) -> list[Anomaly]:
    """Values of ``metric`` whose robust z-score passes ``threshold`` (none with fewer
    than :data:`ANOMALY_MIN_POINTS` values)."""
    if len(values) < ANOMALY_MIN_POINTS:
        return []
    ordered = sorted(values)
    middle = (ordered[(len(ordered) - 1) // 2] + ordered[len(ordered) // 2]) / 2
    last = len(values) - 1
    return [
        Anomaly(tenant_id, metric, times[i], values[i], middle, score, latest=i == last)
        for i, score in enumerate(robust_z_scores(values))
        if abs(score) > threshold
    ]


def forecast_tenant(
    tenant_id: str,
    snapshots: Sequence[UsageSnapshot],
    limits: Mapping[str, int],
    runs: Sequence[RunPerformance] = (),
    *,
    confidence: float = 0.9,
) -> TenantForecast:
    """Every counted limit's forecast and the anomalies of one tenant's history."""
    times = [s.taken_at for s in snapshots]
    counted = sorted({k for s in snapshots for k in s.counters} & set(limits))
    forecasts = tuple(
        forecast_limit(
            tenant_id,
            limit,
            limits[limit],
            [t for t, s in zip(times, snapshots, strict=True) if limit in s.counters],
            [s.counters[limit] for s in snapshots if limit in s.counters],
            confidence=confidence,
        )
        for limit in counted
    )
    series: dict[str, tuple[list[datetime], list[float]]] = {
        "throughput": (
            [r.started_at for r in runs if r.rows_per_second is not None],
            [r.rows_per_second for r in runs if r.rows_per_second is not None],
        ),
        "duration": ([r.started_at for r in runs], [r.seconds for r in runs]),
        "growth": (
            times[1:],
            [float(b.data_rows - a.data_rows) for a, b in pairwise(snapshots)],
        ),
    }
    anomalies: list[Anomaly] = []
    latest: dict[str, bool] = {}
    for metric, (at, values) in series.items():
        found = find_anomalies(tenant_id, metric, at, values)
        anomalies.extend(found)
        latest[metric] = any(a.latest for a in found)
    return TenantForecast(tenant_id, forecasts, tuple(anomalies), latest)
