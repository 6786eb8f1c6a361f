"""The audit log as a hash chain, on both backends: intact after every kind of operation,
and an UPDATE, DELETE, INSERT or reorder done with raw SQL is named by ``audit verify``."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tenancy_fixtures import FixtureManager
from tenancy_fixtures.store import audit_chain
from tenancy_fixtures.tenancy.audit import audited
from tests.integration.chain_db import OwnDatabase


async def _history(manager: FixtureManager, tenants: int = 2) -> None:
    """Some audited history: creates, loads, a warm-up and a drop."""
    await manager.warm_up(0)
    for n in range(tenants):
        await manager.create_tenant(f"chain_{n}")
    await manager.load_fixtures("chain_0")
    await manager.drop_tenant(f"chain_{tenants - 1}")


async def _ids(own: OwnDatabase) -> list[int]:
    return [r[0] for r in await own.sql("SELECT audit_id FROM tenancy.audit_log ORDER BY audit_id")]


async def test_the_chain_is_intact_after_creates_loads_warm_up_and_drops(
    own: OwnDatabase,
) -> None:
    """Every operation, warm-up and a drop's erasure included, links into one chain whose
    head is the last record's hash."""
    async with own.manager() as manager:
        await _history(manager)
        report = await manager.verify_audit()
        head = await manager.audit_head()
        actions = [r.action for r in await manager.audit_log(limit=100)]

    assert report.ok, report.broken
    assert (report.head_seq, report.head_hash) == head
    assert report.checked == head[0]
    assert {"store.warm_up", "tenant.create", "fixtures.load", "audit.erase", "tenant.drop"} <= set(
        actions
    )
    assert "audit.chain_start" == actions[-1]


async def test_an_updated_record_is_named(own: OwnDatabase) -> None:
    """Changing any field of a record with SQL breaks that record's hash."""
    async with own.manager() as manager:
        await _history(manager)
        victim = (await _ids(own))[3]
        await own.sql(
            f"UPDATE tenancy.audit_log SET actor = 'someone else' WHERE audit_id = {victim}"
        )
        report = await manager.verify_audit()

    assert report.broken is not None
    assert victim == report.broken.audit_id
    assert "updated" in report.broken.reason


async def test_an_updated_detail_is_named(own: OwnDatabase) -> None:
    """The detail is covered by its digest, so changing it is caught too."""
    async with own.manager() as manager:
        await _history(manager)
        victim = (await _ids(own))[2]
        await own.sql(
            f'UPDATE tenancy.audit_log SET detail = \'{{"tier": "enterprise"}}\' '
            f"WHERE audit_id = {victim}"
        )
        report = await manager.verify_audit()

    assert report.broken is not None
    assert victim == report.broken.audit_id


async def test_a_deleted_record_is_named_by_the_record_after_it(own: OwnDatabase) -> None:
    """Deleting a record leaves the next one linking to a record that is gone."""
    async with own.manager() as manager:
        await _history(manager)
        ids = await _ids(own)
        await own.sql(f"DELETE FROM tenancy.audit_log WHERE audit_id = {ids[2]}")
        report = await manager.verify_audit()

    assert report.broken is not None
    assert ids[3] == report.broken.audit_id


async def test_records_deleted_from_the_end_are_caught_by_the_head(own: OwnDatabase) -> None:
    """Cutting the newest records off leaves a chain shorter than its head says."""
    async with own.manager() as manager:
        await _history(manager)
        ids = await _ids(own)
        await own.sql(f"DELETE FROM tenancy.audit_log WHERE audit_id = {ids[-1]}")
        report = await manager.verify_audit()

    assert report.broken is not None
    assert report.broken.audit_id is None
    assert "head" in report.broken.reason


async def test_an_inserted_record_is_named(own: OwnDatabase) -> None:
    """A record slipped in with SQL, hash columns copied from its neighbour or left empty,
    is named."""
    async with own.manager() as manager:
        await _history(manager)
        await own.sql(
            "INSERT INTO tenancy.audit_log (at, actor, action, tenant_id, outcome, detail) "
            "VALUES ('2026-01-01 00:00:00', 'intruder', 'tenant.create', 'x', 'ok', '{}')"
        )
        forged = (await _ids(own))[-1]
        report = await manager.verify_audit()

    assert report.broken is not None
    assert forged == report.broken.audit_id


async def test_swapped_records_are_named(own: OwnDatabase) -> None:
    """Reordering two records (swapping their ids) breaks the positions."""
    async with own.manager() as manager:
        await _history(manager)
        ids = await _ids(own)
        first, second = ids[2], ids[4]
        for statement in (
            f"UPDATE tenancy.audit_log SET audit_id = -1 WHERE audit_id = {first}",
            f"UPDATE tenancy.audit_log SET audit_id = {first} WHERE audit_id = {second}",
            f"UPDATE tenancy.audit_log SET audit_id = {second} WHERE audit_id = -1",
        ):
            await own.sql(statement)
        report = await manager.verify_audit()

    assert report.broken is not None
    assert first == report.broken.audit_id
    assert "position" in report.broken.reason


async def test_an_erased_detail_without_a_tombstone_is_named(own: OwnDatabase) -> None:
    """Only a drop may erase details: a minimal trail written with SQL on a live tenant's
    record has no tombstone to cover it."""
    async with own.manager() as manager:
        await _history(manager)
        rows = await own.sql(
            "SELECT audit_id FROM tenancy.audit_log WHERE tenant_id = 'chain_0' "
            "AND action = 'tenant.create'"
        )
        victim = rows[0][0]
        await own.sql(
            "UPDATE tenancy.audit_log SET detail = '{\"erased\": true}' "
            f"WHERE audit_id = {victim}"
        )
        report = await manager.verify_audit()

    assert report.broken is not None
    assert victim == report.broken.audit_id


async def test_a_drop_erases_details_and_the_chain_still_verifies(own: OwnDatabase) -> None:
    """The hash covers the detail's digest: the drop's minimal trail leaves every link
    verifiable, and its tombstone says what was erased."""
    async with own.manager() as manager:
        await manager.create_tenant("chain_gone")
        await manager.drop_tenant("chain_gone")
        records = await manager.audit_log("chain_gone")
        report = await manager.verify_audit()

    create = next(r for r in records if r.action == "tenant.create")
    tombstone = next(r for r in records if r.action == "audit.erase")
    assert {"erased": True} == create.detail
    assert {"erased": 1} == tombstone.detail
    assert report.ok, report.broken


async def test_records_made_before_the_chain_are_sealed_by_its_start(own: OwnDatabase) -> None:
    """An older deployment (no chain columns, no head) gets the columns and a chain that
    starts after its records and seals them; changing one of them later is caught."""
    async with own.manager() as manager:
        await _history(manager)
    await own.sql("DROP TABLE tenancy.audit_head")
    for column in audit_chain.CHAIN_COLUMNS:
        await own.sql(f"ALTER TABLE tenancy.audit_log DROP COLUMN {column}")
    before = len(await _ids(own))

    async with own.manager() as manager:
        await manager.create_tenant("chain_after")
        intact = await manager.verify_audit()
        oldest = (await _ids(own))[0]
        await own.sql(f"UPDATE tenancy.audit_log SET actor = 'x' WHERE audit_id = {oldest}")
        tampered = await manager.verify_audit()

    assert intact.ok, intact.broken
    assert before == intact.unchained
    assert tampered.broken is not None
    assert "before the chain started" in tampered.broken.reason


async def test_concurrent_writers_never_fork_the_chain(own: OwnDatabase) -> None:
    """Two managers (two engines, their own connections) appending at once still make
    one chain: every position taken once, every link to the one before."""
    async with own.manager() as first, own.manager() as second:

        async def append(manager: FixtureManager, n: int) -> None:
            async with audited(
                manager.store, actor="pytest", action="test.append", tenant_id=None
            ) as audit:
                await audit.record(detail={"n": n})

        await asyncio.gather(
            *(append(first if n % 2 else second, n) for n in range(40)),
        )
        report = await first.verify_audit()

    positions = await own.sql("SELECT seq FROM tenancy.audit_log ORDER BY audit_id")
    assert report.ok, report.broken
    assert list(range(1, 42)) == [p[0] for p in positions]


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"])
async def test_postgresql_refuses_updates_and_deletes_of_audit_records(
    own: OwnDatabase,
) -> None:
    """The append-only trigger refuses UPDATE, DELETE and TRUNCATE, even from a superuser
    who does not bypass it."""
    async with own.manager() as manager:
        await _history(manager)
    for statement in (
        "UPDATE tenancy.audit_log SET actor = 'x'",
        "DELETE FROM tenancy.audit_log",
        "TRUNCATE tenancy.audit_log",
        "UPDATE tenancy.audit_log SET detail = '{\"erased\": true}', actor = 'x'",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await own.sql(statement, bypass_guard=False)
