"""The migration ledger: each tenant's schema revision and its last migration attempt.

One row per tenant in the control plane, written in the same transaction as the
tenant's DDL (the SQLite control plane is attached to every tenant connection), so a
crash leaves ledger and schema in step. A tenant without a row was created before the
ledger existed and is at the first revision of its history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select, update

from tenancy_fixtures.errors import SchemaOutdatedError, TenantNotFoundError
from tenancy_fixtures.store.control_plane import aware, ledger_table, tenants_table, utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "LedgerEntry",
    "RevisionHistory",
    "current_revision",
    "ledger",
    "record_attempt",
    "refuse_outdated",
    "set_revision",
]


class RevisionHistory(Protocol):
    """A schema's migration history, as far as the ledger needs it."""

    @property
    def head(self) -> str:
        """The revision the schema definition is at: what new tenants start at."""
        ...

    @property
    def base(self) -> str:
        """The first revision: where tenants without a ledger row are."""
        ...

    @property
    def chain(self) -> list[str]:
        """Every revision id, first to head."""
        ...


@dataclass(frozen=True)
class LedgerEntry:
    """A tenant's place in its migration history.

    ``revision`` is ``None`` for a tenant whose history is unknown; ``status`` is
    ``ok`` or ``failed`` (of the last attempt) or ``unrecorded`` (no row yet).
    """

    tenant_id: str
    revision: str | None
    status: str
    attempted_at: datetime | None = None
    duration_seconds: float | None = None
    error: str | None = None


async def ledger(
    conn: AsyncConnection,
    *,
    tenants: Sequence[str] | None = None,
    outdated_from: str | None = None,
) -> list[LedgerEntry]:
    """The ledger of every registered tenant (or of ``tenants``), by id, in one query; a
    tenant ``tenants`` names that is not registered is a :class:`TenantNotFoundError`.

    ``outdated_from``: only tenants whose recorded revision is not that one (tenants
    without a row included): what a fleet run has to open.
    """
    t, m = tenants_table, ledger_table
    query = (
        select(
            t.c.tenant_id,
            m.c.revision,
            m.c.status,
            m.c.attempted_at,
            m.c.duration_seconds,
            m.c.error,
        )
        .select_from(t.outerjoin(m, m.c.tenant_id == t.c.tenant_id))
        .order_by(t.c.tenant_id)
    )
    if tenants is not None:
        query = query.where(t.c.tenant_id.in_(list(tenants)))
    if outdated_from is not None:
        query = query.where((m.c.revision.is_(None)) | (m.c.revision != outdated_from))
    rows = (await conn.execute(query)).all()
    if tenants is not None and outdated_from is None:
        missing = sorted(set(tenants) - {r.tenant_id for r in rows})
        if missing:
            raise TenantNotFoundError(missing[0])
    return [
        LedgerEntry(
            r.tenant_id,
            r.revision,
            r.status or "unrecorded",
            None if r.attempted_at is None else aware(r.attempted_at),
            r.duration_seconds,
            r.error,
        )
        for r in rows
    ]


async def current_revision(conn: AsyncConnection, tenant_id: str) -> tuple[bool, str | None]:
    """Whether the tenant has a ledger row, and the revision it records."""
    row = (
        await conn.execute(
            select(ledger_table.c.revision).where(ledger_table.c.tenant_id == tenant_id)
        )
    ).first()
    return (False, None) if row is None else (True, row.revision)


async def set_revision(
    conn: AsyncConnection,
    tenant_id: str,
    revision: str | None,
    *,
    duration_seconds: float | None = None,
) -> None:
    """Record that the tenant's schema is now at ``revision`` (a successful attempt)."""
    await _write(conn, tenant_id, revision=revision, status="ok", duration=duration_seconds)


async def record_attempt(
    conn: AsyncConnection, tenant_id: str, *, error: str, duration_seconds: float | None
) -> None:
    """Record a failed attempt; the revision stays what it was."""
    found, revision = await current_revision(conn, tenant_id)
    if not found:
        revision = None
    await _write(
        conn, tenant_id, revision=revision, status="failed", duration=duration_seconds, error=error
    )


async def _write(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    revision: str | None,
    status: str,
    duration: float | None,
    error: str | None = None,
) -> None:
    values = {
        "revision": revision,
        "status": status,
        "attempted_at": utcnow(),
        "duration_seconds": duration,
        "error": error,
    }
    changed = await conn.execute(
        update(ledger_table).where(ledger_table.c.tenant_id == tenant_id).values(values)
    )
    if not changed.rowcount:
        await conn.execute(ledger_table.insert().values(tenant_id=tenant_id, **values))


async def refuse_outdated(
    conn: AsyncConnection, tenant_id: str, history: RevisionHistory | None
) -> None:
    """Raise :class:`SchemaOutdatedError` unless the tenant is at ``history``'s head
    (nothing to check without a history), saying whether its revision is one the history
    lacks (a newer release's); :class:`TenantNotFoundError` if it is gone."""
    if history is None:
        return
    found, revision = await current_revision(conn, tenant_id)
    if not found:
        # No ledger row: a tenant from before migrations were recorded, or one dropped
        # while this caller was on its way (a load racing a drop): not "outdated".
        registered = select(tenants_table.c.tenant_id).where(tenants_table.c.tenant_id == tenant_id)
        if (await conn.execute(registered)).first() is None:
            raise TenantNotFoundError(tenant_id)
    revision = revision or history.base
    if revision != history.head:
        raise SchemaOutdatedError(
            tenant_id, revision=revision, head=history.head, unknown=revision not in history.chain
        )
