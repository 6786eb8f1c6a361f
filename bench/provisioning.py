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

from bench.cases import (
    PROV_DJANGO,
    PROV_MANY,
    PROV_OURS,
    PROV_RAW,
    PROV_SQLITE,
    PROV_WARM,
    Case,
    Failures,
)
from bench.common import Measurement
from bench.database import BenchDatabase, quote_ident
from bench.dataset import ScaleConfig
from bench.ddl import render_schema_ddl
from bench.django_cases import DjangoBaseline
from bench.ours import manager_for
from tenancy_fixtures.spotify.schema import spotify_metadata

__all__ = [
    "ours_concurrent",
    "ours_postgres",
    "ours_sqlite",
    "ours_warm_pool",
    "provisioning_cases",
    "raw_ddl",
]


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


async def ours_warm_pool(db: BenchDatabase, n: int, *, prefix: str = "prov_warm") -> Measurement:
    """``create_tenant`` n times after ``warm_up(n)``: each takes a spare schema."""
    measurement = Measurement("provision: ours, PostgreSQL, warm pool", rows=n)
    manager = manager_for(db.dsn)
    async with manager:
        await manager.create_tenant(f"{prefix}_warmup")  # connections and caches, not timed
        await manager.warm_up(n)  # not timed: the pool is filled ahead of demand
        for i in range(n):
            started = time.perf_counter()
            await manager.create_tenant(f"{prefix}_{i}")
            measurement.seconds.append(time.perf_counter() - started)
        await manager.warm_up(0)
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


def _per_tenant_note(m: Measurement) -> str:
    return f"p50 per tenant; p95 {m.percentile_seconds(95) * 1000:,.1f} ms"


async def provisioning_cases(
    db: BenchDatabase,
    config: ScaleConfig,
    failures: Failures,
    django: DjangoBaseline | None,
) -> list[Case]:
    """Every provisioning case of the scale, plus django-tenants when available."""
    console = failures.console
    cases: list[Case] = []
    raw = await failures.run(
        "provision: raw DDL", raw_ddl(db, config.provision_tenants, spotify_metadata())
    )
    ours = await failures.run(
        "provision: ours PostgreSQL", ours_postgres(db, config.provision_tenants)
    )
    warm = await failures.run(
        "provision: ours warm pool", ours_warm_pool(db, config.provision_tenants)
    )
    sqlite = await failures.run("provision: ours SQLite", ours_sqlite(config.sqlite_tenants))
    for key, m in ((PROV_RAW, raw), (PROV_OURS, ours), (PROV_WARM, warm), (PROV_SQLITE, sqlite)):
        if m is not None:
            m.note = _per_tenant_note(m)
            cases.append(Case(key, m, "provision", {"per_tenant": True}))
            console.print(f"  {m.name}: p50 {m.median_seconds * 1000:,.1f} ms")
    if ours is not None and raw is not None:
        ours.note += f"; {ours.median_seconds / raw.median_seconds:.1f}x raw DDL's p50"
    if django is not None:
        tenants = await django.provisioning(db, config.django_tenants, failures)
        if tenants is not None:
            tenants.note = tenants.note or "django-tenants tenant creation, p50 per tenant"
            if ours is not None:
                tenants.note += (
                    f"; ours is {tenants.median_seconds / ours.median_seconds:.1f}x faster"
                )
            cases.append(Case(PROV_DJANGO, tenants, "provision", {"per_tenant": True}))
    many = await failures.run(
        "provision: ours concurrent", ours_concurrent(db, config.concurrent_tenants)
    )
    if many is not None:
        many.note = f"wall time of all {many.rows:,}"
        cases.append(Case(PROV_MANY, many, "provision"))
        console.print(f"  {many.rows:,} tenants at concurrency 10: {many.median_seconds:.1f}s")
    return cases
