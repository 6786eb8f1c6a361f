"""Tenant lifecycle on both backends: create, get, list, drop, refusals and the audit log."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Index, Integer, MetaData, Table, text

from tenancy_fixtures import (
    FixtureManager,
    InvalidTenantIdError,
    Settings,
    StorageError,
    TenancyFixturesError,
    TenantAlreadyExistsError,
    TenantFixture,
    TenantNotFoundError,
)
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.control_plane import count_rows

HOSTILE_IDS = [
    pytest.param("", id="empty"),
    pytest.param("Tenant", id="uppercase"),
    pytest.param("1abc", id="leading-digit"),
    pytest.param("a b", id="space"),
    pytest.param("a'b", id="single-quote"),
    pytest.param('a"b', id="double-quote"),
    pytest.param("a;b", id="semicolon"),
    pytest.param("a--b", id="sql-comment"),
    pytest.param("..", id="dot-dot"),
    pytest.param("a/b", id="slash"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("t\u0435nant", id="cyrillic-e"),
    pytest.param("public", id="public"),
    pytest.param("pg_catalog", id="pg_catalog"),
    pytest.param("information_schema", id="information_schema"),
    pytest.param("tenancy", id="tenancy"),
    pytest.param("pg_x", id="pg-prefix"),
    pytest.param("tenant", id="tenant-placeholder-schema"),
    pytest.param("main", id="sqlite-main"),
    pytest.param("temp", id="sqlite-temp"),
    pytest.param("postgres", id="postgres"),
    pytest.param("a" * 49, id="49-chars"),
]


async def _schemas(manager: FixtureManager) -> set[str]:
    """Every schema in the PostgreSQL database of ``manager``."""
    async with manager.store.control() as conn:
        rows = await conn.execute(text("SELECT nspname FROM pg_namespace"))
        return {str(name) for (name,) in rows}


def _files(root: Path) -> set[Path]:
    """Every file under ``root`` (the SQLite data dir)."""
    return {path for path in root.rglob("*") if path.is_file()}


async def _storage_snapshot(manager: FixtureManager) -> set[str]:
    """What exists in storage: schemas on PostgreSQL, files on SQLite."""
    if manager.store.backend == "postgresql":
        return await _schemas(manager)
    return {str(path) for path in _files(manager.settings.data_dir)}


async def test_created_tenant_can_be_read_listed_and_dropped(manager: FixtureManager) -> None:
    """A created tenant is returned by get and list, and gone from both after a drop."""
    config = await manager.create_tenant("tenant_one", tier="premium")
    await manager.create_tenant("tenant_two")

    assert config.tenant_id == "tenant_one"
    assert config.tier == "premium"
    record = await manager.get_tenant("tenant_one")
    assert (record.tenant_id, record.tier, record.status) == ("tenant_one", "premium", "active")
    assert record.created_at.tzinfo is not None
    assert [t.tenant_id for t in await manager.list_tenants()] == ["tenant_one", "tenant_two"]
    assert [t.tenant_id for t in await manager.list_tenants(prefix="tenant_t")] == ["tenant_two"]
    assert await manager.store.storage_exists("tenant_one")

    await manager.drop_tenant("tenant_one")

    assert [t.tenant_id for t in await manager.list_tenants()] == ["tenant_two"]
    with pytest.raises(TenantNotFoundError):
        await manager.get_tenant("tenant_one")


async def test_a_prefix_matches_letter_case_and_wildcards_as_written_on_every_backend(
    manager: FixtureManager,
) -> None:
    """``HUNT`` took the ``hunt_*`` tenants on SQLite (its LIKE ignores case) and none on
    PostgreSQL; ``_`` and ``%`` are characters, and a prefix's bound is not taken."""
    for tenant in ("hunt_a", "hunt_b", "huntx", "hunu"):
        await manager.create_tenant(tenant)

    async def ids(prefix: str) -> list[str]:
        listed = [t.tenant_id for t in await manager.list_tenants(prefix=prefix)]
        assert len(listed) == await manager.count_tenants(prefix=prefix)
        return listed

    assert [] == await ids("HUNT")
    assert [] == await ids("Hunt_")
    assert ["hunt_a", "hunt_b"] == await ids("hunt_")
    assert ["hunt_a", "hunt_b", "huntx"] == await ids("hunt")
    assert [] == await ids("hunt%")
    assert ["hunu"] == await ids("hunu")


async def test_create_of_an_existing_tenant_raises_already_exists(manager: FixtureManager) -> None:
    """Creating a tenant twice raises TenantAlreadyExistsError and leaves the first intact."""
    await manager.create_tenant("dup_tenant", tier="enterprise")

    with pytest.raises(TenantAlreadyExistsError) as caught:
        await manager.create_tenant("dup_tenant")

    assert caught.value.tenant_id == "dup_tenant"
    assert (await manager.get_tenant("dup_tenant")).tier == "enterprise"
    assert (await manager.get_tenant_config("dup_tenant")).tier == "enterprise"
    assert await manager.store.storage_exists("dup_tenant")


async def test_drop_removes_storage_registry_config_fixtures_and_cache(
    manager: FixtureManager, demo_set: Path
) -> None:
    """After a drop nothing of the tenant is left, and the same id can be created again."""
    tenant = "doomed_tenant"
    await manager.create_tenant(tenant)
    await manager.load_fixtures(tenant, source=demo_set)
    assert (await manager.get_tenant_config(tenant)).tier == "free"  # now cached
    storage = manager.store.storage_name(tenant)
    async with manager.store.control() as conn:
        assert await control_plane.applied_fixtures(conn, tenant)
        assert await control_plane.load_config(conn, tenant) is not None

    await manager.drop_tenant(tenant)

    assert not await manager.store.storage_exists(tenant)
    if manager.store.backend == "postgresql":
        assert tenant not in await _schemas(manager)
    else:
        assert not await asyncio.to_thread(Path(storage).exists)
        assert not await asyncio.to_thread(Path(storage + "-journal").exists)
    async with manager.store.control() as conn:
        assert await control_plane.get_tenant(conn, tenant) is None
        assert await control_plane.load_config(conn, tenant) is None
        assert await control_plane.applied_fixtures(conn, tenant) == {}
    with pytest.raises(TenantNotFoundError):
        await manager.get_tenant_config(tenant)
    with pytest.raises(TenantNotFoundError):
        await manager.get_tenant(tenant)

    config = await manager.create_tenant(tenant, tier="premium")

    assert config.tier == "premium"
    assert (await manager.get_tenant_config(tenant)).tier == "premium"
    status = await manager.tenant_status(tenant)
    assert status.total_rows == 0
    assert status.fixtures.keys() == {"schema", "config"}


async def test_drop_of_an_unknown_tenant_raises_not_found(manager: FixtureManager) -> None:
    """Dropping a tenant that was never created raises TenantNotFoundError."""
    with pytest.raises(TenantNotFoundError):
        await manager.drop_tenant("never_created")


async def test_drop_twice_raises_not_found_the_second_time(manager: FixtureManager) -> None:
    """A tenant can be dropped once; the second drop finds nothing."""
    await manager.create_tenant("once_tenant")
    await manager.drop_tenant("once_tenant")

    with pytest.raises(TenantNotFoundError):
        await manager.drop_tenant("once_tenant")


@pytest.mark.parametrize("hostile", HOSTILE_IDS)
async def test_hostile_tenant_id_is_refused_everywhere_and_creates_nothing(
    manager: FixtureManager, demo_set: Path, hostile: str
) -> None:
    """Every entry point refuses a hostile id with InvalidTenantIdError before any storage."""
    storage_before = await _storage_snapshot(manager)
    registry_before = await manager.list_tenants()

    with pytest.raises(InvalidTenantIdError):
        await manager.create_tenant(hostile)
    with pytest.raises(InvalidTenantIdError):
        await manager.create_tenant(hostile, tier="enterprise")
    with pytest.raises(InvalidTenantIdError):
        await manager.load_fixtures(hostile)
    with pytest.raises(InvalidTenantIdError):
        await manager.load_fixtures(hostile, source=demo_set)
    with pytest.raises(InvalidTenantIdError):
        await manager.drop_tenant(hostile)
    with pytest.raises(InvalidTenantIdError):
        await manager.get_tenant(hostile)
    with pytest.raises(InvalidTenantIdError):
        await manager.get_tenant_config(hostile)
    with pytest.raises(InvalidTenantIdError):
        await manager.validate_tenant(hostile)
    with pytest.raises(InvalidTenantIdError):
        TenantFixture(tenant_id=hostile)

    assert await _storage_snapshot(manager) == storage_before
    assert await manager.list_tenants() == registry_before == []


@pytest.mark.parametrize("not_an_id", [5, None, b"acme"])
async def test_a_tenant_id_that_is_not_a_string_is_refused_as_an_id(
    manager: FixtureManager, not_an_id: Any
) -> None:
    """Not a raw AttributeError from reading it as a TenantFixture."""
    with pytest.raises(InvalidTenantIdError, match="must be a string"):
        await manager.create_tenant(not_an_id)

    assert [] == await manager.list_tenants()


async def test_the_audit_log_and_migration_status_refuse_a_hostile_id(
    manager: FixtureManager,
) -> None:
    """They answered an empty list for it."""
    with pytest.raises(InvalidTenantIdError):
        await manager.audit_log("../x")
    with pytest.raises(InvalidTenantIdError):
        await manager.migration_status(["../x"])


async def test_audit_log_records_every_lifecycle_step_with_actor_and_outcome(
    manager: FixtureManager, demo_set: Path
) -> None:
    """Create, config change, load, refused duplicate and drop are each audited; after the
    drop each record keeps who, what, when and how it ended, not its detail."""
    tenant = "audited_tenant"
    await manager.create_tenant(tenant)
    await manager.apply_tenant_config(
        TenantFixture(tenant_id=tenant, tier="premium", limits={"api_calls": 1234})
    )
    await manager.load_fixtures(tenant, source=demo_set)
    with pytest.raises(TenantAlreadyExistsError):
        await manager.create_tenant(tenant)
    await manager.drop_tenant(tenant)

    records = await manager.audit_log(tenant)

    steps = [(r.action, r.outcome) for r in reversed(records)]
    assert steps == [
        ("tenant.create", "ok"),
        ("config.apply", "ok"),
        ("fixtures.load", "ok"),
        ("tenant.create", "refused"),
        ("audit.erase", "ok"),
        ("tenant.drop", "ok"),
    ]
    assert {r.actor for r in records} == {"pytest"}
    assert {r.tenant_id for r in records} == {tenant}
    assert all(r.run_id for r in records)
    assert records[0].at >= records[-1].at
    # The drop left the minimal trail: no detail but a refusal's error class.
    # The chain's tombstone says how many records the drop erased, and where.
    assert 4 == records[1].detail["erased"]
    assert 4 == sum(last - first + 1 for first, last in records[1].detail["positions"])
    assert {"erased": True, "error": "TenantAlreadyExistsError"} == records[2].detail
    assert [{"erased": True}] * 3 == [r.detail for r in records[3:]]
    expected = {"registered": True, "storage_removed": True, "key_destroyed": False}
    assert expected == records[0].detail


async def test_longest_allowed_tenant_id_is_created_and_dropped(manager: FixtureManager) -> None:
    """A 48-character id, the longest allowed, works end to end."""
    tenant = "a" * 48

    await manager.create_tenant(tenant)

    assert (await manager.get_tenant(tenant)).tenant_id == tenant
    assert await manager.store.storage_exists(tenant)
    await manager.drop_tenant(tenant)
    assert not await manager.store.storage_exists(tenant)


async def test_operations_on_an_unknown_tenant_raise_not_found(
    manager: FixtureManager, demo_set: Path
) -> None:
    """Load, validate, status and config of a tenant that does not exist raise not-found."""
    with pytest.raises(TenantNotFoundError):
        await manager.load_fixtures("ghost_tenant", source=demo_set)
    with pytest.raises(TenantNotFoundError):
        await manager.validate_tenant("ghost_tenant")
    with pytest.raises(TenantNotFoundError):
        await manager.tenant_status("ghost_tenant")
    with pytest.raises(TenantNotFoundError):
        await manager.get_tenant_config("ghost_tenant")

    assert not await manager.store.storage_exists("ghost_tenant")
    assert await manager.list_tenants() == []
    audit = await manager.audit_log("ghost_tenant")
    assert [(r.action, r.outcome) for r in audit] == [("fixtures.load", "refused")]


async def test_store_session_of_an_unknown_tenant_raises_not_found(manager: FixtureManager) -> None:
    """Opening a session on a tenant that does not exist raises TenantNotFoundError."""
    with pytest.raises(TenantNotFoundError):
        async with manager.store.session("ghost_tenant") as session:
            await count_rows(session.connection, session.metadata.sorted_tables)


def _metadata_the_database_rejects() -> MetaData:
    """Two tables whose indexes share a name: valid MetaData, refused by both databases."""
    metadata = MetaData(schema="tenant")
    Table(
        "first",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("x", Integer),
        Index("ix_clash", "x"),
    )
    Table(
        "second",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("y", Integer),
        Index("ix_clash", "y"),
    )
    return metadata


async def test_create_is_atomic_when_the_database_rejects_the_schema(
    manager: FixtureManager, settings: Settings
) -> None:
    """A create whose DDL fails leaves no storage, no registry row and no config behind."""
    storage_before = await _storage_snapshot(manager)
    async with FixtureManager(settings, metadata=_metadata_the_database_rejects()) as broken:
        with pytest.raises(Exception):  # noqa: B017, PT011 - the type is pinned down below
            await broken.create_tenant("broken_tenant")

        assert not await broken.store.storage_exists("broken_tenant")
        assert await broken.list_tenants() == []
        async with broken.store.control() as conn:
            assert await control_plane.load_config(conn, "broken_tenant") is None
            assert await control_plane.applied_fixtures(conn, "broken_tenant") == {}
        assert await _storage_snapshot(manager) == storage_before
        audit = await broken.audit_log("broken_tenant")
        assert [r.action for r in audit] == ["tenant.create"]
        assert audit[0].outcome in {"refused", "failed"}
    await manager.create_tenant("broken_tenant")  # the id is still free


async def test_create_rejected_by_the_database_raises_storage_error(settings: Settings) -> None:
    """A database failure during create surfaces as StorageError, never a driver exception."""
    async with FixtureManager(settings, metadata=_metadata_the_database_rejects()) as broken:
        with pytest.raises(TenancyFixturesError) as caught:
            await broken.create_tenant("broken_tenant")

    assert isinstance(caught.value, StorageError)
    assert caught.value.tenant_id == "broken_tenant"


@pytest.mark.parametrize("hostile", ["a'b", "Tenant", "pg_catalog"])
async def test_tenant_status_refuses_a_hostile_id(manager: FixtureManager, hostile: str) -> None:
    """tenant_status refuses a hostile id with InvalidTenantIdError like the other methods."""
    with pytest.raises(InvalidTenantIdError):
        await manager.tenant_status(hostile)


async def test_failed_drop_is_not_counted_as_ok_in_metrics(manager: FixtureManager) -> None:
    """A drop that raises TenantNotFoundError is not counted as a successful drop."""
    with pytest.raises(TenantNotFoundError):
        await manager.drop_tenant("never_created")

    ok_drops = manager.metrics.registry.get_sample_value(
        "tenancy_operations_total", {"operation": "drop", "outcome": "ok"}
    )
    assert not ok_drops
