"""The control plane: tenant registry, configs, applied fixtures, runs and the audit log.

It lives in the ``tenancy`` schema on PostgreSQL and in ``tenancy.db`` on SQLite
(attached as ``tenancy`` to every tenant connection, so a tenant's data and its
control-plane rows commit in one transaction). The queries here are dialect-free
SQLAlchemy Core; they run on whatever connection the store hands them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy_fixtures.errors import TenantAlreadyExistsError
from tenancy_fixtures.store.functions import starts_with
from tenancy_fixtures.store.single_rows import counting_rows
from tenancy_fixtures.store.types import JSONDocument, UtcTimestamp

__all__ = [
    "ABSENT_COLUMNS",
    "CONTROL_SCHEMA",
    "FIXTURE_NAME_LENGTH",
    "LATER_COLUMNS",
    "OVERRIDES_KEY",
    "REVISION_LENGTH",
    "AppliedFixture",
    "AuditFilter",
    "AuditRecord",
    "RejectNames",
    "RunRecord",
    "TableChecksum",
    "TenantFilter",
    "TenantRecord",
    "api_tokens_table",
    "append_audit",
    "applied_fixtures",
    "audit_head_table",
    "audit_table",
    "aware",
    "columns_of",
    "config_version",
    "control_metadata",
    "count_audit",
    "count_rows",
    "count_tenants",
    "covered_columns",
    "current_config_version",
    "data_keys_table",
    "delete_tenant",
    "ensure_plane_id",
    "erase_audit_detail",
    "get_tenant",
    "insert_tenant",
    "last_run",
    "ledger_table",
    "list_tenants",
    "load_config",
    "load_configs",
    "load_versioned_config",
    "lock_config",
    "lock_tenant",
    "minimal_trail",
    "new_run_id",
    "plane_id",
    "read_audit",
    "read_runs",
    "record_fixture",
    "record_run",
    "record_table_checksums",
    "reject_file_name",
    "reject_names",
    "run_audited",
    "save_config",
    "set_tier",
    "table_checksums",
    "usage_table",
    "utcnow",
    "write_stamps_table",
]

CONTROL_SCHEMA = "tenancy"

_JSON = JSONDocument
_TS = UtcTimestamp()

control_metadata = MetaData(schema=CONTROL_SCHEMA)

#: The identity of this control plane: one row holding a random id made when the control
#: plane was first initialized. Caches shared between databases (Redis) key by it, never by
#: the URL, which may carry a password and may name one database in several ways.
plane_table = Table(
    "plane",
    control_metadata,
    Column("singleton", Integer, primary_key=True, autoincrement=False),
    Column("plane_id", String(32), nullable=False),
    Column("created_at", _TS, nullable=False),
)

tenants_table = Table(
    "tenants",
    control_metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("tier", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", _TS, nullable=False),
    Column("updated_at", _TS, nullable=False),
)

configs_table = Table(
    "tenant_configs",
    control_metadata,
    Column(
        "tenant_id",
        ForeignKey("tenants.tenant_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("config", _JSON, nullable=False),
    Column("checksum", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", _TS, nullable=False),
)

#: Longest fixture name (``<loader>:<set name>``) the control plane records.
FIXTURE_NAME_LENGTH = 200

applied_fixtures_table = Table(
    "applied_fixtures",
    control_metadata,
    Column("tenant_id", ForeignKey("tenants.tenant_id", ondelete="CASCADE"), primary_key=True),
    Column("fixture", String(FIXTURE_NAME_LENGTH), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("checksum", String(64), nullable=False),
    Column("row_counts", _JSON, nullable=False),
    Column("run_id", String(32), nullable=False),
    Column("applied_at", _TS, nullable=False),
)

runs_table = Table(
    "runs",
    control_metadata,
    Column("run_id", String(32), primary_key=True),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("operation", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", _TS, nullable=False),
    Column("finished_at", _TS),
    Column("stages", _JSON, nullable=False),
    Column("detail", _JSON, nullable=False),
)

#: What each fixture application wrote to each table, in order: how (write mode and
#: counts) and the content checksum of the rows it gave. An append-only history, so
#: the validator can work out what a table should hold now.
table_checksums_table = Table(
    "table_checksums",
    control_metadata,
    Column("entry_id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", ForeignKey("tenants.tenant_id", ondelete="CASCADE"), nullable=False),
    Column("fixture", String(FIXTURE_NAME_LENGTH), nullable=False),
    Column("table_name", String(200), nullable=False),
    Column("run_id", String(32), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("inserted", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    Column("unchanged", BigInteger, nullable=False),
    Column("checksum", String(16), nullable=False),
    Column("recorded_at", _TS, nullable=False),
    #: The columns the checksum covers, in order (a JSON list); NULL in entries
    #: recorded before they were kept, which covered the table's columns of then.
    Column("column_names", _JSON),
    Index("ix_table_checksums_tenant_id_entry_id", "tenant_id", "entry_id"),
)

#: Columns added to control-plane tables after their first release, which an older
#: deployment gains at start-up (:mod:`.added_columns`); the audit chain's are its own.
LATER_COLUMNS: dict[Table, tuple[str, ...]] = {table_checksums_table: ("column_names",)}

#: The execution option naming (as ``table.column``) the later columns a connection's
#: control plane lacks: set by a store whose user may not add them, so that the queries
#: here leave them out (a read-only user works on before the owner upgrades the plane).
ABSENT_COLUMNS = "tenancy_absent_columns"


def _present(conn: AsyncConnection, table: Table) -> list[Column[Any]]:
    """``table``'s columns the connection's control plane has."""
    sync = conn.sync_connection
    absent = sync.get_execution_options().get(ABSENT_COLUMNS, ()) if sync is not None else ()
    return [c for c in table.columns if f"{table.name}.{c.name}" not in absent]


#: One row per recorded table write, written in the same savepoint as the write's rows,
#: so that its own ``xmin`` is theirs (PostgreSQL; :mod:`.postgres.write_stamps`): with
#: the table's shape then, validation tells from a row's ``xmin`` that nothing else has
#: written it since. A backend whose rows carry no writer records none.
write_stamps_table = Table(
    "table_write_stamps",
    control_metadata,
    Column("tenant_id", ForeignKey("tenants.tenant_id", ondelete="CASCADE"), nullable=False),
    Column("table_name", String(200), nullable=False),
    Column("shape", String(64), nullable=False),
    #: The writing transaction's 64-bit id (how old the stamp is, across wraparound).
    Column("written", BigInteger, nullable=False),
    #: The row's own ``xmin`` when written: a copy of the row (a restored dump) has
    #: another and is not trusted.
    Column("own_xmin", BigInteger),
    Index("ix_table_write_stamps_tenant_id_table_name", "tenant_id", "table_name"),
)

schema_pool_table = Table(
    "schema_pool",
    control_metadata,
    Column("schema_name", String(64), primary_key=True),
    Column("checksum", String(64), nullable=False, index=True),
    Column("created_at", _TS, nullable=False),
)

#: Longest revision id the migration ledger records (Alembic's own version table: 32).
REVISION_LENGTH = 64

#: Each tenant's schema revision and its last migration attempt (see migration_ledger).
ledger_table = Table(
    "tenant_migrations",
    control_metadata,
    Column("tenant_id", ForeignKey("tenants.tenant_id", ondelete="CASCADE"), primary_key=True),
    # NULL: no migration history is known for the tenant's schema.
    Column("revision", String(REVISION_LENGTH)),
    Column("status", String(16), nullable=False),
    Column("attempted_at", _TS, nullable=False),
    Column("duration_seconds", Float),
    Column("error", Text),
)

#: Bearer tokens of the HTTP service (see store/api_tokens.py). Only a SHA-256 digest of
#: each token's secret is kept; ``tenant_id`` NULL is a fleet token.
api_tokens_table = Table(
    "api_tokens",
    control_metadata,
    Column("token_id", String(32), primary_key=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("tenant_id", String(64), index=True),
    Column("scope", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", _TS, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("revoked_at", _TS),
)

#: Usage snapshots: what each tenant held at an instant (rows per table, bytes, the
#: counters its limits name), taken by every load and by ``monitor snapshot``; the
#: history forecasts read (see usage_ledger).
usage_table = Table(
    "usage_snapshots",
    control_metadata,
    Column("snapshot_id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", ForeignKey("tenants.tenant_id", ondelete="CASCADE"), nullable=False),
    Column("taken_at", _TS, nullable=False),
    # load (in the load's transaction) or snapshot (monitor snapshot, a service schedule)
    Column("source", String(16), nullable=False),
    Column("run_id", String(32)),
    Column("storage_bytes", BigInteger, nullable=False),
    Column("total_rows", BigInteger, nullable=False),
    Column("row_counts", _JSON, nullable=False),
    Column("counters", _JSON, nullable=False),
    Index("ix_usage_snapshots_tenant_id_taken_at", "tenant_id", "taken_at"),
)

audit_table = Table(
    "audit_log",
    control_metadata,
    Column("audit_id", Integer, primary_key=True, autoincrement=True),
    Column("at", _TS, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("tenant_id", String(64)),
    Column("outcome", String(16), nullable=False),
    Column("run_id", String(32)),
    Column("detail", _JSON, nullable=False),
    # The hash chain (store/audit_chain.py); NULL on records made before it started.
    Column("seq", BigInteger),
    Column("detail_digest", String(64)),
    Column("prev_hash", String(64)),
    Column("entry_hash", String(64)),
    Index("ix_audit_log_tenant_id_at", "tenant_id", "at"),
)

#: The audit chain's head: one row holding the last entry's position and hash. Appending
#: locks it, so two writers can never link to the same predecessor.
audit_head_table = Table(
    "audit_head",
    control_metadata,
    Column("singleton", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("updated_at", _TS, nullable=False),
)

#: Each tenant's data key (Fernet), wrapped by the master key (see tenancy/data_keys.py).
#: Deleting the row is what crypto-shreds the tenant's encrypted values.
data_keys_table = Table(
    "tenant_data_keys",
    control_metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("wrapped_key", Text, nullable=False),
    Column("created_at", _TS, nullable=False),
    Column("wrapped_at", _TS, nullable=False),
)


def utcnow() -> datetime:
    """The current instant, timezone-aware."""
    return datetime.now(UTC)


def new_run_id() -> str:
    """A fresh id for one operation; it ties logs, runs and audit records together."""
    return uuid.uuid4().hex


def aware(value: datetime) -> datetime:
    # SQLite hands timestamps back naive; everything stored is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TenantRecord:
    """A tenant as the registry knows it."""

    tenant_id: str
    tier: str
    status: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AppliedFixture:
    """One fixture applied to one tenant, with the checksum it had then."""

    fixture: str
    kind: str
    version: int
    checksum: str
    row_counts: dict[str, int]
    run_id: str
    applied_at: datetime


@dataclass(frozen=True)
class TableChecksum:
    """What one fixture application wrote to one table.

    ``rows`` rows were given, with content checksum ``checksum`` (see
    :mod:`tenancy_fixtures.loading.checksums`), written by ``mode`` with these
    counts of rows inserted, updated and left unchanged.
    """

    table: str
    mode: str
    rows: int
    checksum: str
    inserted: int
    updated: int = 0
    unchanged: int = 0
    fixture: str = ""
    run_id: str = ""
    #: The columns the checksum covers, in order (:func:`columns_of` the table written);
    #: ``None`` for entries recorded before they were kept.
    columns: tuple[str, ...] | None = None


def columns_of(table: Table) -> tuple[str, ...]:
    """The names of ``table``'s columns in order: what a content checksum of it covers."""
    return tuple(column.name for column in table.columns)


def covered_columns(writes: Sequence[TableChecksum]) -> dict[str, tuple[str, ...] | None]:
    """For each table with recorded writes, the columns its latest checksum that says
    covers (``None`` where none says): what a later change's checksum must cover to
    add up with them."""
    covered: dict[str, tuple[str, ...] | None] = {}
    for write in writes:
        if write.columns is not None or write.table not in covered:
            covered[write.table] = write.columns
    return covered


@dataclass(frozen=True)
class AuditRecord:
    """One audited change: who did what to which tenant, when, and how it ended."""

    audit_id: int
    at: datetime
    actor: str
    action: str
    tenant_id: str | None
    outcome: str
    run_id: str | None
    detail: dict[str, Any]


async def plane_id(conn: AsyncConnection) -> str | None:
    """The id of this control plane, or ``None`` before its first initialization."""
    found = await conn.execute(select(plane_table.c.plane_id).where(plane_table.c.singleton == 1))
    return found.scalar_one_or_none()


async def ensure_plane_id(conn: AsyncConnection) -> str:
    """The id of this control plane, made now if it has none yet.

    Call it where control-plane creation is serialised (the store's initialization):
    the fixed primary key refuses a second row rather than keeping two ids.
    """
    existing = await plane_id(conn)
    if existing is not None:
        return existing
    made = uuid.uuid4().hex
    await conn.execute(insert(plane_table).values(singleton=1, plane_id=made, created_at=utcnow()))
    return made


async def insert_tenant(conn: AsyncConnection, tenant_id: str, tier: str) -> TenantRecord:
    """Register a tenant; a second registration raises :class:`TenantAlreadyExistsError`
    (the registry's primary key refuses it)."""
    now = utcnow()
    try:
        await conn.execute(
            insert(tenants_table).values(
                tenant_id=tenant_id, tier=tier, status="active", created_at=now, updated_at=now
            )
        )
    except IntegrityError as exc:
        raise TenantAlreadyExistsError(tenant_id) from exc
    return TenantRecord(tenant_id, tier, "active", now, now)


async def get_tenant(conn: AsyncConnection, tenant_id: str) -> TenantRecord | None:
    """The registry row of ``tenant_id``, or ``None``."""
    row = (
        await conn.execute(select(tenants_table).where(tenants_table.c.tenant_id == tenant_id))
    ).first()
    if row is None:
        return None
    return TenantRecord(
        row.tenant_id, row.tier, row.status, aware(row.created_at), aware(row.updated_at)
    )


@dataclass(frozen=True)
class TenantFilter:
    """Which registered tenants a listing takes: ids starting with ``prefix`` (letter
    case included, on every backend), of ``tier``, in ``status``; ``None`` takes all."""

    prefix: str | None = None
    tier: str | None = None
    status: str | None = None

    def where(self, query: Select[Any]) -> Select[Any]:
        t = tenants_table
        if self.prefix:
            query = query.where(starts_with(t.c.tenant_id, self.prefix))
        if self.tier is not None:
            query = query.where(t.c.tier == self.tier)
        if self.status is not None:
            query = query.where(t.c.status == self.status)
        return query


async def list_tenants(
    conn: AsyncConnection,
    *,
    prefix: str | None = None,
    tier: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[TenantRecord]:
    """Registered tenants by id; only ids starting with ``prefix``, of ``tier``, in
    ``status`` where given; ``limit`` of them from ``offset``."""
    chosen = TenantFilter(prefix, tier, status)
    query = chosen.where(select(tenants_table).order_by(tenants_table.c.tenant_id))
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    rows = (await conn.execute(query)).all()
    return [
        TenantRecord(r.tenant_id, r.tier, r.status, aware(r.created_at), aware(r.updated_at))
        for r in rows
    ]


async def count_tenants(
    conn: AsyncConnection,
    *,
    prefix: str | None = None,
    tier: str | None = None,
    status: str | None = None,
) -> int:
    """How many tenants :func:`list_tenants` with these filters would list unpaged."""
    query = TenantFilter(prefix, tier, status).where(
        select(func.count()).select_from(tenants_table)
    )
    return int((await conn.execute(query)).scalar_one())


async def delete_tenant(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    actor: str = "tenancy-fixtures",
    run_id: str | None = None,
) -> bool:
    """Remove everything the control plane holds of a tenant but its audit trail, and
    reduce that to the minimal trail (:func:`erase_audit_detail`); whether it was
    registered.

    Registry, config, applied fixtures, table checksums, usage snapshots and runs (whose
    details hold validation reports and stage timings) are deleted.
    """
    await conn.execute(delete(runs_table).where(runs_table.c.tenant_id == tenant_id))
    await erase_audit_detail(conn, tenant_id, actor=actor, run_id=run_id)
    await conn.execute(delete(configs_table).where(configs_table.c.tenant_id == tenant_id))
    await conn.execute(
        delete(table_checksums_table).where(table_checksums_table.c.tenant_id == tenant_id)
    )
    await conn.execute(
        delete(write_stamps_table).where(write_stamps_table.c.tenant_id == tenant_id)
    )
    await conn.execute(
        delete(applied_fixtures_table).where(applied_fixtures_table.c.tenant_id == tenant_id)
    )
    await conn.execute(delete(ledger_table).where(ledger_table.c.tenant_id == tenant_id))
    # A tenant made again under the same id must not inherit the old one's tokens.
    await conn.execute(delete(api_tokens_table).where(api_tokens_table.c.tenant_id == tenant_id))
    await conn.execute(delete(usage_table).where(usage_table.c.tenant_id == tenant_id))
    result = await conn.execute(delete(tenants_table).where(tenants_table.c.tenant_id == tenant_id))
    return bool(result.rowcount)


async def lock_tenant(conn: AsyncConnection, tenant_id: str) -> bool:
    """Lock the tenant's registry row until the transaction ends; whether it exists.

    Serialises loads and config changes of one tenant across processes (SQLite's
    ``BEGIN IMMEDIATE`` already serialises every writer, so the lock is a no-op there).
    """
    found = await conn.execute(
        select(tenants_table.c.tenant_id)
        .where(tenants_table.c.tenant_id == tenant_id)
        .with_for_update()
    )
    return found.first() is not None


async def set_tier(conn: AsyncConnection, tenant_id: str, tier: str) -> None:
    """Record a tenant's tier."""
    await conn.execute(
        update(tenants_table)
        .where(tenants_table.c.tenant_id == tenant_id)
        .values(tier=tier, updated_at=utcnow())
    )


#: The key of a stored config document under which the tenant's own overrides are kept
#: (what a new tier is laid under); readers of the config never see it.
OVERRIDES_KEY = "_overrides"


async def save_config(
    conn: AsyncConnection,
    tenant_id: str,
    config: Mapping[str, Any],
    checksum: str,
    *,
    overrides: Mapping[str, Any] | None = None,
) -> int:
    """Store a tenant's resolved config (with its own ``overrides``, if given); returns
    its cache version (see config_version)."""
    now = utcnow()
    document = dict(config)
    if overrides is not None:
        document[OVERRIDES_KEY] = dict(overrides)
    changed = await conn.execute(
        update(configs_table)
        .where(configs_table.c.tenant_id == tenant_id)
        .values(
            config=document,
            checksum=checksum,
            version=configs_table.c.version + 1,
            updated_at=now,
        )
    )
    if not changed.rowcount:
        await conn.execute(
            insert(configs_table).values(
                tenant_id=tenant_id,
                config=document,
                checksum=checksum,
                version=1,
                updated_at=now,
            )
        )
    return config_version(now)


def config_version(updated_at: datetime) -> int:
    """A config's version for the cache: the microsecond of its last change."""
    return int(aware(updated_at).timestamp() * 1_000_000)


async def current_config_version(conn: AsyncConnection, tenant_id: str) -> int | None:
    """The version of ``tenant_id``'s stored config, or ``None`` if it has none.

    One primary-key lookup returning one timestamp: what a cache checks its copy against.
    """
    found = await conn.execute(
        select(configs_table.c.updated_at).where(configs_table.c.tenant_id == tenant_id)
    )
    updated_at = found.scalar_one_or_none()
    return None if updated_at is None else config_version(updated_at)


async def load_config(conn: AsyncConnection, tenant_id: str) -> dict[str, Any] | None:
    """A tenant's stored config, or ``None``."""
    stored = await load_versioned_config(conn, tenant_id)
    return stored[0] if stored is not None else None


async def load_configs(
    conn: AsyncConnection, tenants: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Stored configs by tenant, in one query: of ``tenants`` where given, else every
    tenant's."""
    query = select(configs_table.c.tenant_id, configs_table.c.config)
    if tenants is not None:
        query = query.where(configs_table.c.tenant_id.in_(list(tenants)))
    found: dict[str, dict[str, Any]] = {}
    for row in await conn.execute(query):
        document = dict(row.config)
        document.pop(OVERRIDES_KEY, None)
        found[str(row.tenant_id)] = document
    return found


async def load_versioned_config(
    conn: AsyncConnection, tenant_id: str
) -> tuple[dict[str, Any], int] | None:
    """A tenant's stored config with its cache version, or ``None``."""
    row = (
        await conn.execute(
            select(configs_table.c.config, configs_table.c.updated_at).where(
                configs_table.c.tenant_id == tenant_id
            )
        )
    ).first()
    if row is None:
        return None
    document = dict(row.config)
    document.pop(OVERRIDES_KEY, None)
    return document, config_version(row.updated_at)


async def lock_config(
    conn: AsyncConnection, tenant_id: str
) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """A tenant's stored config and its own overrides (``None`` if stored before they
    were), its row locked until the transaction ends; ``None`` if it has none.

    What a change is applied to (SQLite's ``BEGIN IMMEDIATE`` already serialises writers).
    """
    row = (
        await conn.execute(
            select(configs_table.c.config)
            .where(configs_table.c.tenant_id == tenant_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        return None
    document = dict(row.config)
    overrides = document.pop(OVERRIDES_KEY, None)
    return document, dict(overrides) if isinstance(overrides, Mapping) else None


async def applied_fixtures(conn: AsyncConnection, tenant_id: str) -> dict[str, AppliedFixture]:
    """The fixtures applied to ``tenant_id``, by name."""
    rows = (
        await conn.execute(
            select(applied_fixtures_table)
            .where(applied_fixtures_table.c.tenant_id == tenant_id)
            .order_by(applied_fixtures_table.c.applied_at)
        )
    ).all()
    return {
        r.fixture: AppliedFixture(
            r.fixture,
            r.kind,
            r.version,
            r.checksum,
            {str(k): int(v) for k, v in dict(r.row_counts).items()},
            r.run_id,
            aware(r.applied_at),
        )
        for r in rows
    }


async def record_fixture(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    fixture: str,
    kind: str,
    version: int,
    checksum: str,
    row_counts: Mapping[str, int],
    run_id: str,
    replace: bool = True,
) -> None:
    """Record that ``fixture`` with ``checksum`` is now applied to ``tenant_id``.

    ``replace=False`` when no record of it can exist yet (saves a round trip).
    """
    table = applied_fixtures_table
    if replace:
        await conn.execute(
            delete(table).where(table.c.tenant_id == tenant_id, table.c.fixture == fixture)
        )
    await conn.execute(
        insert(table).values(
            tenant_id=tenant_id,
            fixture=fixture,
            kind=kind,
            version=version,
            checksum=checksum,
            row_counts=dict(row_counts),
            run_id=run_id,
            applied_at=utcnow(),
        )
    )


async def record_table_checksums(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    fixture: str,
    run_id: str,
    checksums: Sequence[TableChecksum],
) -> None:
    """Append what ``fixture`` wrote to each table in run ``run_id``."""
    if not checksums:
        return
    now = utcnow()
    present = {c.name for c in _present(conn, table_checksums_table)}
    await conn.execute(
        insert(table_checksums_table),
        [
            {
                name: value
                for name, value in {
                    "tenant_id": tenant_id,
                    "fixture": fixture,
                    "table_name": c.table,
                    "run_id": run_id,
                    "mode": c.mode,
                    "rows": c.rows,
                    "inserted": c.inserted,
                    "updated": c.updated,
                    "unchanged": c.unchanged,
                    "checksum": c.checksum,
                    "recorded_at": now,
                    "column_names": None if c.columns is None else list(c.columns),
                }.items()
                if name in present
            }
            for c in checksums
        ],
    )


async def table_checksums(conn: AsyncConnection, tenant_id: str) -> list[TableChecksum]:
    """Every table write recorded for ``tenant_id``, oldest first."""
    table = table_checksums_table
    rows = (
        await conn.execute(
            select(*_present(conn, table))
            .where(table.c.tenant_id == tenant_id)
            .order_by(table.c.entry_id)
        )
    ).all()
    return [
        TableChecksum(
            r.table_name,
            r.mode,
            int(r.rows),
            r.checksum,
            int(r.inserted),
            int(r.updated),
            int(r.unchanged),
            r.fixture,
            r.run_id,
            None if (names := r._mapping.get("column_names")) is None else tuple(names),
        )
        for r in rows
    ]


async def record_run(
    conn: AsyncConnection,
    *,
    run_id: str,
    tenant_id: str,
    operation: str,
    status: str,
    started_at: datetime,
    stages: Mapping[str, float],
    detail: Mapping[str, Any],
) -> None:
    """Record one finished operation with its stage timings (seconds)."""
    await conn.execute(
        insert(runs_table).values(
            run_id=run_id,
            tenant_id=tenant_id,
            operation=operation,
            status=status,
            started_at=started_at,
            finished_at=utcnow(),
            stages=dict(stages),
            detail=dict(detail),
        )
    )


def reject_file_name(tenant_id: str, plane: str, run_id: str) -> str:
    """The name of a lenient load's reject file: ``<tenant>-<plane>-<run_id>.jsonl``. The
    plane id tells apart the files of databases that share a reject directory."""
    return f"{tenant_id}-{plane}-{run_id}.jsonl"


@dataclass(frozen=True)
class RejectNames:
    """What names a tenant's reject files written through this control plane, in a
    directory other databases may share: ``<tenant>-<plane>-<run_id>.jsonl``, and
    ``<tenant>-<run_id>.jsonl`` for a run of this plane from before the plane id was
    in the name (uuid4 run ids: never another database's). ``recorded``: the files its
    lenient loads recorded writing (``reject_file`` in the run), wherever ``reject_dir``
    pointed, when named as that run's."""

    tenant_id: str
    plane: str | None
    runs: frozenset[str]
    recorded: tuple[str, ...] = ()

    def owns(self, name: str, *, partial: bool) -> bool:
        """Whether file ``name`` is one of them (with ``partial``, ``.partial`` too)."""
        if partial:
            name = name.removesuffix(".partial")
        if not name.endswith(".jsonl") or not name.startswith(f"{self.tenant_id}-"):
            return False
        run = name[len(self.tenant_id) + 1 : -len(".jsonl")]
        if self.plane is not None and run.startswith(f"{self.plane}-"):
            run = run[len(self.plane) + 1 :]
            return _RUN_ID.fullmatch(run) is not None
        return run in self.runs


_RUN_ID = re.compile(r"[0-9a-f]{32}")


async def reject_names(conn: AsyncConnection, tenant_id: str) -> RejectNames:
    """The names of ``tenant_id``'s reject files of this control plane, and the files
    its loads recorded (see :class:`RejectNames`), from one read of its load runs."""
    plane = await plane_id(conn)
    path = runs_table.c.detail["reject_file"].as_string()
    runs = (
        await conn.execute(
            select(runs_table.c.run_id, path).where(
                runs_table.c.tenant_id == tenant_id, runs_table.c.operation == "load"
            )
        )
    ).all()
    recorded = {
        str(written)
        for run_id, written in runs
        if written is not None
        and PurePath(str(written)).name
        in {f"{tenant_id}-{run_id}.jsonl", reject_file_name(tenant_id, str(plane), run_id)}
    }
    return RejectNames(
        tenant_id, plane, frozenset(str(r) for r, _ in runs), tuple(sorted(recorded))
    )


async def last_run(conn: AsyncConnection, tenant_id: str, operation: str) -> dict[str, Any] | None:
    """The most recent run of ``operation`` on ``tenant_id``, as a plain dict."""
    row = (
        await conn.execute(
            select(runs_table)
            .where(runs_table.c.tenant_id == tenant_id, runs_table.c.operation == operation)
            .order_by(runs_table.c.started_at.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    found = dict(row._mapping)
    for column in ("started_at", "finished_at"):
        if found.get(column) is not None:
            found[column] = aware(found[column])
    return found


async def append_audit(
    conn: AsyncConnection,
    *,
    actor: str,
    action: str,
    tenant_id: str | None,
    outcome: str,
    run_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append one record to the audit log, linked into its hash chain (see
    :mod:`tenancy_fixtures.store.audit_chain`)."""
    from tenancy_fixtures.store import audit_chain  # it builds on this module's tables

    await audit_chain.append(
        conn,
        actor=actor,
        action=action,
        tenant_id=tenant_id,
        outcome=outcome,
        run_id=run_id,
        detail=dict(detail or {}),
    )


#: Audit records updated per statement when a trail is erased.
_ERASE_BATCH = 500


def minimal_trail(detail: Mapping[str, Any]) -> dict[str, Any]:
    """What a dropped tenant's audit record keeps of its detail: that it was erased and,
    for a refusal or failure, the error's class name — never its message, which may
    quote a record (an e-mail address a rule refused), nor tiers, storage or checksums."""
    error = detail.get("error")
    kept: dict[str, Any] = {"erased": True}
    if isinstance(error, str) and error.isidentifier():
        kept["error"] = error
    return kept


async def erase_audit_detail(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    actor: str = "tenancy-fixtures",
    run_id: str | None = None,
    only: Callable[[Mapping[str, Any]], bool] | None = None,
    keep: Collection[str] = (),
) -> int:
    """Reduce every audit record of ``tenant_id`` to the minimal trail: who did which
    action when, on which run, with what outcome (and the error's class name); the
    detail goes. Each record keeps the digest its hash covers, and a tombstone appended
    to the chain (``audit.erase``) names the positions erased, so the chain still
    verifies. Tombstones are left as they are: they hold counts and positions only, and
    verify reads what they cover from them. Returns how many records there were.

    ``only``: erase just the records whose detail it accepts (a subject's erasure), and
    return how many were erased; the tombstone is appended only if any were. ``keep``:
    actions whose succeeded records ``only`` never erases (an erasure's receipts: the
    proof of what was done); a refused or failed one holds an error message, which may
    quote what the operation read, and is erased as any other record."""
    from tenancy_fixtures.store import audit_chain  # it builds on this module's tables

    a = audit_table
    rows = (
        await conn.execute(
            select(a.c.audit_id, a.c.action, a.c.outcome, a.c.seq, a.c.detail).where(
                a.c.tenant_id == tenant_id
            )
        )
    ).all()
    by_trail: dict[str | None, list[int]] = {}
    positions: list[int] = []
    for row in rows:
        detail = dict(row.detail)
        if detail == minimal_trail(detail) or row.action == audit_chain.TOMBSTONE:
            continue  # erased before (rewriting it would change nothing), or a tombstone
        kept = row.action in keep and row.outcome == "ok"
        if only is not None and (kept or not only(detail)):
            continue
        by_trail.setdefault(minimal_trail(detail).get("error"), []).append(row.audit_id)
        if row.seq is not None:  # records made before the chain have no position
            positions.append(int(row.seq))
    for error, ids in by_trail.items():
        trail = minimal_trail({"error": error})
        for start in range(0, len(ids), _ERASE_BATCH):
            await conn.execute(
                update(a)
                .where(a.c.audit_id.in_(ids[start : start + _ERASE_BATCH]))
                .values(detail=trail)
            )
    erased = sum(map(len, by_trail.values()))
    if rows if only is None else erased:
        await audit_chain.append_tombstone(
            conn, tenant_id, erased=erased, positions=positions, actor=actor, run_id=run_id
        )
    return len(rows) if only is None else erased


@dataclass(frozen=True)
class AuditFilter:
    """Which audit records a reading takes: of ``tenant_id``, ``action``, ``outcome``,
    ``actor``, at or after ``since`` and before ``until``; ``None`` takes all."""

    tenant_id: str | None = None
    action: str | None = None
    outcome: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self, query: Select[Any]) -> Select[Any]:
        a = audit_table
        for column, value in (
            (a.c.tenant_id, self.tenant_id),
            (a.c.action, self.action),
            (a.c.outcome, self.outcome),
            (a.c.actor, self.actor),
        ):
            if value is not None:
                query = query.where(column == value)
        if self.since is not None:
            query = query.where(a.c.at >= self.since)
        if self.until is not None:
            query = query.where(a.c.at < self.until)
        return query


async def run_audited(conn: AsyncConnection, *, run_id: str, tenant_id: str | None) -> bool:
    """Whether run ``run_id`` of ``tenant_id`` has an audit record, once every transaction
    writing to the audit log before this one has ended (this takes the chain's lock)."""
    from tenancy_fixtures.store import audit_chain  # it builds on this module's tables

    await audit_chain.head(conn, lock=True)
    a = audit_table
    tenant = a.c.tenant_id.is_(None) if tenant_id is None else a.c.tenant_id == tenant_id
    query = select(a.c.audit_id).where(tenant, a.c.run_id == run_id).limit(1)
    return (await conn.execute(query)).first() is not None


async def read_audit(
    conn: AsyncConnection,
    *,
    tenant_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
    where: AuditFilter | None = None,
) -> list[AuditRecord]:
    """The newest audit records first, for one tenant or all, narrowed by ``where``;
    ``limit`` of them from ``offset``."""
    chosen = where or AuditFilter()
    if tenant_id is not None:
        chosen = replace(chosen, tenant_id=tenant_id)
    query = chosen.where(select(audit_table)).order_by(audit_table.c.audit_id.desc()).limit(limit)
    if offset:
        query = query.offset(offset)
    rows = (await conn.execute(query)).all()
    return [
        AuditRecord(
            r.audit_id,
            aware(r.at),
            r.actor,
            r.action,
            r.tenant_id,
            r.outcome,
            r.run_id,
            dict(r.detail),
        )
        for r in rows
    ]


async def count_audit(conn: AsyncConnection, where: AuditFilter) -> int:
    """How many audit records ``where`` takes."""
    query = where.where(select(func.count()).select_from(audit_table))
    return int((await conn.execute(query)).scalar_one())


@dataclass(frozen=True)
class RunRecord:
    """One recorded operation on a tenant (a load, a recorded validation...)."""

    run_id: str
    tenant_id: str
    operation: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    stages: dict[str, float]
    detail: dict[str, Any]


async def read_runs(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    operation: str | None = None,
    run_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[RunRecord], int]:
    """A tenant's runs, newest first (``operation`` or ``run_id`` only, where given),
    ``limit`` of them from ``offset``, and how many there are in all."""
    r = runs_table
    query = select(r).where(r.c.tenant_id == tenant_id)
    counted = select(func.count()).select_from(r).where(r.c.tenant_id == tenant_id)
    for column, value in ((r.c.operation, operation), (r.c.run_id, run_id)):
        if value is not None:
            query = query.where(column == value)
            counted = counted.where(column == value)
    query = query.order_by(r.c.started_at.desc(), r.c.run_id).limit(limit).offset(offset)
    rows = (await conn.execute(query)).all()
    total = int((await conn.execute(counted)).scalar_one())
    records = [
        RunRecord(
            row.run_id,
            row.tenant_id,
            row.operation,
            row.status,
            aware(row.started_at),
            aware(row.finished_at) if row.finished_at is not None else None,
            {str(k): float(v) for k, v in dict(row.stages).items()},
            dict(row.detail),
        )
        for row in rows
    ]
    return records, total


async def count_rows(conn: AsyncConnection, tables: Sequence[Table]) -> dict[str, int]:
    """Row counts of ``tables`` on ``conn`` (tenant tables, translated by the store)."""
    rows = await counting_rows(tuple(tables)).fetch(conn)
    return {table.name: int(count) for table, (count,) in zip(tables, rows, strict=True)}
