"""A test-wide oracle for validation's write-stamp shortcut.

On PostgreSQL, ``validate-data`` takes a table's checksum from its recorded writes when
the rows' writers show nothing else touched it. That trusts the checksums the loads
computed; re-reading the table is what would catch a load whose recorded checksum does
not describe what it stored. In this suite every table proven
by its stamps is also read and hashed again, and the test fails if the two disagree.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import Table

from tenancy_fixtures.loading.table_checksums import table_checksum
from tenancy_fixtures.store.base import TenantSession
from tenancy_fixtures.validation import integrity
from tenancy_fixtures.validation.integrity import DataIntegrityValidator, IntegrityReport

__all__ = ["stamped_tables_are_recomputed"]


@pytest.fixture(autouse=True, scope="session")
def stamped_tables_are_recomputed() -> Iterator[None]:
    """Wrap the shortcut so that each table it proves is recomputed and compared."""
    shortcut = DataIntegrityValidator._stamped

    async def cross_checked(
        self: DataIntegrityValidator,
        session: TenantSession,
        tables: Sequence[Table],
        expected: dict[str, integrity._Expected],
        writes: int,
        short: set[str],
        report: IntegrityReport,
    ) -> set[str]:
        proven = await shortcut(self, session, tables, expected, writes, short, report)
        by_name = {t.name: t for t in tables}
        for name in sorted(proven):
            content = table_checksum(by_name[name])
            async for rows in session.scan_rows(by_name[name]):
                content.add(rows)
            recomputed = (content.rows, content.hexdigest())
            recorded = (expected[name].rows, expected[name].checksum)
            assert recomputed == recorded, (
                f"{session.tenant_id}.{name}: proven by write stamps as {recorded}, "
                f"but its rows hash to {recomputed}"
            )
        return proven

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DataIntegrityValidator, "_stamped", cross_checked)
        yield
