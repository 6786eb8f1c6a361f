"""Our load path: ``FixtureManager.load_fixtures`` in-process, and the CLI as a subprocess.

In-process runs create a fresh tenant before the clock starts and time only
``load_fixtures(tenant, source=set_dir)`` (or, for source files, with their
``format`` and ``options``); the re-load case then loads the same set into that now
populated tenant with ``force=True`` (rows upserted), and ``validate`` times
``validate_tenant`` as ``validate-data`` runs it. The CLI runs
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
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cpu import CpuSample, CpuSeconds
from bench.database import BenchDatabase
from tenancy_fixtures.manager import FixtureManager
from tenancy_fixtures.settings import Settings

__all__ = [
    "ChildRun",
    "CliRun",
    "LoadRun",
    "OurLoader",
    "ValidateRun",
    "cli_command",
    "cli_load",
    "manager_for",
    "run_measured",
]


@dataclass(frozen=True)
class LoadRun:
    """One timed ``load_fixtures`` call."""

    seconds: float
    rows: int
    stages: Mapping[str, float] = field(default_factory=dict)
    cpu: CpuSeconds | None = None
    #: Rows of derived tables (the daily aggregates) the load recomputed.
    derived_rows: int = 0


@dataclass(frozen=True)
class ValidateRun:
    """One timed ``validate_tenant`` call that passed."""

    seconds: float
    rows: int
    #: Seconds per check.
    stages: Mapping[str, float]
    #: Each table's content checksum as the validator found it.
    checksums: Mapping[str, str]
    #: How each table's checksum was found: ``recomputed`` or ``write_stamps``.
    methods: Mapping[str, str]


@dataclass(frozen=True)
class CliRun:
    """One ``tenancy-fixtures load-fixtures`` process (and the parse workers it starts)."""

    seconds: float
    #: The loader process's own peak.
    peak_rss_bytes: int
    report: dict[str, Any]
    #: The peak of the loader's and its worker processes' RSS summed (sampled).
    peak_tree_rss_bytes: int = 0
    #: The most of those processes seen at once (sampled).
    peak_processes: int = 0

    @property
    def rows(self) -> int:
        return sum(int(v) for v in self.report.get("rows", {}).values())


#: The tiers' hard limits (the free tier's 5 users, say) would refuse the benchmark's
#: sets; past a limit a load only warns then, after the same usage check.
_NO_LIMITS = {"TENANCY_ENFORCE_LIMITS": "false"}


def manager_for(database_url: str, *, parse_workers: int | None = None) -> FixtureManager:
    """A manager on ``database_url`` with the in-process config cache, limits not
    enforced (and, if given, that many parse workers instead of the default)."""
    settings = Settings(database_url=database_url, redis_url=None, enforce_limits=False)
    if parse_workers is not None:
        settings = settings.model_copy(update={"parse_workers": parse_workers})
    return FixtureManager(settings)


class OurLoader:
    """Loads the set into fresh tenants (and again into populated ones) and times it."""

    def __init__(self, manager: FixtureManager, set_dir: Path) -> None:
        self.manager = manager
        self.set_dir = set_dir

    async def new_tenant(self, tenant_id: str) -> None:
        await self.manager.create_tenant(tenant_id)

    async def load(
        self,
        tenant_id: str,
        *,
        force: bool = False,
        source_format: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> LoadRun:
        """Load the set (as source files of ``source_format`` when given), timed."""
        before = CpuSample.now()
        started = time.perf_counter()
        report = await self.manager.load_fixtures(
            tenant_id, source=self.set_dir, force=force, format=source_format, options=options
        )
        seconds = time.perf_counter() - started
        cpu = CpuSeconds.between(before, CpuSample.now())
        if not report.changed:
            raise RuntimeError(f"load into {tenant_id} changed nothing (force={force})")
        return LoadRun(seconds, report.rows, dict(report.stages), cpu, report.derived_rows)

    async def validate(self, tenant_id: str, *, recompute: bool = False) -> ValidateRun:
        """``validate-data TENANT`` as the CLI runs it (the report recorded), timed;
        ``recompute``: with ``--recompute-checksums``. Raises if any check fails."""
        started = time.perf_counter()
        report = await self.manager.validate_tenant(
            tenant_id, record=True, recompute_checksums=recompute
        )
        seconds = time.perf_counter() - started
        if not report.ok:
            raise RuntimeError(f"validate-data {tenant_id} failed: {report.problems[:3]}")
        checksums = {table: content.checksum for table, content in report.checksums.items()}
        methods = {table: content.method for table, content in report.checksums.items()}
        return ValidateRun(seconds, report.total_rows, dict(report.stages), checksums, methods)

    async def drop(self, tenant_id: str) -> None:
        await self.manager.drop_tenant(tenant_id)


def cli_command() -> str:
    """The ``tenancy-fixtures`` executable next to this interpreter, else on ``PATH``."""
    beside = Path(sys.executable).parent / "tenancy-fixtures"
    found = str(beside) if beside.exists() else shutil.which("tenancy-fixtures")
    if found is None:
        raise RuntimeError("the tenancy-fixtures command is not installed (make install)")
    return found


_GNU_TIME = Path("/usr/bin/time")


def _rss_and_parents() -> tuple[dict[int, int], dict[int, int]]:
    """Every process's RSS (bytes) and parent, read from ``/proc``."""
    rss: dict[int, int] = {}
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = dict(
                line.split(":", 1) for line in (entry / "status").read_text().splitlines()
            )
            pid = int(entry.name)
            parents[pid] = int(fields["PPid"])
            rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
        except (OSError, ValueError, KeyError):
            continue
    return rss, parents


class _TreeSampler:
    """Samples the summed RSS of a process tree until stopped (the root's own RSS only
    with ``include_root``), and the root's alone."""

    def __init__(self, root: int, *, include_root: bool, every: float = 0.05) -> None:
        self.root = root
        self.include_root = include_root
        self.every = every
        self.peak = 0
        self.root_peak = 0
        #: The most processes counted at once (the loader and its parse workers).
        self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, parents = _rss_and_parents()
            tree = {self.root}
            grew = True
            while grew:
                below = {pid for pid, parent in parents.items() if parent in tree} - tree
                grew = bool(below)
                tree |= below
            counted = tree if self.include_root else tree - {self.root}
            self.peak = max(self.peak, sum(rss.get(pid, 0) for pid in counted))
            self.processes = max(self.processes, len(counted))
            self.root_peak = max(self.root_peak, rss.get(self.root, 0))
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class ChildRun:
    """One child process run to its end: wall time, peak RSS, what it printed."""

    seconds: float
    #: The process's own peak (GNU time's ``%M``; sampled without GNU time).
    peak_rss_bytes: int
    #: The peak of its process tree's RSS summed (sampled every 50 ms), at least its own.
    peak_tree_rss_bytes: int
    returncode: int
    stdout: str
    stderr: str
    #: The most processes of its tree seen at once (sampled).
    processes: int = 1


def run_measured(command: list[str], env: Mapping[str, str]) -> ChildRun:
    """Run ``command`` to its end; time it and read its peak RSS.

    The process's own peak RSS comes from GNU ``time`` (``%M``: its ``ru_maxrss``);
    without GNU time it is sampled. Not from ``wait4`` here: on Linux a child's
    ``ru_maxrss`` includes the RSS of the process that forked it (carried across
    ``execve``), and this harness is far bigger than a small ``time`` process. The
    process and its children (parse workers) are sampled from ``/proc`` every 50 ms and
    their RSS summed: a worker's pages count in full, as if nothing were shared.
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as scratch,
    ):
        usage = Path(scratch) / "time.txt"
        timed = _GNU_TIME.exists()
        if timed:
            command = [str(_GNU_TIME), "-f", "%M", "-o", str(usage), *command]
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=dict(env))
        # Below GNU time the tree is the command and its children; without it the
        # command is the root.
        sampler = _TreeSampler(process.pid, include_root=not timed)
        returncode = process.wait()
        seconds = time.perf_counter() - started
        sampler.stop()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        # GNU time prints the peak in KiB, on the last line of its output file.
        peak = sampler.root_peak
        if timed and returncode == 0:
            peak = int(usage.read_text().split()[-1]) * 1024
    return ChildRun(
        seconds,
        peak,
        max(sampler.peak, peak),
        returncode,
        stdout,
        stderr,
        max(sampler.processes, 1),
    )


def cli_load(
    db: BenchDatabase, tenant_id: str, set_dir: Path, *, env: Mapping[str, str] | None = None
) -> CliRun:
    """Run ``tenancy-fixtures load-fixtures TENANT SET --json``; time it, read its peak
    RSS and its loader processes' together (see :func:`run_measured`). The tenant must
    exist."""
    child_env = {k: v for k, v in os.environ.items() if k != "TENANCY_REDIS_URL"}
    child_env.update(_NO_LIMITS)
    child_env.update(env or {})
    command = [cli_command(), "--database-url", db.dsn, "load-fixtures", tenant_id, str(set_dir)]
    command.append("--json")
    run = run_measured(command, child_env)
    if run.returncode != 0:
        raise RuntimeError(
            f"tenancy-fixtures load-fixtures exited {run.returncode}: {run.stderr.strip()}"
        )
    return CliRun(
        run.seconds,
        run.peak_rss_bytes,
        json.loads(run.stdout),
        run.peak_tree_rss_bytes,
        run.processes,
    )
