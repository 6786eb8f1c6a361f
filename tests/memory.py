"""Peak memory of one piece of work, as tracemalloc sees it."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

__all__ = ["traced_peak"]


def traced_peak(work: Callable[[], object]) -> int:
    """Bytes ``work`` allocates at most over what was allocated before it. The cyclic
    collector runs often meanwhile, so garbage it has yet to collect (its timing depends
    on the work's size) barely moves the peak."""
    gc.collect()
    thresholds = gc.get_threshold()
    gc.set_threshold(100)
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        work()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        if not tracing:
            tracemalloc.stop()
        gc.set_threshold(*thresholds)
