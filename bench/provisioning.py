"""Provisioning: how long a new tenant takes, ours against raw DDL.

- ours on PostgreSQL, cold (schema, every table, constraint and index, config,
  control-plane rows, audit record): one ``create_tenant`` at a time, per-tenant times;
- the reference: the same schema's DDL (``render_schema_ddl``) sent over one asyncpg
  connection in one transaction per tenant;
- ours on SQLite (a new tenant file each);
- ours for N tenants at once with concurrency 10 (``asyncio.gather`` behind a
  semaphore): wall time of the whole batch.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from sqlalchemy import MetaData

from bench.common import Measurement
from bench.database import BenchDatabase, quote_ident
from bench.ours import manager_for
from tenancy_fixtures.store.postgres import render_schema_ddl

__all__ = ["ours_concurrent", "ours_postgres", "ours_sqlite", "raw_ddl"]


async def ours_postgres(db: BenchDatabase, n: int, *, prefix: str = "prov_pg") -> Measurement:
    """``create_tenant`` n times in a row on PostgreSQL; one time per tenant."""
    measurement = Measurement("provision: ours, PostgreSQL, cold", rows=n)
    manager = manager_for(db.dsn)
    async with manager:
        await manager.create_tenant(f"{prefix}_warmup")  # connections and caches, not timed
        for i in range(n):
            started = time.perf_counter()
            await manager.create_tenant(f"{prefix}_{i}")
            measurement.seconds.append(time.perf_counter() - started)
    return measurement


async def raw_ddl(db: BenchDatabase, n: int, metadata: MetaData) -> Measurement:
    """The reference: CREATE SCHEMA plus the schema's DDL, one transaction per tenant."""
    measurement = Measurement("provision: raw DDL (asyncpg, 1 tx)", rows=n)
    conn = await db.connect()
    try:
        for i in [None, *range(n)]:  # None: the warm-up, not timed
            schema = f"prov_raw_{'warmup' if i is None else i}"
            script = f"CREATE SCHEMA {quote_ident(schema)};\n" + ";\n".join(
                render_schema_ddl(metadata, schema)
            )
            started = time.perf_counter()
            async with conn.transaction():
                await conn.execute(script)
            if i is not None:
                measurement.seconds.append(time.perf_counter() - started)
    finally:
        await conn.close()
    return measurement


async def ours_sqlite(n: int) -> Measurement:
    """``create_tenant`` n times on the embedded SQLite store (a file per tenant)."""
    measurement = Measurement("provision: ours, SQLite", rows=n)
    with tempfile.TemporaryDirectory(prefix="tf_bench_sqlite_") as data_dir:
        manager = manager_for(f"sqlite:///{Path(data_dir) / 'tenancy'}")
        async with manager:
            await manager.create_tenant("prov_sqlite_warmup")
            for i in range(n):
                started = time.perf_counter()
                await manager.create_tenant(f"prov_sqlite_{i}")
                measurement.seconds.append(time.perf_counter() - started)
    return measurement


async def ours_concurrent(db: BenchDatabase, n: int, concurrency: int = 10) -> Measurement:
    """n tenants created with at most ``concurrency`` at a time; the batch's wall time."""
    measurement = Measurement(f"provision: ours, {n:,} tenants, concurrency {concurrency}", rows=n)
    gate = asyncio.Semaphore(concurrency)
    manager = manager_for(db.dsn)

    async def one(i: int) -> None:
        async with gate:
            await manager.create_tenant(f"prov_many_{i}")

    async with manager:
        await manager.create_tenant("prov_many_warmup")
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        measurement.seconds.append(time.perf_counter() - started)
    return measurement
