"""A load into a never-loaded tenant drops keys and indexes and rebuilds them once when it
is large; a small one keeps them in place (rebuilding would cost more than it saves)."""

from __future__ import annotations

import gzip
from pathlib import Path
from types import SimpleNamespace

import pytest

from tenancy_fixtures import FixtureManager
from tenancy_fixtures.fixtures.templates import BUILTIN_TEMPLATE_DIR
from tenancy_fixtures.loading.data_loader import DataLoader, files_bytes
from tenancy_fixtures.loading.load import defers_keys
from tenancy_fixtures.spotify.schema import spotify_metadata

TENANT = "bulk_keys"
MiB = 1 << 20
DEMO = BUILTIN_TEMPLATE_DIR / "fixtures" / "demo"


@pytest.mark.parametrize("defer_keys", [True, False], ids=["deferred", "kept"])
async def test_keys_are_out_of_the_catalogue_only_while_a_deferring_load_runs(
    manager: FixtureManager, defer_keys: bool
) -> None:
    await manager.create_tenant(TENANT)
    async with manager.store.session(TENANT) as session:
        before = await session.catalog_text()
        async with session.bulk_load(defer_keys=defer_keys):
            during = await session.catalog_text()
        after = await session.catalog_text()

    assert (during != before) is defer_keys
    assert after == before


async def test_a_load_into_a_tenant_holding_rows_never_defers_keys(
    manager: FixtureManager, demo_set: Path
) -> None:
    await manager.create_tenant(TENANT)
    await manager.load_fixtures(TENANT, demo_set)
    async with manager.store.session(TENANT) as session:
        before = await session.catalog_text()
        async with session.bulk_load(defer_keys=True):
            assert await session.catalog_text() == before


def test_the_demo_set_defers_keys_only_under_a_threshold_below_its_size(demo_set: Path) -> None:
    loaders = [DataLoader(demo_set, metadata=spotify_metadata())]
    size = loaders[0].source_bytes()

    assert size is not None
    assert 0 < size < MiB
    assert defers_keys(loaders, 0)
    assert defers_keys(loaders, size)
    assert not defers_keys(loaders, size + 1)
    assert not defers_keys(loaders, MiB)


def test_a_gzip_file_counts_with_its_uncompressed_size(tmp_path: Path) -> None:
    plain = tmp_path / "rows.jsonl"
    plain.write_text('{"id": 1, "name": "same line"}\n' * 5000, encoding="utf-8")
    packed = tmp_path / "rows.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))

    assert packed.stat().st_size < plain.stat().st_size // 10
    assert files_bytes([SimpleNamespace(path=packed, compressed=True)]) == plain.stat().st_size


def test_a_file_gone_makes_the_size_unknown(tmp_path: Path) -> None:
    assert files_bytes([SimpleNamespace(path=tmp_path / "gone.jsonl", compressed=False)]) is None


def test_a_loader_that_cannot_say_what_it_reads_defers_keys(tmp_path: Path) -> None:
    class Unknown(DataLoader):
        def source_bytes(self) -> int | None:
            return None

    loaders = [Unknown(DEMO, metadata=spotify_metadata())]

    assert defers_keys(loaders, 100 * MiB)
