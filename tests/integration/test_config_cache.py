"""Tenant config through the cache, in-process and in Redis, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis
from sqlalchemy import update

from tenancy_fixtures import (
    ConfigError,
    ConfigFixture,
    FixtureManager,
    Settings,
    TenantConfig,
    TenantFixture,
    TenantNotFoundError,
)
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.tenancy.config_cache import ConfigCache, open_config_cache

GIB = 1024**3
TENANT = "cached_tenant"
TTL_SECONDS = 60.0

CACHES = [
    pytest.param("memory", id="memory-cache"),
    pytest.param("redis", id="redis-cache", marks=pytest.mark.redis),
]

SettingsFactory = Callable[[float], Settings]


class GatedCache:
    """A real config cache that, while gated, holds every ``set`` until it is released."""

    def __init__(self, inner: ConfigCache) -> None:
        self.inner = inner
        self.gated = False
        self.set_reached = asyncio.Event()
        self.release = asyncio.Event()

    async def get(self, tenant_id: str) -> str | None:
        return await self.inner.get(tenant_id)

    async def set(self, tenant_id: str, value: str, *, version: int) -> bool:
        if self.gated:
            self.set_reached.set()
            await self.release.wait()
        return await self.inner.set(tenant_id, value, version=version)

    async def invalidate(self, tenant_id: str, *, version: int) -> None:
        await self.inner.invalidate(tenant_id, version=version)

    async def forget(self, tenant_id: str) -> None:
        await self.inner.forget(tenant_id)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(params=CACHES)
def cache_kind(request: pytest.FixtureRequest) -> str:
    """Each test that asks for it runs with the in-process cache and with Redis."""
    return str(request.param)


@pytest.fixture
def make_settings(
    cache_kind: str, database_url: str, request: pytest.FixtureRequest
) -> SettingsFactory:
    """Settings on this test's backend and cache, with the given cache TTL."""
    redis_url: str | None = None
    redis_prefix = "tenancy"
    if cache_kind == "redis":
        redis_url = str(request.getfixturevalue("redis_url"))
        redis_prefix = str(request.getfixturevalue("redis_prefix"))

    def make(ttl_seconds: float = TTL_SECONDS) -> Settings:
        return Settings(
            database_url=database_url,
            redis_url=redis_url,
            redis_prefix=redis_prefix,
            cache_ttl_seconds=ttl_seconds,
            actor="pytest",
        )

    return make


async def _drop_all(manager: FixtureManager) -> None:
    for tenant in await manager.list_tenants():
        await manager.drop_tenant(tenant.tenant_id)


@pytest.fixture
async def cached_manager(make_settings: SettingsFactory) -> AsyncIterator[FixtureManager]:
    """A manager on this test's backend and cache; every tenant is dropped around the test."""
    async with FixtureManager(make_settings(TTL_SECONDS)) as manager:
        await _drop_all(manager)
        yield manager
        await _drop_all(manager)


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the real Redis, to look at the keys the cache writes."""
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def _tamper_stored_config(manager: FixtureManager, tenant_id: str, api_calls: int) -> None:
    """Change the stored config behind the library's back (no cache invalidation)."""
    async with manager.store.control() as conn:
        stored = await control_plane.load_config(conn, tenant_id)
        assert stored is not None
        stored["limits"] = stored["limits"] | {"api_calls": api_calls}
        table = control_plane.configs_table
        await conn.execute(
            update(table).where(table.c.tenant_id == tenant_id).values(config=stored)
        )


async def _stored_config(manager: FixtureManager, tenant_id: str) -> TenantConfig | None:
    async with manager.store.control() as conn:
        stored = await control_plane.load_config(conn, tenant_id)
    return TenantConfig.model_validate(stored) if stored is not None else None


async def test_config_after_create_is_the_tiers_config(cached_manager: FixtureManager) -> None:
    """A new premium tenant reads back the premium tier's features and limits."""
    created = await cached_manager.create_tenant(TENANT, tier="premium")

    config = await cached_manager.get_tenant_config(TENANT)

    assert config == created
    assert config.tenant_id == TENANT
    assert config.tier == "premium"
    assert config.limits.api_calls == 10_000
    assert config.limits.storage == 100 * GIB
    assert config.limits.users == 100
    assert config.limits.ai_requests_per_day == 5000
    assert config.has_feature("ai_recommendations")
    assert config.has_feature("catalog_browsing")  # from the defaults
    assert not config.has_feature("sso")  # enterprise only
    assert config.settings["retention_days"] == 365
    assert await _stored_config(cached_manager, TENANT) == config


async def test_second_read_is_served_from_the_cache(
    cached_manager: FixtureManager, cache_kind: str
) -> None:
    """After one read the config is cached: a change behind the library's back is not seen."""
    await cached_manager.create_tenant(TENANT, tier="premium")
    assert await cached_manager.cache.get(TENANT) is None

    first = await cached_manager.get_tenant_config(TENANT)
    await _tamper_stored_config(cached_manager, TENANT, api_calls=1)
    second = await cached_manager.get_tenant_config(TENANT)

    assert second == first
    assert second.limits.api_calls == 10_000
    assert await cached_manager.cache.get(TENANT) == first.model_dump_json()
    if cache_kind == "redis":
        assert cached_manager.settings.redis_url is not None
        client = Redis.from_url(cached_manager.settings.redis_url, decode_responses=True)
        try:
            key = f"{cached_manager.settings.redis_prefix}:config:{TENANT}"
            assert await client.exists(key) == 1
            raw = await client.get(key)
            assert isinstance(raw, str)
            assert TenantConfig.model_validate_json(raw) == first
            ttl_ms = await client.pttl(key)
            assert 0 < ttl_ms <= TTL_SECONDS * 1000
        finally:
            await client.aclose()


async def test_cached_config_expires_after_the_ttl(
    cached_manager: FixtureManager, make_settings: SettingsFactory
) -> None:
    """Once cache_ttl_seconds have passed the next read goes to the store again."""
    async with FixtureManager(make_settings(0.3)) as manager:
        await manager.create_tenant(TENANT, tier="premium")
        assert (await manager.get_tenant_config(TENANT)).limits.api_calls == 10_000
        await _tamper_stored_config(manager, TENANT, api_calls=7)
        assert (await manager.get_tenant_config(TENANT)).limits.api_calls == 10_000

        await asyncio.sleep(0.5)

        assert await manager.cache.get(TENANT) is None
        assert (await manager.get_tenant_config(TENANT)).limits.api_calls == 7
    assert [t.tenant_id for t in await cached_manager.list_tenants()] == [TENANT]


async def test_applying_a_config_invalidates_the_cached_entry(
    cached_manager: FixtureManager,
) -> None:
    """apply_tenant_config drops the cached entry, so the next read shows the new limits."""
    await cached_manager.create_tenant(TENANT, tier="premium")
    assert (await cached_manager.get_tenant_config(TENANT)).limits.api_calls == 10_000

    applied = await cached_manager.apply_tenant_config(
        TenantFixture(
            tenant_id=TENANT,
            tier="premium",
            features=["sso"],
            limits={"api_calls": 25_000, "storage": "250GB"},
        )
    )

    assert await cached_manager.cache.get(TENANT) is None
    config = await cached_manager.get_tenant_config(TENANT)
    assert config == applied
    assert config.limits.api_calls == 25_000
    assert config.limits.storage == 250 * GIB
    assert config.limits.users == 100  # the tier's, not overridden
    assert config.has_feature("sso")
    assert await _stored_config(cached_manager, TENANT) == config
    assert (await cached_manager.get_tenant(TENANT)).tier == "premium"


async def test_changing_the_tier_updates_the_registry_and_the_cached_config(
    cached_manager: FixtureManager,
) -> None:
    """Moving a tenant to enterprise shows the enterprise config and tier at once."""
    await cached_manager.create_tenant(TENANT)
    assert (await cached_manager.get_tenant_config(TENANT)).tier == "free"

    await cached_manager.apply_tenant_config(TenantFixture(tenant_id=TENANT, tier="enterprise"))

    config = await cached_manager.get_tenant_config(TENANT)
    assert config.tier == "enterprise"
    assert config.limits.api_calls == 1_000_000
    assert (await cached_manager.get_tenant(TENANT)).tier == "enterprise"


async def test_a_refused_config_change_leaves_the_stored_and_cached_config_alone(
    cached_manager: FixtureManager,
) -> None:
    """An invalid limit raises ConfigError and the tenant keeps its config."""
    await cached_manager.create_tenant(TENANT, tier="premium")
    before = await cached_manager.get_tenant_config(TENANT)

    with pytest.raises(ConfigError):
        await cached_manager.apply_tenant_config(
            TenantFixture(tenant_id=TENANT, tier="premium", limits={"api_calls": -1})
        )
    with pytest.raises(ConfigError):
        await cached_manager.apply_tenant_config(
            TenantFixture(tenant_id=TENANT, features=["no_such_feature"])
        )

    assert await cached_manager.get_tenant_config(TENANT) == before
    assert await _stored_config(cached_manager, TENANT) == before


async def test_drop_removes_the_cached_entry(cached_manager: FixtureManager) -> None:
    """After a drop the config is neither cached nor stored, and a new tenant reads fresh."""
    await cached_manager.create_tenant(TENANT, tier="enterprise")
    await cached_manager.get_tenant_config(TENANT)
    assert await cached_manager.cache.get(TENANT) is not None

    await cached_manager.drop_tenant(TENANT)

    assert await cached_manager.cache.get(TENANT) is None
    with pytest.raises(TenantNotFoundError):
        await cached_manager.get_tenant_config(TENANT)
    await cached_manager.create_tenant(TENANT, tier="free")
    assert (await cached_manager.get_tenant_config(TENANT)).tier == "free"


async def test_design_snippet_applies_the_premium_config(
    cached_manager: FixtureManager, make_settings: SettingsFactory
) -> None:
    """The DESIGN snippet creates premium_001 with the given features and limits."""
    settings = make_settings(TTL_SECONDS)

    config_fixture = ConfigFixture(settings)
    try:
        await config_fixture.apply_tenant_config(
            TenantFixture(
                tenant_id="premium_001",
                features=["ai_collaboration", "advanced_analytics"],
                limits={"api_calls": 10000, "storage": "100GB"},
            )
        )
        read_back = await config_fixture.get_tenant_config("premium_001")
    finally:
        await config_fixture.aclose()

    stored = await _stored_config(cached_manager, "premium_001")
    assert stored is not None
    assert stored == read_back
    assert stored.limits.api_calls == 10000
    assert stored.limits.storage == 100 * GIB
    assert stored.has_feature("ai_collaboration")
    assert stored.has_feature("advanced_analytics")
    assert stored.describe_limits()["storage"] == "100GB"
    assert (await cached_manager.get_tenant("premium_001")).tier == "free"
    assert await cached_manager.get_tenant_config("premium_001") == stored
    assert await cached_manager.store.storage_exists("premium_001")
    status = await cached_manager.tenant_status("premium_001")
    assert status.fixtures.keys() == {"schema", "config"}


async def test_a_read_racing_a_change_does_not_cache_the_old_config(
    cached_manager: FixtureManager, make_settings: SettingsFactory
) -> None:
    """A read that started before a config change never makes later reads see the old config."""
    settings = make_settings(TTL_SECONDS)
    cache = GatedCache(open_config_cache(settings))
    async with FixtureManager(settings, cache=cache) as manager:
        await manager.create_tenant(TENANT, tier="premium")
        cache.gated = True
        early_read = asyncio.create_task(manager.get_tenant_config(TENANT))
        await asyncio.wait_for(cache.set_reached.wait(), 5)  # it has read api_calls=10000

        await manager.apply_tenant_config(
            TenantFixture(tenant_id=TENANT, tier="premium", limits={"api_calls": 42})
        )
        cache.gated = False
        cache.release.set()
        assert (await early_read).limits.api_calls == 10_000  # began before the change: fine

        assert (await manager.get_tenant_config(TENANT)).limits.api_calls == 42


@pytest.mark.redis
async def test_a_change_through_one_manager_invalidates_another_managers_redis_cache(
    database_url: str, redis_url: str, redis_prefix: str, redis_client: Redis
) -> None:
    """Two managers sharing a Redis prefix never read a config older than the last change."""
    settings = Settings(
        database_url=database_url, redis_url=redis_url, redis_prefix=redis_prefix, actor="pytest"
    )
    async with FixtureManager(settings) as reader, FixtureManager(settings) as writer:
        await _drop_all(writer)
        try:
            await writer.create_tenant(TENANT, tier="premium")
            assert (await reader.get_tenant_config(TENANT)).limits.api_calls == 10_000
            assert await redis_client.exists(f"{redis_prefix}:config:{TENANT}") == 1

            await writer.apply_tenant_config(
                TenantFixture(tenant_id=TENANT, tier="premium", limits={"api_calls": 42})
            )

            assert await redis_client.exists(f"{redis_prefix}:config:{TENANT}") == 0
            assert (await reader.get_tenant_config(TENANT)).limits.api_calls == 42
            await writer.drop_tenant(TENANT)
            with pytest.raises(TenantNotFoundError):
                await reader.get_tenant_config(TENANT)
        finally:
            await _drop_all(writer)
