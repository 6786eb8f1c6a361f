"""A user's schema whose tables refer to each other: a foreign key declared
``use_alter`` (deferrable, checked at commit) closes the cycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table

from tenancy_fixtures import FixtureManager, Settings
from tests.cleanup import drop_shared_tenants


def _departments() -> MetaData:
    """``dept`` declared before ``emp``; a department's head is one of its employees."""
    metadata = MetaData()
    head = ForeignKey(
        "emp.id", name="fk_dept_head", use_alter=True, deferrable=True, initially="DEFERRED"
    )
    Table(
        "dept",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("head_id", Integer, head),
    )
    Table(
        "emp",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("dept_id", Integer, ForeignKey("dept.id")),
    )
    return metadata


@pytest.fixture
async def company(settings: Settings) -> AsyncIterator[FixtureManager]:
    async with FixtureManager(settings, metadata=_departments()) as manager:
        await drop_shared_tenants(manager)
        yield manager
        await drop_shared_tenants(manager)


async def test_tables_referring_to_each_other_are_created_with_every_key_and_load(
    company: FixtureManager, tmp_path: Path
) -> None:
    (tmp_path / "dept.jsonl").write_text('{"id": 1, "head_id": 5}\n')
    (tmp_path / "emp.jsonl").write_text('{"id": 5, "dept_id": 1}\n')
    await company.create_tenant("cycle")

    report = await company.load_fixtures("cycle", tmp_path)
    validation = await company.validate_tenant("cycle", recompute_checksums=True)

    assert {"dept": 1, "emp": 1} == report.row_counts
    assert validation.ok, validation.problems
