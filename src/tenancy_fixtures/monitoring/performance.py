"""PerformanceTracker: wall-clock time per named stage of one operation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["PerformanceTracker"]


class PerformanceTracker:
    """Adds up seconds per stage (``parse``, ``write``, ``validate``...) of one run.

    Stages may repeat (once per batch); their times add up. Nested stages are
    counted in both.
    """

    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}
        self._started = time.perf_counter()

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
