"""Tenant config: defaults, then tier, then overrides; validation; checksum; the TTL cache."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest

from tenancy_fixtures.errors import ConfigError, InvalidTenantIdError
from tenancy_fixtures.fixtures.templates import BUILTIN_TEMPLATE_DIR, TemplateDirectory
from tenancy_fixtures.settings import Settings
from tenancy_fixtures.tenancy.config import TIERS, ConfigTemplate, TenantConfig, resolve_config
from tenancy_fixtures.tenancy.config_cache import (
    CachedConfig,
    MemoryConfigCache,
    VersionChecks,
    open_config_cache,
)
from tenancy_fixtures.tenancy.sizes import parse_size
from tenancy_fixtures.tenancy.tenants import TenantFixture

GB = 1024**3


@pytest.fixture(scope="module")
def template() -> ConfigTemplate:
    """The built-in config template."""
    return ConfigTemplate.load(TemplateDirectory())


@pytest.fixture(scope="module")
def raw_template() -> dict[str, Any]:
    """The built-in config template as plain JSON, to derive expectations from."""
    document: dict[str, Any] = json.loads(
        (BUILTIN_TEMPLATE_DIR / "config_template.json").read_text(encoding="utf-8")
    )
    return document


def expected_limits(*layers: dict[str, Any]) -> dict[str, int]:
    """Limits as the layers give them (later wins), storage in bytes."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    merged["storage"] = parse_size(merged["storage"])
    return merged


def resolve(template: ConfigTemplate, **tenant: Any) -> TenantConfig:
    """Resolve the config of a tenant built from keyword arguments."""
    tenant.setdefault("tenant_id", "acme")
    return resolve_config(template, TenantFixture(**tenant))


class TestResolveConfig:
    @pytest.mark.parametrize("tier", TIERS)
    def test_a_tier_without_overrides_is_defaults_then_tier(
        self, template: ConfigTemplate, raw_template: dict[str, Any], tier: str
    ) -> None:
        """With no overrides, every value comes from the tier, else from the defaults."""
        defaults, preset = raw_template["defaults"], raw_template["tiers"][tier]

        config = resolve(template, tier=tier)

        assert tier == config.tier
        assert expected_limits(defaults["limits"], preset["limits"]) == config.limits.model_dump()
        assert tuple(sorted({*defaults["features"], *preset["features"]})) == config.features
        assert {**defaults["settings"], **preset["settings"]} == config.settings

    @pytest.mark.parametrize("tier", TIERS)
    def test_overrides_win_over_the_tier_key_by_key(
        self, template: ConfigTemplate, raw_template: dict[str, Any], tier: str
    ) -> None:
        """A tenant's overrides replace only the keys they name, on top of the tier."""
        defaults, preset = raw_template["defaults"], raw_template["tiers"][tier]
        overrides = {"users": 3, "storage": "2GB"}

        config = resolve(
            template, tier=tier, features=["sso"], limits=overrides, settings={"locale": "de"}
        )

        assert (
            expected_limits(defaults["limits"], preset["limits"], overrides)
            == config.limits.model_dump()
        )
        assert tuple(sorted({*defaults["features"], *preset["features"], "sso"})) == config.features
        assert {**defaults["settings"], **preset["settings"], "locale": "de"} == config.settings

    def test_the_premium_example_gets_its_overrides(self, template: ConfigTemplate) -> None:
        """The documented premium tenant gets 10000 API calls, 100 GB and both features."""
        tenant = TenantFixture(
            tenant_id="premium_001",
            tier="premium",
            features=["ai_collaboration", "advanced_analytics"],
            limits={"api_calls": 10000, "storage": "100GB"},
        )

        config = resolve_config(template, tenant)

        assert ("premium_001", 10000, 100 * GB) == (
            config.tenant_id,
            config.limits.api_calls,
            config.limits.storage,
        )
        assert config.has_feature("ai_collaboration")
        assert config.has_feature("advanced_analytics")
        assert not config.has_feature("sso")

    def test_the_free_example_with_limit_overrides_gets_them(
        self, template: ConfigTemplate
    ) -> None:
        """Limit overrides apply on the default (free) tier too."""
        tenant = TenantFixture(
            tenant_id="premium_001",
            features=["ai_collaboration", "advanced_analytics"],
            limits={"api_calls": 10000, "storage": "100GB"},
        )

        config = resolve_config(template, tenant)

        assert ("free", 10000, 100 * GB) == (
            config.tier,
            config.limits.api_calls,
            config.limits.storage,
        )

    def test_features_are_sorted_and_listed_once(self, template: ConfigTemplate) -> None:
        """A feature named by both the tier and the tenant appears once, sorted."""
        config = resolve(template, tier="premium", features=["data_export", "sso", "sso"])

        assert list(config.features) == sorted(set(config.features))
        assert 1 == config.features.count("data_export")
        assert 1 == config.features.count("sso")

    def test_an_unknown_feature_flag_is_refused_naming_it(self, template: ConfigTemplate) -> None:
        """A feature the template does not know is a ConfigError keyed by its name."""
        with pytest.raises(ConfigError) as caught:
            resolve(template, features=["catalog_browsing", "teleportation"])

        assert "features.teleportation" == caught.value.key
        assert "teleportation" in str(caught.value)
        assert "acme" == caught.value.tenant_id

    @pytest.mark.parametrize(
        ("limits", "key", "message"),
        [
            pytest.param({"storage": "100XB"}, "limits.storage", "unknown unit", id="unit-XB"),
            pytest.param({"storage": "-1GB"}, "limits.storage", "negative", id="neg-storage"),
            pytest.param({"storage": -1}, "limits.storage", "negative", id="neg-storage-int"),
            pytest.param({"storage": True}, "limits.storage", "boolean", id="bool-storage"),
            pytest.param({"api_calls": -1}, "limits.api_calls", "greater than", id="neg-api"),
            pytest.param({"users": -5}, "limits.users", "greater than", id="neg-users"),
            pytest.param({"workspaces": "many"}, "limits.workspaces", "integer", id="text"),
            pytest.param({"api_calls": 1.5}, "limits.api_calls", "integer", id="fraction"),
            pytest.param({"users": 10**30}, "limits.users", "less than or equal", id="huge"),
            pytest.param({"users": 2**63}, "limits.users", "less than or equal", id="past-int64"),
            pytest.param(
                {"storage": "9999999999999999999TB"}, "limits.storage", "less than", id="huge-size"
            ),
            pytest.param({"storage": 2**63}, "limits.storage", "less than", id="huge-bytes"),
            pytest.param(
                {"bandwidth": 10}, "limits.bandwidth", "unknown limit; the limits are", id="unknown"
            ),
        ],
    )
    def test_a_bad_limit_is_refused_naming_its_key(
        self, template: ConfigTemplate, limits: dict[str, Any], key: str, message: str
    ) -> None:
        """Wrong units, negative or non-integer limits and unknown keys are ConfigErrors."""
        with pytest.raises(ConfigError) as caught:
            resolve(template, tier="premium", limits=limits)

        assert key == caught.value.key
        assert key in str(caught.value)
        assert message in str(caught.value)

    def test_an_unknown_setting_is_refused_naming_the_known_ones(
        self, template: ConfigTemplate
    ) -> None:
        """A setting the config template does not name was kept silently."""
        with pytest.raises(ConfigError) as caught:
            resolve(template, tier="premium", settings={"locale": "fr", "nope": 1})

        assert "settings.nope" == caught.value.key
        assert (
            "settings.nope: unknown setting; the settings are default_market, locale, "
            "region, retention_days"
        ) in str(caught.value)

    def test_a_setting_past_its_length_is_refused_naming_it(self, template: ConfigTemplate) -> None:
        """A 5,000-character ``locale`` was stored (and carried by every config read, the
        cache and each service answer): refused past 1,000 characters, naming the key;
        1,000 is taken."""
        with pytest.raises(ConfigError) as caught:
            resolve(template, tier="premium", settings={"locale": "x" * 5_000})
        taken = resolve(template, tier="premium", settings={"locale": "x" * 1_000})

        assert "settings.locale" == caught.value.key
        assert "settings.locale: at most 1,000 characters, not 5,000" in str(caught.value)
        assert "x" * 1_000 == taken.settings["locale"]

    def test_a_boolean_limit_is_refused(self, template: ConfigTemplate) -> None:
        """A limit given as true/false is refused, not read as 1 or 0."""
        with pytest.raises(ConfigError) as caught:
            resolve(template, limits={"api_calls": True})

        assert "limits.api_calls" == caught.value.key

    def test_a_limit_of_the_largest_64_bit_integer_is_taken(self, template: ConfigTemplate) -> None:
        """2**63 - 1 is the bound: stored and compared as a BIGINT, it still fits."""
        config = resolve(template, limits={"users": 2**63 - 1, "storage": 2**63 - 1})

        assert (2**63 - 1, 2**63 - 1) == (config.limits.users, config.limits.storage)

    @pytest.mark.parametrize(("key", "value"), [("limits", [1]), ("settings", "x")])
    def test_limits_or_settings_that_are_no_mapping_are_refused_naming_them(
        self, template: ConfigTemplate, key: str, value: Any
    ) -> None:
        """Once a raw AttributeError (``'list' object has no attribute 'items'``)."""
        with pytest.raises(ConfigError) as caught:
            resolve(template, **{key: value})

        assert key == caught.value.key

    @pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
    def test_a_setting_that_is_no_finite_number_is_refused(
        self, template: ConfigTemplate, value: float
    ) -> None:
        """JSON has no NaN or infinity: such a setting was stored, and ``show --json``
        then printed what no JSON parser reads."""
        with pytest.raises(ConfigError, match="finite") as caught:
            resolve(template, settings={"ratio": value})

        assert "settings.ratio" == caught.value.key

    @pytest.mark.parametrize(
        ("settings", "key", "found"),
        [
            pytest.param({"locale": "\ud83d"}, "settings.locale", "lone surrogate", id="value"),
            pytest.param({"\ud800": "\udc00"}, "settings.\\ud800", "lone surrogate", id="name"),
            pytest.param({"locale": "a\x00b"}, "settings.locale", "NUL", id="nul-value"),
            pytest.param({"a\x00b": "x"}, "settings.a\\u0000b", "NUL", id="nul-name"),
        ],
    )
    def test_a_setting_no_database_stores_is_refused_naming_it(
        self, template: ConfigTemplate, settings: dict[str, Any], key: str, found: str
    ) -> None:
        """NUL or a lone surrogate in a setting's name or value: PostgreSQL refused it (a
        StorageError) and SQLite stored a config no read could encode again."""
        with pytest.raises(ConfigError, match=found) as caught:
            resolve(template, settings=settings)

        assert key == caught.value.key
        str(caught.value).encode("utf-8")  # shown escaped, so any answer can carry it

    @pytest.mark.parametrize(
        ("overrides", "key"),
        [
            pytest.param({"features": ["\ud800"]}, "features.\\ud800", id="feature"),
            pytest.param({"limits": {"\ud800": 1}}, "limits.\\ud800", id="limit-name"),
            pytest.param({"limits": {"storage": "\ud800GB"}}, "limits.storage", id="limit"),
        ],
    )
    def test_a_lone_surrogate_in_features_or_limits_is_refused_with_an_encodable_key(
        self, template: ConfigTemplate, overrides: dict[str, Any], key: str
    ) -> None:
        """The refusal's key and message escape the surrogate: a problem document naming
        it raw could not be encoded (a 500 instead of the 422)."""
        with pytest.raises(ConfigError) as caught:
            resolve(template, **overrides)

        assert key == caught.value.key
        str(caught.value).encode("utf-8")

    def test_an_unknown_tier_is_refused_with_key_tier(self, template: ConfigTemplate) -> None:
        """A tier the template does not define is a ConfigError keyed 'tier'."""
        with pytest.raises(ConfigError) as caught:
            resolve(template, tier="gold")

        assert "tier" == caught.value.key
        assert "'gold'" in str(caught.value)

    def test_a_config_error_is_a_usage_error(self, template: ConfigTemplate) -> None:
        """ConfigError exits the CLI with code 2."""
        with pytest.raises(ConfigError) as caught:
            resolve(template, tier="gold")

        assert 2 == caught.value.exit_code


class TestTenantConfig:
    def test_the_checksum_is_stable_for_the_same_input(self, template: ConfigTemplate) -> None:
        """Resolving the same tenant twice gives the same checksum."""
        first = resolve(template, tier="premium", features=["sso"], limits={"users": 3})
        second = resolve(template, tier="premium", features=["sso"], limits={"users": 3})

        assert first.checksum() == second.checksum()

    def test_the_checksum_ignores_the_order_features_are_given_in(
        self, template: ConfigTemplate
    ) -> None:
        """Features are a set: their order in the overrides does not change the checksum."""
        first = resolve(template, features=["sso", "data_export"])
        second = resolve(template, features=["data_export", "sso"])

        assert first.checksum() == second.checksum()

    def test_the_checksum_changes_when_a_limit_changes(self, template: ConfigTemplate) -> None:
        """A different limit gives a different checksum."""
        before = resolve(template, limits={"api_calls": 10000})
        after = resolve(template, limits={"api_calls": 10001})

        assert before.checksum() != after.checksum()

    def test_the_checksum_is_the_same_in_another_process(self, template: ConfigTemplate) -> None:
        """A fresh interpreter with another hash seed computes the same checksum."""
        script = (
            "from tenancy_fixtures.tenancy.config import ConfigTemplate, resolve_config\n"
            "from tenancy_fixtures.fixtures.templates import TemplateDirectory\n"
            "from tenancy_fixtures.tenancy.tenants import TenantFixture\n"
            "t = TenantFixture('acme', tier='enterprise', features=['sso', 'custom_models'])\n"
            "print(resolve_config(ConfigTemplate.load(TemplateDirectory()), t).checksum())\n"
        )
        env = {**os.environ, "PYTHONHASHSEED": "12345"}

        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
        )

        local = resolve(template, tier="enterprise", features=["sso", "custom_models"])
        assert local.checksum() == result.stdout.strip()

    def test_describe_limits_shows_storage_for_people(self, template: ConfigTemplate) -> None:
        """describe_limits shows storage as '100GB' and other limits as numbers."""
        config = resolve(template, tier="premium", limits={"storage": "100GB", "users": 7})

        described = config.describe_limits()

        assert ("100GB", 7) == (described["storage"], described["users"])
        assert 100 * GB == config.limits.storage

    def test_a_config_round_trips_through_json(self, template: ConfigTemplate) -> None:
        """What the cache stores (JSON) reads back as an equal config."""
        config = resolve(template, tier="enterprise", settings={"locale": "fr"})

        assert config == TenantConfig.model_validate_json(config.model_dump_json())


PLANE = "plane_a"


class TestMemoryConfigCache:
    async def test_a_value_set_is_read_back_with_its_version(self) -> None:
        """get returns what set stored for that tenant, with the version it was stored at."""
        cache = MemoryConfigCache(ttl_seconds=60)

        await cache.set(PLANE, "acme", '{"tier": "free"}', version=1)

        assert CachedConfig('{"tier": "free"}', 1) == await cache.get(PLANE, "acme")

    async def test_an_unknown_tenant_reads_none(self) -> None:
        """get for a tenant never set gives None."""
        cache = MemoryConfigCache(ttl_seconds=60)

        assert await cache.get(PLANE, "acme") is None

    async def test_the_same_tenant_id_in_two_control_planes_is_two_entries(self) -> None:
        """A tenant id cached for one control plane is not what another plane reads."""
        cache = MemoryConfigCache(ttl_seconds=60)

        await cache.set("plane_a", "rc1", "enterprise", version=1)
        await cache.set("plane_b", "rc1", "free", version=1)
        await cache.invalidate("plane_b", "rc1", version=2)

        assert CachedConfig("enterprise", 1) == await cache.get("plane_a", "rc1")
        assert await cache.get("plane_b", "rc1") is None

    async def test_an_invalidated_value_is_gone(self) -> None:
        """invalidate forgets the entry; invalidating twice is harmless."""
        cache = MemoryConfigCache(ttl_seconds=60)
        await cache.set(PLANE, "acme", "x", version=1)
        await cache.set(PLANE, "other", "y", version=1)

        assert await cache.invalidate(PLANE, "acme", version=2)
        assert await cache.invalidate(PLANE, "acme", version=2)

        assert await cache.get(PLANE, "acme") is None
        assert CachedConfig("y", 1) == await cache.get(PLANE, "other")

    async def test_a_value_expires_after_the_ttl(self) -> None:
        """An entry older than the TTL reads as None."""
        cache = MemoryConfigCache(ttl_seconds=0.05)
        await cache.set(PLANE, "acme", "x", version=1)
        assert CachedConfig("x", 1) == await cache.get(PLANE, "acme")

        await asyncio.sleep(0.15)

        assert await cache.get(PLANE, "acme") is None

    async def test_aclose_empties_a_cache_of_its_own(self) -> None:
        """aclose drops every entry of a MemoryConfigCache made on its own."""
        cache = MemoryConfigCache(ttl_seconds=60)
        await cache.set(PLANE, "acme", "x", version=1)

        await cache.aclose()

        assert await cache.get(PLANE, "acme") is None

    async def test_closing_one_shared_handle_keeps_the_floors_other_handles_rely_on(
        self,
    ) -> None:
        """Closing one manager's handle on the process's shared cache leaves the entries
        and the staleness floors of the handles still open alone."""
        settings = Settings(database_url="sqlite:///unused", cache_ttl_seconds=60)
        plane = f"plane_{uuid.uuid4().hex}"  # other tests' handles share this process
        closing, staying = open_config_cache(settings), open_config_cache(settings)
        try:
            await staying.set(plane, "acme", "new", version=5)
            await staying.invalidate(plane, "other", version=5)

            await closing.aclose()

            assert CachedConfig("new", 5) == await staying.get(plane, "acme")
            assert False is await staying.set(plane, "other", "old", version=4)
        finally:
            await staying.aclose()

    async def test_entries_keep_the_ttl_of_the_settings_that_stored_them(self) -> None:
        """Handles with different TTLs share entries; each entry expires by its own TTL."""
        short = open_config_cache(Settings(database_url="sqlite:///u", cache_ttl_seconds=0.05))
        long = open_config_cache(Settings(database_url="sqlite:///u", cache_ttl_seconds=60))
        plane = f"plane_{uuid.uuid4().hex}"  # other tests' handles share this process
        try:
            await short.set(plane, "brief", "x", version=1)
            await long.set(plane, "lasting", "y", version=1)
            assert CachedConfig("x", 1) == await long.get(plane, "brief")

            await asyncio.sleep(0.15)

            assert await long.get(plane, "brief") is None
            assert CachedConfig("y", 1) == await short.get(plane, "lasting")
        finally:
            await short.aclose()
            await long.aclose()

    @pytest.mark.parametrize("tenant_id", ["", "Acme", "a;b", "public"])
    async def test_a_hostile_tenant_id_is_refused_as_a_key(self, tenant_id: str) -> None:
        """The cache validates ids before using them as keys."""
        cache = MemoryConfigCache(ttl_seconds=60)

        with pytest.raises(InvalidTenantIdError):
            await cache.set(PLANE, tenant_id, "x", version=1)
        with pytest.raises(InvalidTenantIdError):
            await cache.get(PLANE, tenant_id)
        with pytest.raises(InvalidTenantIdError):
            await cache.invalidate(PLANE, tenant_id, version=1)

    async def test_a_value_older_than_the_last_invalidation_is_not_cached(self) -> None:
        """A reader that fetched a config before a change cannot put it back afterwards."""
        cache = MemoryConfigCache(ttl_seconds=60)
        await cache.invalidate(PLANE, "acme", version=5)

        stale = await cache.set(PLANE, "acme", "old", version=4)
        fresh = await cache.set(PLANE, "acme", "new", version=5)

        assert (False, True) == (stale, fresh)
        assert CachedConfig("new", 5) == await cache.get(PLANE, "acme")


class TestVersionChecks:
    def test_a_version_confirmed_just_now_is_fresh(self) -> None:
        """A version confirmed current a moment ago is fresh within a 1 s window."""
        checks = VersionChecks()

        checks.confirm(PLANE, "acme", 7, since=time.monotonic())

        assert checks.fresh(PLANE, "acme", 7, within=1.0)

    def test_another_version_or_a_lapsed_window_is_not_fresh(self) -> None:
        """Another version, a confirmation older than the window, a window of 0, another
        plane and a forgotten tenant all need a check."""
        checks = VersionChecks()
        checks.confirm(PLANE, "acme", 7, since=time.monotonic() - 2.0)
        checks.confirm(PLANE, "beta", 7, since=time.monotonic())

        assert not checks.fresh(PLANE, "acme", 7, within=1.0)
        assert not checks.fresh(PLANE, "beta", 8, within=1.0)
        assert not checks.fresh(PLANE, "beta", 7, within=0.0)
        assert not checks.fresh("plane_b", "beta", 7, within=1.0)
        checks.forget(PLANE, "beta")
        assert not checks.fresh(PLANE, "beta", 7, within=1.0)
