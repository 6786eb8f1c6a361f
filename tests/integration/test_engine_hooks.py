"""The engine's registries and store members, used by a domain that is not Spotify.

A small order-book schema registers a derived table the way the built-in domain
registers its daily aggregates; the store answers what differs per backend (how many
writers at once, mapping a duplicate registration) itself.
"""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table, func, insert, select

from tenancy_fixtures import (
    DataLoader,
    Derivation,
    FixtureManager,
    RefreshesDerivedTables,
    Settings,
    SettingsError,
    TenantAlreadyExistsError,
    open_store,
)
from tenancy_fixtures.loading import derived
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.base import TENANT_SCHEMA, TenantSession

TENANT = "order_book"


def order_book() -> MetaData:
    """Orders, and per-customer totals derived from them (named keys: the PostgreSQL
    bulk path drops and rebuilds them by name)."""
    metadata = MetaData(schema=TENANT_SCHEMA, naming_convention={"pk": "pk_%(table_name)s"})
    Table(
        "orders",
        metadata,
        Column("order_id", String(20), primary_key=True),
        Column("customer", String(20), nullable=False),
        Column("amount", Integer, nullable=False),
    )
    Table(
        "customer_totals",
        metadata,
        Column("customer", String(20), primary_key=True),
        Column("orders", Integer, nullable=False),
        Column("amount", Integer, nullable=False),
    )
    return metadata


class OrdersLoader(RefreshesDerivedTables):
    """The order book's deriving loader."""

    loader_name = "orders"


#: The customers each refresh was asked for (``None``: all of them).
Refreshes = list[set[Any] | None]


def _derivation(calls: Refreshes) -> Derivation:
    async def refresh_totals(session: TenantSession, customers: set[Any] | None) -> dict[str, int]:
        calls.append(customers)
        orders = session.metadata.tables[f"{TENANT_SCHEMA}.orders"]
        totals = session.metadata.tables[f"{TENANT_SCHEMA}.customer_totals"]
        clear = totals.delete()
        query = select(orders.c.customer, func.count(), func.sum(orders.c.amount)).group_by(
            orders.c.customer
        )
        if customers is not None:
            clear = clear.where(totals.c.customer.in_(customers))
            query = query.where(orders.c.customer.in_(customers))
        await session.connection.execute(clear)
        written = await session.connection.execute(
            insert(totals).from_select(["customer", "orders", "amount"], query)
        )
        return {"customer_totals": max(written.rowcount, 0)}

    return Derivation("orders", refresh_totals, column="customer")


def _orders(directory: Path, rows: Iterable[tuple[str, str, int]]) -> Path:
    directory.mkdir(parents=True)
    lines = [json.dumps({"order_id": o, "customer": c, "amount": a}) for o, c, a in rows]
    (directory / "orders.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


@pytest.fixture
async def orders_manager(settings: Settings) -> AsyncIterator[FixtureManager]:
    """A manager on the order-book schema with one tenant, dropped afterwards."""
    async with FixtureManager(settings, metadata=order_book()) as manager:
        await manager.create_tenant(TENANT)
        yield manager
        await manager.drop_tenant(TENANT)


@pytest.fixture
def refreshes(monkeypatch: pytest.MonkeyPatch) -> Refreshes:
    """The order book's derivation, registered for this test only; its calls."""
    calls: Refreshes = []
    monkeypatch.setattr(derived, "DERIVATIONS", [_derivation(calls)])
    return calls


async def _totals(manager: FixtureManager) -> dict[str, tuple[int, int]]:
    async with manager.store.session(TENANT, readonly=True) as session:
        totals = session.metadata.tables[f"{TENANT_SCHEMA}.customer_totals"]
        rows = await session.connection.execute(select(totals))
        return {customer: (orders, amount) for customer, orders, amount in rows}


async def test_a_registered_derivation_is_refreshed_for_the_parts_a_load_touches(
    orders_manager: FixtureManager, refreshes: Refreshes, tmp_path: Path
) -> None:
    """A first load refreshes every part; a later one only the customers it wrote."""
    metadata = orders_manager.store.metadata
    first = _orders(tmp_path / "first", [("o1", "ada", 10), ("o2", "ada", 5), ("o3", "bob", 7)])
    later = _orders(tmp_path / "later", [("o4", "bob", 1)])

    await orders_manager.load_fixtures(TENANT, fixtures=[OrdersLoader(first, metadata=metadata)])
    after_first = await _totals(orders_manager)
    loader = OrdersLoader(later, metadata=metadata)
    await orders_manager.load_fixtures(TENANT, fixtures=[loader])

    assert {"ada": (2, 15), "bob": (1, 7)} == after_first
    assert {"ada": (2, 15), "bob": (2, 8)} == await _totals(orders_manager)
    assert [None, {"bob"}] == refreshes
    assert {"customer_totals": 1} == loader.refreshed


async def test_a_plain_table_load_leaves_derived_tables_alone(
    orders_manager: FixtureManager, refreshes: Refreshes, tmp_path: Path
) -> None:
    """The plain table loader takes rows as given: no derivation runs after it."""
    source = _orders(tmp_path / "orders", [("o1", "ada", 10)])
    loader = DataLoader(source, metadata=orders_manager.store.metadata)

    await orders_manager.load_fixtures(TENANT, fixtures=[loader])

    assert [] == refreshes
    assert {} == await _totals(orders_manager)


async def test_a_second_registration_of_a_tenant_id_is_tenant_already_exists(
    manager: FixtureManager,
) -> None:
    """The control plane maps its refused registry row to the typed error, not SQLAlchemy's."""
    async with manager.store.control() as conn:
        await control_plane.insert_tenant(conn, "registered_twice", "free")

    with pytest.raises(TenantAlreadyExistsError) as caught:
        async with manager.store.control() as conn:
            await control_plane.insert_tenant(conn, "registered_twice", "free")

    assert "registered_twice" == caught.value.tenant_id


async def test_the_store_says_how_many_writers_run_at_once(
    manager: FixtureManager, backend: str
) -> None:
    """SQLite tenants share the control-plane file's write lock: one writer; PostgreSQL: any."""
    expected = {"sqlite": 1, "postgresql": 8}[backend]

    assert expected == manager.store.write_concurrency(8)


async def test_a_schema_with_a_column_no_loader_reads_is_refused_when_the_manager_is_made(
    settings: Settings,
) -> None:
    """A column type without a converter is a SettingsError naming the column, before any
    storage is opened."""
    metadata = MetaData(schema=TENANT_SCHEMA)
    Table("blobs", metadata, Column("id", Integer, primary_key=True), Column("body", LargeBinary))

    with pytest.raises(SettingsError, match=r"blobs\.body: no converter for LargeBinary"):
        FixtureManager(settings, metadata=metadata)


def test_the_engine_imports_no_spotify_module_and_knows_only_generic_value_formats() -> None:
    """Importing every engine package leaves the Spotify domain unloaded and unregistered."""
    probe = (
        "import sys, json\n"
        "import tenancy_fixtures.loading.opening, tenancy_fixtures.loading.sources\n"
        "import tenancy_fixtures.validation.integrity, tenancy_fixtures.manager\n"
        "from tenancy_fixtures.loading.rules import FORMATS\n"
        "from tenancy_fixtures.loading.derived import DERIVATIONS\n"
        "print(json.dumps([sorted(m for m in sys.modules if '.spotify' in m),"
        " sorted(FORMATS), len(DERIVATIONS)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )

    assert [[], ["country", "email"], 0] == json.loads(done.stdout)


async def test_concurrent_first_initializations_run_the_control_plane_setup_once(
    settings: Settings,
) -> None:
    """Many tenants started at once (``load_many``) share one initialization: a second
    one would, on SQLite, replace the control engine and leave the first undisposed."""
    store = open_store(settings, order_book())
    runs = 0
    setup = store._initialize

    async def counted() -> None:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.05)  # long enough for every caller to arrive
        await setup()

    store._initialize = counted  # type: ignore[method-assign]
    try:
        await asyncio.gather(*(store.initialize() for _ in range(5)))
    finally:
        await store.dispose()

    assert 1 == runs
