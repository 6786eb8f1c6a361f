"""``make bench``: every case side by side, on one PostgreSQL and one generated set.

    python -m bench.run --scale small    # quick check, under a minute
    python -m bench.run --scale full     # the README's numbers (1M listening events)

The load cases run round-robin (limit a, limit b, ours, re-load, SQLAlchemy Core; then
again), so drift on the machine hits every case alike; a CHECKPOINT before each timed
run keeps one case's dirty buffers off the next one's bill. Prints one table of
medians and ratios plus the targets of issue 5, and writes the same figures as JSON
under ``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from rich.console import Console

from bench.common import Measurement
from bench.database import BenchDatabase, bench_database, bench_url
from bench.dataset import SCALES, CsvSet, Dataset, MiB, ScaleConfig, export_csv, prepare_dataset
from bench.limits import CopyLimits, constraint_ddl
from bench.ours import OurLoader, cli_load, manager_for
from bench.provisioning import ours_concurrent, ours_postgres, ours_sqlite, raw_ddl
from bench.report import (
    CLI,
    DJANGO,
    LIMIT_A,
    LIMIT_B,
    OURS,
    PROV_DJANGO,
    PROV_MANY,
    PROV_OURS,
    PROV_RAW,
    PROV_SQLITE,
    RSS_FULL,
    RSS_HALF,
    SQLA,
    UPSERT,
    Case,
    evaluate_targets,
    load_table,
    stage_shares,
    targets_table,
    write_json,
)
from bench.rss import BigSet, write_big_set
from bench.sqlalchemy_core import BATCH_SIZE, CoreInserts
from tenancy_fixtures.spotify_schema import spotify_metadata

__all__ = ["main"]


@dataclass
class Inputs:
    """Everything prepared before the database is touched."""

    config: ScaleConfig
    dataset: Dataset
    csv_set: CsvSet
    half: BigSet
    full: BigSet


def _quiet_logs() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def _mib(value: int | None) -> str:
    return "—" if value is None else f"{value / MiB:,.1f} MiB"


def _share_note(shares: dict[str, Any]) -> str:
    parts = [f"{name} {share:.0%}" for name, share in shares["shares"].items()]
    return "stage ÷ load time (stages nest and overlap): " + ", ".join(parts)


async def _load_cases(db: BenchDatabase, inputs: Inputs, console: Console) -> list[Case]:
    config, dataset, csv_set = inputs.config, inputs.dataset, inputs.csv_set
    metadata = spotify_metadata()
    total = dataset.total_rows
    limits = CopyLimits(db, csv_set, metadata, work=dataset.root / "sql")
    core = CoreInserts(db, dataset, metadata)
    n_constraint_ddl = len(constraint_ddl(metadata, "x"))
    limit_a = Measurement(
        "limit (a): psql \\copy into constrained tables",
        rows=limits.rows,
        note="CSV, FK order, one transaction, fresh schema per run",
    )
    limit_b = Measurement(
        "limit (b): \\copy into bare tables + constraints",
        rows=limits.rows,
        note=f"then {n_constraint_ddl} ADD CONSTRAINT / CREATE INDEX, same transaction",
    )
    ours = Measurement("ours: load_fixtures, new tenant", rows=total)
    upsert = Measurement(
        "ours: re-load into populated tenant (force)",
        rows=total,
        note="load_fixtures(force=True): rows upserted",
    )
    sqla = Measurement(
        "SQLAlchemy Core insert() executemany",
        rows=total,
        note=f"asyncpg, batches of {BATCH_SIZE}, stdlib readers, one transaction",
    )
    stages: list[dict[str, float]] = []
    manager = manager_for(db.dsn)
    async with manager:
        loader = OurLoader(manager, dataset.directory)
        for run in range(config.repeats):
            limit_a.seconds.append(await limits.constrained(run))
            limit_b.seconds.append(await limits.bare_then_constraints(run))
            tenant = f"bench_load_{run}"
            await loader.new_tenant(tenant)
            await db.settle()
            first = await loader.load(tenant)
            if first.rows != total:
                raise RuntimeError(f"ours loaded {first.rows:,} rows, the set has {total:,}")
            ours.seconds.append(first.seconds)
            stages.append(dict(first.stages))
            await db.settle()
            again = await loader.load(tenant, force=True)
            upsert.seconds.append(again.seconds)
            upsert.rows = again.rows
            await loader.drop(tenant)
            seconds, rows = await core.run(run)
            if rows != total:
                raise RuntimeError(f"SQLAlchemy Core loaded {rows:,} rows, the set has {total:,}")
            sqla.seconds.append(seconds)
            console.print(
                f"  run {run + 1}/{config.repeats}: limit (a) {limit_a.seconds[-1]:.2f}s, "
                f"limit (b) {limit_b.seconds[-1]:.2f}s, ours {first.seconds:.2f}s, "
                f"re-load {again.seconds:.2f}s, SQLAlchemy Core {seconds:.2f}s"
            )
        await core.dispose()

        shares = stage_shares(stages)
        ours.note = _share_note(shares)
    return [
        Case(LIMIT_A, limit_a, "load"),
        Case(LIMIT_B, limit_b, "load"),
        Case(OURS, ours, "load", {"stages": stages, "stage_shares": shares}),
        Case(UPSERT, upsert, "load"),
        Case(SQLA, sqla, "load"),
    ]


async def _cli_cases(db: BenchDatabase, inputs: Inputs, console: Console) -> list[Case]:
    """The CLI end to end once, and peak RSS on the big JSON Lines files."""
    dataset = inputs.dataset
    cases: list[Case] = []
    manager = manager_for(db.dsn)
    async with manager:
        loader = OurLoader(manager, dataset.directory)
        await loader.new_tenant("bench_cli")
        await db.settle()
        cli = await asyncio.to_thread(cli_load, db, "bench_cli", dataset.directory)
        await loader.drop("bench_cli")
        cases.append(
            Case(
                CLI,
                Measurement(
                    "ours: tenancy-fixtures load-fixtures (CLI)",
                    rows=cli.rows,
                    seconds=[cli.seconds],
                    peak_rss_bytes=cli.peak_rss_bytes,
                    note=f"1 run, process start-up included; peak RSS {_mib(cli.peak_rss_bytes)}",
                ),
                "load",
                {"stages": cli.report.get("stages", {})},
            )
        )
        console.print(f"  CLI end to end {cli.seconds:.2f}s")

        for key, big, label in ((RSS_HALF, inputs.half, "half"), (RSS_FULL, inputs.full, "full")):
            tenant = f"bench_rss_{label}"
            await loader.new_tenant(tenant)
            await db.settle()
            run_ = await asyncio.to_thread(cli_load, db, tenant, big.directory)
            await loader.drop(tenant)
            cases.append(
                Case(
                    key,
                    Measurement(
                        f"ours: CLI, {big.event_bytes / MiB:,.0f} MiB JSON Lines ({label})",
                        rows=run_.rows,
                        seconds=[run_.seconds],
                        peak_rss_bytes=run_.peak_rss_bytes,
                        note=f"peak RSS {_mib(run_.peak_rss_bytes)}; "
                        f"{big.event_rows:,} events; 1 run",
                    ),
                    "memory",
                    {"file_bytes": big.event_bytes, "stages": run_.report.get("stages", {})},
                )
            )
            console.print(
                f"  RSS {label}: {_mib(run_.peak_rss_bytes)} loading "
                f"{big.event_bytes / MiB:,.0f} MiB in {run_.seconds:.1f}s"
            )
    return cases


def _django_functions(console: Console) -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    try:
        from bench.django_baseline import run_loaddata, run_tenant_provisioning
    except ImportError as exc:
        console.print(f"django baseline not available: {exc}")
        return None
    return run_loaddata, run_tenant_provisioning


async def _call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a Django entry point off the event loop (Django refuses async contexts)."""
    result = await asyncio.to_thread(function, *args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


async def _django_loaddata(
    db: BenchDatabase, inputs: Inputs, console: Console, functions: tuple[Callable[..., Any], ...]
) -> list[Case]:
    try:
        measurement = await _call(
            functions[0], inputs.dataset.directory, db.dsn, max_rows=inputs.config.django_rows
        )
    except Exception as exc:
        console.print(f"django baseline not available: loaddata failed: {exc!r}")
        return []
    if not isinstance(measurement, Measurement):
        console.print(f"django baseline not available: loaddata returned {measurement!r}")
        return []
    console.print(f"  Django loaddata {measurement.rows:,} rows, {measurement.median_seconds:.2f}s")
    return [Case(DJANGO, measurement, "load")]


async def _provisioning(
    db: BenchDatabase,
    inputs: Inputs,
    console: Console,
    django: tuple[Callable[..., Any], ...] | None,
) -> list[Case]:
    config = inputs.config
    metadata = spotify_metadata()
    raw = await raw_ddl(db, config.provision_tenants, metadata)
    ours = await ours_postgres(db, config.provision_tenants)
    sqlite = await ours_sqlite(config.sqlite_tenants)
    raw_p50 = raw.percentile_seconds(50)
    for m in (raw, ours, sqlite):
        m.note = f"p50 per tenant; p95 {m.percentile_seconds(95) * 1000:,.1f} ms"
    ours.note += f"; {ours.median_seconds / raw_p50:.1f}x raw DDL's p50"
    cases = [
        Case(PROV_RAW, raw, "provision", {"per_tenant": True}),
        Case(PROV_OURS, ours, "provision", {"per_tenant": True}),
        Case(PROV_SQLITE, sqlite, "provision", {"per_tenant": True}),
    ]
    console.print(
        f"  provisioning p50: raw DDL {raw_p50 * 1000:.1f} ms, ours PostgreSQL "
        f"{ours.median_seconds * 1000:.1f} ms, ours SQLite {sqlite.median_seconds * 1000:.1f} ms"
    )
    if django is not None:
        try:
            tenants = await _call(django[1], db.dsn, config.django_tenants)
        except Exception as exc:
            console.print(f"django baseline not available: tenant provisioning failed: {exc!r}")
        else:
            if isinstance(tenants, Measurement) and tenants.seconds:
                tenants.note = tenants.note or "django-tenants Client.save(), p50 per tenant"
                tenants.note += (
                    f"; ours is {tenants.median_seconds / ours.median_seconds:.1f}x faster"
                )
                cases.append(Case(PROV_DJANGO, tenants, "provision", {"per_tenant": True}))
    many = await ours_concurrent(db, config.concurrent_tenants)
    many.note = f"wall time of all {many.rows:,}"
    cases.append(Case(PROV_MANY, many, "provision"))
    console.print(f"  {many.rows:,} tenants at concurrency 10: {many.median_seconds:.1f}s")
    return cases


@contextmanager
def _phase(console: Console, name: str) -> Iterator[None]:
    console.print(f"{name}:")
    started = time.perf_counter()
    yield
    console.print(f"  ({name}: {time.perf_counter() - started:.1f}s)")


async def _measure(inputs: Inputs, server_url: str, console: Console) -> tuple[list[Case], str]:
    async with bench_database(server_url) as db:
        version = await db.server_version()
        console.print(f"database {db.name} (PostgreSQL {version}); dropped at the end")
        with _phase(console, "load cases"):
            cases = await _load_cases(db, inputs, console)
        with _phase(console, "CLI and peak RSS"):
            cases += await _cli_cases(db, inputs, console)
        django = _django_functions(console)
        if django is not None:
            with _phase(console, "Django loaddata"):
                cases += await _django_loaddata(db, inputs, console, django)
        with _phase(console, "provisioning"):
            cases += await _provisioning(db, inputs, console, django)
    return cases, version


def _order(cases: list[Case]) -> list[Case]:
    order = [
        LIMIT_A,
        LIMIT_B,
        OURS,
        CLI,
        UPSERT,
        SQLA,
        DJANGO,
        RSS_HALF,
        RSS_FULL,
        PROV_RAW,
        PROV_OURS,
        PROV_DJANGO,
        PROV_SQLITE,
        PROV_MANY,
    ]
    return sorted(cases, key=lambda c: order.index(c.key) if c.key in order else len(order))


def _validation_line(cases: list[Case]) -> str:
    ours = next(c for c in cases if c.key == OURS)
    shares = ours.extra["stage_shares"]
    medians = ", ".join(f"{k} {v:.3f}s" for k, v in shares["median_seconds"].items())
    line = f"our load stages (median s): {medians}, total {shares['median_total']:.3f}s. "
    if shares["validate_share"] is None:
        return line + (
            "validation's share of load time: not split out (LoadReport.stages has no "
            "'validate'; typing and checking each record happen inside 'parse')"
        )
    return line + f"validation's share of load time: {shares['validate_share']:.1%}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument(
        "--database-url",
        default=bench_url(),
        help="server to run on (default: TENANCY_BENCH_DATABASE_URL or the local one)",
    )
    args = parser.parse_args(argv)
    _quiet_logs()
    console = Console(width=None if sys.stdout.isatty() else 180)
    started = datetime.now(UTC)
    clock = time.perf_counter()
    config = SCALES[args.scale]

    dataset = prepare_dataset(config, log=console.print)
    csv_set = export_csv(dataset, log=console.print)
    inputs = Inputs(
        config,
        dataset,
        csv_set,
        half=write_big_set(dataset, config.rss_bytes // 2, log=console.print),
        full=write_big_set(dataset, config.rss_bytes, log=console.print),
    )
    console.print(
        f"scale {config.name}: {dataset.total_rows:,} rows "
        f"({dataset.rows['listening_events']:,} listening events), {config.repeats} runs per case"
    )
    cases, version = asyncio.run(_measure(inputs, args.database_url, console))
    cases = _order(cases)
    targets = evaluate_targets(cases, scale=config.name)
    elapsed = time.perf_counter() - clock

    title = (
        f"bench {config.name}: {dataset.total_rows:,} rows, medians of {config.repeats} runs, "
        f"PostgreSQL {version}, {os.cpu_count()} CPUs"
    )
    console.print()
    console.print(load_table(cases, title=title))
    console.print(_validation_line(cases))
    console.print()
    console.print(targets_table(targets, title="targets (issue 5)"))
    path = write_json(
        config.name,
        started,
        cases,
        targets,
        {
            "seed": config.seed,
            "generator_scale": config.generator_scale,
            "rows_per_table": dataset.rows,
            "total_rows": dataset.total_rows,
            "repeats": config.repeats,
            "postgresql": version,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "machine": platform.platform(),
            "elapsed_seconds": elapsed,
            "fixture_set": str(dataset.directory),
        },
    )
    console.print(f"took {elapsed:.1f}s; results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
