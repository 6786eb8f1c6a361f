"""A Redis that hangs or speaks no TLS costs the config cache milliseconds, logged once.

The hung Redis is a real ``redis-server`` this module starts on a spare loopback port
and pauses with SIGSTOP (its socket still accepts connections, nothing answers); it is
killed at teardown whatever happened.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from redis.exceptions import RedisError

from tenancy_fixtures import FixtureManager, Settings, TenantFixture
from tests.log_capture import captured_logs

pytestmark = pytest.mark.redis

TENANT = "hung_redis"
#: Long enough for the paused phase to end before the breaker lets a call through.
COOL_DOWN = 2.0
#: The cache's Redis call timeout: what each read costs while the breaker lets calls through.
TIMEOUT = 0.25


@dataclass
class RedisServer:
    """A redis-server of this test: its URL and process id."""

    url: str
    pid: int

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def client(self) -> Redis:
        return Redis.from_url(self.url, decode_responses=True, socket_timeout=2)


def _spare_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server on a spare loopback port, without persistence."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI=true and redis-server is not installed", pytrace=False)
        pytest.skip("SKIPPED LOUDLY: redis-server is not installed")
    port = _spare_port()
    pidfile = tmp_path / "redis.pid"
    subprocess.run(
        [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "yes",
            "--pidfile", str(pidfile),
            "--dir", str(tmp_path),
        ],
        check=True,
    )  # fmt: skip
    server = RedisServer(url=f"redis://127.0.0.1:{port}/0", pid=0)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                server.pid = int(pidfile.read_text())
                with server.client() as client:
                    client.ping()
                break
            except (OSError, ValueError, RedisError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield server
    finally:
        if server.pid:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(server.pid, sig)
                except ProcessLookupError:
                    break


def _events(logs: Sequence[MutableMapping[str, Any]], event: str) -> list[Any]:
    return [entry for entry in logs if entry["event"] == event]


async def _timed_read(manager: FixtureManager) -> tuple[float, str]:
    started = time.perf_counter()
    config = await manager.get_tenant_config(TENANT)
    return time.perf_counter() - started, config.tier


async def test_a_paused_redis_costs_one_read_under_a_second_then_milliseconds(
    database_url: str, redis_server: RedisServer
) -> None:
    """With the cache's Redis paused, the first config read returns within a second, the
    next ones and a tier change within milliseconds, the outage is logged once, and once
    Redis runs again and the cool-down has passed it is used again."""
    settings = Settings(
        database_url=database_url,
        redis_url=redis_server.url,
        redis_breaker_seconds=COOL_DOWN,
        redis_timeout_seconds=TIMEOUT,
        actor="pytest",
    )
    async with FixtureManager(settings) as manager:
        for tenant in await manager.list_tenants():
            await manager.drop_tenant(tenant.tenant_id)
        await manager.create_tenant(TENANT, tier="premium")
        try:
            await manager.get_tenant_config(TENANT)  # cached in Redis
            key = f"tenancy:{await manager.config.plane_id()}:config:{TENANT}"
            with redis_server.client() as client:
                assert 1 == client.exists(key)

            redis_server.pause()
            with captured_logs() as paused_logs:
                first, tier = await _timed_read(manager)
                later = [await _timed_read(manager) for _ in range(10)]
                started = time.perf_counter()
                await manager.apply_tenant_config(
                    TenantFixture(tenant_id=TENANT, tier="enterprise")
                )
                tier_change = time.perf_counter() - started
                after_change = await _timed_read(manager)

            assert "premium" == tier
            assert first < 1.0, first
            # One read may stall on a busy machine (a collection, another process); a
            # breaker that lets calls through costs every read the Redis timeout.
            seconds = sorted(seconds for seconds, _ in later)
            assert seconds[len(seconds) // 2] < 0.05, later
            assert sum(1 for each in seconds if each >= TIMEOUT) <= 1, later
            assert tier_change < 0.5, tier_change
            assert "enterprise" == after_change[1]
            warnings = _events(paused_logs, "config_cache_redis_unavailable")
            assert 1 == len(warnings), paused_logs
            assert "warning" == warnings[0]["log_level"]

            redis_server.resume()
            await asyncio.sleep(COOL_DOWN + 0.2)
            with captured_logs() as resumed_logs:
                assert "enterprise" == (await _timed_read(manager))[1]

            assert 1 == len(_events(resumed_logs, "config_cache_redis_recovered"))
            with redis_server.client() as client:
                assert '"tier":"enterprise"' in str(client.get(key))
        finally:
            redis_server.resume()
            await manager.drop_tenant(TENANT)


async def test_a_rediss_url_to_a_redis_without_tls_falls_back_at_once_and_warns_once(
    database_url: str, redis_url: str, redis_prefix: str
) -> None:
    """rediss:// to a Redis that speaks no TLS: the handshake fails within the Redis
    timeout, reads and a tier change then take milliseconds, and one warning says the
    cache is unavailable and the database answers instead."""
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url.replace("redis://", "rediss://", 1),
        redis_prefix=redis_prefix,
        actor="pytest",
    )
    async with FixtureManager(settings) as manager:
        for tenant in await manager.list_tenants():
            await manager.drop_tenant(tenant.tenant_id)
        try:
            with captured_logs() as logs:
                started = time.perf_counter()
                await manager.create_tenant(TENANT, tier="premium")
                tiers = [(await _timed_read(manager))[1] for _ in range(5)]
                await manager.apply_tenant_config(TenantFixture(tenant_id=TENANT, tier="free"))
                tiers.append((await _timed_read(manager))[1])
                elapsed = time.perf_counter() - started

            assert ["premium"] * 5 + ["free"] == tiers
            assert elapsed < 2.0, elapsed
            warnings = _events(logs, "config_cache_redis_unavailable")
            assert 1 == len(warnings), logs
            assert ("warning", "database") == (warnings[0]["log_level"], warnings[0]["fallback"])
        finally:
            await manager.drop_tenant(TENANT)
