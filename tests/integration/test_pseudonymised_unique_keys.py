"""Pseudonymising a person whose table has a unique key that is neither the subject id
nor personal (a payment provider's customer reference) is refused before anything
changes, naming the key: the person's row is written again under the pseudonym before
the old one goes, and the copy repeated the value (the database refused it: a
StorageError, "UNIQUE constraint failed" or "duplicate key value"). Deleting them works."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, select

from tenancy_fixtures import FixtureManager, Settings, TenantFixture
from tenancy_fixtures.errors import ConfigError
from tests.cleanup import drop_every_tenant

TENANT = "billing"


def _customers() -> MetaData:
    metadata = MetaData()
    Table(
        "customers",
        metadata,
        Column("customer_id", String(20), primary_key=True, info={"subject": "id"}),
        Column("email", String(80), unique=True, info={"personal": True}),
        Column("billing_ref", String(20), unique=True),
    )
    return metadata


async def _rows(manager: FixtureManager) -> list[tuple[Any, ...]]:
    async with manager.store.session(TENANT, readonly=True) as session:
        customers = session.metadata.tables["tenant.customers"]
        query = select(customers).order_by(customers.c.customer_id)
        return [tuple(row) for row in await session.connection.execute(query)]


async def test_pseudonymising_with_a_unique_key_it_does_not_rewrite_is_refused_naming_it(
    settings: Settings, tmp_path: Path
) -> None:
    rows = [
        {"customer_id": "c_1", "email": "ann@example.com", "billing_ref": "cus_1"},
        {"customer_id": "c_2", "email": "bob@example.com", "billing_ref": "cus_2"},
    ]
    source = tmp_path / "customers"
    source.mkdir()
    (source / "customers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    async with FixtureManager(settings, metadata=_customers()) as manager:
        await drop_every_tenant(manager)
        await manager.create_tenant(TenantFixture(tenant_id=TENANT, tier="enterprise"))
        await manager.load_fixtures(TENANT, source)
        before = await _rows(manager)

        with pytest.raises(ConfigError) as refused:
            await manager.erase_subject(TENANT, "c_1", mode="pseudonymise")
        assert 2 == refused.value.exit_code
        assert "the unique key (customers.billing_ref)" in str(refused.value)
        assert before == await _rows(manager)

        report = await manager.erase_subject(TENANT, "c_1")
        assert {"customers": 1} == report.deleted
        assert [before[1]] == await _rows(manager)
        await drop_every_tenant(manager)
