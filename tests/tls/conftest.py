"""Fixtures of the TLS tests: throwaway certificates, and a PostgreSQL cluster and a
redis-server speaking TLS with them, started once per session (the tests that use them
share one xdist worker: ``xdist_group("tls")``).

Each PostgreSQL test gets a database of its own on the TLS cluster, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from tests.tls.certificates import CLIENT_USER, Certificates, make_certificates
from tests.tls.servers import PostgresTls, RedisTls, postgres_tls, redis_tls


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A CA with a server certificate (localhost, 127.0.0.1) and a client certificate
    (CN=tf_cert), and a wrong CA."""
    return make_certificates(tmp_path_factory.mktemp("certificates"))


@pytest.fixture(scope="session")
def pg_tls(certificates: Certificates) -> Iterator[PostgresTls]:
    """The session's PostgreSQL cluster with ssl=on."""
    with postgres_tls(certificates) as server:
        asyncio.run(_superuser(server, f'CREATE ROLE "{CLIENT_USER}" LOGIN SUPERUSER'))
        yield server


@pytest.fixture(scope="session")
def rediss(certificates: Certificates) -> Iterator[RedisTls]:
    """The session's redis-server, TLS only."""
    with redis_tls(certificates) as server:
        yield server


async def _superuser(server: PostgresTls, sql: str) -> None:
    connection = await asyncpg.connect(
        host=str(server.socket_dir), port=server.port, user="postgres", database="postgres"
    )
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture
async def tls_database(pg_tls: PostgresTls) -> AsyncIterator[str]:
    """The name of a fresh database on the TLS cluster, dropped after the test."""
    name = f"tf_tls_{uuid.uuid4().hex[:10]}"
    await _superuser(pg_tls, f'CREATE DATABASE "{name}"')
    yield name
    await _superuser(pg_tls, f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
async def pg_admin(pg_tls: PostgresTls, tls_database: str) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection over the Unix socket (no TLS) to the test's database."""
    connection = await asyncpg.connect(
        host=str(pg_tls.socket_dir), port=pg_tls.port, user="postgres", database=tls_database
    )
    yield connection
    await connection.close()
