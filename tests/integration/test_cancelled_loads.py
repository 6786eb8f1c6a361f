"""A load cancelled at any point (``asyncio.wait_for`` around it, a service stopping its
jobs) leaves nothing locked: the next write goes ahead at once."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.tenancy import audit

TENANT = "cancelled_load"
#: Tenants of their own: the audit log outlives the tenants the other tests drop.
AUDITED = "cancelled_audited"
UNAUDITED = "cancelled_unaudited"
RECORDED = "cancelled_recorded"
COMMITTING = "cancelled_committing"
#: Cancel after this many milliseconds of the load: from before its transaction begins
#: to the middle of its writes (the demo set's load takes ~150 ms).
DELAYS_MS = range(0, 110, 10)


async def test_a_load_cancelled_at_any_point_leaves_the_next_load_unblocked(
    manager: FixtureManager, demo_set: Path
) -> None:
    await manager.create_tenant(TENANT, tier="premium")
    for delay in DELAYS_MS:
        task = asyncio.create_task(manager.load_fixtures(TENANT, source=demo_set, force=True))
        await asyncio.sleep(delay / 1000)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        del task

        report = await asyncio.wait_for(
            manager.load_fixtures(TENANT, source=demo_set, force=True), timeout=10
        )
        assert report.row_counts, delay


async def test_a_sqlite_load_cancelled_mid_statement_holds_no_lock_on_either_file(
    tmp_path: Path, demo_set: Path
) -> None:
    """Whatever still refers to the cancelled load's cursors (here: the task and its
    traceback, kept), the tenant file and the control plane take a writer at once."""
    data = tmp_path / "data"
    settings = Settings(database_url=f"sqlite:///{data}", actor="pytest")
    kept: list[asyncio.Task[object]] = []
    async with FixtureManager(settings) as manager:
        await manager.create_tenant(TENANT, tier="premium")
        for delay in DELAYS_MS:
            task = asyncio.create_task(manager.load_fixtures(TENANT, source=demo_set, force=True))
            kept.append(task)
            await asyncio.sleep(delay / 1000)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            for path in (data / "tenancy.db", data / "tenants" / f"{TENANT}.db"):
                probe = sqlite3.connect(path, timeout=1, isolation_level=None)
                try:
                    probe.execute("BEGIN EXCLUSIVE")
                    probe.execute("ROLLBACK")
                except sqlite3.OperationalError as exc:
                    message = f"{path.name} locked after a cancel at {delay} ms"
                    raise AssertionError(message) from exc
                finally:
                    probe.close()


async def _cancelled_while_writing(
    manager: FixtureManager, tenant_id: str, demo_set: Path
) -> object:
    """Make ``tenant_id``, start loading the demo set into it, cancel the load once it
    writes rows; what the load ended with."""
    await manager.create_tenant(tenant_id, tier="premium")
    writing = asyncio.Event()
    task = asyncio.create_task(
        manager.load_fixtures(tenant_id, source=demo_set, progress=lambda _t, _n: writing.set())
    )
    await asyncio.wait_for(writing.wait(), timeout=30)
    task.cancel()
    return (await asyncio.gather(task, return_exceptions=True))[0]


async def test_a_load_cancelled_while_it_writes_is_audited_as_cancelled(
    manager: FixtureManager, demo_set: Path
) -> None:
    outcome = await _cancelled_while_writing(manager, AUDITED, demo_set)
    loaded = await manager.load_fixtures(AUDITED, source=demo_set)

    records = await manager.audit_log(AUDITED)
    cancelled = [r for r in records if r.outcome == "cancelled"]
    done = [r for r in records if r.run_id == loaded.run_id]
    assert isinstance(outcome, asyncio.CancelledError)
    assert [done[0].action] == [r.action for r in cancelled]
    assert "CancelledError" == cancelled[0].detail["error"]


async def test_a_cancelled_load_whose_audit_write_times_out_is_still_cancelled(
    manager: FixtureManager, demo_set: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "CANCELLED_AUDIT_SECONDS", 0.0)
    outcome = await _cancelled_while_writing(manager, UNAUDITED, demo_set)

    assert isinstance(outcome, asyncio.CancelledError)
    assert [] == [r for r in await manager.audit_log(UNAUDITED) if r.outcome == "cancelled"]


async def test_a_cancel_that_lands_after_the_operation_recorded_its_outcome_adds_no_record(
    manager: FixtureManager,
) -> None:
    """A cancel can arrive after the operation committed, while its connection closes."""
    await manager.create_tenant(RECORDED)

    async def recorded_then_cancelled() -> None:
        async with audit.audited(
            manager.store, actor="pytest", action="test.operation", tenant_id=RECORDED
        ) as operation:
            await operation.record(detail={})
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await recorded_then_cancelled()

    records = await manager.audit_log(RECORDED)
    assert ["ok"] == [r.outcome for r in records if r.action == "test.operation"]


async def test_a_cancel_recorded_while_the_operation_commits_its_outcome_adds_no_record(
    manager: FixtureManager,
) -> None:
    """The check for the run's own record waits for the operation's audit write to end."""
    await manager.create_tenant(COMMITTING)
    async with manager.store.control() as conn:
        operation = audit.Audit(manager.store, "pytest", "test.operation", COMMITTING, "r" * 32)
        await operation.record(conn, detail={})
        cancelled = asyncio.create_task(
            audit.audit_failure(
                manager.store,
                actor="pytest",
                action="test.operation",
                tenant_id=COMMITTING,
                error=asyncio.CancelledError(),
                run_id=operation.run_id,
                unless_recorded=True,
            )
        )
        await asyncio.sleep(0.3)  # the check runs while this transaction is open
    await cancelled

    records = await manager.audit_log(COMMITTING)
    assert ["ok"] == [r.outcome for r in records if r.action == "test.operation"]
