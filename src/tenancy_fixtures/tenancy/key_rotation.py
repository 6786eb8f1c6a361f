"""Rotating the master key: ``keys rewrap`` after ``TENANCY_SECRET_KEY=NEW,OLD``.

Tenant by tenant, in one transaction with its audit record (``keys.rewrap``), the
tenant's data key is re-wrapped with the first master key, and every token of its
encrypted columns (``info={"encrypted": ...}``, AI model credentials included) that
only a master key decrypts (stored before the tenant had a data key) is re-encrypted
with the data key: once the old master key is removed it would decrypt with nothing.

A token that no key known now decrypts (neither the tenant's nor any master key given)
is counted per tenant, never skipped silently: the report is then not complete, and
the command says so rather than let the old key go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, update

from tenancy_fixtures.errors import ConfigError, TenantNotFoundError
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.store import control_plane, migration_ledger
from tenancy_fixtures.tenancy import data_keys
from tenancy_fixtures.tenancy.audit import Audit, audited
from tenancy_fixtures.tenancy.stored_tokens import opened_by, stored_tokens

if TYPE_CHECKING:
    from sqlalchemy import Column, Table

    from tenancy_fixtures.secret_keys import SecretKey
    from tenancy_fixtures.store.base import TenantSession, TenantStore

__all__ = ["REWRAP_ACTION", "RewrapReport", "rewrap_keys"]

log = get_logger("tenancy_fixtures.tenancy.key_rotation")

REWRAP_ACTION = "keys.rewrap"


@dataclass
class RewrapReport:
    """What ``keys rewrap`` did: the tenants whose data key is now wrapped by the first
    master key, and per tenant the tokens re-encrypted with its data key and those no
    key known now decrypts."""

    rewrapped: list[str] = field(default_factory=list)
    reencrypted: dict[str, int] = field(default_factory=dict)
    undecryptable: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Whether every token decrypts with its tenant's data key now (the old master
        keys can go)."""
        return not any(self.undecryptable.values())

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``keys rewrap --json``)."""
        return {
            "complete": self.complete,
            "rewrapped": self.rewrapped,
            "reencrypted": self.reencrypted,
            "undecryptable": {t: n for t, n in self.undecryptable.items() if n},
        }


@dataclass
class _Tokens:
    """One tenant's tokens: re-encrypted, and decrypted by no key."""

    reencrypted: int = 0
    undecryptable: int = 0


async def rewrap_keys(store: TenantStore, *, actor: str) -> RewrapReport:
    """Re-wrap every tenant's data key with the first ``TENANCY_SECRET_KEY`` and move its
    master-key tokens under it (see the module docstring); one audited transaction per
    tenant. A tenant whose storage is missing has its key re-wrapped only."""
    key = store.settings.secret_key
    data_keys.master_fernet(key)  # no master key: refused before anything
    await store.initialize()
    async with store.control(readonly=True) as conn:
        registered = {t.tenant_id for t in await control_plane.list_tenants(conn)}
        keyed = set(await data_keys.data_key_tenants(conn))
    report = RewrapReport()
    for tenant_id in sorted(registered | keyed):
        async with audited(store, actor=actor, action=REWRAP_ACTION, tenant_id=tenant_id) as audit:
            if tenant_id in registered and await store.storage_exists(tenant_id):
                tokens = await _rotate_tenant(store, tenant_id, key, audit)
            else:
                tokens = await _rotate_key_only(store, tenant_id, key, audit)
        if tenant_id in keyed or tokens.reencrypted:
            report.rewrapped.append(tenant_id)
        report.reencrypted[tenant_id] = tokens.reencrypted
        report.undecryptable[tenant_id] = tokens.undecryptable
        if tokens.undecryptable:
            log.warning("undecryptable_tokens", tenant_id=tenant_id, tokens=tokens.undecryptable)
    return report


async def _rotate_key_only(
    store: TenantStore, tenant_id: str, key: SecretKey | None, audit: Audit
) -> _Tokens:
    """Re-wrap the data key of a tenant with no storage to read (or no registry row)."""
    async with store.control() as conn:
        if await data_keys.has_data_key(conn, tenant_id):
            await data_keys.rewrap_data_key(conn, tenant_id, key)
        await audit.record(conn, detail={"reencrypted": 0, "storage": "missing"})
    return _Tokens()


async def _rotate_tenant(
    store: TenantStore, tenant_id: str, key: SecretKey | None, audit: Audit
) -> _Tokens:
    """Re-wrap the tenant's data key and re-encrypt its master-key tokens, in one
    transaction with the audit record."""
    async with store.session(tenant_id) as session:
        conn = session.connection
        if not await control_plane.lock_tenant(conn, tenant_id):
            raise TenantNotFoundError(tenant_id)
        # Its tables are read as the schema declares them: behind the head, they differ.
        await migration_ledger.refuse_outdated(conn, tenant_id, store.history)
        had_key = await data_keys.has_data_key(conn, tenant_id)
        cipher = await data_keys.rewrap_data_key(conn, tenant_id, key)
        tokens = _Tokens()
        for table in session.metadata.sorted_tables:
            await _reencrypt_table(session, table, cipher, tokens)
        if tokens.reencrypted and not had_key:
            await data_keys.store_data_key(conn, cipher, key)
        await audit.record(
            conn,
            outcome="failed" if tokens.undecryptable else "ok",
            detail={"reencrypted": tokens.reencrypted, "undecryptable": tokens.undecryptable},
        )
    return tokens


async def _reencrypt_table(
    session: TenantSession, table: Table, cipher: data_keys.TenantCipher, tokens: _Tokens
) -> None:
    """Re-encrypt the master-key tokens of ``table``'s encrypted columns (rows found by
    primary key)."""
    # Per column: (primary key, new value) of each row whose token moves.
    moves: dict[str, list[tuple[tuple[Any, ...], Any]]] = {}
    async for stored in stored_tokens(session, table):
        opened = opened_by(cipher, stored.token)
        if opened == "none":
            tokens.undecryptable += 1
        elif opened == "master_key":
            moved = stored.replaced(cipher.encrypt(cipher.decrypt(stored.token)))
            moves.setdefault(stored.column.name, []).append((stored.row_key, moved))
            tokens.reencrypted += 1
    keys = list(table.primary_key.columns)
    for name, moved_rows in moves.items():
        await _write_moves(session, table, keys, table.c[name], moved_rows)


async def _write_moves(
    session: TenantSession,
    table: Table,
    keys: Sequence[Column[Any]],
    column: Column[Any],
    moves: Sequence[tuple[tuple[Any, ...], Any]],
) -> None:
    """Write the re-encrypted values of ``column`` over the rows they came from."""
    if not keys:
        raise ConfigError(
            f"table {table.name!r} holds tokens under the master key but has no primary "
            "key to re-encrypt a row by",
            tenant_id=session.tenant_id,
            key="encrypted",
        )
    statement = (
        update(table)
        .where(and_(*(k == bindparam(f"k_{i}") for i, k in enumerate(keys))))
        .values({column.name: bindparam("v_new")})
    )
    params = [
        {"v_new": value, **{f"k_{i}": part for i, part in enumerate(key)}} for key, value in moves
    ]
    await session.connection.execute(statement, params)
