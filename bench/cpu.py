"""CPU seconds spent during a timed run, by who spent them: this process (our loader,
in-process), its child processes (our parse workers) and the PostgreSQL server.

Read from ``getrusage`` and ``/proc`` before and after the run, so it works only where
``/proc`` exists and, for the server, only when PostgreSQL runs on this machine
(otherwise its figure is ``None``).
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuSample", "CpuSeconds"]

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

    @classmethod
    def between(cls, before: CpuSample, after: CpuSample) -> CpuSeconds:
        def spent(first: dict[int, float], last: dict[int, float]) -> float:
            # A process that ended in between is not counted: a short load's leftovers.
            return sum(seconds - first.get(pid, 0.0) for pid, seconds in last.items())

        server = (
            spent(before.postgres or {}, after.postgres) if after.postgres is not None else None
        )
        return cls(after.loader - before.loader, spent(before.children, after.children), server)
