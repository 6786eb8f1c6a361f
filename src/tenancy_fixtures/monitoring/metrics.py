"""Prometheus metrics of tenant operations, in a registry owned by whoever made it."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["Metrics"]


class _Collectors(NamedTuple):
    registry: CollectorRegistry
    operations: Counter
    rows_loaded: Counter
    duration: Histogram


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
        from prometheus_client import CollectorRegistry, Counter, Histogram

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

    def observe(self, operation: str, outcome: str, seconds: float) -> None:
        """Count one operation and its duration."""
        self.operations.labels(operation, outcome).inc()
        self.duration.labels(operation).observe(seconds)

    def exposition(self) -> bytes:
        """The metrics in Prometheus text format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
