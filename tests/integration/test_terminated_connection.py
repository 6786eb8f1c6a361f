"""A PostgreSQL connection terminated in the middle of a load: retried, logged once, quiet.

The loading connection is ended for real with ``pg_terminate_backend`` while it is
copying rows; the load is retried to success, the retry is logged once with its reason
and attempt, and asyncio's ``socket.send() raised exception.`` noise stays out of the logs.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import asyncpg
import pytest

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.spotify.generator import generate_fixture_set
from tests.log_capture import captured_logs
from tests.postgres import asyncpg_dsn

pytestmark = pytest.mark.postgres

LOST_WRITE = "socket.send() raised exception."
#: listening_events at this scale is ~10 of asyncpg's 512 KiB COPY chunks: enough that,
#: terminated as its COPY starts, more than the 5 writes asyncio tolerates silently follow.
SCALE = 60
#: The biggest table's COPY: the one terminated.
COPYING = "COPY%listening_events%"


async def _terminate_copy(postgres_url: str) -> int:
    """Wait for a backend of the test database to COPY into listening_events, terminate it,
    return its pid."""
    conn = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        async with asyncio.timeout(60):
            while True:
                pid = await conn.fetchval(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state = 'active' AND query ILIKE $1",
                    COPYING,
                )
                if pid is not None:
                    assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
                    return int(pid)
                await asyncio.sleep(0.002)
    finally:
        await conn.close()


async def test_a_load_whose_connection_is_terminated_mid_copy_is_retried_and_logged_once(
    postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """pg_terminate_backend of the loading connection during its COPY: the load succeeds,
    one storage_retry warning names attempt 1 and the reason, and no asyncio
    'socket.send() raised exception.' line is logged."""
    fixture_set = tmp_path / "set"
    generate_fixture_set(fixture_set, scale=SCALE)
    tenant = f"terminated_{uuid.uuid4().hex[:8]}"
    settings = Settings(database_url=postgres_url, actor="pytest", parse_workers=0)
    async with FixtureManager(settings) as manager:
        await manager.create_tenant(tenant)
        try:
            caplog.set_level(logging.DEBUG, logger="asyncio")
            killer = asyncio.create_task(_terminate_copy(postgres_url))
            with captured_logs() as logs:
                report = await manager.load_fixtures(tenant, source=fixture_set)
            if not killer.done():
                killer.cancel()
                pytest.fail("the load finished before its COPY into listening_events was seen")
            await killer

            retries = [e for e in logs if e["event"] == "storage_retry"]
            assert 1 == len(retries), retries
            assert ("warning", 1, 4) == (
                retries[0]["log_level"],
                retries[0]["attempt"],
                retries[0]["of"],
            )
            assert "terminating connection due to administrator command" == retries[0]["reason"]
            assert [] == [r for r in caplog.records if r.getMessage() == LOST_WRITE]
            status = await manager.tenant_status(tenant)
            assert report.rows == status.total_rows
        finally:
            await manager.drop_tenant(tenant)
