"""Retention on both backends: events older than the tenant's retention_days go, in
batches, audited, and the tenant still validates; a dry run only counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tenancy_fixtures import FixtureManager, TenantFixture
from tenancy_fixtures.compliance.retention import event_tables, purge_expired
from tenancy_fixtures.errors import ConfigError
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.base import TENANT_SCHEMA

TENANT = "retained"
DAYS = 30


async def _counts(manager: FixtureManager, when: datetime | None = None) -> dict[str, int]:
    """Rows per event table (all, or those before the time in ``when``)."""
    counts = {}
    async with manager.store.session(TENANT, readonly=True) as session:
        for table, column in event_tables(manager.store.metadata.sorted_tables):
            query = select(func.count()).select_from(table)
            if when is not None:
                query = query.where(column < when)
            counts[table.name] = int((await session.connection.execute(query)).scalar_one())
    return counts


async def _middle_of_the_events(manager: FixtureManager) -> datetime:
    table = manager.store.metadata.tables[f"{TENANT_SCHEMA}.listening_events"]
    async with manager.store.session(TENANT, readonly=True) as session:
        times = sorted(
            (await session.connection.execute(select(table.c.played_at))).scalars().all()
        )
    middle: datetime = times[len(times) // 2]
    return middle if middle.tzinfo else middle.replace(tzinfo=UTC)


async def test_events_older_than_the_retention_are_purged_in_batches_and_audited(
    manager: FixtureManager, demo_set: Path
) -> None:
    """With ``now`` set so the retention ends mid-history: the older events go (both
    event tables, by their declared event-time columns), in batches; the newer stay;
    the purge is audited with its counts and the tenant still validates."""
    await manager.create_tenant(TenantFixture(tenant_id=TENANT, settings={"retention_days": DAYS}))
    await manager.load_fixtures(TENANT, source=demo_set)
    middle = await _middle_of_the_events(manager)
    now = middle + timedelta(days=DAYS)
    before = await _counts(manager)
    expired = await _counts(manager, when=middle)

    dry = (await manager.purge_expired([TENANT], dry_run=True, now=now))[0]
    after_dry = await _counts(manager)
    report = await purge_expired(manager.store, TENANT, actor="pytest", now=now, batch_size=7)
    after = await _counts(manager)
    again = await purge_expired(manager.store, TENANT, actor="pytest", now=now)
    audit = [r for r in await manager.audit_log(TENANT) if r.action == "data.retention"]
    validation = await manager.validate_tenant(TENANT)

    assert expired["listening_events"] > 7
    assert expired == dry.purged
    assert before == after_dry
    assert expired == report.purged
    assert report.batches >= expired["listening_events"] // 7
    assert {t: before[t] - expired[t] for t in before} == after
    assert 0 == again.total
    assert ["unchanged", "ok"] == [r.outcome for r in audit]
    assert expired == audit[1].detail["purged"]
    assert DAYS == audit[1].detail["retention_days"]
    assert validation.ok, validation.failed_checks


@pytest.mark.parametrize("days", [-5, 0, "30", 1.5, True, 36_501, 10**6])
async def test_a_retention_days_setting_that_is_not_whole_days_is_refused_when_set(
    manager: FixtureManager, days: object
) -> None:
    """It was taken, and then failed every later ``cleanup --expired``, for every
    tenant (past a century: a cutoff before the first year a date holds); now the
    tenant is not made, and the error names the key."""
    with pytest.raises(ConfigError) as refused:
        await manager.create_tenant(
            TenantFixture(tenant_id="bad_retention", settings={"retention_days": days})
        )

    assert "settings.retention_days" == refused.value.key
    assert [] == [t.tenant_id for t in await manager.list_tenants()]


async def _stored_overrides(manager: FixtureManager) -> dict[str, object]:
    """The tenant's own settings as its config row keeps them (``_overrides``)."""
    table = control_plane.configs_table
    async with manager.store.control(readonly=True) as conn:
        row = await conn.execute(select(table.c.config).where(table.c.tenant_id == TENANT))
        document = row.scalar_one()
    settings: dict[str, object] = document[control_plane.OVERRIDES_KEY]["settings"]
    return settings


async def test_retention_days_set_back_to_null_keeps_events_forever_through_a_tier_change(
    manager: FixtureManager,
) -> None:
    """Once set, retention_days could not be made "keep" again (null was refused, and
    every tier gives a number). Null now is that, by a patch or a full apply: the 30
    days stored as the tenant's own are replaced by null, so a new tier does not bring
    its own retention back, and a purge keeps everything."""
    await manager.create_tenant(
        TenantFixture(tenant_id=TENANT, tier="premium", settings={"retention_days": DAYS})
    )
    assert {"retention_days": DAYS} == await _stored_overrides(manager)

    reset = await manager.update_tenant_config(TENANT, settings={"retention_days": None})
    stored = await _stored_overrides(manager)
    enterprise = await manager.update_tenant_config(TENANT, tier="enterprise")
    report = (await manager.purge_expired([TENANT], dry_run=True))[0]
    await manager.apply_tenant_config(
        TenantFixture(tenant_id=TENANT, tier="enterprise", settings={"retention_days": DAYS})
    )
    applied = await manager.apply_tenant_config(
        TenantFixture(tenant_id=TENANT, tier="enterprise", settings={"retention_days": None})
    )

    assert reset.settings["retention_days"] is None
    assert {"retention_days": None} == stored
    assert enterprise.settings["retention_days"] is None
    assert (None, None, 0) == (report.retention_days, report.cutoff, report.total)
    assert applied.settings["retention_days"] is None
    assert (await manager.get_tenant_config(TENANT)).settings["retention_days"] is None


async def test_null_is_refused_for_a_setting_it_means_nothing_for(
    manager: FixtureManager,
) -> None:
    """Only retention_days takes null: elsewhere a ConfigError naming the key."""
    with pytest.raises(ConfigError) as refused:
        await manager.create_tenant(TenantFixture(tenant_id=TENANT, settings={"locale": None}))

    assert "settings.locale" == refused.value.key
    assert "retention_days" in str(refused.value)
