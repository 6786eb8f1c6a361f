"""The one audited() scope on both backends: what it records for a success, a refusal
and a failure, and that the operations without a record of their own go through it."""

from __future__ import annotations

import functools
import uuid

import pytest

from tenancy_fixtures import FixtureManager, FixtureSetError, TenantNotFoundError
from tenancy_fixtures.tenancy.audit import audited


def fresh_tenant() -> str:
    """A tenant id no earlier test of this run used (the audit log outlives tenants)."""
    return f"audit_{uuid.uuid4().hex[:12]}"


async def test_a_failure_inside_audited_is_recorded_as_failed_and_raised_again(
    manager: FixtureManager,
) -> None:
    """An exception that is not the library's escapes audited() unchanged and is audited
    as failed, with its type and message."""
    tenant = fresh_tenant()

    with pytest.raises(RuntimeError, match="disk on fire"):
        async with audited(manager.store, actor="pytest", action="test.op", tenant_id=tenant):
            raise RuntimeError("disk on fire")

    records = await manager.audit_log(tenant)
    assert [("test.op", "failed", {"error": "RuntimeError", "message": "disk on fire"})] == [
        (r.action, r.outcome, r.detail) for r in records
    ]


async def test_a_refusal_inside_audited_names_its_tenant_and_is_recorded_as_refused(
    manager: FixtureManager,
) -> None:
    """A typed error naming no tenant is given the scope's tenant, then audited as
    refused with its message."""
    tenant = fresh_tenant()

    with pytest.raises(FixtureSetError) as caught:
        async with audited(manager.store, actor="pytest", action="test.op", tenant_id=tenant):
            raise FixtureSetError("no files")

    assert tenant == caught.value.tenant_id
    records = await manager.audit_log(tenant)
    assert [("refused", "FixtureSetError", f"tenant '{tenant}': no files")] == [
        (r.outcome, r.detail["error"], r.detail["message"]) for r in records
    ]


async def test_a_success_is_recorded_once_when_the_operation_records_it(
    manager: FixtureManager,
) -> None:
    """Leaving audited() without an error records nothing by itself; Audit.record
    writes one record under the scope's run id."""
    tenant = fresh_tenant()
    async with audited(manager.store, actor="pytest", action="test.op", tenant_id=tenant):
        pass
    nothing = await manager.audit_log(tenant)

    async with audited(manager.store, actor="pytest", action="test.op", tenant_id=tenant) as audit:
        await audit.record(outcome="unchanged", detail={"rows": 0})

    assert [] == nothing
    assert [("test.op", "unchanged", audit.run_id, {"rows": 0})] == [
        (r.action, r.outcome, r.run_id, r.detail) for r in await manager.audit_log(tenant)
    ]


async def test_audited_tells_its_observer_each_outcome(manager: FixtureManager) -> None:
    """The observer (the manager's metrics) hears the recorded outcome of a success and
    ``error`` for a failure."""
    seen: list[str] = []
    observed = functools.partial(
        audited,
        manager.store,
        actor="pytest",
        action="test.op",
        tenant_id=fresh_tenant(),
        observe=lambda outcome, _seconds: seen.append(outcome),
    )

    async with observed() as audit:
        await audit.record(outcome="unchanged", detail={})
    with pytest.raises(RuntimeError):
        async with observed():
            raise RuntimeError("boom")

    assert ["unchanged", "error"] == seen


async def test_a_warm_up_is_audited(manager: FixtureManager) -> None:
    """warm_up leaves a ``store.warm_up`` record naming no tenant, with what it did."""
    created = await manager.warm_up(0)

    newest = (await manager.audit_log(limit=1))[0]

    assert ("store.warm_up", None, "unchanged", {"spares": 0, "created": created}) == (
        newest.action,
        newest.tenant_id,
        newest.outcome,
        newest.detail,
    )


async def test_a_recorded_validation_of_a_missing_tenant_is_audited_as_refused(
    manager: FixtureManager,
) -> None:
    """validate_tenant(record=True) of a tenant that does not exist raises and audits a
    refused ``data.validate``; without ``record`` nothing is audited."""
    recorded, unrecorded = fresh_tenant(), fresh_tenant()

    with pytest.raises(TenantNotFoundError):
        await manager.validate_tenant(recorded, record=True)
    with pytest.raises(TenantNotFoundError):
        await manager.validate_tenant(unrecorded)

    assert [("data.validate", "refused")] == [
        (r.action, r.outcome) for r in await manager.audit_log(recorded)
    ]
    assert [] == await manager.audit_log(unrecorded)
