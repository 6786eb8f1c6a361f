"""Per-test overhead of the pytest plugin's ``tenant`` and ``tenant_session`` fixtures,
next to django-tenants' ``TenantTestCase``.

    python -m bench.plugin_overhead --scale small    # 30 tests per case, quick
    python -m bench.plugin_overhead --scale full     # 200 tests per case

Ours: a generated suite of trivial tests, each asking for ``tenant`` (a fresh tenant per
test) or ``tenant_session`` (the worker's shared tenant, a rolled-back transaction per
test), run by pytest in a fresh process; each test's setup + call + teardown (pytest's
own phase durations) minus the median of the same test without the fixture is its
overhead. The first test also pays the worker's start (manager, template file or spare
schemas, the shared tenant) and the last the worker's end: the mean includes them, the
p50 does not. Cases: per backend, ``tenant`` (SQLite: template file; PostgreSQL without
and with a spare schema per test) and ``tenant_session``.

django-tenants: ``TenantTestCase`` classes of one trivial test (a fresh tenant per test,
as ours) and one class of all the tests (its tenant shared by them, a rolled-back
transaction per test); overhead = class run / tests, minus the same test in a plain
``unittest.TestCase``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.common import percentile
from bench.database import bench_database, bench_url

__all__ = ["main"]

#: Tests per case and TenantTestCase classes of one test, per scale.
SCALES = {"small": (30, 5), "full": (200, 20)}
GOAL_MS = 5.0

_CONFTEST = """\
import json, os

_RECORDS = {}


def pytest_runtest_logreport(report):
    _RECORDS.setdefault(report.nodeid, 0.0)
    _RECORDS[report.nodeid] += report.duration


def pytest_sessionfinish(session):
    with open(os.environ["TF_BENCH_DURATIONS"], "w") as out:
        json.dump(list(_RECORDS.values()), out)
"""


@dataclass(frozen=True)
class Overhead:
    """Per-test overhead of one case, in seconds."""

    name: str
    per_test: list[float]
    note: str = ""

    @property
    def p50(self) -> float:
        return percentile(self.per_test, 50)

    @property
    def p90(self) -> float:
        return percentile(self.per_test, 90)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.per_test)


def _suite(directory: Path, tests: int, *, fixture: str) -> Path:
    directory.mkdir(parents=True)
    (directory / "conftest.py").write_text(_CONFTEST)
    argument = fixture
    body = "".join(f"def test_{i}({argument}):\n    pass\n\n\n" for i in range(tests))
    (directory / "test_trivial.py").write_text(body)
    return directory


def _run_suite(directory: Path, *args: str) -> list[float]:
    out = directory / "durations.json"
    env = dict(os.environ, TF_BENCH_DURATIONS=str(out))
    env.pop("TENANCY_DATABASE_URL", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
    done = subprocess.run(
        [*command, *args, str(directory)], cwd=directory, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"pytest exited with {done.returncode}:\n{done.stdout[-3000:]}")
    seconds: list[float] = json.loads(out.read_text())
    return seconds


def ours(work: Path, tests: int, pg_url: str) -> list[Overhead]:
    """Our fixtures on SQLite and PostgreSQL: ``tenant`` (fresh; on PostgreSQL also with
    spares) and ``tenant_session`` (shared tenant, rolled back)."""
    floor = statistics.median(_run_suite(_suite(work / "floor", tests, fixture="")))
    pg = ["--tenancy-database-url", pg_url]
    cases = [
        ("ours: tenant, SQLite", "tenant", [], "template file copied per tenant"),
        (
            "ours: tenant_session, SQLite",
            "tenant_session",
            [],
            "one shared tenant, a rolled-back transaction per test",
        ),
        ("ours: tenant, PostgreSQL", "tenant", pg, "CREATE SCHEMA + DDL"),
        (
            "ours: tenant, PostgreSQL, spares",
            "tenant",
            [*pg, "--tenancy-spares", str(tests)],
            f"{tests} spare schemas made at worker start (in the mean, not the p50)",
        ),
        (
            "ours: tenant_session, PostgreSQL",
            "tenant_session",
            pg,
            "one shared tenant, a rolled-back transaction per test",
        ),
    ]
    results = []
    for number, (name, fixture, args, note) in enumerate(cases):
        seconds = _run_suite(_suite(work / f"case{number}", tests, fixture=fixture), *args)
        results.append(Overhead(name, [s - floor for s in seconds], note))
    return results


def django(pg_url: str, tests: int, classes: int, console: Console) -> list[Overhead]:
    """``TenantTestCase``: one test per class, and one class of ``tests`` tests."""
    try:
        from bench.django_baseline import run_tenant_testcase
    except ImportError as exc:  # pragma: no cover - without the bench group
        console.print(f"django-tenants not available: {exc}")
        return []
    single = run_tenant_testcase(pg_url, classes, 1)
    shared = run_tenant_testcase(pg_url, 1, tests)
    versions = f"Django {single['django']}, django-tenants {single['django_tenants']}"
    floor = float(single["floor_seconds_per_test"])
    shared_per_test = float(shared["class_seconds"][0]) / tests - floor
    return [
        Overhead(
            "django-tenants: TenantTestCase, 1 test per class",
            [float(s) - floor for s in single["class_seconds"]],
            f"{versions}; a fresh tenant per test",
        ),
        Overhead(
            f"django-tenants: TenantTestCase, {tests} tests in 1 class",
            [shared_per_test],
            "one tenant for the class, rolled-back transaction per test (class run / tests)",
        ),
    ]


def table(cases: list[Overhead], *, title: str) -> Table:
    """p50, p90 and mean per test in ms, with the p50 ratio to the first case (ours,
    ``tenant`` on SQLite)."""
    out = Table(title=title)
    ratio_column = "p50 vs ours tenant SQLite"
    for column in ("case", "tests", "p50 ms", "p90 ms", "mean ms", ratio_column, "note"):
        out.add_column(column, justify="left" if column in ("case", "note") else "right")
    reference = cases[0].p50 if cases else 0.0
    for case in cases:
        ratio = f"{case.p50 / reference:.1f}x" if reference > 0 else "—"
        out.add_row(
            case.name,
            str(len(case.per_test)),
            f"{case.p50 * 1e3:.1f}",
            f"{case.p90 * 1e3:.1f}",
            f"{case.mean * 1e3:.1f}",
            ratio,
            case.note,
        )
    return out


async def _measure(server_url: str, tests: int, classes: int, console: Console) -> list[Overhead]:
    async with bench_database(server_url) as db:
        with tempfile.TemporaryDirectory(prefix="tf_plugin_bench_") as work:
            cases = ours(Path(work), tests, db.dsn)
        # Django works in fresh databases of its own on the same server.
        cases += await asyncio.to_thread(django, server_url, tests, classes, console)
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.plugin_overhead", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--database-url", default=bench_url(), help="PostgreSQL server to use")
    args = parser.parse_args(argv)
    tests, classes = SCALES[args.scale]
    console = Console(width=None if sys.stdout.isatty() else 180)
    cases = asyncio.run(_measure(args.database_url, tests, classes, console))
    console.print(
        table(cases, title=f"per-test overhead of a test tenant (goal: p50 <= {GOAL_MS:.0f} ms)")
    )
    for backend in ("SQLite", "PostgreSQL"):
        best = min(
            (c for c in cases if c.name.startswith("ours") and backend in c.name),
            key=lambda c: c.p50,
            default=None,
        )
        if best is not None:
            verdict = "met" if best.p50 * 1e3 <= GOAL_MS else "not met"
            console.print(
                f"goal p50 <= {GOAL_MS:.0f} ms on {backend}: {verdict} "
                f"(best of ours {best.p50 * 1e3:.1f} ms, {best.name})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
