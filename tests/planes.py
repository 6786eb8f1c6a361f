"""The control-plane id of a test's database: lenient loads name reject files for it."""

from __future__ import annotations

from tenancy_fixtures import FixtureManager
from tenancy_fixtures.store import control_plane

__all__ = ["plane_of"]


async def plane_of(manager: FixtureManager) -> str:
    """The id of the manager's control plane (``<tenant>-<plane>-<run_id>.jsonl``)."""
    await manager.store.initialize()
    async with manager.store.control(readonly=True) as conn:
        plane = await control_plane.plane_id(conn)
    assert plane is not None
    return plane
