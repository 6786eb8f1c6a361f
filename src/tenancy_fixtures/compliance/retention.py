"""Retention: purge the events older than a tenant's ``retention_days``.

Which tables hold events, and which column says when each happened, the schema
declares (``Column(..., info={"retention": "event_time"})``, see
:mod:`tenancy_fixtures.store.column_info`); nothing here names a table. Rows go in
batches of ``batch_size``, one transaction each (a writer never holds a lock for long,
and memory holds one batch): each batch reads its rows by primary key, deletes them, and
records in the control plane what it removed (their content checksum, negated), so
``validate-data`` still knows what each table should hold. One audit record per tenant
(``data.retention``) gives the cutoff and the counts. On SQLite the purged rows are
overwritten in the tenant's file (``secure_delete``), not left in its free space.

Derived daily statistics are *not* recomputed: they are anonymous counts, kept on
purpose after the raw, personal events expire (recomputing them would erase the history
they exist to keep, and leave the day straddling the cutoff half-counted).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    MetaData,
    Table,
    TypeDecorator,
    delete,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from tenancy_fixtures.errors import ConfigError, StorageError
from tenancy_fixtures.ids import validate_tenant_id
from tenancy_fixtures.loading.table_checksums import table_checksum_over
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.base import TenantSession, TenantStore
from tenancy_fixtures.store.column_info import event_time_column
from tenancy_fixtures.tenancy.audit import audited
from tenancy_fixtures.tenancy.config import retention_days

__all__ = ["RETENTION_FIXTURE", "RetentionReport", "event_tables", "purge_expired"]

log = get_logger("tenancy_fixtures.compliance.retention")

#: The name purges are recorded under in the control plane's table-write history.
RETENTION_FIXTURE = "retention"
_MASK = (1 << 64) - 1


@dataclass
class RetentionReport:
    """What a retention run did (or, with ``dry_run``, would do) to one tenant."""

    tenant_id: str
    retention_days: int | None
    cutoff: datetime | None
    dry_run: bool
    #: Rows purged (or expired, for a dry run) per table.
    purged: dict[str, int] = field(default_factory=dict)
    batches: int = 0

    @property
    def total(self) -> int:
        return sum(self.purged.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "retention_days": self.retention_days,
            "cutoff": self.cutoff.isoformat() if self.cutoff else None,
            "dry_run": self.dry_run,
            "purged": dict(self.purged),
            "batches": self.batches,
        }


def event_tables(tables: Sequence[Table]) -> list[tuple[Table, Column[Any]]]:
    """The tables with a declared event time, dependants first (a referenced table is
    purged after the tables referring to it)."""
    found = [(t, c) for t in tables if (c := event_time_column(t)) is not None]
    return list(reversed(found))


def _cutoff_for(column: Column[Any], cutoff: datetime) -> datetime | date:
    """``cutoff`` (aware, in UTC) as ``column`` compares with it: a timestamp without a
    time zone holds UTC wall times (PostgreSQL's driver refuses an aware value for one),
    a date column is compared with the cutoff's day. A :class:`ConfigError` naming the
    column when it holds no time (a number or text cannot be compared with one)."""
    kind = column.type.impl_instance if isinstance(column.type, TypeDecorator) else column.type
    if isinstance(kind, DateTime):
        return cutoff if kind.timezone else cutoff.replace(tzinfo=None)
    if isinstance(kind, Date):
        return cutoff.date()
    raise ConfigError(
        f"{column.table.name}.{column.name} is declared the event time "
        f'(info={{"retention": "event_time"}}) but is not a date or timestamp column',
        key="retention",
    )


async def purge_expired(
    store: TenantStore,
    tenant_id: str,
    *,
    actor: str,
    now: datetime | None = None,
    dry_run: bool = False,
    batch_size: int | None = None,
) -> RetentionReport:
    """Purge ``tenant_id``'s events older than its ``retention_days`` (see the module
    docstring); a tenant without the setting keeps everything."""
    validate_tenant_id(tenant_id)
    await store.initialize()
    async with store.control(readonly=True) as conn:
        config = await control_plane.load_config(conn, tenant_id)
        days = retention_days(tenant_id, (config or {}).get("settings", {}))
    # The instant, in UTC: SQLite binds a timestamp's wall time and drops its offset.
    moment = control_plane.aware(now or control_plane.utcnow()).astimezone(UTC)
    cutoff = None if days is None else moment - timedelta(days=days)
    report = RetentionReport(tenant_id, days, cutoff, dry_run)
    if cutoff is None:
        return report
    tables = [(t, c, _cutoff_for(c, cutoff)) for t, c in event_tables(store.metadata.sorted_tables)]
    if dry_run:
        await _count_expired(store, tenant_id, tables, report)
        return report
    size = batch_size or store.settings.batch_size
    async with store.control(readonly=True) as conn:
        covered = control_plane.covered_columns(
            await control_plane.table_checksums(conn, tenant_id)
        )
    async with audited(store, actor=actor, action="data.retention", tenant_id=tenant_id) as audit:
        for table, column, bound in tables:
            report.purged[table.name] = await _purge_table(
                store,
                tenant_id,
                table,
                column,
                bound,
                size,
                audit.run_id,
                report,
                covered=covered,
            )
        await audit.record(
            outcome="ok" if report.total else "unchanged",
            detail={k: v for k, v in report.as_dict().items() if k != "tenant_id"},
        )
    log.info("retention_purged", tenant_id=tenant_id, run_id=audit.run_id, **report.purged)
    return report


async def _count_expired(
    store: TenantStore,
    tenant_id: str,
    tables: Sequence[tuple[Table, Column[Any], datetime | date]],
    report: RetentionReport,
) -> None:
    """A dry run: count each table's expired rows, and the rows of other tables that
    would go with them (see :func:`_purge_dependants`)."""
    async with store.session(tenant_id, readonly=True) as session:
        for table, column, bound in tables:
            counted = select(func.count()).select_from(table).where(column < bound)
            report.purged[table.name] = int(
                (await session.connection.execute(counted)).scalar_one()
            )
            batch = _Batch({})
            await _count_dependants(session, table, column < bound, batch)
            for name, count in batch.removed.items():
                report.purged[name] = report.purged.get(name, 0) + count


async def _purge_table(
    store: TenantStore,
    tenant_id: str,
    table: Table,
    column: Column[Any],
    cutoff: datetime | date,
    size: int,
    run_id: str,
    report: RetentionReport,
    *,
    covered: Mapping[str, tuple[str, ...] | None],
) -> int:
    """Purge one table's expired rows a batch at a time, with what refers to them (see
    :func:`_purge_dependants`); returns how many went. The checksum recorded of each
    batch covers the columns ``covered`` names for the table (those its recorded
    checksums cover)."""
    keys = list(table.primary_key.columns)
    if not keys:
        raise ConfigError(
            f"table {table.name!r} declares an event time but has no primary key to purge by",
            key="retention",
        )
    purged = 0
    while True:
        async with store.session(tenant_id) as session:
            conn = session.connection
            oldest = select(table).where(column < cutoff).order_by(*keys).limit(size)
            rows = (await conn.execute(oldest.with_for_update())).all()
            if not rows:
                return purged
            # The same rows, chosen again in SQL: key values never round-trip through
            # Python, where a timestamp key may not compare equal to its stored text.
            chosen = select(*keys).where(column < cutoff).order_by(*keys).limit(size)
            batch = _Batch(covered)
            await _purge_dependants(session, table, tuple_(*keys).in_(chosen), batch)
            deleted = await conn.execute(delete(table).where(tuple_(*keys).in_(chosen)))
            if deleted.rowcount != len(rows):
                raise StorageError(
                    f"retention: {table.name!r} changed while its batch was purged",
                    tenant_id=tenant_id,
                )
            batch.purged(table, [tuple(r) for r in rows], events=True)
            await control_plane.record_table_checksums(
                conn,
                tenant_id,
                fixture=RETENTION_FIXTURE,
                run_id=run_id,
                checksums=batch.checksums,
            )
        for name, count in batch.removed.items():
            if name != table.name:
                report.purged[name] = report.purged.get(name, 0) + count
        purged += len(rows)
        report.batches += 1


@dataclass
class _Batch:
    """What one batch removed and rewrote, for the write history (each checksum over the
    columns ``covered`` names for its table), and how many rows it removed per table.
    Of the tables referring to the events, only those with a recorded history are
    recorded (a table no fixture wrote is not compared anyway)."""

    covered: Mapping[str, tuple[str, ...] | None]
    checksums: list[control_plane.TableChecksum] = field(default_factory=list)
    removed: dict[str, int] = field(default_factory=dict)

    def counted(self, table: Table, rows: int) -> None:
        if rows:
            self.removed[table.name] = self.removed.get(table.name, 0) + rows

    def purged(self, table: Table, rows: Sequence[tuple[Any, ...]], *, events: bool) -> None:
        self.counted(table, len(rows))
        if events or table.name in self.covered:
            self._record(table, "purge", rows)

    def rewritten(self, table: Table, rows: Sequence[tuple[Any, ...]], new: Sequence[Any]) -> None:
        if table.name in self.covered:
            self._record(table, "purge", rows)
            self._record(table, "insert", new)

    def _record(self, table: Table, mode: str, rows: Sequence[tuple[Any, ...]]) -> None:
        content = table_checksum_over(table, self.covered.get(table.name))
        content.add(rows)
        inserted = mode == "insert"
        self.checksums.append(
            control_plane.TableChecksum(
                table.name,
                mode,
                len(rows),
                content.hexdigest() if inserted else f"{-content.total & _MASK:016x}",
                len(rows) if inserted else 0,
                columns=content.columns,
            )
        )


def _referring(
    metadata: MetaData, parent: Table, doomed: ColumnElement[bool]
) -> Iterator[tuple[Table, list[Column[Any]], ColumnElement[bool]]]:
    """Each foreign key of another table to ``parent``: that table, the key's columns,
    and the condition selecting its rows that refer to the rows ``doomed`` selects."""
    for child in metadata.sorted_tables:
        for constraint in child.foreign_key_constraints:
            if constraint.referred_table is not parent or child is parent:
                continue
            columns = list(constraint.columns)
            referred = [e.column for e in constraint.elements]
            key = columns[0] if len(columns) == 1 else tuple_(*columns)
            yield child, columns, key.in_(select(*referred).where(doomed))


async def _purge_dependants(
    session: TenantSession,
    parent: Table,
    doomed: ColumnElement[bool],
    batch: _Batch,
    *,
    depth: int = 0,
) -> None:
    """The rows of other tables referring to ``parent``'s rows that ``doomed`` selects,
    before those go: a row whose key to them cannot be NULL goes too (what refers to it
    first), as the database requires (its ``ON DELETE CASCADE`` would remove it unrecorded,
    and without one the purge failed on the key); another loses the pointer."""
    if depth > len(session.metadata.tables):  # a cycle of keys ends here
        return
    conn = session.connection
    for child, columns, pointing in _referring(session.metadata, parent, doomed):
        rows = [tuple(r) for r in await conn.execute(select(child).where(pointing))]
        if not rows:
            continue
        if any(not c.nullable for c in columns):
            await _purge_dependants(session, child, pointing, batch, depth=depth + 1)
            await conn.execute(delete(child).where(pointing))
            batch.purged(child, rows, events=False)
        else:
            await conn.execute(
                update(child).where(pointing).values({c.name: None for c in columns})
            )
            at = [list(child.columns).index(c) for c in columns]
            batch.rewritten(child, rows, [_cleared(row, at) for row in rows])


async def _count_dependants(
    session: TenantSession,
    parent: Table,
    doomed: ColumnElement[bool],
    batch: _Batch,
    *,
    depth: int = 0,
) -> None:
    """What :func:`_purge_dependants` would remove, counted."""
    if depth > len(session.metadata.tables):
        return
    for child, columns, pointing in _referring(session.metadata, parent, doomed):
        if all(c.nullable for c in columns):
            continue
        counted = select(func.count()).select_from(child).where(pointing)
        batch.counted(child, int((await session.connection.execute(counted)).scalar_one()))
        await _count_dependants(session, child, pointing, batch, depth=depth + 1)


def _cleared(row: tuple[Any, ...], positions: Sequence[int]) -> tuple[Any, ...]:
    values = list(row)
    for position in positions:
        values[position] = None
    return tuple(values)
