"""The config cache over rediss:// against a real redis-server that speaks only TLS.

With the right CA the cache is used; with a wrong CA or a host name the certificate does
not name, Redis is treated as down, as the config cache documents: every operation still
succeeds from the database, and the outage is logged once.
"""

from __future__ import annotations

import uuid
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from tenancy_fixtures import FixtureManager, Settings
from tests.log_capture import captured_logs
from tests.tls.certificates import Certificates
from tests.tls.servers import RedisTls

#: One worker starts the TLS redis-server (and runs these tests), not every worker.
pytestmark = [pytest.mark.redis, pytest.mark.xdist_group("tls")]

TENANT = "tls_tenant"


def _cached_keys(rediss: RedisTls, certificates: Certificates, prefix: str) -> list[str]:
    client = Redis.from_url(rediss.url(), ssl_ca_certs=str(certificates.ca), decode_responses=True)
    try:
        return list(client.scan_iter(f"{prefix}:*:config:*"))
    finally:
        client.close()


async def _create_and_read_twice(settings: Settings) -> tuple[list[MutableMapping[str, Any]], str]:
    with captured_logs() as logs:
        async with FixtureManager(settings) as manager:
            await manager.create_tenant(TENANT, tier="premium")
            await manager.get_tenant_config(TENANT)
            tier = (await manager.get_tenant_config(TENANT)).tier
    return [e for e in logs if e["event"] == "config_cache_redis_unavailable"], tier


def _settings(tmp_path: Path, url: str, ca: Path, prefix: str) -> Settings:
    # A TLS handshake on a loaded 2-core machine can outlast the 0.25 s default, which
    # reports Redis down (seen once): these tests are about verification, not timeouts.
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'data'}",
        redis_url=url,
        redis_ssl_ca_certs=ca,
        redis_prefix=prefix,
        redis_timeout_seconds=5.0,
        actor="pytest",
    )


async def test_the_config_cache_uses_redis_over_verified_tls(
    tmp_path: Path, rediss: RedisTls, certificates: Certificates
) -> None:
    """rediss:// with TENANCY_REDIS_SSL_CA_CERTS set to the right CA: the config is cached
    in Redis and Redis is never reported unavailable."""
    prefix = f"tf_tls_{uuid.uuid4().hex[:8]}"

    outages, tier = await _create_and_read_twice(
        _settings(tmp_path, rediss.url(), certificates.ca, prefix)
    )

    assert ([], "premium") == (outages, tier)
    assert 1 == len(_cached_keys(rediss, certificates, prefix))


@pytest.mark.parametrize("refusal", ["wrong CA", "host name"])
async def test_a_redis_whose_certificate_is_refused_is_left_for_the_database(
    tmp_path: Path, rediss: RedisTls, certificates: Certificates, refusal: str
) -> None:
    """A server certificate from another CA, or for another host name (127.0.0.2): no
    config reaches Redis, every read answers from the database, and one warning says
    why."""
    prefix = f"tf_tls_{uuid.uuid4().hex[:8]}"
    url, ca = (
        (rediss.url(), certificates.wrong_ca)
        if refusal == "wrong CA"
        else (rediss.url(host="127.0.0.2"), certificates.ca)
    )

    outages, tier = await _create_and_read_twice(_settings(tmp_path, url, ca, prefix))

    assert "premium" == tier
    assert [] == _cached_keys(rediss, certificates, prefix)
    assert 1 == len(outages)
    assert "certificate" in outages[0]["error"].lower()
    assert "database" == outages[0]["fallback"]


@pytest.mark.parametrize("given_in", ["setting", "url"])
async def test_a_ca_path_under_the_home_directory_is_used_as_it_was_checked(
    tmp_path: Path,
    rediss: RedisTls,
    certificates: Certificates,
    monkeypatch: pytest.MonkeyPatch,
    given_in: str,
) -> None:
    """``~/ca.pem``: the start-up check expanded it and passed, but redis-py was handed
    the path unexpanded, could not open it at each connection, and the cache stayed on
    the database for good (an outage warning, nothing in Redis)."""
    monkeypatch.setenv("HOME", str(certificates.ca.parent))
    prefix = f"tf_tls_{uuid.uuid4().hex[:8]}"
    home_ca = f"~/{certificates.ca.name}"
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'data'}",
        redis_url=rediss.url() + (f"?ssl_ca_certs={home_ca}" if given_in == "url" else ""),
        redis_ssl_ca_certs=Path(home_ca) if given_in == "setting" else None,
        redis_prefix=prefix,
        actor="pytest",
    )

    outages, tier = await _create_and_read_twice(settings)

    assert ([], "premium") == (outages, tier)
    assert 1 == len(_cached_keys(rediss, certificates, prefix))
