"""Start-up: what importing the library, the CLI and a parse worker cost a fresh process.

Each path runs in a fresh interpreter (``sys.executable -c``), round-robin with the
others so that drift on the machine hits every path alike. Two spans, each as wall-clock
and CPU time: the work itself inside the child (interpreter start-up excluded) and the
child process end to end (start-up and exit included); plus the modules in
``sys.modules`` once the work is done. A bare ``python -c pass`` is measured the same
way, as the floor. On a busy machine wall-clock times stretch; CPU times much less.

    python -m bench.startup          # this case alone, without the rest of the bench
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.cases import STARTUP_IMPORT, Case, Failures
from bench.common import Measurement

__all__ = ["RUNS", "StartupPath", "measure", "startup_cases"]

#: Runs per path: the median of this many fresh interpreters.
RUNS = 9

# The child's clocks start before the work and stop after it; it counts the modules
# before importing json to write its figures.
_PROBE = """\
import sys, time
_started, _cpu = time.perf_counter(), time.process_time()
{work}
_seconds, _cpu = time.perf_counter() - _started, time.process_time() - _cpu
_modules = len(sys.modules)
import json
with open({out!r}, "w") as _f:
    json.dump({{"seconds": _seconds, "cpu": _cpu, "modules": _modules}}, _f)
"""

_CLI = """\
from tenancy_fixtures.cli.app import main
sys.argv = ["tenancy-fixtures", {args}]
try:
    main()
except SystemExit as exc:
    if exc.code:
        raise
"""

# What a parse worker does before its first block: the import its command line runs,
# then compiling the plan it is sent for the bench's big table, the events (the
# compiled path's; the table itself is rebuilt only for a block that path declines).
_WORKER = """\
from tenancy_fixtures.loading.parse_worker_process import serve
from tenancy_fixtures.loading.fast_rows import FastRows
import pickle
with open({table!r}, "rb") as _t:
    FastRows(pickle.load(_t))
"""


@dataclass(frozen=True)
class StartupPath:
    """One way into the library, as the code a fresh interpreter runs."""

    key: str
    name: str
    work: str


@dataclass(frozen=True)
class _Run:
    """One fresh interpreter running one path (seconds)."""

    wall: float
    cpu: float
    work: float
    work_cpu: float
    modules: int


def _paths(table_pickle: Path) -> list[StartupPath]:
    return [
        StartupPath("startup_python", "python -c pass (the floor)", "pass"),
        StartupPath(STARTUP_IMPORT, "import tenancy_fixtures", "import tenancy_fixtures"),
        StartupPath(
            "startup_import_manager",
            "from tenancy_fixtures import FixtureManager",
            "from tenancy_fixtures import FixtureManager",
        ),
        StartupPath(
            "startup_manager",
            "FixtureManager() (SQLite default)",
            "from tenancy_fixtures import FixtureManager\nFixtureManager()",
        ),
        StartupPath("startup_cli_help", "tenancy-fixtures --help", _CLI.format(args='"--help"')),
        StartupPath(
            "startup_cli_list",
            "tenancy-fixtures list (empty SQLite dir)",
            _CLI.format(args='"list"'),
        ),
        StartupPath(
            "startup_parse_worker",
            "parse worker: import serve, compile its table's plan",
            _WORKER.format(table=str(table_pickle)),
        ),
    ]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_once(path: StartupPath, out: Path, env: dict[str, str]) -> _Run:
    code = _PROBE.format(work=path.work, out=str(out))
    cpu = _children_cpu()  # this process starts no other child meanwhile
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    cpu = _children_cpu() - cpu
    if done.returncode != 0:
        raise RuntimeError(f"{path.name} failed ({done.returncode}): {done.stderr.strip()}")
    figures = json.loads(out.read_text(encoding="utf-8"))
    return _Run(
        wall, cpu, float(figures["seconds"]), float(figures["cpu"]), int(figures["modules"])
    )


def _events_table_pickle(directory: Path) -> Path:
    """The compiled path's plan for the events, pickled as a worker receives it."""
    from tenancy_fixtures.loading.fast_plans import fast_plan
    from tenancy_fixtures.spotify import register
    from tenancy_fixtures.spotify.schema import spotify_metadata

    register()
    path = directory / "table.pickle"
    plan = fast_plan(spotify_metadata().tables["tenant.listening_events"])
    path.write_bytes(pickle.dumps(plan))
    return path


def _median(runs: list[_Run], field: str) -> float:
    return statistics.median(float(getattr(run, field)) for run in runs)


def _case(path: StartupPath, runs: list[_Run]) -> Case:
    modules = runs[-1].modules
    work_cpu, process, process_cpu = (_median(runs, f) for f in ("work_cpu", "wall", "cpu"))
    return Case(
        path.key,
        Measurement(
            path.name,
            rows=0,
            seconds=[run.work for run in runs],
            note=f"{modules} modules; work CPU {work_cpu * 1000:,.0f} ms; the process "
            f"{process * 1000:,.0f} ms (CPU {process_cpu * 1000:,.0f} ms)",
        ),
        "startup",
        {
            "modules": modules,
            "work_cpu_median_seconds": work_cpu,
            "process_seconds": [run.wall for run in runs],
            "process_median_seconds": process,
            "process_cpu_median_seconds": process_cpu,
        },
    )


def measure(*, runs: int = RUNS, pythonpath: str | None = None) -> list[Case]:
    """Every start-up path ``runs`` times, round-robin; one case per path.

    ``pythonpath`` (default: this process's ``sys.path``) chooses the tree measured, so
    that another checkout can be compared on the same machine.
    """
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        directory = Path(tmp)
        paths = _paths(_events_table_pickle(directory))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENANCY_")}
        env["TENANCY_DATABASE_URL"] = f"sqlite:///{directory / 'data'}"
        env["PYTHONPATH"] = pythonpath or os.pathsep.join(p for p in sys.path if p)
        done: dict[str, list[_Run]] = {p.key: [] for p in paths}
        for _ in range(runs):
            for path in paths:
                done[path.key].append(_run_once(path, directory / "out.json", env))
    return [_case(path, done[path.key]) for path in paths]


async def startup_cases(failures: Failures) -> list[Case]:
    """The start-up paths as bench cases; a failure is recorded and costs only them."""
    return await failures.run("start-up", asyncio.to_thread(measure)) or []


if __name__ == "__main__":
    from rich.console import Console

    from bench.report import startup_table

    Console().print(startup_table(measure(), title=f"start-up (ms): medians of {RUNS} runs"))
