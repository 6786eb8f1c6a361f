"""Tenant config through the cache, in-process and in Redis, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

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
from tenancy_fixtures.tenancy.config_cache import (
    CachedConfig,
    ConfigCache,
    open_config_cache,
    version_checks,
)
from tests.cleanup import drop_every_tenant

GIB = 1024**3
TENANT = "cached_tenant"
TTL_SECONDS = 60.0

CACHES = [
    pytest.param("memory", id="memory-cache"),
    pytest.param("redis", id="redis-cache", marks=pytest.mark.redis),
]

SettingsFactory = Callable[..., Settings]


class GatedCache:
    """A real config cache that, while gated, holds every ``set`` until it is released."""

    def __init__(self, inner: ConfigCache) -> None:
        self.inner = inner
        self.gated = False
        self.set_reached = asyncio.Event()
        self.release = asyncio.Event()

    async def get(self, plane_id: str, tenant_id: str) -> CachedConfig | None:
        return await self.inner.get(plane_id, tenant_id)

    async def set(self, plane_id: str, tenant_id: str, value: str, *, version: int) -> bool:
        if self.gated:
            self.set_reached.set()
            await self.release.wait()
        return await self.inner.set(plane_id, tenant_id, value, version=version)

    async def invalidate(self, plane_id: str, tenant_id: str, *, version: int) -> bool:
        return await self.inner.invalidate(plane_id, tenant_id, version=version)

    async def forget(self, plane_id: str, tenant_id: str) -> bool:
        return await self.inner.forget(plane_id, tenant_id)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(params=CACHES)
def cache_kind(request: pytest.FixtureRequest) -> str:
    """Each test that asks for it runs with the in-process cache and with Redis."""
    return str(request.param)


@pytest.fixture
def cache_options(cache_kind: str, request: pytest.FixtureRequest) -> dict[str, str | None]:
    """The settings that pick this test's cache: none, or the real Redis and a fresh prefix."""
    if cache_kind != "redis":
        return {"redis_url": None, "redis_prefix": "tenancy"}
    return {
        "redis_url": str(request.getfixturevalue("redis_url")),
        "redis_prefix": str(request.getfixturevalue("redis_prefix")),
    }


@pytest.fixture
def make_settings(cache_options: dict[str, str | None], database_url: str) -> SettingsFactory:
    """Settings on this test's backend and cache, with the given cache TTL."""

    def make(
        ttl_seconds: float = TTL_SECONDS,
        *,
        revalidate_seconds: float = 1.0,
        url: str = database_url,
    ) -> Settings:
        return Settings(
            database_url=url,
            redis_url=cache_options["redis_url"],
            redis_prefix=cache_options["redis_prefix"] or "tenancy",
            cache_ttl_seconds=ttl_seconds,
            cache_revalidate_seconds=revalidate_seconds,
            actor="pytest",
        )

    return make


@pytest.fixture
async def cached_manager(make_settings: SettingsFactory) -> AsyncIterator[FixtureManager]:
    """A manager on this test's backend and cache; every tenant is dropped around the test."""
    async with FixtureManager(make_settings(TTL_SECONDS)) as manager:
        await drop_every_tenant(manager)
        yield manager
        await drop_every_tenant(manager)


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


async def _cached(manager: FixtureManager, tenant_id: str) -> CachedConfig | None:
    """What the manager's cache holds for ``tenant_id`` in its control plane."""
    return await manager.cache.get(await manager.config.plane_id(), tenant_id)


async def _redis_key(manager: FixtureManager, tenant_id: str) -> str:
    """The Redis key of ``tenant_id``'s config: prefix, control plane id, tenant."""
    plane = await manager.config.plane_id()
    return f"{manager.settings.redis_prefix}:{plane}:config:{tenant_id}"


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
    assert await _cached(cached_manager, TENANT) is None

    first = await cached_manager.get_tenant_config(TENANT)
    await _tamper_stored_config(cached_manager, TENANT, api_calls=1)
    second = await cached_manager.get_tenant_config(TENANT)

    assert second == first
    assert second.limits.api_calls == 10_000
    cached = await _cached(cached_manager, TENANT)
    assert cached is not None
    assert cached.value == first.model_dump_json()
    if cache_kind == "redis":
        assert cached_manager.settings.redis_url is not None
        client = Redis.from_url(cached_manager.settings.redis_url, decode_responses=True)
        try:
            key = await _redis_key(cached_manager, TENANT)
            assert await client.exists(key) == 1
            raw = await client.get(key)
            assert isinstance(raw, str)
            version, _, document = raw.partition(":")
            assert int(version) == cached.version
            assert TenantConfig.model_validate_json(document) == first
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

        assert await _cached(manager, TENANT) is None
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

    assert await _cached(cached_manager, TENANT) is None
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


@pytest.mark.parametrize(
    "settings", [{"locale": "\ud83d"}, {"\ud800": "\udc00"}, {"locale": "a\x00b"}]
)
async def test_a_setting_no_database_stores_is_refused_before_anything_is_written(
    cached_manager: FixtureManager, settings: dict[str, str]
) -> None:
    """NUL or a lone surrogate in a setting: a ConfigError naming it, no tenant created
    and an existing one's config unchanged (PostgreSQL raised a StorageError; SQLite
    stored a config no read could serve again)."""
    await cached_manager.create_tenant(TENANT, tier="premium")
    before = await cached_manager.get_tenant_config(TENANT)

    with pytest.raises(ConfigError) as created:
        await cached_manager.create_tenant(TenantFixture(tenant_id="unstorable", settings=settings))
    with pytest.raises(ConfigError):
        await cached_manager.apply_tenant_config(
            TenantFixture(tenant_id="unstorable", settings=settings), create=True
        )
    with pytest.raises(ConfigError) as changed:
        await cached_manager.update_tenant_config(TENANT, settings=settings)

    assert created.value.key == changed.value.key
    assert str(created.value.key).startswith("settings.")
    assert "unstorable" not in [t.tenant_id for t in await cached_manager.list_tenants()]
    assert await cached_manager.get_tenant_config(TENANT) == before
    assert await _stored_config(cached_manager, TENANT) == before


@pytest.mark.parametrize(
    ("limits", "key"),
    [
        ({"users": True}, "limits.users"),
        ({"users": 10**30}, "limits.users"),
        ({"storage": "9999999999999999999TB"}, "limits.storage"),
    ],
)
async def test_a_boolean_or_unbounded_limit_is_refused_naming_it(
    cached_manager: FixtureManager, limits: dict[str, object], key: str
) -> None:
    """A limit is a whole number up to 2**63 - 1 (storage in bytes): ``true`` is not 1,
    and 10**30 users or 9999999999999999999TB were stored."""
    await cached_manager.create_tenant(TENANT, tier="premium")
    before = await cached_manager.get_tenant_config(TENANT)

    with pytest.raises(ConfigError) as caught:
        await cached_manager.update_tenant_config(TENANT, limits=limits)

    assert caught.value.key == key
    assert await _stored_config(cached_manager, TENANT) == before


async def test_drop_removes_the_cached_entry(cached_manager: FixtureManager) -> None:
    """After a drop the config is neither cached nor stored, and a new tenant reads fresh."""
    await cached_manager.create_tenant(TENANT, tier="enterprise")
    await cached_manager.get_tenant_config(TENANT)
    assert await _cached(cached_manager, TENANT) is not None

    await cached_manager.drop_tenant(TENANT)

    assert await _cached(cached_manager, TENANT) is None
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
        await drop_every_tenant(writer)
        try:
            await writer.create_tenant(TENANT, tier="premium")
            assert (await reader.get_tenant_config(TENANT)).limits.api_calls == 10_000
            key = await _redis_key(reader, TENANT)
            assert await redis_client.exists(key) == 1

            await writer.apply_tenant_config(
                TenantFixture(tenant_id=TENANT, tier="premium", limits={"api_calls": 42})
            )

            assert await redis_client.exists(key) == 0
            assert (await reader.get_tenant_config(TENANT)).limits.api_calls == 42
            await writer.drop_tenant(TENANT)
            with pytest.raises(TenantNotFoundError):
                await reader.get_tenant_config(TENANT)
        finally:
            await drop_every_tenant(writer)


# --- the control plane's id keys the cache ---------------------------------------------


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="two-sqlite-data-dirs"),
        pytest.param("postgresql", id="sqlite-and-postgresql", marks=pytest.mark.postgres),
    ]
)
def other_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A second database beside a SQLite one: another SQLite data dir, or PostgreSQL."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'other'}"


async def test_the_same_tenant_id_in_two_databases_reads_its_own_config(
    cache_options: dict[str, str | None],
    cache_kind: str,
    other_database_url: str,
    tmp_path: Path,
) -> None:
    """Tenant rc1 is enterprise in one database and free in another; through one cache
    (one Redis prefix, or this process's memory) each database reads its own."""

    def settings(url: str) -> Settings:
        return Settings(
            database_url=url,
            redis_url=cache_options["redis_url"],
            redis_prefix=cache_options["redis_prefix"] or "tenancy",
            actor="pytest",
        )

    async with (
        FixtureManager(settings(f"sqlite:///{tmp_path / 'one'}")) as one,
        FixtureManager(settings(other_database_url)) as other,
    ):
        await drop_every_tenant(other)
        try:
            await one.create_tenant("rc1", tier="enterprise")
            await other.create_tenant("rc1", tier="free")

            reads = [
                (await manager.get_tenant_config("rc1")).tier
                for manager in (one, other, one, other)
            ]

            assert ["enterprise", "free", "enterprise", "free"] == reads
            planes = {await one.config.plane_id(), await other.config.plane_id()}
            assert 2 == len(planes)
            if cache_kind == "redis":
                client = Redis.from_url(str(one.settings.redis_url), decode_responses=True)
                try:
                    keys = {await _redis_key(one, "rc1"), await _redis_key(other, "rc1")}
                    assert 2 == await client.exists(*keys)
                finally:
                    await client.aclose()
        finally:
            await drop_every_tenant(one)
            await drop_every_tenant(other)


async def test_two_spellings_of_one_database_share_its_control_plane_id(
    make_settings: SettingsFactory, cached_manager: FixtureManager, backend: str
) -> None:
    """Another URL naming the same database (localhost for 127.0.0.1, a path with ./)
    reads the same control plane id, which is no part of the URL, and the same cache."""
    url = cached_manager.settings.database_url
    respelled = (
        url.replace("127.0.0.1", "localhost")
        if backend == "postgresql"
        else url.replace("/data", "/./data")
    )
    assert respelled != url
    await cached_manager.create_tenant(TENANT, tier="premium")
    async with FixtureManager(make_settings(url=respelled)) as twin:
        plane = await twin.config.plane_id()
        assert await cached_manager.config.plane_id() == plane
        assert 32 == len(plane)
        assert plane not in url
        await twin.get_tenant_config(TENANT)

        assert await _cached(cached_manager, TENANT) == await _cached(twin, TENANT)


async def test_closing_one_manager_leaves_another_managers_cached_config(
    make_settings: SettingsFactory, cached_manager: FixtureManager
) -> None:
    """A second manager on the same database closing does not empty the first's cache."""
    await cached_manager.create_tenant(TENANT, tier="premium")
    await cached_manager.get_tenant_config(TENANT)
    second = FixtureManager(make_settings())
    await second.get_tenant_config(TENANT)

    await second.aclose()

    assert await _cached(cached_manager, TENANT) is not None


# --- a lost invalidation is caught by the version check -------------------------------


async def _change_behind_the_cache(manager: FixtureManager, tenant_id: str, tier: str) -> None:
    """Store another tier's config as another process would whose invalidation was lost."""
    config = manager.config.resolve(TenantFixture(tenant_id=tenant_id, tier=tier))
    async with manager.store.control() as conn:
        await control_plane.save_config(
            conn, tenant_id, config.model_dump(mode="json"), config.checksum()
        )
        await control_plane.set_tier(conn, tenant_id, tier)


@pytest.mark.parametrize("window", [0.0, 0.3])
async def test_a_change_whose_invalidation_was_lost_is_read_after_the_revalidation_window(
    make_settings: SettingsFactory, cached_manager: FixtureManager, window: float
) -> None:
    """A tier change that never invalidated this cache is read once cache_revalidate_seconds
    have passed (at once with 0), not after the hour-long TTL."""
    async with FixtureManager(make_settings(3600.0, revalidate_seconds=window)) as reader:
        await reader.create_tenant(TENANT, tier="free")
        assert "free" == (await reader.get_tenant_config(TENANT)).tier  # now cached

        await _change_behind_the_cache(reader, TENANT, "enterprise")
        await asyncio.sleep(window + 0.05 if window else 0)

        config = await reader.get_tenant_config(TENANT)
        assert ("enterprise", 1_000_000) == (config.tier, config.limits.api_calls)
        cached = await _cached(reader, TENANT)
        assert cached is not None
        assert "enterprise" == TenantConfig.model_validate_json(cached.value).tier


@pytest.mark.redis
async def test_a_tier_change_whose_redis_invalidation_failed_is_read_at_once_elsewhere(
    database_url: str, redis_url: str, redis_prefix: str, redis_client: Redis
) -> None:
    """A writer that cannot reach Redis changes a tier; a reader whose Redis still holds
    the old config reads the new tier on its next read (revalidation on every read)."""
    reader_settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        cache_revalidate_seconds=0,
        actor="pytest",
    )
    writer_settings = reader_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with FixtureManager(reader_settings) as reader, FixtureManager(writer_settings) as writer:
        await drop_every_tenant(reader)
        try:
            await reader.create_tenant(TENANT, tier="free")
            assert "free" == (await reader.get_tenant_config(TENANT)).tier
            key = await _redis_key(reader, TENANT)

            await writer.apply_tenant_config(TenantFixture(tenant_id=TENANT, tier="enterprise"))

            assert '"tier":"free"' in str(await redis_client.get(key))  # not invalidated
            assert "enterprise" == (await reader.get_tenant_config(TENANT)).tier
            assert '"tier":"enterprise"' in str(await redis_client.get(key))
        finally:
            await drop_every_tenant(reader)


# --- a change applies to the stored config, not a cached copy --------------------------


async def _change_from_another_process(
    writer: FixtureManager, monkeypatch: pytest.MonkeyPatch, **change: Any
) -> None:
    """``writer.update_tenant_config(TENANT, **change)`` as another process makes it: its
    invalidation reaches neither this process's version checks nor its cache."""

    async def lost(tenant_id: str, version: int) -> None:
        del tenant_id, version

    with monkeypatch.context() as elsewhere:
        elsewhere.setattr(version_checks, "forget", lambda *_: None)
        elsewhere.setattr(writer.config, "_invalidate", lost)
        await writer.update_tenant_config(TENANT, **change)


async def test_a_change_made_while_another_manager_holds_a_cached_copy_keeps_both_changes(
    make_settings: SettingsFactory,
    cached_manager: FixtureManager,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two managers (two API workers) on one database: one changes a limit while the
    other holds the old config cached; the other's later change of a setting is applied
    to the stored config, so the limit is not reverted."""
    async with FixtureManager(make_settings(3600.0, revalidate_seconds=3600.0)) as cached:
        await cached_manager.create_tenant(TENANT, tier="free")
        assert 5 == (await cached.get_tenant_config(TENANT)).limits.users  # now cached

        await _change_from_another_process(cached_manager, monkeypatch, limits={"users": 50})
        assert 5 == (await cached.get_tenant_config(TENANT)).limits.users  # stale copy

        config = await cached.update_tenant_config(TENANT, settings={"locale": "fr"})

        assert (50, "fr") == (config.limits.users, config.settings["locale"])
        stored = await _stored_config(cached_manager, TENANT)
        assert stored is not None
        assert (50, "fr") == (stored.limits.users, stored.settings["locale"])
        assert 50 == (await cached.get_tenant_config(TENANT)).limits.users


# --- a tenant's own overrides are stored, so a new tier keeps them ----------------------


async def test_overrides_survive_a_tier_change_and_back(cached_manager: FixtureManager) -> None:
    """Overrides equal to the intermediate tier's values are still the tenant's own: back
    on its first tier, they are there again."""
    await cached_manager.create_tenant(
        TenantFixture(
            tenant_id=TENANT, tier="free", limits={"users": 100}, settings={"retention_days": 365}
        )
    )
    premium = await cached_manager.update_tenant_config(TENANT, tier="premium")
    assert (100, 365) == (premium.limits.users, premium.settings["retention_days"])

    free = await cached_manager.update_tenant_config(TENANT, tier="free")

    assert ("free", 100, 365) == (free.tier, free.limits.users, free.settings["retention_days"])
    assert 1000 == free.limits.api_calls  # the tier's defaults for the rest
    assert free == await cached_manager.get_tenant_config(TENANT)


async def test_an_override_equal_to_the_tiers_value_is_stored_by_a_full_apply(
    cached_manager: FixtureManager,
) -> None:
    """Applying a fixture whose override changes nothing on its tier still records the
    override, which a later tier change keeps."""
    await cached_manager.create_tenant(TENANT, tier="premium")
    await cached_manager.apply_tenant_config(
        TenantFixture(tenant_id=TENANT, tier="premium", limits={"users": 100})
    )

    free = await cached_manager.update_tenant_config(TENANT, tier="free")

    assert (100, 90) == (free.limits.users, free.settings["retention_days"])


async def test_a_config_stored_without_overrides_keeps_what_differs_from_its_tier(
    cached_manager: FixtureManager,
) -> None:
    """A config stored before overrides were kept beside it: what differs from its tier
    is taken for its overrides, and kept through a change."""
    await cached_manager.create_tenant(TENANT, tier="free")
    config = cached_manager.config.resolve(
        TenantFixture(tenant_id=TENANT, tier="free", limits={"users": 100})
    )
    async with cached_manager.store.control() as conn:
        await control_plane.save_config(
            conn, TENANT, config.model_dump(mode="json"), config.checksum()
        )

    changed = await cached_manager.update_tenant_config(TENANT, settings={"locale": "fr"})

    assert (100, "fr") == (changed.limits.users, changed.settings["locale"])
