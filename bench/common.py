"""What every benchmark shares: the measurement record and timing helpers."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Measurement:
    """One benchmark case: repeated runs of the same work on the same data."""

    name: str
    rows: int
    seconds: list[float] = field(default_factory=list)
    peak_rss_bytes: int | None = None
    note: str = ""

    @property
    def median_seconds(self) -> float:
        """The median wall-clock time of the runs."""
        return statistics.median(self.seconds)

    @property
    def rows_per_second(self) -> float:
        """Rows per second at the median run."""
        return self.rows / self.median_seconds if self.seconds else 0.0

    def percentile_seconds(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of the runs, interpolated between neighbours."""
        return percentile(self.seconds, q)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, linearly interpolated."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
