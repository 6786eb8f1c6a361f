"""Tenants: what describes one (:class:`TenantFixture`) and its lifecycle.

Creating a tenant is one transaction: storage, registry row, structural fixtures
(schema, config) and the audit record commit together, or nothing is left. Every
create, change and drop is audited, refusals and failures included.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenancy_fixtures.errors import ConfigError, TenantNotFoundError
from tenancy_fixtures.fixtures.base import BaseFixture, FixtureResult, apply_fixtures
from tenancy_fixtures.fixtures.context import LoadContext
from tenancy_fixtures.ids import validate_tenant_id
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.base import TenantSession, TenantStore
from tenancy_fixtures.store.control_plane import RejectNames, TenantRecord
from tenancy_fixtures.store.retrying import with_retries
from tenancy_fixtures.tenancy import data_keys
from tenancy_fixtures.tenancy.audit import Audit, Observer, audited

__all__ = [
    "TenantFixture",
    "count_tenants",
    "create_tenant",
    "drop_tenant",
    "get_tenant",
    "list_tenants",
    "recorded_files",
    "reject_files",
    "update_tenant",
]

log = get_logger("tenancy_fixtures.tenancy.tenants")


@dataclass(frozen=True)
class TenantFixture:
    """One tenant as its owner describes it: id, tier, and overrides of the tier."""

    tenant_id: str
    tier: str = "free"
    features: Sequence[str] = ()
    limits: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_tenant_id(self.tenant_id)
        if isinstance(self.features, str | bytes):
            # A string is a sequence of one-letter "features": refused, not split.
            raise ConfigError(
                f"features must be a list of flags, e.g. features=[{self.features!r}], "
                f"not the string {self.features!r}",
                tenant_id=self.tenant_id,
                key="features",
            )
        object.__setattr__(self, "features", tuple(self.features))


async def create_tenant(
    store: TenantStore,
    tenant_id: str,
    *,
    tier: str,
    structural: Sequence[BaseFixture],
    actor: str,
    run_id: str | None = None,
    observe: Observer | None = None,
) -> list[FixtureResult]:
    """Register ``tenant_id`` and apply its structural fixtures, in one audited
    transaction."""
    validate_tenant_id(tenant_id)
    await store.initialize()
    scope = audited(
        store,
        actor=actor,
        action="tenant.create",
        tenant_id=tenant_id,
        run_id=run_id,
        observe=observe,
    )
    async with scope as audit:
        results = await with_retries(lambda: _provision(store, tenant_id, tier, structural, audit))
    log.info("tenant_created", tenant_id=tenant_id, run_id=audit.run_id, tier=tier)
    return results


async def _provision(
    store: TenantStore,
    tenant_id: str,
    tier: str,
    structural: Sequence[BaseFixture],
    audit: Audit,
) -> list[FixtureResult]:
    """One attempt at creating ``tenant_id``: storage, registry row, structural
    fixtures and the audit record, in one transaction."""
    async with store.provision(tenant_id) as session:
        await control_plane.insert_tenant(session.connection, tenant_id, tier)
        if store.settings.secret_key is not None:
            await data_keys.ensure_data_key(
                session.connection, tenant_id, store.settings.secret_key
            )
        context = LoadContext(audit.run_id)
        results = await apply_fixtures(session, structural, context=context, new_tenant=True)
        await audit.record(
            session.connection,
            detail={
                "tier": tier,
                "storage": store.storage_name(tenant_id),
                "fixtures": {r.fixture: r.checksum for r in results},
            },
        )
        return results


#: Fixtures built inside the transaction that applies them (from what it read there).
FixturesIn = Callable[[TenantSession], Awaitable[Sequence[BaseFixture]]]


async def update_tenant(
    store: TenantStore,
    tenant_id: str,
    fixtures: Sequence[BaseFixture] | FixturesIn,
    *,
    actor: str,
    action: str = "config.apply",
    run_id: str | None = None,
) -> list[FixtureResult]:
    """Apply changed fixtures to an existing tenant, in one audited transaction (given
    as a function, they are built in it, on each attempt)."""
    validate_tenant_id(tenant_id)

    async def attempt(audit: Audit) -> list[FixtureResult]:
        async with store.control(readonly=True) as conn:
            if await control_plane.get_tenant(conn, tenant_id) is None:
                raise TenantNotFoundError(tenant_id)
        async with store.session(tenant_id) as session:
            context = LoadContext(audit.run_id)
            applied = await fixtures(session) if callable(fixtures) else fixtures
            results = await apply_fixtures(session, applied, context=context)
            await audit.record(
                session.connection,
                outcome="ok" if any(r.status == "applied" for r in results) else "unchanged",
                detail={r.fixture: {"status": r.status, "checksum": r.checksum} for r in results},
            )
            return results

    async with audited(
        store, actor=actor, action=action, tenant_id=tenant_id, run_id=run_id
    ) as audit:
        return await with_retries(lambda: attempt(audit))


async def get_tenant(store: TenantStore, tenant_id: str) -> TenantRecord:
    """The registry record of ``tenant_id``; :class:`TenantNotFoundError` if none."""
    validate_tenant_id(tenant_id)
    await store.initialize()
    async with store.control(readonly=True) as conn:
        record = await control_plane.get_tenant(conn, tenant_id)
    if record is None:
        raise TenantNotFoundError(tenant_id)
    return record


async def list_tenants(
    store: TenantStore,
    *,
    prefix: str | None = None,
    tier: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[TenantRecord]:
    """Registered tenants by id, narrowed by the filters that are given; ``limit`` of
    them from ``offset``."""
    await store.initialize()
    async with store.control(readonly=True) as conn:
        return await control_plane.list_tenants(
            conn, prefix=prefix, tier=tier, status=status, limit=limit, offset=offset
        )


async def count_tenants(
    store: TenantStore,
    *,
    prefix: str | None = None,
    tier: str | None = None,
    status: str | None = None,
) -> int:
    """How many registered tenants the filters take."""
    await store.initialize()
    async with store.control(readonly=True) as conn:
        return await control_plane.count_tenants(conn, prefix=prefix, tier=tier, status=status)


def recorded_files(recorded: Iterable[str]) -> list[Path]:
    """Of the reject files loads recorded writing, those that are there, with the
    ``.partial`` a crash between a load's commit and its file's rename leaves: regular
    files only, never a link."""
    candidates = (Path(name + end) for name in recorded for end in ("", ".partial"))
    return sorted({p for p in candidates if p.is_file() and not p.is_symlink()})


def reject_files(directory: Path, names: RejectNames, *, partial: bool = True) -> list[Path]:
    """The lenient-load reject files in ``directory`` that ``names`` owns (with
    ``partial``, also those still ``.partial``: a load that crashed before its commit
    recorded none). Files of another database sharing the directory are left alone."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if names.owns(p.name, partial=partial))


async def drop_tenant(
    store: TenantStore, tenant_id: str, *, actor: str, observe: Observer | None = None
) -> None:
    """Remove a tenant entirely: its data key first (crypto-shredding what any copy of
    its data holds encrypted), then storage, registry, config, fixture and run records,
    and its reject files (they hold whole records: under the ``reject_dir`` setting and
    wherever a load was told to write them).

    Its audit records stay as a minimal trail without detail (see
    :func:`~tenancy_fixtures.store.control_plane.erase_audit_detail`), even with audit
    logging off: their details may hold the tenant's data, and the tombstone appended
    then keeps the chain verifiable. Raises
    :class:`TenantNotFoundError` if neither registry row nor storage exists. The
    caller forgets cached config.
    """
    validate_tenant_id(tenant_id)
    await store.initialize()

    async def attempt(audit: Audit) -> None:
        # First, committed on its own: whatever happens next, the tenant's encrypted
        # values (and any copy of them) can no longer be read.
        async with store.control() as conn:
            key_destroyed = await data_keys.destroy_data_key(conn, tenant_id)
        async with store.deprovision(tenant_id) as (conn, stored):
            names = await control_plane.reject_names(conn, tenant_id)
            registered = await control_plane.delete_tenant(
                conn, tenant_id, actor=audit.actor, run_id=audit.run_id
            )
            if not (registered or stored):
                raise TenantNotFoundError(tenant_id)
            # Before the commit: a crash after it would leave them with no tenant to drop.
            own = reject_files(store.settings.reject_dir, names)
            for path in {*own, *recorded_files(names.recorded)}:
                path.unlink(missing_ok=True)
            await audit.record(
                conn,
                detail={
                    "registered": registered,
                    "storage_removed": stored,
                    "key_destroyed": key_destroyed,
                },
            )

    scope = audited(store, actor=actor, action="tenant.drop", tenant_id=tenant_id, observe=observe)
    async with scope as audit:
        await with_retries(lambda: attempt(audit))
    log.info("tenant_dropped", tenant_id=tenant_id, run_id=audit.run_id)
