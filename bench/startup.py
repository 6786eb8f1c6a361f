"""Start-up: what importing the library, the CLI and a parse worker cost a fresh process.

Each path runs in a fresh interpreter (``sys.executable -c``), round-robin with the
others so that drift on the machine hits every path alike. Two clocks: the work itself
inside the child (``perf_counter`` around it, interpreter start-up excluded) and the
child process end to end (start-up included); plus the modules in ``sys.modules`` once
the work is done. A bare ``python -c pass`` is measured the same way, as the floor.

    python -m bench.startup          # this case alone, without the rest of the bench
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
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

# The child's clock starts before the work and stops after it; it counts the modules
# before importing json to write its figures.
_PROBE = """\
import sys, time
_started = time.perf_counter()
{work}
_seconds = time.perf_counter() - _started
_modules = len(sys.modules)
import json
with open({out!r}, "w") as _f:
    json.dump({{"seconds": _seconds, "modules": _modules}}, _f)
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
# then rebuilding the table it is sent (the bench's big table, the events).
_WORKER = """\
from tenancy_fixtures.loading.parse_workers import serve
import pickle
with open({table!r}, "rb") as _t:
    pickle.load(_t)
"""


@dataclass(frozen=True)
class StartupPath:
    """One way into the library, as the code a fresh interpreter runs."""

    key: str
    name: str
    work: str


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
            "parse worker: import serve, rebuild its table",
            _WORKER.format(table=str(table_pickle)),
        ),
    ]


def _run_once(path: StartupPath, out: Path, env: dict[str, str]) -> tuple[float, float, int]:
    code = _PROBE.format(work=path.work, out=str(out))
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{path.name} failed ({done.returncode}): {done.stderr.strip()}")
    figures = json.loads(out.read_text(encoding="utf-8"))
    return wall, float(figures["seconds"]), int(figures["modules"])


def _events_table_pickle(directory: Path) -> Path:
    from tenancy_fixtures.spotify.schema import spotify_metadata

    path = directory / "table.pickle"
    table = spotify_metadata().tables["tenant.listening_events"]
    path.write_bytes(pickle.dumps(table))
    return path


def measure(*, runs: int = RUNS) -> list[Case]:
    """Every start-up path ``runs`` times, round-robin; one case per path."""
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        directory = Path(tmp)
        paths = _paths(_events_table_pickle(directory))
        env = {
            **os.environ,
            "TENANCY_DATABASE_URL": f"sqlite:///{directory / 'data'}",
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        }
        env.pop("TENANCY_REDIS_URL", None)
        walls: dict[str, list[float]] = {p.key: [] for p in paths}
        inner: dict[str, list[float]] = {p.key: [] for p in paths}
        modules: dict[str, int] = {}
        for _ in range(runs):
            for path in paths:
                wall, seconds, count = _run_once(path, directory / "out.json", env)
                walls[path.key].append(wall)
                inner[path.key].append(seconds)
                modules[path.key] = count
    floor = statistics.median(walls["startup_python"])
    cases = []
    for path in paths:
        process = statistics.median(walls[path.key])
        cases.append(
            Case(
                path.key,
                Measurement(
                    path.name,
                    rows=0,
                    seconds=inner[path.key],
                    note=f"{modules[path.key]} modules; process {process * 1000:,.0f} ms "
                    f"(start-up {floor * 1000:,.0f} ms)",
                ),
                "startup",
                {
                    "modules": modules[path.key],
                    "process_seconds": walls[path.key],
                    "process_median_seconds": process,
                },
            )
        )
    return cases


async def startup_cases(failures: Failures) -> list[Case]:
    """The start-up paths as bench cases; a failure is recorded and costs only them."""
    return await failures.run("start-up", asyncio.to_thread(measure)) or []


def _print(cases: list[Case]) -> None:
    print(f"{'path':<48} {'work ms':>9} {'process ms':>11} {'modules':>8}")
    for case in cases:
        m = case.measurement
        print(
            f"{m.name:<48} {m.median_seconds * 1000:>9.1f} "
            f"{case.extra['process_median_seconds'] * 1000:>11.1f} {case.extra['modules']:>8}"
        )


if __name__ == "__main__":
    _print(measure())
