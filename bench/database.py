"""The benchmark's own PostgreSQL database: created per run, dropped at the end.

Every case runs in one database named ``tf_bench_<random>`` on the server that
``TENANCY_BENCH_DATABASE_URL`` points at (default the local ``test`` database, which
is only used to create and drop ours). The database is dropped even when the run
fails or is interrupted.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL, make_url

__all__ = [
    "DEFAULT_URL",
    "BenchDatabase",
    "bench_database",
    "bench_url",
    "quote_ident",
]

DEFAULT_URL = "postgresql://127.0.0.1:5432/test"
ENV_VAR = "TENANCY_BENCH_DATABASE_URL"


def bench_url() -> str:
    """The server to benchmark on: ``TENANCY_BENCH_DATABASE_URL`` or the local default."""
    return os.environ.get(ENV_VAR) or DEFAULT_URL


def quote_ident(name: str) -> str:
    """``name`` as a PostgreSQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _plain(url: URL) -> str:
    """A ``postgresql://`` URL that psql, asyncpg and our Settings all accept."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass(frozen=True)
class BenchDatabase:
    """The per-run database: its URLs for every client the cases use."""

    url: URL

    @property
    def name(self) -> str:
        return str(self.url.database)

    @property
    def dsn(self) -> str:
        """``postgresql://...``: for psql, asyncpg and ``Settings(database_url=...)``."""
        return _plain(self.url)

    @property
    def sqlalchemy_url(self) -> str:
        """``postgresql+asyncpg://...``: for ``create_async_engine``."""
        return self.url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.dsn)

    async def execute(self, script: str) -> None:
        """Run ``script`` (one or more statements) in one transaction on a new connection."""
        conn = await self.connect()
        try:
            async with conn.transaction():
                await conn.execute(script)
        finally:
            await conn.close()

    async def drop_schema(self, schema: str) -> None:
        await self.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")

    async def settle(self) -> None:
        """Flush dirty buffers left by earlier cases so they do not bill the next one."""
        conn = await self.connect()
        try:
            await conn.execute("CHECKPOINT")
        except asyncpg.InsufficientPrivilegeError:
            pass
        finally:
            await conn.close()

    async def server_version(self) -> str:
        conn = await self.connect()
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    async def run_psql(self, script: Path) -> float:
        """Run ``script`` with psql in one transaction, stopping at the first error.

        Returns the wall-clock seconds of the psql process.
        """
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "--single-transaction",
            "-d",
            self.dsn,
            "-f",
            str(script),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        seconds = time.perf_counter() - started
        if process.returncode != 0:
            raise RuntimeError(
                f"psql -f {script} failed ({process.returncode}): "
                f"{err.decode(errors='replace').strip() or out.decode(errors='replace').strip()}"
            )
        return seconds


@asynccontextmanager
async def bench_database(server_url: str) -> AsyncIterator[BenchDatabase]:
    """Create ``tf_bench_<random>`` on ``server_url``'s server; drop it afterwards."""
    base = make_url(server_url)
    name = f"tf_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(_plain(base))
    try:
        await admin.execute(f"CREATE DATABASE {quote_ident(name)}")
    finally:
        await admin.close()
    try:
        yield BenchDatabase(base.set(database=name))
    finally:
        admin = await asyncpg.connect(_plain(base))
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        finally:
            await admin.close()
