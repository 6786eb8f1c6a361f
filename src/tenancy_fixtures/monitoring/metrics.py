"""Prometheus metrics of tenant operations, in a registry owned by whoever made it."""

from __future__ import annotations

import contextlib
from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    from tenancy_fixtures.monitoring.forecast import TenantForecast

__all__ = ["Metrics"]


class _Collectors(NamedTuple):
    registry: CollectorRegistry
    operations: Counter
    rows_loaded: Counter
    duration: Histogram
    days_to_limit: Gauge
    anomaly: Gauge


class Metrics:
    """Counters and histograms for tenant operations; one instance per manager.

    Without a ``registry`` the collectors (and prometheus_client) are created on first
    use, so that a manager that only reads costs no import of them.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._registry = registry
        if registry is not None:  # the caller scrapes it: the metrics belong there now
            _ = self._collectors

    @cached_property
    def _collectors(self) -> _Collectors:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        registry = self._registry or CollectorRegistry()
        return _Collectors(
            registry,
            Counter(
                "tenancy_operations",
                "Tenant operations by kind and outcome.",
                ["operation", "outcome"],
                registry=registry,
            ),
            Counter(
                "tenancy_rows_loaded",
                "Rows written into tenant tables by fixture loads.",
                ["table"],
                registry=registry,
            ),
            Histogram(
                "tenancy_operation_seconds",
                "Wall-clock seconds of tenant operations.",
                ["operation"],
                registry=registry,
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            ),
            Gauge(
                "tenancy_days_to_limit",
                "Days until a tenant reaches a limit at its Theil-Sen trend "
                "(+Inf: not growing; 0: there already).",
                ["tenant", "limit"],
                registry=registry,
            ),
            Gauge(
                "tenancy_anomaly",
                "1 when a tenant's latest load throughput, duration or growth is an "
                "anomaly against its own history (robust z-score past 3.5), else 0.",
                ["tenant", "metric"],
                registry=registry,
            ),
        )

    @property
    def registry(self) -> CollectorRegistry:
        return self._collectors.registry

    @property
    def operations(self) -> Counter:
        return self._collectors.operations

    @property
    def rows_loaded(self) -> Counter:
        return self._collectors.rows_loaded

    @property
    def duration(self) -> Histogram:
        return self._collectors.duration

    @property
    def days_to_limit(self) -> Gauge:
        return self._collectors.days_to_limit

    @property
    def anomaly(self) -> Gauge:
        return self._collectors.anomaly

    def publish_forecasts(self, forecasts: list[TenantForecast], *, fleet: bool) -> None:
        """Set the forecast gauges of these tenants; ``fleet``: they are every tenant,
        so gauges of tenants no longer there go."""
        if fleet:
            self.days_to_limit.clear()
            self.anomaly.clear()
        for forecast in forecasts:
            self.publish_forecast(forecast)

    def publish_forecast(self, forecast: TenantForecast) -> None:
        """Set the forecast gauges of one tenant."""
        for item in forecast.limits:
            days = item.days_to_limit
            if days is None and item.slope_per_day is None:
                # Too few snapshots for a trend: unknown, which +Inf ("never") is not.
                with contextlib.suppress(KeyError):
                    self.days_to_limit.remove(forecast.tenant_id, item.limit)
                continue
            self.days_to_limit.labels(forecast.tenant_id, item.limit).set(
                float("inf") if days is None else days
            )
        for metric, anomalous in forecast.latest.items():
            self.anomaly.labels(forecast.tenant_id, metric).set(1.0 if anomalous else 0.0)

    def forget_tenant(self, tenant_id: str) -> None:
        """Remove the forecast gauges of a tenant that is gone (dropped): served on, they
        kept an alert on its days to a limit firing for a tenant that no longer exists."""
        if "_collectors" not in self.__dict__:
            return  # no gauge was ever set
        for gauge, other in ((self.days_to_limit, "limit"), (self.anomaly, "metric")):
            named = {
                sample.labels[other]
                for family in gauge.collect()
                for sample in family.samples
                if sample.labels.get("tenant") == tenant_id
            }
            for value in named:
                gauge.remove(tenant_id, value)

    def observe(self, operation: str, outcome: str, seconds: float) -> None:
        """Count one operation and its duration."""
        self.operations.labels(operation, outcome).inc()
        self.duration.labels(operation).observe(seconds)

    def exposition(self) -> bytes:
        """The metrics in Prometheus text format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
