"""Shared fixtures: both backends, real PostgreSQL and Redis, a manager per test.

PostgreSQL tests run in a database created for this run (one per xdist worker) and
dropped afterwards; Redis tests use a key prefix unique to the test and delete their
keys. Where a server is unreachable the tests skip with a loud reason, except in CI
(``CI=true``), where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import structlog
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url

from tenancy_fixtures import FixtureManager, Settings, spotify
from tenancy_fixtures.fixtures.templates import BUILTIN_TEMPLATE_DIR
from tests.cleanup import drop_every_tenant
from tests.integration.chain_db import drop_spare_databases
from tests.postgres import asyncpg_dsn
from tests.stamp_oracle import stamped_tables_are_recomputed  # noqa: F401 (autouse)

POSTGRES_ADMIN_URL = os.environ.get("TENANCY_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TENANCY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# The suite exercises the built-in domain through the engine's registries, as a user's
# own domain would register itself.
spotify.register()
# Most tests load the 20-user demo set into free-tier tenants (5 users) to test loading,
# not limits: limits are enforced only where a test asks (tests/*/test_*limits*.py,
# Settings(enforce_limits=True)). Set before any Settings is made; the CLI inherits it.
os.environ.setdefault("TENANCY_ENFORCE_LIMITS", "false")
# Tests press Ctrl-C (SIGINT), in-process and in the commands they start. A suite run as
# a background job (`make test &`, a CI runner without a terminal) inherits SIGINT
# ignored, and Python then installs no KeyboardInterrupt handler, nor asyncio.run its
# own: restore Python's default, before xdist starts its workers (which inherit it).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# Test directories (tmp_path) on a RAM disk where Linux has one: every SQLite commit
# flushes to the disk, and on an ext4 /tmp that made a SQLite service test's set-up 2-3x
# as long. No test kills the machine, only processes (whose writes the page cache
# keeps), so none depends on the flush. Set before pytest first asks for its base
# directory (xdist's workers get theirs from it); PYTEST_DEBUG_TEMPROOT set by the
# caller wins.
RAM_DISK = Path("/dev/shm")
if RAM_DISK.is_dir() and os.access(RAM_DISK, os.W_OK | os.X_OK):
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", str(RAM_DISK))

DEMO_SET = BUILTIN_TEMPLATE_DIR / "fixtures" / "demo"

# The plugin tests (tests/plugin) run inner test suites; pytest reads pytest_plugins
# only here, in the top-level conftest.
pytest_plugins = ["pytester"]

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def unavailable(reason: str) -> None:
    """Skip loudly on a laptop; fail in CI, where the servers must be there."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(f"SKIPPED LOUDLY: {reason}")


async def _pg_execute(sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(POSTGRES_ADMIN_URL), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url(worker_id: str) -> Iterator[str]:
    """A PostgreSQL database of this run, as an asyncpg URL; dropped at the end.

    Its commits do not wait for the WAL to reach the disk (``synchronous_commit = off``):
    the tests kill clients, never the server, so nothing they check depends on the flush,
    and creating a tenant (DDL) takes half the time without it.
    """
    name = f"tf_test_{uuid.uuid4().hex[:10]}_{worker_id}".replace("-", "_")
    try:
        asyncio.run(_pg_execute(f'CREATE DATABASE "{name}"'))
        asyncio.run(_pg_execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        unavailable(f"PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable: {exc}")
    url = make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+asyncpg", database=name)
    yield url.render_as_string(hide_password=False)
    asyncio.run(drop_spare_databases(url.render_as_string(hide_password=False)))
    asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def redis_url() -> str:
    """The real Redis; skips (fails in CI) if it is unreachable."""
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except RedisError as exc:
        unavailable(f"Redis at {REDIS_URL} is unreachable: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A Redis key prefix unique to this test; its keys are deleted afterwards."""
    prefix = f"tf_test_{uuid.uuid4().hex[:12]}"
    yield prefix
    client = Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(autouse=True, scope="module")
def structlog_is_left_as_found() -> Iterator[None]:
    """A module that configures structlog (the CLI does, in process) undoes it: left
    configured, the library logs through structlog's defaults for every later test of the
    worker, and a logged exception then costs seconds of rich traceback rendering."""
    configured = structlog.is_configured()
    yield
    assert structlog.is_configured() == configured, "this module left structlog configured"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each test that asks for it runs once per backend."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The database URL of this test's backend."""
    if backend == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'data'}"


@pytest.fixture(params=["keys-kept", "keys-deferred"])
def load_path(request: pytest.FixtureRequest) -> str:
    """Each test that asks for it runs once with loads into new tenants keeping their keys
    in place (small loads) and once with them dropping keys to rebuild them at the end
    (loads of ``bulk_load_min_bytes`` or more); the ``settings`` fixture follows it."""
    return str(request.param)


@pytest.fixture
def settings(database_url: str, request: pytest.FixtureRequest) -> Settings:
    """Settings for this test's backend with the in-process cache (every load deferring
    keys under ``load_path`` ``keys-deferred``)."""
    deferred = (
        "load_path" in request.fixturenames
        and request.getfixturevalue("load_path") == "keys-deferred"
    )
    settings = Settings(database_url=database_url, actor="pytest")
    return settings.model_copy(update={"bulk_load_min_bytes": 0}) if deferred else settings


@pytest.fixture
async def manager(settings: Settings) -> AsyncIterator[FixtureManager]:
    """A manager on this test's backend; every tenant it made is dropped afterwards (on
    PostgreSQL: a SQLite data directory is the test's own and left as it is)."""
    async with FixtureManager(settings) as fixture_manager:
        shared = fixture_manager.store.backend == "postgresql"
        if shared:
            await drop_every_tenant(fixture_manager)
        yield fixture_manager
        if shared:
            await drop_every_tenant(fixture_manager)


@pytest.fixture
def demo_set() -> Path:
    """The built-in Spotify demo fixture set."""
    return DEMO_SET
