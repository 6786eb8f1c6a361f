"""The embedded SQLite store's provisioning: what only the file-per-tenant backend has."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy_fixtures import FixtureManager, Settings, StorageError
from tenancy_fixtures.store.base import RegistryMismatch
from tenancy_fixtures.store.sqlite.recovery import creators_lock, temporary_name


async def test_a_second_sqlite_tenant_reuses_the_statements_compiled_for_the_first(
    tmp_path: Path,
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'data'}", actor="pytest")
    async with FixtureManager(settings) as manager:
        compiled = manager.store._compiled  # type: ignore[attr-defined]
        await manager.create_tenant("first_tenant")
        after_first = len(compiled)

        await manager.create_tenant("second_tenant")

        assert after_first == len(compiled)


def _settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'data'}", actor="pytest")


async def _set_up(conn: AsyncConnection, control: str) -> dict[str, object]:
    """What a connection was set up with as it opened."""

    async def pragma(name: str) -> object:
        return (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()

    databases = (await conn.exec_driver_sql("PRAGMA database_list")).scalars("name").all()
    return {
        "foreign_keys": await pragma("foreign_keys"),
        "busy_timeout": await pragma("busy_timeout"),
        "secure_delete": await pragma(f"{control}.secure_delete"),
        "databases": sorted(map(str, databases)),
        # What SQLAlchemy registers on every SQLite connection (`regexp_match`, floor()).
        "functions": (
            await conn.exec_driver_sql("SELECT 'tenant' REGEXP '^ten', floor(2.5)")
        ).one(),
    }


async def test_every_connection_checks_keys_waits_for_locks_and_overwrites_what_it_deletes(
    tmp_path: Path,
) -> None:
    """Tenant and control-plane connections alike: foreign keys enforced, a 30 s busy
    timeout, secure deletion where the control plane is (attached to a tenant's file as
    ``tenancy``) and SQLAlchemy's SQL functions, also on connections opened after the
    first."""
    async with FixtureManager(_settings(tmp_path)) as manager:
        await manager.create_tenant("acme")
        tenant = []
        for _ in range(2):
            async with manager.store.session("acme") as session:
                tenant.append(await _set_up(session.connection, "tenancy"))
        async with manager.store.control() as conn:
            control = await _set_up(conn, "main")

    expected = {"foreign_keys": 1, "busy_timeout": 30_000, "secure_delete": 1, "functions": (1, 2)}
    assert [{**expected, "databases": ["main", "tenancy"]}] * 2 == tenant
    assert {**expected, "databases": ["main"]} == control


async def test_init_tenant_over_an_unregistered_file_refuses_and_cleanup_removes_the_file(
    tmp_path: Path,
) -> None:
    """A tenant file nothing registers (put there by hand): create refuses naming cleanup,
    the registry check reports it, and a drop removes it so the create then works."""
    async with FixtureManager(_settings(tmp_path)) as manager:
        await manager.create_tenant("keeper")
        keeper = Path(manager.store.storage_name("keeper"))
        shutil.copyfile(keeper, keeper.with_name("ghost.db"))

        with pytest.raises(StorageError) as refused:
            await manager.create_tenant("ghost")

        assert "cleanup ghost" in str(refused.value)
        assert ["keeper"] == [t.tenant_id for t in await manager.list_tenants()]
        assert RegistryMismatch(["ghost"], []) == await manager.store.registry_mismatch()
        await manager.drop_tenant("ghost")
        await manager.create_tenant("ghost")
        assert RegistryMismatch([], []) == await manager.store.registry_mismatch()


async def test_a_temporary_file_of_a_create_in_progress_survives_another_store_settling(
    tmp_path: Path,
) -> None:
    """While a creator holds the creators' lock its unlinked copy is left alone; once no
    creator is at work, the next store to initialize removes the abandoned copy."""
    settings = _settings(tmp_path)
    async with FixtureManager(settings) as manager:
        await manager.create_tenant("keeper")
    tenants_dir = settings.data_dir / "tenants"
    copy = temporary_name(tenants_dir / "pending.db", uuid.uuid4().hex)
    copy.write_bytes(b"")

    with creators_lock(settings.data_dir / ".creators.lock", exclusive=False):
        async with FixtureManager(settings) as settling:
            assert ["keeper"] == [t.tenant_id for t in await settling.list_tenants()]
        assert copy.exists()

    async with FixtureManager(settings) as settling:
        await settling.list_tenants()
    assert ["keeper.db"] == sorted(p.name for p in tenants_dir.iterdir())
