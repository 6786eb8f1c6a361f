"""Our load path: ``FixtureManager.load_fixtures`` in-process, and the CLI as a subprocess.

In-process runs create a fresh tenant before the clock starts and time only
``load_fixtures(tenant, source=set_dir)``; the re-load case then loads the same set
into that now populated tenant with ``force=True`` (rows upserted). The CLI runs
``tenancy-fixtures load-fixtures`` end to end (interpreter start-up included) and
reads the child's own peak RSS from ``wait4``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.database import BenchDatabase
from tenancy_fixtures.manager import FixtureManager
from tenancy_fixtures.settings import Settings

__all__ = ["CliRun", "LoadRun", "OurLoader", "cli_load", "manager_for"]


@dataclass(frozen=True)
class LoadRun:
    """One timed ``load_fixtures`` call."""

    seconds: float
    rows: int
    stages: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CliRun:
    """One ``tenancy-fixtures load-fixtures`` process."""

    seconds: float
    peak_rss_bytes: int
    report: dict[str, Any]

    @property
    def rows(self) -> int:
        return sum(int(v) for v in self.report.get("rows", {}).values())


def manager_for(database_url: str) -> FixtureManager:
    """A manager on ``database_url`` with the in-process config cache."""
    return FixtureManager(Settings(database_url=database_url, redis_url=None))


class OurLoader:
    """Loads the set into fresh tenants (and again into populated ones) and times it."""

    def __init__(self, manager: FixtureManager, set_dir: Path) -> None:
        self.manager = manager
        self.set_dir = set_dir

    async def new_tenant(self, tenant_id: str) -> None:
        await self.manager.create_tenant(tenant_id)

    async def load(self, tenant_id: str, *, force: bool = False) -> LoadRun:
        started = time.perf_counter()
        report = await self.manager.load_fixtures(tenant_id, source=self.set_dir, force=force)
        seconds = time.perf_counter() - started
        if not report.changed:
            raise RuntimeError(f"load into {tenant_id} changed nothing (force={force})")
        return LoadRun(seconds, report.rows, dict(report.stages))

    async def drop(self, tenant_id: str) -> None:
        await self.manager.drop_tenant(tenant_id)


def _cli() -> str:
    beside = Path(sys.executable).parent / "tenancy-fixtures"
    found = str(beside) if beside.exists() else shutil.which("tenancy-fixtures")
    if found is None:
        raise RuntimeError("the tenancy-fixtures command is not installed (make install)")
    return found


_GNU_TIME = Path("/usr/bin/time")


def _peak_by_polling(process: subprocess.Popen[bytes]) -> int:
    """Fallback without GNU time: the child's ``VmHWM``, read until it exits (bytes)."""
    peak = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    return peak


def cli_load(db: BenchDatabase, tenant_id: str, set_dir: Path) -> CliRun:
    """Run ``tenancy-fixtures load-fixtures TENANT SET --json``; time it, read its peak RSS.

    The tenant must exist. The peak RSS comes from GNU ``time`` (``%M``: the loader's
    own ``ru_maxrss``). Not from ``wait4`` here: on Linux a child's ``ru_maxrss``
    includes the RSS of the process that forked it (carried across ``execve``), and
    this harness is far bigger than a small ``time`` process. Without GNU time, the
    child's ``VmHWM`` is polled instead.
    """
    env = {k: v for k, v in os.environ.items() if k != "TENANCY_REDIS_URL"}
    command = [_cli(), "--database-url", db.dsn, "load-fixtures", tenant_id, str(set_dir), "--json"]
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as scratch,
    ):
        usage = Path(scratch) / "time.txt"
        if _GNU_TIME.exists():
            command = [str(_GNU_TIME), "-f", "%M", "-o", str(usage), *command]
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        polled = 0 if _GNU_TIME.exists() else _peak_by_polling(process)
        returncode = process.wait()
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        if returncode != 0:
            raise RuntimeError(
                f"tenancy-fixtures load-fixtures exited {returncode}: {stderr.strip()}"
            )
        # GNU time prints the peak in KiB, on the last line of its output file.
        peak = int(usage.read_text().split()[-1]) * 1024 if _GNU_TIME.exists() else polled
    return CliRun(seconds, peak, json.loads(stdout))
