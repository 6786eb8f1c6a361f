"""CPU seconds spent during a timed run, by who spent them: this process (our loader,
in-process), each of its child processes (our parse workers) and the PostgreSQL server.

Read from ``getrusage`` and ``/proc`` before and after the run, so it works only where
``/proc`` exists and, for the server, only when PostgreSQL runs on this machine
(otherwise its figure is ``None``).
"""

from __future__ import annotations

import os
import resource
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CpuSample", "CpuSeconds", "median_cpu"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu(pid: str) -> tuple[int, str, float] | None:
    """(parent pid, command name, user + system seconds) of one process, if readable."""
    try:
        stat = (Path("/proc") / pid / "stat").read_text()
    except OSError:
        return None
    name = stat[stat.find("(") + 1 : stat.rfind(")")]
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[1]), name, (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU seconds at one moment."""

    loader: float
    children: dict[int, float]
    postgres: dict[int, float] | None

    @classmethod
    def now(cls) -> CpuSample:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        children: dict[int, float] = {}
        postgres: dict[int, float] = {}
        me = os.getpid()
        if Path("/proc").is_dir():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                found = _proc_cpu(entry.name)
                if found is None:
                    continue
                parent, name, seconds = found
                if parent == me:
                    children[int(entry.name)] = seconds
                elif name.startswith("postgres"):
                    postgres[int(entry.name)] = seconds
        return cls(usage.ru_utime + usage.ru_stime, children, postgres or None)


@dataclass(frozen=True)
class CpuSeconds:
    """CPU seconds spent between two samples."""

    loader: float
    workers: float
    postgres: float | None
    #: Each child process's (parse worker's) seconds, by process id.
    workers_each: tuple[float, ...] = ()

    @classmethod
    def between(cls, before: CpuSample, after: CpuSample) -> CpuSeconds:
        def each(first: dict[int, float], last: dict[int, float]) -> list[float]:
            # A process that ended in between is not counted: a short load's leftovers.
            return [seconds - first.get(pid, 0.0) for pid, seconds in sorted(last.items())]

        server = (
            sum(each(before.postgres or {}, after.postgres)) if after.postgres is not None else None
        )
        workers = each(before.children, after.children)
        return cls(after.loader - before.loader, sum(workers), server, tuple(workers))


def median_cpu(runs: Sequence[CpuSeconds]) -> dict[str, Any] | None:
    """Median CPU seconds per party over ``runs``: the loader, the workers together and
    each worker (busiest first, the median of each rank), PostgreSQL (None if not local).
    """
    if not runs:
        return None
    servers = [c.postgres for c in runs if c.postgres is not None]
    ranked = [sorted(c.workers_each, reverse=True) for c in runs]
    ranks = max((len(r) for r in ranked), default=0)
    return {
        "loader": statistics.median(c.loader for c in runs),
        "workers": statistics.median(c.workers for c in runs),
        "workers_each": [
            statistics.median(r[rank] if rank < len(r) else 0.0 for r in ranked)
            for rank in range(ranks)
        ],
        "postgres": statistics.median(servers) if servers else None,
    }
