"""Prometheus metrics of tenant operations, in a registry owned by whoever made it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["Metrics"]


class Metrics:
    """Counters and histograms for tenant operations; one instance per manager."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.operations = Counter(
            "tenancy_operations",
            "Tenant operations by kind and outcome.",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.rows_loaded = Counter(
            "tenancy_rows_loaded",
            "Rows written into tenant tables by fixture loads.",
            ["table"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "tenancy_operation_seconds",
            "Wall-clock seconds of tenant operations.",
            ["operation"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )

    def observe(self, operation: str, outcome: str, seconds: float) -> None:
        """Count one operation and its duration."""
        self.operations.labels(operation, outcome).inc()
        self.duration.labels(operation).observe(seconds)

    def exposition(self) -> bytes:
        """The metrics in Prometheus text format."""
        return generate_latest(self.registry)
