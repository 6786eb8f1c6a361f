"""The columns each recorded table write's checksum covers: kept with the write, and
added to a control plane made before they were."""

from __future__ import annotations

import json

from tests.integration.chain_db import OwnDatabase


async def test_each_write_records_the_columns_its_checksum_covers(own: OwnDatabase) -> None:
    async with own.manager() as manager:
        await manager.create_tenant("covered")
        await manager.load_fixtures("covered")
        async with manager.store.session("covered", readonly=True) as session:
            tracks = [c.name for c in session.metadata.tables["tenant.tracks"].columns]

    rows = await own.sql(
        "SELECT column_names FROM tenancy.table_checksums WHERE table_name = 'tracks'"
    )

    assert len(rows) == 1
    recorded = rows[0][0]
    assert (recorded if isinstance(recorded, list) else json.loads(recorded)) == tracks


async def test_a_control_plane_made_before_columns_were_kept_gains_them_and_still_validates(
    own: OwnDatabase,
) -> None:
    async with own.manager() as manager:
        await manager.create_tenant("legacy")
        await manager.load_fixtures("legacy")
    await own.sql("ALTER TABLE tenancy.table_checksums DROP COLUMN column_names")

    async with own.manager() as manager:
        report = await manager.validate_tenant("legacy", recompute_checksums=True)
        await manager.create_tenant("after")
        await manager.load_fixtures("after")
        after = await manager.validate_tenant("after", recompute_checksums=True)
    kept = await own.sql(
        "SELECT count(*) FROM tenancy.table_checksums WHERE column_names IS NOT NULL"
    )

    assert report.ok, report.problems
    assert {c.status for c in report.checksums.values()} <= {"match", "no_fixture"}
    assert after.ok, after.problems
    assert kept[0][0] > 0
