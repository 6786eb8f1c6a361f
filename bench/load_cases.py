"""The load cases, round-robin, then our CLI end to end and its peak RSS.

Each repeat runs limit (a), limit (b), ours into a new tenant, ours again into that
populated tenant (``force=True``) and SQLAlchemy Core, in that order, so drift on the
machine hits every case alike; a CHECKPOINT before each timed run keeps one case's
dirty buffers off the next one's bill.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rich.console import Console

from bench.cases import CLI, LIMIT_A, LIMIT_B, OURS, RSS_FULL, RSS_HALF, SQLA, UPSERT, Case, Inputs
from bench.common import Measurement
from bench.database import BenchDatabase
from bench.dataset import MiB
from bench.limits import CopyLimits, constraint_ddl
from bench.ours import OurLoader, cli_load, manager_for
from bench.report import stage_shares
from bench.sqlalchemy_core import BATCH_SIZE, CoreInserts
from tenancy_fixtures.spotify_schema import spotify_metadata

__all__ = ["cli_cases", "load_cases"]


def _mib(value: int | None) -> str:
    return "—" if value is None else f"{value / MiB:,.1f} MiB"


def _share_note(shares: dict[str, Any]) -> str:
    parts = [f"{name} {share:.0%}" for name, share in shares["shares"].items()]
    return "stage ÷ load time (stages nest and overlap): " + ", ".join(parts)


async def load_cases(db: BenchDatabase, inputs: Inputs, console: Console) -> list[Case]:
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


async def cli_cases(db: BenchDatabase, inputs: Inputs, console: Console) -> list[Case]:
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
