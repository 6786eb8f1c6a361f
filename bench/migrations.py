"""Fleet migrations (issue 12): ours against django-tenants' ``migrate_schemas``.

    python -m bench.migrations --scale small     # 200 and 1,000 tenants, ~2 minutes
    python -m bench.migrations --scale full      # 1,000, 5,000 and 10,000 tenants
    python -m bench.migrations --counts 10000 --no-django --no-real

Three measurements, each in a fresh database dropped at the end:

- **no-op** ``migrate --all``: a fleet of real tenants (``create_tenant``, 10 at a time,
  so each is at the head with its ledger row), grown from one count to the next; at
  each count ``manager.migrate()`` in-process, and the same from a shell in a new
  process (``tenancy-fixtures migrate --all`` when the CLI has it, otherwise
  ``python -c`` building a ``FixtureManager`` and migrating: start-up included). Goal:
  10,000 tenants in ≤ 5 s.
- a **real** one-revision migration: tenants holding the demo set (free tier: catalog
  and 500 listening events, so the daily aggregates have rows for 0003's backfill) are
  downgraded to ``0002_retention_indexes`` (not timed), then upgraded to the head at
  concurrency 1, 4 and 10 (timed); tenants per second.
- **django-tenants** ``migrate_schemas`` with nothing to apply over its own fleet of the
  same sizes (in-process ``call_command`` and ``manage.py`` in a new process). Creating
  a django-tenants tenant costs about 0.25 s, so its counts are smaller at each scale;
  the comparison is per tenant, and its time at our largest count is extrapolated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import structlog
from rich.console import Console
from rich.table import Table

from bench.cases import Case, Failures
from bench.common import Measurement
from bench.database import BenchDatabase, bench_database, bench_url
from bench.ours import manager_for
from bench.report import Target, targets_table, write_json
from tenancy_fixtures.manager import FixtureManager

__all__ = [
    "MIGRATION_SCALES",
    "MigrationScale",
    "main",
    "migration_cases",
    "migration_table",
    "migration_targets",
]

#: The history's head and the revision before it (the real case steps between them).
HEAD, PREVIOUS = "0003_daily_streams", "0002_retention_indexes"
GOAL_TENANTS, GOAL_SECONDS = 10_000, 5.0
#: Tenants created at once while growing a fleet.
CREATE_CONCURRENCY = 10
GROUP = "migrate"


@dataclass(frozen=True)
class MigrationScale:
    """The tenant counts and repeats of one scale."""

    name: str
    noop_counts: tuple[int, ...]
    django_counts: tuple[int, ...]
    real_tenants: int
    repeats: int = 5
    process_repeats: int = 3
    real_repeats: int = 3
    django_repeats: int = 3
    concurrencies: tuple[int, ...] = (1, 4, 10)


MIGRATION_SCALES: dict[str, MigrationScale] = {
    "small": MigrationScale("small", (200, 1_000), (200,), real_tenants=40),
    # django-tenants at 10,000 would take ~45 min to create and ~5 min a no-op run.
    "full": MigrationScale(
        "full", (1_000, 5_000, 10_000), (1_000,), real_tenants=200, django_repeats=2
    ),
}


def _key(kind: str, n: int) -> str:
    return f"migrate_{kind}_{n}"


async def grow_fleet(manager: FixtureManager, start: int, stop: int, *, prefix: str) -> float:
    """Create tenants ``prefix{start}`` .. ``prefix{stop - 1}``, 10 at a time; wall seconds."""
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def one(i: int) -> None:
        async with gate:
            await manager.create_tenant(f"{prefix}{i}")

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(start, stop)))
    return time.perf_counter() - started


async def noop_library(manager: FixtureManager, n: int, repeats: int) -> Measurement:
    """``await manager.migrate()`` over a fleet of ``n`` tenants all at the head."""
    m = Measurement(f"ours: migrate(), {n:,} tenants, nothing to do", rows=n)
    for _ in range(repeats):
        started = time.perf_counter()
        report = await manager.migrate()
        m.seconds.append(time.perf_counter() - started)
        if report.counts() != {"skipped": n}:
            raise RuntimeError(f"no-op migrate over {n} tenants did {report.counts()}")
    return m


def _cli() -> Path | None:
    """The ``tenancy-fixtures`` command, when it has ``migrate``."""
    found = Path(sys.executable).parent / "tenancy-fixtures"
    command = str(found) if found.exists() else shutil.which("tenancy-fixtures")
    if command is None:
        return None
    done = subprocess.run([command, "migrate", "--help"], capture_output=True, check=False)
    return Path(command) if done.returncode == 0 else None


#: The fallback while the CLI has no ``migrate``: what it would do, start-up included.
_SCRIPT = (
    "import asyncio, json\n"
    "from tenancy_fixtures import FixtureManager\n"
    "async def main():\n"
    "    async with FixtureManager() as manager:\n"
    "        report = await manager.migrate()\n"
    "    print(json.dumps({'ok': report.ok, 'counts': report.counts()}))\n"
    "asyncio.run(main())\n"
)


def _process_command(db: BenchDatabase) -> tuple[list[str], str]:
    cli = _cli()
    if cli is not None:
        return [str(cli), "--database-url", db.dsn, "migrate", "--all", "--json"], (
            "tenancy-fixtures migrate --all"
        )
    return [sys.executable, "-c", _SCRIPT], "python -c 'FixtureManager().migrate()'"


def _counts(stdout: str) -> dict[str, int] | None:
    """The outcome counts a run printed as JSON (the whole output or its last line)."""
    for text in (stdout, stdout.strip().rsplit("\n", 1)[-1]):
        try:
            document = json.loads(text)
        except ValueError:
            continue
        counts = document.get("counts") if isinstance(document, dict) else None
        return counts if isinstance(counts, dict) else None
    return None


def noop_process(db: BenchDatabase, n: int, repeats: int) -> Measurement:
    """The no-op run from a shell: a new process each time, start-up included."""
    command, label = _process_command(db)
    env = {k: v for k, v in os.environ.items() if k != "TENANCY_REDIS_URL"}
    env["TENANCY_DATABASE_URL"] = db.dsn
    m = Measurement(f"ours: {label}, {n:,} tenants", rows=n, note="new process each run")
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        m.seconds.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"{label} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
        counts = _counts(done.stdout)
        if counts is not None and counts != {"skipped": n}:
            raise RuntimeError(f"{label} over {n} tenants did {counts}")
    return m


@dataclass
class _Noop:
    """The no-op cases of one scale, and what building the fleet cost."""

    cases: list[Case] = field(default_factory=list)
    #: Tenants -> seconds it took to create them (incrementally).
    creation: dict[int, float] = field(default_factory=dict)


async def noop_cases(server_url: str, scale: MigrationScale, failures: Failures) -> _Noop:
    """Grow one fleet through ``scale.noop_counts``; time the no-op run at each."""
    console, out, have = failures.console, _Noop(), 0
    async with bench_database(server_url) as db:
        manager = manager_for(db.dsn)
        async with manager:
            for n in scale.noop_counts:
                seconds = await grow_fleet(manager, have, n, prefix="mig_noop_")
                out.creation[n] = seconds
                console.print(
                    f"  created tenants {have:,}..{n - 1:,} in {seconds:.1f}s "
                    f"({seconds / (n - have) * 1000:.1f} ms each, concurrency {CREATE_CONCURRENCY})"
                )
                have = n
                lib = await failures.run(
                    f"migrate no-op library {n}", noop_library(manager, n, scale.repeats)
                )
                proc = await failures.run(
                    f"migrate no-op process {n}",
                    asyncio.to_thread(noop_process, db, n, scale.process_repeats),
                )
                for kind, m in (("noop_library", lib), ("noop_process", proc)):
                    if m is not None:
                        m.note = (m.note + "; " if m.note else "") + (
                            f"{m.median_seconds / n * 1e6:,.0f} µs per tenant"
                        )
                        out.cases.append(Case(_key(kind, n), m, GROUP, {"tenants": n}))
                        console.print(f"  {m.name}: {m.median_seconds:.3f}s")
    return out


async def _stream_total(db: BenchDatabase) -> int:
    """Streams in every tenant's ``daily_stats`` (what 0003 backfills)."""
    conn = await db.connect()
    try:
        schemas = await conn.fetch(
            "SELECT schemaname FROM pg_tables WHERE tablename = 'daily_stats'"
            " AND schemaname NOT LIKE 'tenancy%'"
        )
        parts = [f'SELECT sum(streams) AS s FROM "{r[0]}".daily_stats' for r in schemas]
        return int(
            await conn.fetchval(f"SELECT coalesce(sum(s), 0) FROM ({' UNION ALL '.join(parts)}) x")
        )
    finally:
        await conn.close()


async def real_cases(server_url: str, scale: MigrationScale, failures: Failures) -> list[Case]:
    """Downgrade ``scale.real_tenants`` loaded tenants one revision, time the upgrade."""
    console, n, cases = failures.console, scale.real_tenants, []
    ids = [f"mig_real_{i}" for i in range(n)]
    async with bench_database(server_url) as db:
        manager = manager_for(db.dsn)
        async with manager:
            await grow_fleet(manager, 0, n, prefix="mig_real_")
            loaded = await manager.load_many(ids)
            if not loaded.ok:
                raise RuntimeError(f"loading the demo set failed: {loaded}")
            for concurrency in scale.concurrencies:
                m = Measurement(
                    f"ours: one revision ({PREVIOUS} → head), {n} tenants, "
                    f"concurrency {concurrency}",
                    rows=n,
                )
                for _ in range(scale.real_repeats):
                    down = await manager.migrate(ids, to=PREVIOUS, concurrency=10)
                    if down.counts() != {"migrated": n}:
                        raise RuntimeError(f"downgrade did {down.counts()}")
                    await db.settle()
                    started = time.perf_counter()
                    up = await manager.migrate(ids, concurrency=concurrency)
                    m.seconds.append(time.perf_counter() - started)
                    if up.counts() != {"migrated": n}:
                        raise RuntimeError(f"upgrade did {up.counts()}")
                streams = await _stream_total(db)
                if streams <= 0:
                    raise RuntimeError("the 0003 backfill counted no streams")
                per_tenant = statistics.median(r.seconds for r in up.results)
                m.note = (
                    f"{n / m.median_seconds:,.1f} tenants/s; one tenant p50 "
                    f"{per_tenant * 1000:,.0f} ms; {streams:,} streams backfilled"
                )
                cases.append(
                    Case(f"migrate_real_c{concurrency}", m, GROUP, {"concurrency": concurrency})
                )
                console.print(f"  {m.name}: {m.median_seconds:.2f}s ({m.note})")
    return cases


def django_cases(server_url: str, scale: MigrationScale, console: Console) -> list[Case]:
    """django-tenants' no-op ``migrate_schemas`` at ``scale.django_counts`` (blocking)."""
    from bench.django_baseline.fleet import django_fleet

    cases: list[Case] = []
    with django_fleet(server_url) as fleet:
        for n in scale.django_counts:
            wall = fleet.grow(n)
            console.print(
                f"  django-tenants: {n:,} tenants created in {wall:.1f}s "
                f"(save() p50 {fleet.creation_p50 * 1000:.0f} ms)"
            )
            lib = Measurement(f"django-tenants: migrate_schemas (in-process), {n:,} tenants", n)
            cmd = Measurement(f"django-tenants: manage.py migrate_schemas, {n:,} tenants", n)
            for _ in range(scale.django_repeats):
                lib.seconds.append(fleet.noop_in_process())
                cmd.seconds.append(fleet.noop_command())
            for kind, m in (("django_library", lib), ("django_process", cmd)):
                m.note = (
                    f"{m.median_seconds / n * 1000:.1f} ms per tenant; {fleet.versions}; "
                    f"creation p50 {fleet.creation_p50 * 1000:.0f} ms per tenant"
                )
                cases.append(Case(_key(kind, n), m, GROUP, {"tenants": n}))
                console.print(f"  {m.name}: {m.median_seconds:.2f}s")
    return cases


def _django_at(cases: list[Case], kind: str, n: int) -> tuple[float, int] | None:
    """django-tenants' median at ``n`` tenants: measured, or extrapolated linearly from
    its largest count; with the count it comes from."""
    found = [c for c in cases if c.key.startswith(f"migrate_{kind}_")]
    if not found:
        return None
    exact = next((c for c in found if c.measurement.rows == n), None)
    source = exact or max(found, key=lambda c: c.measurement.rows)
    m = source.measurement
    return m.median_seconds * n / m.rows, m.rows


def add_ratios(cases: list[Case]) -> None:
    """Note on each no-op case how many times faster than django-tenants it is at the
    same count (django-tenants extrapolated linearly from its largest when it has no
    fleet that big; its cost is per tenant, its start-up a fraction of a second)."""
    for case in cases:
        if not case.key.startswith(("migrate_noop_library_", "migrate_noop_process_")):
            continue
        kind = "django_library" if "library" in case.key else "django_process"
        n = case.measurement.rows
        django = _django_at(cases, kind, n)
        if django is None:
            continue
        seconds, source = django
        ratio = seconds / case.measurement.median_seconds
        case.extra.update(django_seconds=seconds, django_from=source, django_over_ours=ratio)
        case.measurement.note += f"; {ratio:,.0f}x faster than django-tenants" + (
            "" if source == n else f" ({seconds:,.1f} s, extrapolated from its {source:,})"
        )


def migration_table(cases: list[Case], *, title: str) -> Table:
    """Fleet migrations: tenants, median, per tenant, notes."""
    table = Table(title=title)
    for column in ("case", "tenants", "median s", "per tenant", "notes"):
        table.add_column(column, justify="left" if column in ("case", "notes") else "right")
    for case in cases:
        m = case.measurement
        table.add_row(
            m.name,
            f"{m.rows:,}",
            f"{m.median_seconds:.3f}",
            f"{m.median_seconds / m.rows * 1000:,.2f} ms",
            m.note,
        )
    return table


def _projected(cases: list[Case], kind: str) -> tuple[float, Case] | None:
    """The no-op run at the goal's count: measured, or extrapolated from the largest
    fleet. A process's start-up is a constant: only the library's time is scaled."""
    by_n = {c.measurement.rows: c for c in cases if c.key.startswith(f"migrate_{kind}_")}
    if not by_n:
        return None
    n = max(by_n)
    case = by_n[n]
    if n == GOAL_TENANTS:
        return case.measurement.median_seconds, case
    library = next((c for c in cases if c.key == _key("noop_library", n)), None)
    if library is None:
        return None
    scaled = library.measurement.median_seconds * GOAL_TENANTS / n
    overhead = case.measurement.median_seconds - library.measurement.median_seconds
    return scaled + overhead, case


def migration_targets(cases: list[Case]) -> list[Target]:
    """Issue 12's goal: a no-op ``migrate --all`` over 10,000 tenants in ≤ 5 s."""
    targets = []
    for kind, label in (("noop_library", "migrate()"), ("noop_process", "a new process")):
        name = f"no-op migrate --all, {GOAL_TENANTS:,} tenants ({label})"
        found = _projected(cases, kind)
        if found is None:
            targets.append(Target(name, f"≤ {GOAL_SECONDS:g} s", "not measured", None))
            continue
        projected, case = found
        n, median = case.measurement.rows, case.measurement.median_seconds
        exact = n == GOAL_TENANTS
        targets.append(
            Target(
                name,
                f"≤ {GOAL_SECONDS:g} s",
                f"{projected:.2f} s" + ("" if exact else f" (from {n:,} in {median:.2f} s)"),
                projected <= GOAL_SECONDS,
                "" if exact else "extrapolated linearly (start-up kept constant); needs SCALE=full",
            )
        )
    return targets


async def migration_cases(
    server_url: str,
    scale: MigrationScale,
    failures: Failures,
    *,
    django: bool = True,
    real: bool = True,
) -> list[Case]:
    """Every migration case of ``scale``; a failing one costs its rows, not the run."""
    console = failures.console
    noop = await failures.run("migrate no-op", noop_cases(server_url, scale, failures))
    cases = noop.cases if noop is not None else []
    if real:
        cases += await failures.run("migrate real", real_cases(server_url, scale, failures)) or []
    if django and scale.django_counts:
        try:
            import django as _django  # noqa: F401
            import django_tenants  # noqa: F401
        except ImportError as exc:
            console.print(f"django-tenants not available: {exc}")
        else:
            cases += (
                await failures.run(
                    "django-tenants migrate_schemas",
                    asyncio.to_thread(django_cases, server_url, scale, console),
                )
                or []
            )
    add_ratios(cases)
    if noop is not None:
        for case in cases:
            if case.key.startswith("migrate_noop_library_"):
                case.extra["fleet_creation_seconds"] = noop.creation
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.migrations", description=__doc__)
    parser.add_argument("--scale", choices=sorted(MIGRATION_SCALES), default="small")
    parser.add_argument("--counts", type=int, nargs="+", help="no-op fleet sizes instead")
    parser.add_argument("--django-counts", type=int, nargs="*", help="django-tenants sizes")
    parser.add_argument("--no-django", action="store_true", help="skip django-tenants")
    parser.add_argument("--no-real", action="store_true", help="skip the real migration")
    parser.add_argument("--database-url", default=bench_url())
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    console = Console(width=None if sys.stdout.isatty() else 180)
    scale = MIGRATION_SCALES[args.scale]
    if args.counts:
        scale = replace(scale, name="custom", noop_counts=tuple(sorted(args.counts)))
    if args.django_counts is not None:
        scale = replace(scale, django_counts=tuple(sorted(args.django_counts)))
    started, clock = datetime.now(UTC), time.perf_counter()
    failures = Failures(console)
    cases = asyncio.run(
        migration_cases(
            args.database_url, scale, failures, django=not args.no_django, real=not args.no_real
        )
    )
    targets = migration_targets(cases)
    console.print()
    console.print(
        migration_table(cases, title=f"fleet migrations ({scale.name}), {os.cpu_count()} CPUs")
    )
    console.print(targets_table(targets, title="targets (issue 12)"))
    for failure in failures.items:
        console.print(f"FAILED {failure['case']}: {failure['error']}", markup=False)
    path = write_json(
        f"migrations-{scale.name}",
        started,
        cases,
        targets,
        {
            "scale_config": scale.__dict__,
            "cpus": os.cpu_count(),
            "failures": failures.items,
            "elapsed_seconds": time.perf_counter() - clock,
        },
    )
    console.print(f"took {time.perf_counter() - clock:.1f}s; results written to {path}")
    return 1 if failures.items else 0


if __name__ == "__main__":
    raise SystemExit(main())
