"""PerformanceTracker: wall-clock time per named stage of one operation, and what the
process spent on it (CPU seconds, peak resident memory).

CPU and memory come from :func:`resource.getrusage` (the standard library: no psutil
for two numbers). CPU seconds are the process's user + system time during the run.
``ru_maxrss`` is the process's high-water mark since it started, not the run's own:
a run that stays below an earlier peak reports that peak. Parse worker processes are
not counted (they outlive the run; ``RUSAGE_CHILDREN`` counts only children waited for).

With ``TENANCY_PERFORMANCE_MONITORING=false``, :func:`tracker_for` hands out an
:class:`UntimedTracker`, which records nothing: the run keeps no stage timings and no
``performance`` detail.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tenancy_fixtures.settings import Settings

__all__ = [
    "PerformanceTracker",
    "UntimedTracker",
    "cpu_seconds",
    "peak_rss_bytes",
    "tracker_for",
]


def cpu_seconds() -> float:
    """User + system CPU seconds this process has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux counts KiB


class PerformanceTracker:
    """Adds up seconds per stage (``parse``, ``write``, ``validate``...) of one run.

    Stages may repeat (once per batch); their times add up. Nested stages are
    counted in both.
    """

    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}
        self._started = time.perf_counter()
        self._cpu_started = cpu_seconds()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as part of stage ``name``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self._seconds[name] = self._seconds.get(name, 0.0) + time.perf_counter() - started

    def add(self, name: str, seconds: float) -> None:
        """Count ``seconds`` towards stage ``name``."""
        self._seconds[name] = self._seconds.get(name, 0.0) + seconds

    @property
    def stages(self) -> dict[str, float]:
        """Seconds per stage, in the order stages were first seen."""
        return dict(self._seconds)

    @property
    def elapsed(self) -> float:
        """Seconds since the tracker was made."""
        return time.perf_counter() - self._started

    def summary(self) -> dict[str, float]:
        """Stages rounded to the millisecond, plus ``total``."""
        rounded = {k: round(v, 3) for k, v in self._seconds.items()}
        rounded["total"] = round(self.elapsed, 3)
        return rounded

    def performance(self, rows: int) -> dict[str, Any]:
        """Rows per second, CPU seconds and peak RSS of the run so far (``rows``
        written): what a run records beside its stage timings."""
        elapsed = self.elapsed
        return {
            "rows": rows,
            "seconds": round(elapsed, 3),
            "rows_per_second": round(rows / elapsed, 1) if elapsed > 0 else None,
            "cpu_seconds": round(cpu_seconds() - self._cpu_started, 3),
            "peak_rss_bytes": peak_rss_bytes(),
        }


class UntimedTracker(PerformanceTracker):
    """A tracker for runs with performance monitoring off: it times nothing, and its
    summary and performance are empty."""

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        del name
        yield

    def add(self, name: str, seconds: float) -> None:
        del name, seconds

    def summary(self) -> dict[str, float]:
        return {}

    def performance(self, rows: int) -> dict[str, Any]:
        del rows
        return {}


def tracker_for(settings: Settings) -> PerformanceTracker:
    """A run's tracker: one that times, or with ``performance_monitoring`` off one that
    does not."""
    return PerformanceTracker() if settings.performance_monitoring else UntimedTracker()
