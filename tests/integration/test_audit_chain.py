"""The audit log as a hash chain, on both backends: intact after every kind of operation,
and an UPDATE, DELETE, INSERT or reorder done with raw SQL is named by ``audit verify``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import insert, update

from tenancy_fixtures import FixtureManager
from tenancy_fixtures.store import audit_chain, control_plane
from tenancy_fixtures.store.control_plane import audit_table, utcnow
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


@pytest.mark.parametrize("detail", ["5", "[1, 2]", '"erased"', "null"])
async def test_a_detail_that_is_no_longer_an_object_is_named(own: OwnDatabase, detail: str) -> None:
    """A detail replaced by a number, a list, a string or null: verify names the record
    (exit 12). It failed on it with a TypeError or ValueError (an unexpected error,
    exit 1) and named nothing."""
    async with own.manager() as manager:
        await _history(manager)
        victim = (await _ids(own))[2]
        await own.sql(f"UPDATE tenancy.audit_log SET detail = '{detail}' WHERE audit_id = {victim}")
        report = await manager.verify_audit()

    assert report.broken is not None
    assert victim == report.broken.audit_id
    assert "its detail is no JSON object" in report.broken.reason


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
    assert {"erased": 1, "positions": [[2, 2]]} == tombstone.detail
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


# --- records past the head -------------------------------------------------------------


async def test_verify_reports_a_record_inserted_past_the_head(own: OwnDatabase) -> None:
    """A record slipped in with SQL at a far position, hash columns made up, was skipped
    as "appended while we were verifying": the chain was reported intact."""
    async with own.manager() as manager:
        await _history(manager)
        await own.sql(
            "INSERT INTO tenancy.audit_log (at, actor, action, tenant_id, outcome, run_id, "
            "detail, seq, detail_digest, prev_hash, entry_hash) VALUES ('2026-01-01 00:00:00', "
            "'admin', 'tenant.drop', 'chain_0', 'ok', NULL, '{\"forged\": true}', 1000000000, "
            "'x', 'y', 'z')"
        )
        forged = (await _ids(own))[-1]
        report = await manager.verify_audit()

    assert report.broken is not None
    assert (forged, 1000000000) == (report.broken.audit_id, report.broken.seq)
    assert "position 1000000000" in str(report.broken)


async def test_verify_reports_a_chained_record_past_the_head(own: OwnDatabase) -> None:
    """A record linked to the last one, hashes right, but appended without moving the
    head (behind the chain's back) is named at its position."""
    async with own.manager() as manager:
        await _history(manager)
        seq, last = await manager.audit_head()
        fields: dict[str, Any] = {
            "seq": seq + 1,
            "at": utcnow(),
            "actor": "admin",
            "action": "tenant.drop",
            "tenant_id": "chain_0",
            "outcome": "ok",
            "run_id": None,
            "detail_digest": audit_chain.detail_digest({}),
            "prev_hash": last,
        }
        fields["entry_hash"] = audit_chain.entry_hash(fields)
        async with manager.store.control() as conn:
            await conn.execute(insert(audit_table).values(detail={}, **fields))
        forged = (await _ids(own))[-1]
        report = await manager.verify_audit()

    assert report.broken is not None
    assert (forged, seq + 1) == (report.broken.audit_id, report.broken.seq)
    assert "past the chain head" in report.broken.reason
    assert seq == report.head_seq


@pytest.mark.parametrize("moment", ["mid_walk", "after_the_last_record"])
async def test_a_record_appended_while_verify_walks_is_not_reported(
    own: OwnDatabase, monkeypatch: pytest.MonkeyPatch, moment: str
) -> None:
    """A record appended through the chain while verify reads is walked and verified
    (PostgreSQL sees it; SQLite's reader keeps its snapshot, so the writer waits), and
    the chain is intact: verify reads on up to the head as it is at the end."""
    monkeypatch.setattr(audit_chain, "_PAGE", 2)
    walk_rows = audit_chain._rows
    appended: list[asyncio.Task[None]] = []

    async with own.manager() as manager, own.manager() as writer:
        await _history(manager)
        before = (await manager.audit_head())[0]

        async def append() -> None:
            async with audited(
                writer.store, actor="pytest", action="test.append", tenant_id="chain_0"
            ) as audit:
                await audit.record(detail={"during": "verify"})

        async def start_append() -> None:
            appended.append(asyncio.create_task(append()))
            if own.backend == "postgresql":  # committed before verify reads on
                await appended[0]

        async def rows(*args: Any) -> AsyncIterator[Any]:
            first = not appended
            async for row in walk_rows(*args):
                yield row
                if first and not appended and moment == "mid_walk":
                    await start_append()
            if first and not appended:
                await start_append()

        monkeypatch.setattr(audit_chain, "_rows", rows)
        report = await manager.verify_audit()
        await appended[0]
        monkeypatch.setattr(audit_chain, "_rows", walk_rows)
        after = await manager.verify_audit()

    assert report.ok, report.broken
    assert after.ok, after.broken
    assert before + 1 == after.head_seq
    if own.backend == "postgresql":
        assert (after.head_seq, after.checked) == (report.head_seq, report.checked)


# --- erased details and their tombstones ---------------------------------------------------


async def _note(manager: FixtureManager, tenant_id: str, note: str) -> None:
    """An audited record of ``tenant_id`` whose detail is ``{"note": note}``."""
    async with audited(
        manager.store, actor="pytest", action="test.note", tenant_id=tenant_id
    ) as audit:
        await audit.record(detail={"note": note})


async def _seqs(own: OwnDatabase, where: str) -> list[tuple[int, int]]:
    """(id, position) of the records ``where`` takes, by id."""
    rows = await own.sql(
        f"SELECT audit_id, seq FROM tenancy.audit_log WHERE {where} ORDER BY audit_id"
    )
    return [(int(r[0]), int(r[1])) for r in rows]


async def _wipe(own: OwnDatabase, audit_id: int) -> None:
    """Erase one record's detail with SQL, as a drop would (the guard lets that through)."""
    await own.sql(
        f"UPDATE tenancy.audit_log SET detail = '{{\"erased\": true}}' WHERE audit_id = {audit_id}",
        bypass_guard=False,
    )


async def _erase_notes(manager: FixtureManager, tenant_id: str, note: str) -> int:
    """A subject's erasure of the audit details of ``tenant_id`` noting ``note``."""
    async with manager.store.control() as conn:
        return await control_plane.erase_audit_detail(
            conn, tenant_id, actor="pytest", only=lambda detail: detail.get("note") == note
        )


async def test_verify_reports_a_wiped_record_no_erasure_marker_covers(own: OwnDatabase) -> None:
    """One subject erasure's tombstone made every earlier record of its tenant erasable:
    two more details wiped with SQL passed as intact. The tombstone names the one record
    it erased; the first wiped record it does not name is reported."""
    async with own.manager() as manager:
        await _history(manager)
        for note in ("a", "subject", "b"):
            await _note(manager, "chain_0", note)
        assert 1 == await _erase_notes(manager, "chain_0", "subject")
        assert (await manager.verify_audit()).ok
        victims = await _seqs(
            own, "action = 'test.note' AND CAST(detail AS TEXT) NOT LIKE '%erased%'"
        )
        for audit_id, _ in victims:
            await _wipe(own, audit_id)
        report = await manager.verify_audit()

    assert 2 == len(victims)
    assert report.broken is not None
    assert victims[0] == (report.broken.audit_id, report.broken.seq)
    assert "no audit.erase record" in report.broken.reason


async def test_a_tombstone_names_the_positions_it_erased(own: OwnDatabase) -> None:
    """The tombstone's detail: how many records it erased, and their positions in runs."""
    async with own.manager() as manager:
        await _history(manager)
        for note in ("subject", "subject", "other", "subject"):
            await _note(manager, "chain_0", note)
        await _erase_notes(manager, "chain_0", "subject")
        erased = [
            seq for _, seq in await _seqs(own, "CAST(detail AS TEXT) LIKE '%\"erased\": true%'")
        ]
        tombstone = (await manager.audit_log("chain_0", limit=1))[0]
        report = await manager.verify_audit()

    assert report.ok, report.broken
    assert "audit.erase" == tombstone.action
    first, second, third = erased[-3:]
    assert {"erased": 3, "positions": [[first, second], [third, third]]} == tombstone.detail
    assert second == first + 1


async def test_a_wiped_tombstone_is_reported(own: OwnDatabase) -> None:
    """A tombstone is never erased (it holds positions only): wiping one with SQL leaves
    it, and the records it named, uncovered."""
    async with own.manager() as manager:
        await _history(manager)
        await _note(manager, "chain_0", "subject")
        await _erase_notes(manager, "chain_0", "subject")
        ((tombstone, _),) = await _seqs(own, "action = 'audit.erase' AND tenant_id = 'chain_0'")
        await _wipe(own, tombstone)
        report = await manager.verify_audit()

    assert report.broken is not None
    assert "no audit.erase record" in report.broken.reason


async def test_a_drop_after_a_subject_erasure_still_verifies(own: OwnDatabase) -> None:
    """The drop erases what the subject erasure left, not its tombstone, and names only
    those: both tombstones together cover every erased record."""
    async with own.manager() as manager:
        await _history(manager)
        for note in ("subject", "other"):
            await _note(manager, "chain_0", note)
        await _erase_notes(manager, "chain_0", "subject")
        await manager.drop_tenant("chain_0")
        records = await manager.audit_log("chain_0", limit=100)
        report = await manager.verify_audit()

    tombstones = [r.detail for r in records if r.action == "audit.erase"]
    assert report.ok, report.broken
    assert 2 == len(tombstones)
    assert all("positions" in detail for detail in tombstones)
    assert all(r.detail.get("erased") is True for r in records if r.action == "test.note")


async def _old_erasure(manager: FixtureManager, tenant_id: str, audit_ids: list[int]) -> None:
    """An erasure as the release before wrote it: details wiped, a count-only tombstone."""
    async with manager.store.control() as conn:
        await conn.execute(
            update(audit_table)
            .where(audit_table.c.audit_id.in_(audit_ids))
            .values(detail={"erased": True})
        )
        await audit_chain.append(
            conn,
            actor="pytest",
            action="audit.erase",
            tenant_id=tenant_id,
            outcome="ok",
            run_id=None,
            detail={"erased": len(audit_ids)},
        )


async def test_count_only_tombstones_of_the_release_before_still_verify(
    own: OwnDatabase,
) -> None:
    """A tombstone with a count alone covers that many erased records before it; one an
    older drop erased in turn still covers its count (recovered from its digest), and a
    drop now names what it erases on top of them."""
    async with own.manager() as manager:
        await _history(manager)
        for note in ("one", "two", "three", "four"):
            await _note(manager, "chain_0", note)
        notes = [audit_id for audit_id, _ in await _seqs(own, "action = 'test.note'")]
        await _old_erasure(manager, "chain_0", notes[:2])
        ((first_tombstone, _),) = await _seqs(
            own, "action = 'audit.erase' AND tenant_id = 'chain_0'"
        )
        await _old_erasure(manager, "chain_0", [notes[2], first_tombstone])
        old = await manager.verify_audit()
        await manager.drop_tenant("chain_0")
        dropped = await manager.verify_audit()

    assert old.ok, old.broken
    assert dropped.ok, dropped.broken


@pytest.mark.parametrize("where", ["before", "after"])
async def test_a_count_only_tombstone_covers_no_more_than_its_count(
    own: OwnDatabase, where: str
) -> None:
    """One more record wiped with SQL than an old tombstone counted, before it or after
    it, is reported."""
    async with own.manager() as manager:
        await _history(manager)
        for note in ("one", "two", "three"):
            await _note(manager, "chain_0", note)
        notes = [audit_id for audit_id, _ in await _seqs(own, "action = 'test.note'")]
        await _old_erasure(manager, "chain_0", [notes[1]])
        if where == "after":
            await _note(manager, "chain_0", "four")
        intact = await manager.verify_audit()
        victim = notes[0] if where == "before" else (await _ids(own))[-1]
        await _wipe(own, victim)
        report = await manager.verify_audit()

    assert intact.ok, intact.broken
    assert report.broken is not None
    assert "no audit.erase record" in report.broken.reason
    if where == "after":
        assert victim == report.broken.audit_id
