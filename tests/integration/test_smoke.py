"""The two snippets of the design, on both backends."""

from __future__ import annotations

from tenancy_fixtures import FixtureManager


async def test_create_and_load_the_demo_tenant(manager: FixtureManager) -> None:
    """A created tenant loads its tier's fixtures, and a second load changes nothing."""
    await manager.create_tenant("tenant_001")
    first = await manager.load_fixtures("tenant_001")
    second = await manager.load_fixtures("tenant_001")
    assert first.changed
    assert first.rows > 0
    assert not second.changed
    assert second.rows == 0
