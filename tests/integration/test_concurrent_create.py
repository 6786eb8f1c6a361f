"""Ten processes create the same tenant at the same moment: exactly one wins, on both backends."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tenancy_fixtures import FixtureManager, Settings
from tests.postgres import asyncpg_dsn

#: The module's racer processes start once per worker that runs one of its tests (10
#: interpreters importing everything): its tests share one xdist worker.
pytestmark = pytest.mark.xdist_group("racers")

RACERS = 10
RACE_TENANT = "race_tenant"
RACE_ACTOR = "racer"
START_DELAY_SECONDS = 0.3
TIMEOUT_SECONDS = 60.0

#: One racer process. It imports everything once and says READY; then, for every line
#: ``URL START`` on stdin, it waits for the shared START time (epoch seconds), creates
#: the tenant with a fresh FixtureManager and prints RESULT with OK or the exception's
#: class name. The processes are reused by the races of this module, so the import cost
#: is paid once.
RACER_SCRIPT = f"""
import asyncio, sys, time
import aiosqlite, asyncpg
import sqlalchemy.dialects.postgresql.asyncpg, sqlalchemy.dialects.sqlite.aiosqlite
from tenancy_fixtures import FixtureManager, Settings

async def create(url: str, start: float) -> str:
    manager = FixtureManager(Settings(database_url=url, actor={RACE_ACTOR!r}))
    await asyncio.sleep(max(0.0, start - time.time()))
    try:
        await manager.create_tenant({RACE_TENANT!r})
        return "OK"
    except Exception as exc:
        return type(exc).__name__
    finally:
        await manager.aclose()

print("READY", flush=True)
for line in sys.stdin:
    url, start = line.split()
    print("RESULT", asyncio.run(create(url, float(start))), flush=True)
"""

Racer = subprocess.Popen[str]


def _next_result(racer: Racer) -> str:
    """The outcome the racer prints next (its log lines are skipped)."""
    assert racer.stdout is not None
    seen: list[str] = []
    while line := racer.stdout.readline():
        if line.startswith("RESULT "):
            return line.split()[1]
        seen.append(line)
    raise AssertionError(f"racer exited with {racer.poll()} before a result: {''.join(seen)}")


@pytest.fixture(scope="module")
def racers() -> Iterator[list[Racer]]:
    """Ten separate OS processes, each ready to create the race tenant on command."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RACER_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        for _ in range(RACERS)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "READY"
        yield processes
    finally:
        for process in processes:  # idle between races: nothing is lost by stopping them
            assert process.stdin is not None
            assert process.stdout is not None
            process.stdin.close()
            process.terminate()
            process.wait(timeout=10)
            process.stdout.close()


async def _race(racers: list[Racer], database_url: str) -> Counter[str]:
    """All racers create the tenant at one shared instant; how many printed each outcome."""
    start = time.time() + START_DELAY_SECONDS
    for racer in racers:
        assert racer.stdin is not None
        racer.stdin.write(f"{database_url} {start}\n")
        racer.stdin.flush()
    results = await asyncio.wait_for(
        asyncio.gather(*(asyncio.to_thread(_next_result, racer) for racer in racers)),
        TIMEOUT_SECONDS,
    )
    return Counter(results)


async def _assert_exactly_one_tenant_exists(manager: FixtureManager) -> None:
    """One registry row, one schema or file, one config, one successful create audited."""
    assert [t.tenant_id for t in await manager.list_tenants()] == [RACE_TENANT]
    assert await manager.store.storage_exists(RACE_TENANT)
    if manager.store.backend == "postgresql":
        async with manager.store.control() as conn:
            schemas = await conn.execute(
                text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"), {"s": RACE_TENANT}
            )
            assert schemas.scalar_one() == 1
    else:
        tenant_files = sorted(p.name for p in (manager.settings.data_dir / "tenants").iterdir())
        assert tenant_files == [f"{RACE_TENANT}.db"]
    status = await manager.tenant_status(RACE_TENANT)
    assert status.fixtures.keys() == {"schema", "config"}
    assert status.config is not None
    assert status.config["tier"] == "free"
    assert set(status.row_counts) == {t.name for t in manager.store.metadata.sorted_tables}
    audit = await manager.audit_log(RACE_TENANT)
    outcomes = Counter(r.outcome for r in audit if r.action == "tenant.create")
    assert outcomes == {"ok": 1, "refused": RACERS - 1}
    assert {r.actor for r in audit} == {RACE_ACTOR}


async def test_concurrent_creates_of_one_tenant_let_exactly_one_process_win(
    manager: FixtureManager, database_url: str, racers: list[Racer]
) -> None:
    """Ten processes creating the same tenant at once: one OK, nine TenantAlreadyExistsError."""
    outcomes = await _race(racers, database_url)

    assert outcomes == {"OK": 1, "TenantAlreadyExistsError": RACERS - 1}
    await _assert_exactly_one_tenant_exists(manager)
    await manager.drop_tenant(RACE_TENANT)
    assert not await manager.store.storage_exists(RACE_TENANT)
    assert await manager.list_tenants() == []


async def _admin_execute(admin_dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def cold_database_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A database no process has used yet: a fresh data dir or a fresh PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'cold'}"
        return
    run_url = make_url(str(request.getfixturevalue("postgres_url")))
    name = f"tf_cold_{uuid.uuid4().hex[:12]}"
    admin = asyncpg_dsn(run_url.render_as_string(hide_password=False))
    asyncio.run(_admin_execute(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield run_url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def test_concurrent_creates_on_a_cold_database_also_initialize_it_once(
    cold_database_url: str, racers: list[Racer]
) -> None:
    """With no control plane yet, ten racing processes still yield one tenant and no errors."""
    outcomes = await _race(racers, cold_database_url)

    assert outcomes == {"OK": 1, "TenantAlreadyExistsError": RACERS - 1}
    async with FixtureManager(Settings(database_url=cold_database_url)) as manager:
        await _assert_exactly_one_tenant_exists(manager)
        await manager.drop_tenant(RACE_TENANT)
        assert await manager.list_tenants() == []
