"""A config change that lowers a limit (a lower tier, a lower limit of the tenant's own)
below what the tenant holds already, on both backends: refused when made, not at the
next load, and nothing changes."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update

from tenancy_fixtures import ConfigFixture, FixtureManager
from tenancy_fixtures.errors import ConfigError, LimitBelowUsageError, LimitExceededError
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.tenancy.tenants import TenantFixture
from tests.log_capture import captured_logs

TENANT = "shrinking"


async def _premium_with_20_users(manager: FixtureManager, demo_set: Path) -> None:
    await manager.create_tenant(TENANT, tier="premium")
    await manager.load_fixtures(TENANT, demo_set)


async def test_a_tier_downgrade_below_what_the_tenant_holds_is_refused_and_changes_nothing(
    enforcing: FixtureManager, demo_set: Path
) -> None:
    """A premium tenant holding 20 users moved to free (5 users): it was accepted, and
    every later load refused. Now the change is a LimitBelowUsageError naming the
    tenant, the limit, its new value and the usage, by a patch or a full apply; the
    config, the registry's tier and the cached copy stay premium, and the refusal is
    audited."""
    await _premium_with_20_users(enforcing, demo_set)

    with pytest.raises(LimitBelowUsageError) as patched:
        await enforcing.update_tenant_config(TENANT, tier="free")
    with pytest.raises(LimitBelowUsageError) as applied:
        await enforcing.apply_tenant_config(TenantFixture(tenant_id=TENANT, tier="free"))

    for refused in (patched.value, applied.value):
        assert ("users", 20, 5, TENANT, "users") == (
            refused.limit,
            refused.value,
            refused.maximum,
            refused.tenant_id,
            refused.table,
        )
        assert isinstance(refused, LimitExceededError)
        assert LimitExceededError.exit_code == refused.exit_code
        assert (
            f"tenant '{TENANT}': limit 'users' cannot be lowered to 5: the tenant holds 20 "
            "(rows of users) already"
        ) in str(refused)
    assert "premium" == (await enforcing.get_tenant_config(TENANT)).tier
    assert "premium" == (await enforcing.get_tenant(TENANT)).tier
    config = (await enforcing.tenant_status(TENANT)).config
    assert config is not None
    assert "premium" == config["tier"]
    refusals = [r for r in await enforcing.audit_log(TENANT) if r.action == "config.apply"]
    assert ["refused", "refused"] == [r.outcome for r in refusals]
    assert 0 == (await enforcing.load_fixtures(TENANT, demo_set)).rows  # still loadable


async def test_lowering_a_tenants_own_limit_below_what_it_holds_is_refused(
    enforcing: FixtureManager,
) -> None:
    """The free starter set holds 3 users: a users limit of 2 is refused, and so is a
    storage limit below the tenant's bytes; 3 users, and a limit raised, are taken."""
    await enforcing.create_tenant(TenantFixture(tenant_id=TENANT, limits={"users": 4}))
    await enforcing.load_fixtures(TENANT)

    with pytest.raises(LimitBelowUsageError) as users:
        await enforcing.update_tenant_config(TENANT, limits={"users": 2})
    with pytest.raises(LimitBelowUsageError) as storage:
        await enforcing.update_tenant_config(TENANT, limits={"storage": "16KB"})
    unchanged = await enforcing.get_tenant_config(TENANT)
    kept = await enforcing.update_tenant_config(TENANT, limits={"users": 3})

    assert ("users", 3, 2) == (users.value.limit, users.value.value, users.value.maximum)
    assert ("storage", 16 * 1024) == (storage.value.limit, storage.value.maximum)
    assert storage.value.value > 16 * 1024
    assert "cannot be lowered to 16,384 bytes" in str(storage.value)
    assert (4, 1024**3) == (unchanged.limits.users, unchanged.limits.storage)
    assert 3 == kept.limits.users


async def test_a_change_that_lowers_no_limit_is_taken_from_a_tenant_already_past_one(
    manager: FixtureManager, enforcing: FixtureManager, demo_set: Path
) -> None:
    """A free tenant loaded past its limits without enforcement: a setting changed, or a
    limit raised (though still below its usage), is not refused for what it holds."""
    await manager.create_tenant(TENANT)
    await manager.load_fixtures(TENANT, demo_set)

    changed = await enforcing.update_tenant_config(
        TENANT, limits={"users": 10}, settings={"locale": "fr"}
    )

    assert (10, "fr") == (changed.limits.users, changed.settings["locale"])


async def test_without_enforcement_a_limit_lowered_below_usage_is_kept_and_logged(
    manager: FixtureManager, demo_set: Path
) -> None:
    """TENANCY_ENFORCE_LIMITS=false, where a load past a limit only warns: so does the
    change."""
    await _premium_with_20_users(manager, demo_set)

    with captured_logs() as logs:
        free = await manager.update_tenant_config(TENANT, tier="free")

    assert "free" == free.tier
    assert [("users", 20, 5), ("workspaces", 2, 1)] == [
        (e["limit"], e["value"], e["maximum"])
        for e in logs
        if e["event"] == "limit_exceeded" and e.get("source") == "config"
    ]


async def test_a_config_fixture_made_on_its_own_refuses_a_limit_below_usage_too(
    enforcing: FixtureManager, demo_set: Path
) -> None:
    """``ConfigFixture()`` as the design's example makes it, without a manager, took a
    tier downgrade below the tenant's usage (only a manager's config fixture checked):
    it checks by default now."""
    await _premium_with_20_users(enforcing, demo_set)
    fixture = ConfigFixture(enforcing.settings)

    with pytest.raises(LimitBelowUsageError):
        await fixture.apply_tenant_config(TenantFixture(tenant_id=TENANT, tier="free"))

    assert "premium" == (await enforcing.get_tenant_config(TENANT)).tier


async def test_features_given_as_one_string_are_refused_not_read_as_letters(
    enforcing: FixtureManager,
) -> None:
    """``features="sso"`` was read one letter a flag (refused as an unknown feature
    's', or, for flags of one letter, taken): a ConfigError saying to write a list, for
    a TenantFixture and a config patch alike, and nothing changes."""
    await enforcing.create_tenant(TENANT, tier="premium")

    with pytest.raises(ConfigError, match=r"features=\['data_export'\]"):
        TenantFixture(tenant_id=TENANT, features="data_export")
    with pytest.raises(ConfigError, match=r"features=\['data_export'\]"):
        await enforcing.update_tenant_config(TENANT, features="data_export")

    assert "data_export" in (await enforcing.get_tenant_config(TENANT)).features


async def test_a_setting_an_earlier_release_stored_unchecked_does_not_lock_the_config(
    enforcing: FixtureManager,
) -> None:
    """Unknown settings are refused now; one an earlier release stored (never read) made
    every later change of the tenant's config fail, naming it, with no way to remove
    it. A change leaves it out instead (logged), and goes through."""
    await enforcing.create_tenant(TENANT, tier="free")
    async with enforcing.store.control() as conn:
        table = control_plane.configs_table
        stored = (
            await conn.execute(select(table.c.config).where(table.c.tenant_id == TENANT))
        ).scalar_one()
        document = dict(stored)
        document["settings"] = {**document["settings"], "nope": 1}
        document[control_plane.OVERRIDES_KEY] = {"settings": {"nope": 1}}
        await conn.execute(update(table).where(table.c.tenant_id == TENANT).values(config=document))

    with captured_logs() as logs:
        changed = await enforcing.update_tenant_config(TENANT, tier="premium")

    assert "premium" == changed.tier
    assert "nope" not in changed.settings
    dropped = [e for e in logs if e["event"] == "unknown_settings_dropped"]
    assert [["nope"]] == [e["settings"] for e in dropped]
