"""DataIntegrityValidator: checks what a tenant holds after loading, and on demand.

It counts rows per table, finds foreign-key orphans (rows whose parent is missing,
which a backend without enforced foreign keys would let through), and compares the
tables with the row counts recorded for the fixtures applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Table, and_, exists, func, select

from tenancy_fixtures import control_plane
from tenancy_fixtures.schema import SchemaFixture
from tenancy_fixtures.store.base import TenantSession, TenantStore

__all__ = ["DataIntegrityValidator", "IntegrityReport"]


@dataclass
class IntegrityReport:
    """What checking one tenant found."""

    tenant_id: str
    row_counts: dict[str, int] = field(default_factory=dict)
    orphans: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the tenant passed every check."""
        return not self.problems

    @property
    def total_rows(self) -> int:
        """Rows across all tables."""
        return sum(self.row_counts.values())


class DataIntegrityValidator:
    """Checks a tenant: its tables are all there, no orphans, no rows lost since loading."""

    def __init__(self, store: TenantStore) -> None:
        self.store = store

    async def check(self, tenant_id: str) -> IntegrityReport:
        """Check one tenant (read only)."""
        report = IntegrityReport(tenant_id)
        async with self.store.session(tenant_id, readonly=True) as session:
            report.problems.extend(await SchemaFixture(session.metadata).verify(session))
            tables = session.metadata.sorted_tables
            report.row_counts = await control_plane.count_rows(session.connection, tables)
            for table in tables:
                await self._orphans(session, table, report)
            applied = await control_plane.applied_fixtures(session.connection, tenant_id)
        expected: dict[str, int] = {}
        for fixture in applied.values():
            for table_name, rows in fixture.row_counts.items():
                expected[table_name] = max(expected.get(table_name, 0), rows)
        for table_name, rows in expected.items():
            actual = report.row_counts.get(table_name, 0)
            if actual < rows:
                report.problems.append(
                    f"{table_name}: {actual} rows, but {rows} were loaded by its fixtures"
                )
        return report

    async def _orphans(self, session: TenantSession, table: Table, report: IntegrityReport) -> None:
        for constraint in table.foreign_key_constraints:
            parent = constraint.referred_table
            pairs = [(element.parent, element.column) for element in constraint.elements]
            query = (
                select(func.count())
                .select_from(table)
                .where(
                    *(child.is_not(None) for child, _ in pairs),
                    ~exists().where(and_(*(child == referred for child, referred in pairs))),
                )
            )
            orphans = int((await session.connection.execute(query)).scalar_one())
            if orphans:
                columns = ", ".join(child.name for child, _ in pairs)
                key = f"{table.name}.{columns}"
                report.orphans[key] = orphans
                report.problems.append(
                    f"{key}: {orphans} row(s) reference a missing {parent.name} row"
                )
