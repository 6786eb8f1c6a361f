"""PostgreSQL over verified TLS: the TENANCY_PG_SSL* settings against a real cluster with
ssl=on and a throwaway CA.

verify-full connects with the right CA and refuses a wrong CA or a host name the
certificate does not name; the server's own pg_stat_ssl shows the connections were TLS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tenancy_fixtures import FixtureManager, Settings, StorageError
from tenancy_fixtures.settings import PgSslMode
from tests.conftest import DEMO_SET
from tests.tls.certificates import CLIENT_USER, Certificates
from tests.tls.servers import PostgresTls

#: One worker starts the TLS cluster (and runs these tests), not every worker.
pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("tls")]

TENANT = "tls_tenant"


async def _ssl_of_connections(admin: asyncpg.Connection, database: str) -> list[dict[str, Any]]:
    """What the server says about the TLS of every other client connection to ``database``."""
    rows = await admin.fetch(
        """SELECT s.ssl, s.version, s.client_dn, a.usename
           FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
           WHERE a.datname = $1 AND a.backend_type = 'client backend'
             AND a.pid <> pg_backend_pid()""",
        database,
    )
    return [dict(row) for row in rows]


def _settings(
    url: str,
    mode: PgSslMode,
    *,
    ca: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
) -> Settings:
    return Settings(
        database_url=url,
        pg_sslmode=mode,
        pg_sslrootcert=str(ca) if ca else None,
        pg_sslcert=cert,
        pg_sslkey=key,
        actor="pytest",
    )


async def _refusal(settings: Settings) -> StorageError:
    with pytest.raises(StorageError) as caught:
        async with FixtureManager(settings) as manager:
            await manager.create_tenant(TENANT)
    return caught.value


async def test_a_tenant_is_created_and_loaded_over_verify_full(
    pg_tls: PostgresTls,
    tls_database: str,
    certificates: Certificates,
    pg_admin: asyncpg.Connection,
) -> None:
    """With TENANCY_PG_SSLMODE=verify-full and the right CA, a tenant is created and its
    fixtures loaded, and every connection the server saw was TLS."""
    settings = Settings(
        database_url=pg_tls.url(tls_database),
        pg_sslmode="verify-full",
        pg_sslrootcert=str(certificates.ca),
        actor="pytest",
    )
    async with FixtureManager(settings) as manager:
        await manager.create_tenant(TENANT)
        report = await manager.load_fixtures(TENANT, DEMO_SET)
        seen = await _ssl_of_connections(pg_admin, tls_database)

    assert report.row_counts["users"] > 0
    assert seen
    assert all(entry["ssl"] and entry["version"].startswith("TLSv1.") for entry in seen)


async def test_the_url_parameters_still_say_the_same(
    pg_tls: PostgresTls, tls_database: str, certificates: Certificates
) -> None:
    """sslmode=verify-full&sslrootcert=... in TENANCY_DATABASE_URL works as the settings do."""
    url = f"{pg_tls.url(tls_database)}?sslmode=verify-full&sslrootcert={certificates.ca}"

    async with FixtureManager(Settings(database_url=url, actor="pytest")) as manager:
        await manager.create_tenant(TENANT)

        assert [TENANT] == [t.tenant_id for t in await manager.list_tenants()]


async def test_verify_full_with_the_wrong_ca_is_a_storage_error_about_the_certificate(
    pg_tls: PostgresTls, tls_database: str, certificates: Certificates
) -> None:
    """A server certificate that does not chain to TENANCY_PG_SSLROOTCERT is refused with
    a StorageError that says so and is not retried as transient."""
    error = await _refusal(
        Settings(
            database_url=pg_tls.url(tls_database),
            pg_sslmode="verify-full",
            pg_sslrootcert=str(certificates.wrong_ca),
        )
    )

    assert "TLS" in str(error)
    assert "certificate was refused" in str(error)
    assert not error.transient


async def test_verify_full_refuses_a_host_name_the_certificate_does_not_name(
    pg_tls: PostgresTls, tls_database: str, certificates: Certificates
) -> None:
    """127.0.0.2 reaches the same server, but its certificate names only localhost and
    127.0.0.1: verify-full refuses it, verify-ca (no host check) accepts it."""
    url = pg_tls.url(tls_database, host="127.0.0.2")

    error = await _refusal(_settings(url, "verify-full", ca=certificates.ca))
    async with FixtureManager(_settings(url, "verify-ca", ca=certificates.ca)) as manager:
        await manager.create_tenant(TENANT)

    assert "TLS" in str(error)
    assert "127.0.0.2" in str(error)
    assert not error.transient


async def test_require_without_a_ca_encrypts_without_verifying(
    pg_tls: PostgresTls, tls_database: str, pg_admin: asyncpg.Connection
) -> None:
    """sslmode=require needs no CA: the connection is TLS (the server says so), the
    server's certificate unchecked."""
    settings = Settings(
        database_url=pg_tls.url(tls_database, host="127.0.0.2"), pg_sslmode="require"
    )
    async with FixtureManager(settings) as manager:
        await manager.create_tenant(TENANT)
        seen = await _ssl_of_connections(pg_admin, tls_database)

    assert seen
    assert all(entry["ssl"] for entry in seen)


async def test_a_client_certificate_authenticates_its_user(
    pg_tls: PostgresTls,
    tls_database: str,
    certificates: Certificates,
    pg_admin: asyncpg.Connection,
) -> None:
    """TENANCY_PG_SSLCERT and _SSLKEY present the client certificate: the server (cert
    authentication for tf_cert) accepts it and names its subject; without it, refused."""
    url = pg_tls.url(tls_database, user=CLIENT_USER)
    settings = _settings(
        url,
        "verify-full",
        ca=certificates.ca,
        cert=certificates.client_cert,
        key=certificates.client_key,
    )

    async with FixtureManager(settings) as manager:
        await manager.create_tenant(TENANT)
        seen = await _ssl_of_connections(pg_admin, tls_database)
    error = await _refusal(_settings(url, "verify-full", ca=certificates.ca))

    assert {(True, f"/CN={CLIENT_USER}", CLIENT_USER)} == {
        (entry["ssl"], entry["client_dn"], entry["usename"]) for entry in seen
    }
    assert "certificate" in str(error)
