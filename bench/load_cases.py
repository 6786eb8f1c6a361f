"""The load cases, round-robin, then our CLI end to end and its peak RSS.

Each repeat runs limit (a), limit (b), ours into a new tenant, ours again into that
populated tenant (``force=True``) and SQLAlchemy Core, in that order, so drift on the
machine hits every case alike; a CHECKPOINT before each timed run keeps one case's
dirty buffers off the next one's bill. A case that fails is reported and skipped; the
others go on.
"""

from __future__ import annotations

import asyncio
import statistics
from functools import partial
from typing import Any

from bench.cases import (
    CLI,
    LIMIT_A,
    LIMIT_B,
    OURS,
    OURS_SINGLE,
    RSS_FULL,
    RSS_HALF,
    RSS_SINGLE,
    SQLA,
    UPSERT,
    Case,
    Failures,
    Inputs,
)
from bench.common import Measurement
from bench.database import BenchDatabase
from bench.dataset import MiB
from bench.limits import CopyLimits, constraint_ddl
from bench.ours import CliRun, LoadRun, OurLoader, cli_load, manager_for
from bench.report import stage_shares
from bench.sqlalchemy_core import BATCH_SIZE, CoreInserts
from tenancy_fixtures.spotify.schema import spotify_metadata

__all__ = ["cli_cases", "load_cases"]


def _mib(value: int | None) -> str:
    return "—" if value is None else f"{value / MiB:,.1f} MiB"


def _share_note(shares: dict[str, Any]) -> str:
    parts = [f"{name} {share:.0%}" for name, share in shares["shares"].items()]
    return "stage ÷ load time (stages nest and overlap): " + ", ".join(parts)


def _seconds(value: float | None) -> str:
    return "failed" if value is None else f"{value:.2f}s"


async def _ours(
    db: BenchDatabase, loader: OurLoader, tenant: str, total: int, failures: Failures
) -> tuple[LoadRun, LoadRun | None]:
    """A fresh tenant, loaded (timed), then loaded again with ``force`` (timed)."""
    await loader.new_tenant(tenant)
    try:
        await db.settle()
        first = await loader.load(tenant)
        if first.rows != total:
            raise RuntimeError(f"ours loaded {first.rows:,} rows, the set has {total:,}")
        await db.settle()
        again = await failures.run("ours re-load", loader.load(tenant, force=True))
        return first, again
    finally:
        await loader.drop(tenant)


async def _one_process(db: BenchDatabase, loader: OurLoader, tenant: str, total: int) -> LoadRun:
    """A fresh tenant loaded (timed) by a manager that parses in-process."""
    await loader.new_tenant(tenant)
    try:
        await db.settle()
        run = await loader.load(tenant)
        if run.rows != total:
            raise RuntimeError(
                f"ours (one process) loaded {run.rows:,} rows, the set has {total:,}"
            )
        return run
    finally:
        await loader.drop(tenant)


def _cpu_medians(runs: list[LoadRun]) -> dict[str, float | None] | None:
    """Median CPU seconds per party over ``runs`` (PostgreSQL's: None if not local)."""
    cpus = [r.cpu for r in runs if r.cpu is not None]
    if not cpus:
        return None
    servers = [c.postgres for c in cpus if c.postgres is not None]
    return {
        "loader": statistics.median(c.loader for c in cpus),
        "workers": statistics.median(c.workers for c in cpus),
        "postgres": statistics.median(servers) if servers else None,
    }


async def _core(core: CoreInserts, run: int, total: int) -> float:
    seconds, rows = await core.run(run)
    if rows != total:
        raise RuntimeError(f"SQLAlchemy Core loaded {rows:,} rows, the set has {total:,}")
    return seconds


async def load_cases(db: BenchDatabase, inputs: Inputs, failures: Failures) -> list[Case]:
    """Limits (a) and (b), ours, ours re-loading, SQLAlchemy Core: ``repeats`` rounds."""
    config, dataset, console = inputs.config, inputs.dataset, failures.console
    metadata = spotify_metadata()
    total = dataset.total_rows
    limits = CopyLimits(db, inputs.csv_set, metadata, work=dataset.root / "sql")
    core = CoreInserts(db, dataset, metadata)
    limit_a = Measurement(
        "limit (a): psql \\copy into constrained tables",
        rows=limits.rows,
        note="CSV, FK order, one transaction, fresh schema per run",
    )
    limit_b = Measurement(
        "limit (b): \\copy into bare tables + constraints",
        rows=limits.rows,
        note=f"then {len(constraint_ddl(metadata, 'x'))} ADD CONSTRAINT / CREATE INDEX, "
        "same transaction",
    )
    ours = Measurement("ours: load_fixtures, new tenant", rows=total)
    single = Measurement(
        "ours: load_fixtures, new tenant, TENANCY_PARSE_WORKERS=0",
        rows=total,
        note="the same load parsed in the loading process alone",
    )
    upsert = Measurement(
        "ours: re-load into populated tenant (force)",
        rows=total,
        note="load_fixtures(force=True), the same rows again: upserted (unchanged rows "
        "are found so, not rewritten)",
    )
    sqla = Measurement(
        "SQLAlchemy Core insert() executemany",
        rows=total,
        note=f"asyncpg, batches of {BATCH_SIZE}, stdlib readers, one transaction",
    )
    stages: list[dict[str, float]] = []
    firsts: list[LoadRun] = []
    singles: list[LoadRun] = []
    async with manager_for(db.dsn) as manager, manager_for(db.dsn, parse_workers=0) as alone:
        loader = OurLoader(manager, dataset.directory)
        one_process = OurLoader(alone, dataset.directory)
        for run in range(config.repeats):
            a = await failures.run("limit (a)", limits.constrained(run))
            b = await failures.run("limit (b)", limits.bare_then_constraints(run))
            loads = await failures.run(
                "ours", _ours(db, loader, f"bench_load_{run}", total, failures)
            )
            solo = await failures.run(
                "ours, one process", _one_process(db, one_process, f"bench_one_{run}", total)
            )
            c = await failures.run("SQLAlchemy Core", _core(core, run, total))
            first, again = loads if loads is not None else (None, None)
            for measurement, value in ((limit_a, a), (limit_b, b), (sqla, c)):
                if value is not None:
                    measurement.seconds.append(value)
            if solo is not None:
                single.seconds.append(solo.seconds)
                singles.append(solo)
            if first is not None:
                ours.seconds.append(first.seconds)
                stages.append(dict(first.stages))
                firsts.append(first)
            if again is not None:
                upsert.seconds.append(again.seconds)
                upsert.rows = again.rows
            console.print(
                f"  run {run + 1}/{config.repeats}: limit (a) {_seconds(a)}, "
                f"limit (b) {_seconds(b)}, "
                f"ours {_seconds(first.seconds if first else None)}, "
                f"re-load {_seconds(again.seconds if again else None)}, "
                f"one process {_seconds(solo.seconds if solo else None)}, "
                f"SQLAlchemy Core {_seconds(c)}"
            )
    await core.dispose()
    shares = stage_shares(stages)
    ours.note = _share_note(shares)
    return [
        Case(LIMIT_A, limit_a, "load"),
        Case(LIMIT_B, limit_b, "load"),
        Case(
            OURS,
            ours,
            "load",
            {"stages": stages, "stage_shares": shares, "cpu_median_seconds": _cpu_medians(firsts)},
        ),
        Case(
            OURS_SINGLE,
            single,
            "load",
            {
                "stages": [dict(r.stages) for r in singles],
                "cpu_median_seconds": _cpu_medians(singles),
            },
        ),
        Case(UPSERT, upsert, "load"),
        Case(SQLA, sqla, "load"),
    ]


async def _cli_run(
    db: BenchDatabase,
    loader: OurLoader,
    tenant: str,
    set_dir: Any,
    env: dict[str, str] | None = None,
) -> CliRun:
    """A fresh tenant (not timed), then the CLI loading ``set_dir`` into it."""
    await loader.new_tenant(tenant)
    try:
        await db.settle()
        return await asyncio.to_thread(partial(cli_load, db, tenant, set_dir, env=env))
    finally:
        await loader.drop(tenant)


async def cli_cases(db: BenchDatabase, inputs: Inputs, failures: Failures) -> list[Case]:
    """The CLI end to end once, and peak RSS on the big JSON Lines files."""
    dataset, console = inputs.dataset, failures.console
    cases: list[Case] = []
    async with manager_for(db.dsn) as manager:
        loader = OurLoader(manager, dataset.directory)
        cli = await failures.run(
            "CLI load-fixtures", _cli_run(db, loader, "bench_cli", dataset.directory)
        )
        if cli is not None:
            cases.append(
                Case(
                    CLI,
                    Measurement(
                        "ours: tenancy-fixtures load-fixtures (CLI)",
                        rows=cli.rows,
                        seconds=[cli.seconds],
                        peak_rss_bytes=cli.peak_rss_bytes,
                        note="1 run, process start-up included; "
                        f"peak RSS {_mib(cli.peak_rss_bytes)}",
                    ),
                    "load",
                    {"stages": cli.report.get("stages", {})},
                )
            )
            console.print(f"  CLI end to end {cli.seconds:.2f}s")

        # Default settings (parse workers on): all the loader's processes together. Then
        # the full file once more parsed in-process, the loader alone.
        runs = (
            (RSS_HALF, inputs.half, "half", None),
            (RSS_FULL, inputs.full, "full", None),
            (
                RSS_SINGLE,
                inputs.full,
                "full, TENANCY_PARSE_WORKERS=0",
                {"TENANCY_PARSE_WORKERS": "0"},
            ),
        )
        for key, big, label, env in runs:
            run = await failures.run(
                f"peak RSS ({label})",
                _cli_run(db, loader, f"bench_{key}", big.directory, env),
            )
            if run is None:
                continue
            workers = env is None
            peak = run.peak_tree_rss_bytes if workers else run.peak_rss_bytes
            note = (
                f"loader and parse workers together {_mib(peak)} (sampled sum), the loader "
                f"alone {_mib(run.peak_rss_bytes)}"
                if workers
                else f"one process, peak RSS {_mib(peak)}"
            )
            cases.append(
                Case(
                    key,
                    Measurement(
                        f"ours: CLI, {big.event_bytes / MiB:,.0f} MiB JSON Lines ({label})",
                        rows=run.rows,
                        seconds=[run.seconds],
                        peak_rss_bytes=peak,
                        note=f"{note}; {big.event_rows:,} events; 1 run",
                    ),
                    "memory",
                    {
                        "file_bytes": big.event_bytes,
                        "stages": run.report.get("stages", {}),
                        "loader_peak_rss_bytes": run.peak_rss_bytes,
                        "all_processes_peak_rss_bytes": run.peak_tree_rss_bytes,
                    },
                )
            )
            console.print(
                f"  RSS {label}: {_mib(peak)} loading "
                f"{big.event_bytes / MiB:,.0f} MiB in {run.seconds:.1f}s ({note})"
            )
    return cases
