"""Tenants: what describes one (:class:`TenantFixture`) and its lifecycle.

Creating a tenant is one transaction: storage, registry row, structural fixtures
(schema, config) and the audit record commit together, or nothing is left. Every
create, change and drop is audited, refusals and failures included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError

from tenancy_fixtures.errors import (
    TenancyFixturesError,
    TenantAlreadyExistsError,
    TenantNotFoundError,
)
from tenancy_fixtures.fixtures.base import BaseFixture, FixtureResult, apply_fixtures
from tenancy_fixtures.ids import validate_tenant_id
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.base import TenantStore
from tenancy_fixtures.store.control_plane import TenantRecord
from tenancy_fixtures.store.retrying import with_retries

__all__ = [
    "TenantFixture",
    "audit_failure",
    "create_tenant",
    "drop_tenant",
    "get_tenant",
    "list_tenants",
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
        object.__setattr__(self, "features", tuple(self.features))


async def audit_failure(
    store: TenantStore,
    *,
    actor: str,
    action: str,
    tenant_id: str | None,
    error: BaseException,
    run_id: str | None = None,
) -> None:
    """Record a refused or failed operation in its own transaction."""
    outcome = "refused" if isinstance(error, TenancyFixturesError) else "failed"
    try:
        async with store.control() as conn:
            await control_plane.append_audit(
                conn,
                actor=actor,
                action=action,
                tenant_id=tenant_id,
                outcome=outcome,
                run_id=run_id,
                detail={"error": type(error).__name__, "message": str(error)[:2000]},
            )
    except Exception:  # the original error matters more than a failed audit write
        log.exception("audit_write_failed", action=action, tenant_id=tenant_id)


async def create_tenant(
    store: TenantStore,
    tenant_id: str,
    *,
    tier: str,
    structural: Sequence[BaseFixture],
    actor: str,
    run_id: str | None = None,
) -> list[FixtureResult]:
    """Register ``tenant_id`` and apply its structural fixtures, in one transaction."""
    validate_tenant_id(tenant_id)
    run_id = run_id or control_plane.new_run_id()
    await store.initialize()
    bound = log.bind(tenant_id=tenant_id, run_id=run_id)

    async def attempt() -> list[FixtureResult]:
        async with store.provision(tenant_id) as session:
            try:
                await control_plane.insert_tenant(session.connection, tenant_id, tier)
            except IntegrityError:
                raise TenantAlreadyExistsError(tenant_id) from None
            results = await apply_fixtures(session, structural, run_id=run_id, new_tenant=True)
            await control_plane.append_audit(
                session.connection,
                actor=actor,
                action="tenant.create",
                tenant_id=tenant_id,
                outcome="ok",
                run_id=run_id,
                detail={
                    "tier": tier,
                    "storage": store.storage_name(tenant_id),
                    "fixtures": {r.fixture: r.checksum for r in results},
                },
            )
            return results

    try:
        results = await with_retries(attempt)
    except Exception as exc:
        await audit_failure(
            store,
            actor=actor,
            action="tenant.create",
            tenant_id=tenant_id,
            error=exc,
            run_id=run_id,
        )
        bound.info("tenant_create_refused", error=str(exc))
        raise
    bound.info("tenant_created", tier=tier)
    return results


async def update_tenant(
    store: TenantStore,
    tenant_id: str,
    fixtures: Sequence[BaseFixture],
    *,
    actor: str,
    action: str = "config.apply",
    run_id: str | None = None,
) -> list[FixtureResult]:
    """Apply changed fixtures to an existing tenant, in one audited transaction."""
    validate_tenant_id(tenant_id)
    run_id = run_id or control_plane.new_run_id()

    async def attempt() -> list[FixtureResult]:
        async with store.control(readonly=True) as conn:
            if await control_plane.get_tenant(conn, tenant_id) is None:
                raise TenantNotFoundError(tenant_id)
        async with store.session(tenant_id) as session:
            results = await apply_fixtures(session, fixtures, run_id=run_id)
            await control_plane.append_audit(
                session.connection,
                actor=actor,
                action=action,
                tenant_id=tenant_id,
                outcome="ok" if any(r.status == "applied" for r in results) else "unchanged",
                run_id=run_id,
                detail={r.fixture: {"status": r.status, "checksum": r.checksum} for r in results},
            )
            return results

    try:
        return await with_retries(attempt)
    except Exception as exc:
        await audit_failure(
            store, actor=actor, action=action, tenant_id=tenant_id, error=exc, run_id=run_id
        )
        raise


async def get_tenant(store: TenantStore, tenant_id: str) -> TenantRecord:
    """The registry record of ``tenant_id``; :class:`TenantNotFoundError` if none."""
    validate_tenant_id(tenant_id)
    await store.initialize()
    async with store.control(readonly=True) as conn:
        record = await control_plane.get_tenant(conn, tenant_id)
    if record is None:
        raise TenantNotFoundError(tenant_id)
    return record


async def list_tenants(store: TenantStore, *, prefix: str | None = None) -> list[TenantRecord]:
    """Every registered tenant, by id."""
    await store.initialize()
    async with store.control(readonly=True) as conn:
        return await control_plane.list_tenants(conn, prefix=prefix)


async def drop_tenant(store: TenantStore, tenant_id: str, *, actor: str) -> None:
    """Remove a tenant entirely: storage, registry, config and fixture records.

    Raises :class:`TenantNotFoundError` if neither registry row nor storage exists.
    The caller invalidates cached config.
    """
    validate_tenant_id(tenant_id)
    await store.initialize()
    run_id = control_plane.new_run_id()

    async def attempt() -> bool:
        async with store.deprovision(tenant_id) as (conn, stored):
            registered = await control_plane.delete_tenant(conn, tenant_id)
            if not (registered or stored):
                raise TenantNotFoundError(tenant_id)
            await control_plane.append_audit(
                conn,
                actor=actor,
                action="tenant.drop",
                tenant_id=tenant_id,
                outcome="ok",
                run_id=run_id,
                detail={"registered": registered, "storage_removed": stored},
            )
            return True

    try:
        await with_retries(attempt)
    except Exception as exc:
        await audit_failure(
            store,
            actor=actor,
            action="tenant.drop",
            tenant_id=tenant_id,
            error=exc,
            run_id=run_id,
        )
        raise
    log.info("tenant_dropped", tenant_id=tenant_id, run_id=run_id)
