"""The embedded SQLite store's provisioning: what only the file-per-tenant backend has."""

from __future__ import annotations

from pathlib import Path

from tenancy_fixtures import FixtureManager, Settings


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
