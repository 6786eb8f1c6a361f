"""A process that made one SQLite data directory makes the next one from the same bytes:
the empty tenant schema's template file and the empty control plane. What each
directory makes of them (its plane id, its audit chain, its tenants) stays its own."""

from __future__ import annotations

import asyncio
import multiprocessing
from pathlib import Path

from tenancy_fixtures import FixtureManager, Settings


def _settings(data_dir: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{data_dir}", actor="pytest")


async def _made(data_dir: Path) -> tuple[str, list[str]]:
    """A tenant made and validated in a new data directory: its plane id and problems."""
    async with FixtureManager(_settings(data_dir)) as manager:
        await manager.create_tenant("acme")
        report = await manager.validate_tenant("acme")
        chain = await manager.verify_audit()
        assert chain.ok, chain
        return await manager.config.plane_id(), report.problems


async def test_a_second_data_directory_is_made_from_the_first_ones_bytes(tmp_path: Path) -> None:
    first_plane, first_problems = await _made(tmp_path / "first")
    second_plane, second_problems = await _made(tmp_path / "second")

    [first_template] = (tmp_path / "first").glob("template-*.db")
    [second_template] = (tmp_path / "second").glob("template-*.db")
    assert first_template.name == second_template.name
    assert first_template.read_bytes() == second_template.read_bytes()
    assert ([], []) == (first_problems, second_problems)
    assert first_plane != second_plane
    assert [] == [p.name for p in (tmp_path / "second").iterdir() if "copy" in p.name]


def _plane_of(data_dir: str, start: multiprocessing.synchronize.Barrier) -> str:
    async def plane() -> str:
        async with FixtureManager(_settings(Path(data_dir))) as manager:
            await manager.list_tenants()
            return await manager.config.plane_id()

    start.wait()
    return asyncio.run(plane())


def test_processes_initializing_one_new_data_directory_at_once_share_one_control_plane(
    tmp_path: Path,
) -> None:
    racers = 4
    context = multiprocessing.get_context("spawn")
    # Timeouts: a racer that dies (an import error) would leave the others at the
    # barrier, and the pool replacing it waiting for work, for ever.
    start = context.Manager().Barrier(racers, timeout=60)
    with context.Pool(racers) as pool:
        racing = pool.starmap_async(_plane_of, [(str(tmp_path / "data"), start)] * racers)
        planes = racing.get(timeout=120)

    assert 1 == len(set(planes)), planes
    left = sorted(p.name for p in (tmp_path / "data").iterdir() if p.is_file())
    assert "tenancy.db" in left
    assert [] == [name for name in left if name.startswith("control-")]


async def test_a_later_stores_connections_get_what_create_engine_would_add(
    tmp_path: Path,
) -> None:
    """Stores after the first share its dialect; their connections still get SQLite's
    REGEXP function, which SQLAlchemy installs per connection."""
    from sqlalchemy import literal, select

    for name in ("first", "second"):
        async with FixtureManager(_settings(tmp_path / name)) as manager:
            await manager.create_tenant("acme")
            async with manager.store.session("acme", readonly=True) as session:
                found = await session.connection.scalar(
                    select(literal("acme-music").regexp_match("^acme-"))
                )
            assert found in (True, 1), name
