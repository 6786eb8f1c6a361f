"""Tenant isolation on both backends: one tenant's rows are invisible from another's session."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from tenancy_fixtures import FixtureManager, TenantSession
from tenancy_fixtures.store.control_plane import count_rows
from tenancy_fixtures.store.postgres.store import PostgresTenantStore
from tests.integration.search_path import forced_search_path

TENANT_A = "tenant_a"
TENANT_B = "tenant_b"
#: The first user of the demo set's users.csv.
KNOWN_USER_ID = "5790e540-eed8-47e8-a3e2-8bc16d7cce49"
KNOWN_USER_EMAIL = "nora.okafor.1@example.com"


async def _counts(session: TenantSession) -> dict[str, int]:
    """Rows per table of the session's tenant, through SQLAlchemy Core."""
    return await count_rows(session.connection, session.metadata.sorted_tables)


async def _counts_of(manager: FixtureManager, tenant_id: str) -> dict[str, int]:
    """Rows per table of a tenant, for the tables that hold any."""
    async with manager.store.session(tenant_id) as session:
        return {table: rows for table, rows in (await _counts(session)).items() if rows}


async def _demo_in_a(manager: FixtureManager, demo_set: Path) -> dict[str, int]:
    """Create A and B, load the demo set into A only; the rows A got per table."""
    await manager.create_tenant(TENANT_A)
    await manager.create_tenant(TENANT_B)
    report = await manager.load_fixtures(TENANT_A, source=demo_set)
    assert report.rows > 0
    return report.row_counts


async def test_rows_loaded_into_one_tenant_are_invisible_to_another(
    manager: FixtureManager, demo_set: Path
) -> None:
    """After loading A only, every table of B counts zero rows and A's hold the loaded rows."""
    loaded = await _demo_in_a(manager, demo_set)

    async with manager.store.session(TENANT_B) as session:
        b_counts = await _counts(session)
    async with manager.store.session(TENANT_A) as session:
        a_counts = await _counts(session)

    assert set(b_counts) == {t.name for t in manager.store.metadata.sorted_tables}
    assert all(rows == 0 for rows in b_counts.values()), b_counts
    assert {table: rows for table, rows in a_counts.items() if rows} == loaded


async def test_selecting_with_another_tenants_keys_finds_nothing(
    manager: FixtureManager, demo_set: Path
) -> None:
    """B's session finds no row even when it asks for A's known user id and email."""
    await _demo_in_a(manager, demo_set)

    for tenant, expected in ((TENANT_B, []), (TENANT_A, [KNOWN_USER_ID])):
        async with manager.store.session(tenant) as session:
            users = session.metadata.tables["tenant.users"]
            events = session.metadata.tables["tenant.listening_events"]
            by_id = await session.connection.execute(
                select(users.c.user_id).where(users.c.user_id == KNOWN_USER_ID)
            )
            by_email = await session.connection.execute(
                select(users.c.user_id).where(users.c.email == KNOWN_USER_EMAIL)
            )
            plays = await session.connection.execute(
                select(func.count()).select_from(events).where(events.c.user_id == KNOWN_USER_ID)
            )
            assert list(by_id.scalars()) == expected
            assert list(by_email.scalars()) == expected
            assert (plays.scalar_one() > 0) is bool(expected)


async def test_loading_one_tenant_leaves_another_tenants_rows_alone(
    manager: FixtureManager, demo_set: Path
) -> None:
    """Loading the same set into B afterwards gives B its own copy and leaves A unchanged."""
    loaded = await _demo_in_a(manager, demo_set)

    report = await manager.load_fixtures(TENANT_B, source=demo_set)

    assert report.row_counts == loaded
    assert await _counts_of(manager, TENANT_A) == loaded
    assert await _counts_of(manager, TENANT_B) == loaded


async def test_dropping_one_tenant_leaves_another_tenants_rows_alone(
    manager: FixtureManager, demo_set: Path
) -> None:
    """Dropping B does not touch A's storage or rows."""
    loaded = await _demo_in_a(manager, demo_set)

    await manager.drop_tenant(TENANT_B)

    assert await manager.store.storage_exists(TENANT_A)
    assert await _counts_of(manager, TENANT_A) == loaded


@pytest.mark.postgres
async def test_postgres_session_ignores_a_search_path_pointing_at_another_tenant(
    pg_manager: FixtureManager, demo_set: Path
) -> None:
    """On PostgreSQL, B's Core queries still read B after SET search_path TO tenant_a."""
    manager = pg_manager
    loaded = await _demo_in_a(manager, demo_set)

    async with manager.store.session(TENANT_B) as session:
        await session.connection.execute(text(f"SET search_path TO {TENANT_A}"))
        # The raw, unqualified query follows search_path and sees A's rows ...
        raw = await session.connection.execute(text("SELECT count(*) FROM users"))
        assert raw.scalar_one() == loaded["users"]
        # ... while every Core statement names B's schema and sees B's (empty) tables.
        users = session.metadata.tables["tenant.users"]
        found = await session.connection.execute(
            select(users.c.user_id).where(users.c.user_id == KNOWN_USER_ID)
        )
        assert list(found.scalars()) == []
        assert all(rows == 0 for rows in (await _counts(session)).values())
        assert await session.is_empty(users)


@pytest.mark.postgres
async def test_postgres_load_and_reads_are_correct_when_every_connection_has_a_foreign_search_path(
    pg_manager: FixtureManager, demo_set: Path
) -> None:
    """On PostgreSQL, with search_path forced to tenant_a on every new connection, B stays B."""
    manager = pg_manager
    loaded = await _demo_in_a(manager, demo_set)
    store = manager.store
    assert isinstance(store, PostgresTenantStore)
    async with forced_search_path(store, TENANT_A):
        async with manager.store.session(TENANT_B) as session:
            path = await session.connection.execute(text("SHOW search_path"))
            assert path.scalar_one() == TENANT_A
            assert all(rows == 0 for rows in (await _counts(session)).values())

        report = await manager.load_fixtures(TENANT_B, source=demo_set)
        assert report.row_counts == loaded
        # Unqualified SQL on B's connections would read A's rows: the check says so.
        validation = await manager.validate_tenant(TENANT_B)
        assert ["isolation"] == validation.failed_checks
        assert any("search_path includes tenant 'tenant_a'" in p for p in validation.problems)

        assert await _counts_of(manager, TENANT_A) == loaded
        assert await _counts_of(manager, TENANT_B) == loaded
        status = await manager.tenant_status(TENANT_B)
        assert {t: n for t, n in status.row_counts.items() if n} == loaded
