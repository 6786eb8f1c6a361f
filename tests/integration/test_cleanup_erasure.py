"""Dropping a tenant leaves nothing of it but a minimal, PII-free audit trail, on both
backends and with the Redis config cache.

The tenant first has everything that used to outlive it: a strict load refused over a
bad e-mail address (the audit message quoted it), a lenient load that set the record
aside in a reject file, a recorded validation run, and its config cached in Redis.
"""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
from redis.asyncio import Redis
from sqlalchemy import select, text, update

from tenancy_fixtures import FixtureManager, RecordError, Settings
from tenancy_fixtures.store.control_plane import control_metadata

#: The refused value: found anywhere after the drop, it is a leak.
MARKER = "zz.pii.marker"
REFUSED_USER = f"pii-user,Pii Person,{MARKER}@@example.com,GB,free,2026-01-01T00:00:00+00:00"


@pytest.fixture
def fixture_set(demo_set: Path, tmp_path: Path) -> Path:
    """The demo set with one more user, whose e-mail address the format rule refuses."""
    target = tmp_path / "set"
    shutil.copytree(demo_set, target)
    users = target / "users.csv"
    users.write_text(users.read_text(encoding="utf-8").rstrip("\n") + "\n" + REFUSED_USER + "\n")
    return target


@pytest.fixture
def erasure_settings(
    database_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> Settings:
    """This test's backend, the real Redis as config cache, a reject directory of its own."""
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        reject_dir=tmp_path / "rejects",
        actor="pytest",
    )


@pytest.fixture
async def erasing_manager(erasure_settings: Settings) -> AsyncIterator[FixtureManager]:
    """A manager on those settings; every tenant is dropped around the test."""
    async with FixtureManager(erasure_settings) as manager:
        for tenant in await manager.list_tenants():
            await manager.drop_tenant(tenant.tenant_id)
        yield manager
        for tenant in await manager.list_tenants():
            await manager.drop_tenant(tenant.tenant_id)


async def _leave_every_trace(manager: FixtureManager, tenant: str, fixture_set: Path) -> None:
    """Refused strict load, lenient load with a reject file, validation run, cached config."""
    await manager.create_tenant(tenant)
    with pytest.raises(RecordError):
        await manager.load_fixtures(tenant, fixture_set, validation="strict")
    report = await manager.load_fixtures(tenant, fixture_set, validation="lenient")
    assert report.reject_file is not None
    assert MARKER in report.reject_file.read_text(encoding="utf-8")
    await manager.validate_tenant(tenant, record=True)
    await manager.get_tenant_config(tenant)


async def _control_plane_rows(manager: FixtureManager) -> dict[str, list[dict[str, Any]]]:
    """Every row of every control-plane table."""
    async with manager.store.control(readonly=True) as conn:
        return {
            table.name: [dict(r._mapping) for r in (await conn.execute(select(table))).all()]
            for table in control_metadata.sorted_tables
        }


async def _redis_dump(settings: Settings) -> dict[str, str]:
    """Every key of this test's prefix with its value."""
    assert settings.redis_url is not None
    client = Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        keys = [k async for k in client.scan_iter(f"{settings.redis_prefix}:*")]
        return {k: str(await client.get(k)) for k in keys}
    finally:
        await client.aclose()


async def _schemas(manager: FixtureManager) -> set[str]:
    async with manager.store.control(readonly=True) as conn:
        return set((await conn.execute(text("SELECT nspname FROM pg_namespace"))).scalars())


def _files_holding(directory: Path, needle: str) -> list[str]:
    """Files under ``directory`` whose name or bytes contain ``needle``."""
    if not directory.exists():
        return []
    found = []
    for path in directory.rglob("*"):
        if path.is_file() and (needle in path.name or needle.encode() in path.read_bytes()):
            found.append(str(path.relative_to(directory)))
    return found


def _actions(records: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(r["action"], r["outcome"], r["detail"]) for r in records]


@pytest.mark.redis
async def test_a_dropped_tenant_leaves_only_a_minimal_pii_free_audit_trail(
    erasing_manager: FixtureManager, erasure_settings: Settings, fixture_set: Path
) -> None:
    """After the drop: no row but audit records without detail, no reject file, no Redis
    key, no storage; the refused e-mail address is nowhere. A bystander whose id starts
    with the dropped one's keeps all of its own."""
    manager = erasing_manager
    tenant = f"erase_{uuid.uuid4().hex[:8]}"
    bystander = f"{tenant}_b"
    await _leave_every_trace(manager, tenant, fixture_set)
    await _leave_every_trace(manager, bystander, fixture_set)
    before = await _control_plane_rows(manager)
    assert any(MARKER in str(r["detail"]) for r in before["audit_log"] if r["tenant_id"] == tenant)
    assert any(r["tenant_id"] == tenant for r in before["runs"])
    assert {f":{tenant}", f":{bystander}"} <= {
        k[k.rindex(":") :] for k in await _redis_dump(erasure_settings)
    }

    await manager.drop_tenant(tenant)

    after = await _control_plane_rows(manager)
    mentions = {
        name: [r for r in rows if tenant in {str(v) for v in r.values()}]
        for name, rows in after.items()
    }
    trail = mentions.pop("audit_log")
    assert {name: [] for name in mentions} == mentions
    assert [
        ("tenant.create", "ok", {"erased": True}),
        ("fixtures.load", "refused", {"erased": True, "error": "RecordsRefusedError"}),
        ("fixtures.load", "ok", {"erased": True}),
        ("data.validate", "ok", {"erased": True}),
        ("audit.erase", "ok", {"erased": 4, "positions": ANY}),
        (
            "tenant.drop",
            "ok",
            {"registered": True, "storage_removed": True, "key_destroyed": False},
        ),
    ] == _actions(sorted(trail, key=lambda r: r["audit_id"]))
    # The tombstone names the positions of the four records it erased.
    erased = sorted(r["seq"] for r in trail if r["detail"].get("erased") is True)
    tombstone = next(r for r in trail if r["action"] == "audit.erase")
    named = [
        seq for first, last in tombstone["detail"]["positions"] for seq in range(first, last + 1)
    ]
    assert erased == named
    assert {"pytest"} == {r["actor"] for r in trail}
    assert all(r["run_id"] and r["at"] for r in trail)
    leaks = [r for rows in after.values() for r in rows if MARKER in str(r)]
    assert {bystander} == {r["tenant_id"] for r in leaks}  # its own refusal, kept
    assert [f":{bystander}"] == sorted(
        {k[k.rindex(":") :] for k in await _redis_dump(erasure_settings)}
    )
    rejects = erasure_settings.reject_dir
    assert [bystander] == [p.name.split("-")[0] for p in rejects.iterdir()]
    if manager.store.backend == "postgresql":
        assert {bystander, tenant} & await _schemas(manager) == {bystander}
        return
    tenants_dir = erasure_settings.data_dir / "tenants"
    assert [f"{bystander}.db"] == sorted(p.name for p in tenants_dir.iterdir())
    await manager.drop_tenant(bystander)
    # Nothing of either is left in the files either: deleted rows are overwritten.
    assert [] == _files_holding(erasure_settings.data_dir, MARKER)


@pytest.mark.redis
async def test_a_drop_removes_reject_files_a_load_was_told_to_write_elsewhere(
    erasing_manager: FixtureManager, fixture_set: Path, tmp_path: Path
) -> None:
    """A lenient load given a reject directory of its own records where its reject file
    went; dropping the tenant removes that file and leaves a bystander's beside it."""
    manager = erasing_manager
    elsewhere = tmp_path / "elsewhere"
    tenant = f"erase_{uuid.uuid4().hex[:8]}"
    bystander = f"{tenant}_b"
    for made in (tenant, bystander):
        await manager.create_tenant(made)
        report = await manager.load_fixtures(
            made, fixture_set, validation="lenient", reject_dir=elsewhere
        )
        assert report.reject_file is not None
        assert elsewhere == report.reject_file.parent

    await manager.drop_tenant(tenant)

    assert [bystander] == [p.name.split("-")[0] for p in elsewhere.iterdir()]


@pytest.mark.redis
async def test_a_drop_follows_a_recorded_reject_file_only_to_that_runs_own_file(
    erasing_manager: FixtureManager, fixture_set: Path, tmp_path: Path
) -> None:
    """A run detail altered behind the library's back to name a file elsewhere (named as
    a reject file of the tenant, but of another run) does not make the drop delete it."""
    manager = erasing_manager
    tenant = f"erase_{uuid.uuid4().hex[:8]}"
    await manager.create_tenant(tenant)
    report = await manager.load_fixtures(
        tenant, fixture_set, validation="lenient", reject_dir=tmp_path / "elsewhere"
    )
    victim = tmp_path / "victim" / f"{tenant}-{uuid.uuid4().hex}.jsonl"
    victim.parent.mkdir()
    victim.write_text("{}\n")
    runs = control_metadata.tables["tenancy.runs"]
    async with manager.store.control() as conn:
        await conn.execute(
            update(runs)
            .where(runs.c.run_id == report.run_id)
            .values(detail={"reject_file": str(victim)})
        )

    await manager.drop_tenant(tenant)

    assert victim.exists()
