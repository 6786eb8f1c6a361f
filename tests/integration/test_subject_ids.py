"""Erasure and exports of a person whose id is not text: a user's schema may key its
customers by an integer or a UUID. The id comes as text (the command line's
``--subject``) and is read as the column holds it; pseudonyms of such ids are numbers
or UUIDs the column holds."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Uuid,
    select,
)
from sqlalchemy.types import TypeEngine

from tenancy_fixtures import FixtureManager, Settings, TenantFixture
from tenancy_fixtures.compliance.pseudonyms import Pseudonymiser
from tenancy_fixtures.errors import ConfigError
from tests.cleanup import drop_every_tenant

TENANT = "shop"
COPY = "shop_copy"
OTHER_UUID = "9b2f4c1e-0000-4000-8000-000000000002"
PERSON_UUID = "9b2f4c1e-0000-4000-8000-000000000001"


def _metadata(key: TypeEngine[Any]) -> MetaData:
    metadata = MetaData()
    Table(
        "customers",
        metadata,
        Column("customer_id", key, primary_key=True, info={"subject": "id"}),
        Column("email", String(100), info={"personal": True}),
    )
    Table(
        "orders",
        metadata,
        Column("order_id", Integer, primary_key=True),
        Column(
            "customer_id",
            key,
            ForeignKey("customers.customer_id"),
            nullable=False,
            info={"subject": "reference"},
        ),
        Column("total", Integer),
    )
    return metadata


@pytest.fixture(params=["integer", "uuid"])
def ids(request: pytest.FixtureRequest) -> tuple[TypeEngine[Any], str, str]:
    """The id type, the person's id as text, another customer's id as text."""
    if request.param == "integer":
        return Integer(), "1", "2"
    return Uuid(), PERSON_UUID, OTHER_UUID


@pytest.fixture
async def shop(
    settings: Settings, tmp_path: Path, ids: tuple[TypeEngine[Any], str, str]
) -> AsyncIterator[FixtureManager]:
    key, person, other = ids
    source = tmp_path / "shop_set"
    source.mkdir()

    def literal(text: str) -> Any:
        return int(text) if isinstance(key, Integer) else text

    customers = [
        {"customer_id": literal(person), "email": "ada@example.com"},
        {"customer_id": literal(other), "email": "bob@example.com"},
    ]
    orders = [
        {"order_id": 10, "customer_id": literal(person), "total": 5},
        {"order_id": 11, "customer_id": literal(other), "total": 7},
    ]
    for name, rows in (("customers", customers), ("orders", orders)):
        (source / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    async with FixtureManager(settings, metadata=_metadata(key)) as manager:
        await drop_every_tenant(manager)
        await manager.create_tenant(TenantFixture(tenant_id=TENANT, tier="enterprise"))
        await manager.load_fixtures(TENANT, source)
        yield manager
        await drop_every_tenant(manager)


async def _rows(manager: FixtureManager, tenant: str, table: str) -> list[tuple[Any, ...]]:
    async with manager.store.session(tenant, readonly=True) as session:
        found = next(t for t in session.metadata.sorted_tables if t.name == table)
        rows = await session.connection.execute(select(found).order_by(*found.primary_key))
        return [tuple(r) for r in rows]


async def test_a_person_with_a_non_text_id_is_erased_and_verified(
    shop: FixtureManager, ids: tuple[TypeEngine[Any], str, str]
) -> None:
    """It failed with "operator does not exist: integer = character varying"
    (PostgreSQL) or a datatype mismatch (SQLite)."""
    _, person, _ = ids

    report = await shop.erase_subject(TENANT, person)
    check = await shop.verify_erasure(TENANT, person)
    validation = await shop.validate_tenant(TENANT)

    assert 2 == report.total
    assert 1 == len(await _rows(shop, TENANT, "customers"))
    assert check.ok, check.remnants
    assert validation.ok, validation.problems


async def test_a_person_with_a_non_text_id_is_pseudonymised_keeping_joins(
    shop: FixtureManager, ids: tuple[TypeEngine[Any], str, str]
) -> None:
    """The pseudonym is an id the column holds (hex text went into an integer column)."""
    key, person, other = ids

    await shop.erase_subject(TENANT, person, mode="pseudonymise")

    customers = await _rows(shop, TENANT, "customers")
    orders = await _rows(shop, TENANT, "orders")
    kept = {str(c[0]) for c in customers}
    assert other in kept
    assert person not in kept
    assert {str(o[1]) for o in orders} == kept
    assert all(isinstance(c[0], int if isinstance(key, Integer) else uuid.UUID) for c in customers)


async def test_an_export_of_a_person_with_a_non_text_id_and_a_pseudonymised_one_reload(
    shop: FixtureManager, tmp_path: Path, ids: tuple[TypeEngine[Any], str, str]
) -> None:
    """The person's export holds their rows; a pseudonymised export loads into a new
    tenant (it was refused: "expected an integer, found '59e7...'")."""
    _, person, _ = ids

    theirs = await shop.export_tenant(TENANT, tmp_path / "theirs", subject=person)
    await shop.export_tenant(TENANT, tmp_path / "anon", pseudonymise=True)
    await shop.create_tenant(TenantFixture(tenant_id=COPY, tier="enterprise"))
    await shop.load_fixtures(COPY, tmp_path / "anon")
    validation = await shop.validate_tenant(COPY)

    assert {"customers": 1, "orders": 1} == theirs.rows
    assert validation.ok, validation.problems
    assert 2 == len(await _rows(shop, COPY, "orders"))


async def test_a_subject_that_cannot_be_an_id_of_the_column_is_refused_naming_it(
    shop: FixtureManager, ids: tuple[TypeEngine[Any], str, str]
) -> None:
    with pytest.raises(ConfigError) as refused:
        await shop.erase_subject(TENANT, "not-an-id")

    assert "customers.customer_id" in refused.value.message
    assert 2 == len(await _rows(shop, TENANT, "customers"))


async def test_a_pseudonym_that_is_another_persons_id_walks_on_to_a_free_one(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A narrow integer id's pseudonym may be an id in use (the erasure failed on the
    unique key); it is walked on, under the same key, to one that is free."""
    key = b"k" * 32
    monkeypatch.setattr("tenancy_fixtures.compliance.erasure.secrets.token_bytes", lambda _: key)
    metadata = _metadata(SmallInteger())
    taken = Pseudonymiser(key).value(metadata.tables["customers"].c.customer_id, 1)
    source = tmp_path / "shop_set"
    source.mkdir()
    customers = [
        {"customer_id": 1, "email": "ada@example.com"},
        {"customer_id": taken, "email": "bob@example.com"},
    ]
    (source / "customers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in customers))
    async with FixtureManager(settings, metadata=metadata) as manager:
        try:
            await drop_every_tenant(manager)
            await manager.create_tenant(TenantFixture(tenant_id=TENANT, tier="enterprise"))
            await manager.load_fixtures(TENANT, source)
            await manager.erase_subject(TENANT, "1", mode="pseudonymise")
            rows = await _rows(manager, TENANT, "customers")
        finally:
            await drop_every_tenant(manager)

    ids = [row[0] for row in rows]
    assert 1 not in ids
    assert (taken, "bob@example.com") in rows
    assert 2 == len(set(ids))
