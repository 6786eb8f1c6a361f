"""A user's own schema, declared as users declare it, through a tenant's whole life on both
backends: create, load (JSON Lines and CSV), validate, reload, refuse bad data, drop.

The schema (``tests/user_schema.py``) is not the built-in domain: tables without a
schema, capitalised and reserved-word names (``"User"``, ``"Order"``, ``select``,
``Group``), integer keys, a self-referencing foreign key, a composite primary key
referenced by a composite foreign key, naive and aware timestamps.
"""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    func,
    inspect,
    select,
    text,
)

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.errors import IntegrityViolationError, RecordError
from tenancy_fixtures.store.base import TENANT_SCHEMA
from tests.cleanup import drop_every_tenant, drop_shared_tenants
from tests.integration.reports import failures
from tests.user_schema import DATA, user_metadata

TENANT = "shop_tenant"
ROWS = {"User": 3, "Employee": 6, "Order": 3, "OrderLine": 5, "Shipment": 3}
USER = '{"UserId": 1, "select": "ada", "CreatedAt": "2024-01-02T03:04:05+00:00"}\n'


@pytest.fixture
def declared() -> MetaData:
    """The user's MetaData, as the user declared it."""
    return user_metadata()


@pytest.fixture
async def shop(settings: Settings, declared: MetaData) -> AsyncIterator[FixtureManager]:
    """A manager on the user's schema; every tenant it made is dropped afterwards."""
    async with FixtureManager(settings, metadata=declared) as manager:
        await drop_shared_tenants(manager)
        yield manager
        await drop_shared_tenants(manager)


def fixture_set(tmp_path: Path, **files: str) -> Path:
    """A fixture set of ``files`` (name -> content) in a directory of its own."""
    directory = tmp_path / "set"
    directory.mkdir()
    for name, content in files.items():
        (directory / name).write_text(content, encoding="utf-8")
    return directory


async def row_counts(manager: FixtureManager, tenant: str = TENANT) -> dict[str, int]:
    """Rows per table of the tenant, counted in the database."""
    async with manager.store.session(tenant, readonly=True) as session:
        return {
            table.name: (
                await session.connection.execute(select(func.count()).select_from(table))
            ).scalar_one()
            for table in session.metadata.sorted_tables
        }


async def one(manager: FixtureManager, table: str, **where: Any) -> dict[str, Any]:
    """The row of ``table`` matching ``where``, as a dict."""
    async with manager.store.session(TENANT, readonly=True) as session:
        found = session.metadata.tables[f"{TENANT_SCHEMA}.{table}"]
        query = select(found).where(*(found.c[k] == v for k, v in where.items()))
        return dict((await session.connection.execute(query)).one()._mapping)


async def tamper(manager: FixtureManager, statement: str) -> None:
    """Run ``statement`` behind the library's back, foreign keys not enforced; ``{t}``
    stands for the tenant's schema prefix (nothing on SQLite)."""
    if manager.store.backend == "sqlite":

        def run() -> None:
            connection = sqlite3.connect(manager.store.storage_name(TENANT))
            try:
                with connection:
                    connection.execute(statement.format(t=""))
            finally:
                connection.close()

        await asyncio.to_thread(run)
        return
    async with manager.store.session(TENANT) as session:
        await session.connection.execute(text("SET LOCAL session_replication_role = replica"))
        await session.connection.execute(text(statement.format(t=f'"{TENANT}".')))


# --- a clean life --------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_a_users_schema_is_created_loaded_and_validated_clean(
    shop: FixtureManager, fmt: str
) -> None:
    """The set loads into every table and the tenant passes every integrity check:
    the self-referencing key is not reported as orphans."""
    await shop.create_tenant(TENANT)

    report = await shop.load_fixtures(TENANT, DATA / fmt)
    integrity = await shop.validate_tenant(TENANT)

    assert ROWS == report.row_counts
    assert ROWS == await row_counts(shop)
    assert [] == integrity.problems
    assert {"ok"} == {c.status for c in integrity.checks}
    assert {} == integrity.orphans
    assert {"match"} == {c.status for c in integrity.checksums.values()}


async def test_naive_timestamps_keep_their_wall_time_and_aware_ones_their_instant(
    shop: FixtureManager,
) -> None:
    """A naive column reads back the time as written; an aware one the same instant."""
    await shop.create_tenant(TENANT)
    await shop.load_fixtures(TENANT, DATA / "jsonl")

    employee = await one(shop, "Employee", EmployeeId=3)
    order = await one(shop, "Order", OrderId=12)
    user = await one(shop, "User", UserId=2)

    assert (datetime(2002, 4, 1, 9, 30), 5) == (employee["HireDate"], employee["ReportsTo"])
    assert (datetime(2009, 1, 3, 23, 59, 59, 500000), Decimal("5.94")) == (
        order["OrderDate"],
        order["Total"],
    )
    created = user["CreatedAt"]
    # SQLite gives the UTC time back without its zone; PostgreSQL in UTC.
    in_utc = created if created.tzinfo is not None else created.replace(tzinfo=UTC)
    assert datetime(2024, 2, 3, 10, tzinfo=UTC) == in_utc
    assert ("bob", None) == (user["select"], user["Group"])


async def test_loading_again_changes_nothing_and_the_same_rows_as_csv_are_unchanged(
    shop: FixtureManager,
) -> None:
    """The same set twice is a no-op; the same rows from CSV merge as unchanged."""
    await shop.create_tenant(TENANT)
    await shop.load_fixtures(TENANT, DATA / "jsonl")

    again = await shop.load_fixtures(TENANT, DATA / "jsonl")
    as_csv = await shop.load_fixtures(TENANT, DATA / "csv")
    integrity = await shop.validate_tenant(TENANT)

    assert not again.changed
    assert {table: (0, 0, rows) for table, rows in ROWS.items()} == {
        table: (c.inserted, c.updated, c.unchanged) for table, c in as_csv.writes.items()
    }
    assert ROWS == await row_counts(shop)
    assert [] == integrity.problems


async def test_dropping_the_tenant_removes_its_storage(shop: FixtureManager) -> None:
    """Drop removes the schema or file holding the capitalised tables."""
    await shop.create_tenant(TENANT)
    await shop.load_fixtures(TENANT, DATA / "jsonl")

    await shop.drop_tenant(TENANT)

    assert not await shop.store.storage_exists(TENANT)
    assert [] == await shop.list_tenants()


async def test_a_tenants_life_leaves_the_users_metadata_as_declared(
    shop: FixtureManager, declared: MetaData
) -> None:
    """Creating, loading, validating and dropping never touch the user's MetaData."""
    before = {
        key: (t.schema, [str(c.name) for c in t.constraints]) for key, t in declared.tables.items()
    }

    await shop.create_tenant(TENANT)
    await shop.load_fixtures(TENANT, DATA / "jsonl")
    await shop.validate_tenant(TENANT)
    await shop.drop_tenant(TENANT)

    after = {
        key: (t.schema, [str(c.name) for c in t.constraints]) for key, t in declared.tables.items()
    }
    assert before == after
    assert set(ROWS) == set(declared.tables)
    assert shop.store.metadata is not declared


# --- planted orphans -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        pytest.param(
            'UPDATE {t}"Employee" SET "ReportsTo" = 99 WHERE "EmployeeId" = 6',
            "Employee.ReportsTo: 1 row(s) reference a missing Employee row",
            id="self-reference",
        ),
        pytest.param(
            'UPDATE {t}"Order" SET "User" = 42 WHERE "OrderId" = 11',
            "Order.User: 1 row(s) reference a missing User row",
            id="plain",
        ),
        pytest.param(
            'UPDATE {t}"Shipment" SET "LineNo" = 9 WHERE "ShipmentId" = 100',
            "Shipment.OrderId, LineNo: 1 row(s) reference a missing OrderLine row",
            id="composite",
        ),
    ],
)
async def test_a_planted_orphan_is_found(
    shop: FixtureManager, statement: str, expected: str
) -> None:
    """A row whose parent is missing is reported once, and only it."""
    await shop.create_tenant(TENANT)
    await shop.load_fixtures(TENANT, DATA / "jsonl")
    await tamper(shop, statement)

    report = await shop.validate_tenant(TENANT)

    assert [expected] == failures(report, "orphans")


# --- bad data ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "where"),
    [
        pytest.param(
            {
                "User.jsonl": USER,
                "Order.jsonl": (
                    '{"OrderId": 10, "User": 1, "OrderDate": "2009-01-01T00:00:00", "Total": 1}\n'
                    '{"OrderId": 11, "User": 7, "OrderDate": "2009-01-01T00:00:00", "Total": 1}\n'
                ),
            },
            ("Order.jsonl", 2),
            id="plain",
        ),
        pytest.param(
            {
                "Employee.jsonl": (
                    '{"EmployeeId": 5, "LastName": "Park"}\n'
                    '{"EmployeeId": 6, "LastName": "King", "ReportsTo": 9}\n'
                )
            },
            ("Employee.jsonl", 2),
            id="self-reference",
        ),
    ],
)
@pytest.mark.usefixtures("load_path")
async def test_a_record_referencing_a_missing_parent_is_refused_naming_its_file_and_line(
    shop: FixtureManager,
    tmp_path: Path,
    files: dict[str, str],
    where: tuple[str, int],
) -> None:
    """The database's refusal names the record's file and line (integer keys are SQLite
    rowids, which are not the records' positions) and nothing is kept."""
    await shop.create_tenant(TENANT)

    with pytest.raises(IntegrityViolationError) as caught:
        await shop.load_fixtures(TENANT, fixture_set(tmp_path, **files))

    assert where == (caught.value.path, caught.value.line)
    assert 0 == sum((await row_counts(shop)).values())


async def test_a_lenient_load_keeps_forward_self_references_and_leaves_out_a_broken_chain(
    shop: FixtureManager, tmp_path: Path
) -> None:
    """Validated first, a parent later in the file resolves; a missing manager refuses
    its record and the one reporting to it, and the rest loads."""
    await shop.create_tenant(TENANT)
    employees = (
        '{"EmployeeId": 1, "LastName": "A", "ReportsTo": 2}\n'
        '{"EmployeeId": 2, "LastName": "B", "ReportsTo": 9}\n'
        '{"EmployeeId": 3, "LastName": "C", "ReportsTo": 4}\n'
        '{"EmployeeId": 4, "LastName": "D"}\n'
    )

    report = await shop.load_fixtures(
        TENANT,
        fixture_set(tmp_path, **{"Employee.jsonl": employees}),
        validation="lenient",
        reject_dir=tmp_path / "rejects",
    )

    assert (2, {"Employee": 2}) == (report.rejected, report.row_counts)
    assert 4 == (await one(shop, "Employee", EmployeeId=3))["ReportsTo"]


async def test_an_offset_in_a_naive_timestamp_column_is_refused_naming_file_line_and_column(
    shop: FixtureManager, tmp_path: Path
) -> None:
    """A naive column given an offset is a RecordError (rule timezone); nothing is kept."""
    await shop.create_tenant(TENANT)
    employees = (
        '{"EmployeeId": 1, "LastName": "Adams", "HireDate": "2002-08-14T00:00:00"}\n'
        '{"EmployeeId": 2, "LastName": "Edwards", "HireDate": "2002-05-01T00:00:00+02:00"}\n'
    )

    with pytest.raises(RecordError) as caught:
        await shop.load_fixtures(TENANT, fixture_set(tmp_path, **{"Employee.jsonl": employees}))

    error = caught.value
    assert ("Employee.jsonl", 2, "HireDate", "timezone") == (
        error.path,
        error.line,
        error.column,
        error.rule,
    )
    assert 0 == sum((await row_counts(shop)).values())


async def test_a_value_the_driver_cannot_encode_is_a_typed_error_and_leaves_no_rows(
    settings: Settings, declared: MetaData, tmp_path: Path
) -> None:
    """A lone surrogate (YAML lets one through) reaches the driver, which cannot encode it:
    a RecordError names the file, the record (in a later batch) and the column."""
    names = {n: "K\\ud800ng" if n == 5 else f"E{n}" for n in range(1, 7)}  # YAML escapes
    employees = "".join(f'- {{EmployeeId: {n}, LastName: "{name}"}}\n' for n, name in names.items())
    source = fixture_set(tmp_path, **{"User.jsonl": USER, "Employee.yaml": employees})
    async with FixtureManager(
        settings.model_copy(update={"batch_size": 2}), metadata=declared
    ) as shop:
        await shop.create_tenant(TENANT)
        try:
            with pytest.raises(RecordError) as caught:
                await shop.load_fixtures(TENANT, source)

            error = caught.value
            assert ("Employee.yaml", 5, "LastName", "encoding") == (
                error.path,
                error.record,
                error.column,
                error.rule,
            )
            assert "cannot encode" in str(error)
            assert 0 == sum((await row_counts(shop)).values())
        finally:
            await shop.drop_tenant(TENANT)


def _unnamed_metadata() -> MetaData:
    """Two tables whose keys and foreign key have no names (no naming convention); the
    unnamed foreign key depends on a named unique index."""
    metadata = MetaData()
    owners = Table(
        "owners",
        metadata,
        Column("owner_id", String(8), primary_key=True),
        Column("email", String(32), nullable=False),
    )
    Index("ix_owners_email", owners.c.email, unique=True)
    Table(
        "pets",
        metadata,
        Column("pet_id", String(8), primary_key=True),
        Column("tag", String(8), unique=True),
        Column("owner_email", String(32), ForeignKey("owners.email"), nullable=False),
    )
    return metadata


async def test_a_schema_without_constraint_names_loads_by_the_bulk_path(
    settings: Settings, tmp_path: Path
) -> None:
    """A bulk load keeps the keys in place when one is unnamed, rather than failing to
    drop it (or an index it depends on), and still refuses a duplicate they guard."""
    bulk = settings.model_copy(update={"bulk_load_min_bytes": 0})
    (tmp_path / "good").mkdir()
    (tmp_path / "twice").mkdir()
    good = fixture_set(
        tmp_path / "good",
        **{
            "owners.jsonl": '{"owner_id": "o1", "email": "o@x"}\n',
            "pets.jsonl": '{"pet_id": "p1", "tag": "t1", "owner_email": "o@x"}\n'
            '{"pet_id": "p2", "tag": "t2", "owner_email": "o@x"}\n',
        },
    )
    twice = fixture_set(
        tmp_path / "twice",
        **{
            "owners.jsonl": '{"owner_id": "o1", "email": "o@x"}\n',
            "pets.jsonl": '{"pet_id": "p1", "tag": "t1", "owner_email": "o@x"}\n'
            '{"pet_id": "p2", "tag": "t1", "owner_email": "o@x"}\n',
        },
    )
    async with FixtureManager(bulk, metadata=_unnamed_metadata()) as manager:
        await drop_every_tenant(manager)
        try:
            await manager.create_tenant("pets")
            await manager.load_fixtures("pets", good)
            report = await manager.validate_tenant("pets")
            await manager.create_tenant("pets_twice")
            with pytest.raises(IntegrityViolationError):
                await manager.load_fixtures("pets_twice", twice)
        finally:
            await drop_every_tenant(manager)

    assert report.ok, report.problems
    assert {"owners": 1, "pets": 2} == report.row_counts


#: The naming convention SQLAlchemy's and Alembic's documentation recommend.
RECOMMENDED_NAMES = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


@pytest.mark.parametrize(
    "unique_name", ["uq_%(table_name)s_%(column_0_name)s", "uq_%(column_0_label)s"]
)
async def test_indexes_and_unique_constraints_columns_declare_keep_the_users_names(
    settings: Settings, tmp_path: Path, unique_name: str
) -> None:
    """``index=True`` and ``unique=True`` under a convention naming them by column label
    (``ix_%(column_0_label)s``) are created, dropped and rebuilt by a bulk load, and
    checked for drift as ``ix_owners_email``, not by a name made in the tenant
    placeholder schema (``ix_tenant_owners_email``): every new tenant was reported as
    drifted, and a bulk load failed dropping an index of that name."""
    metadata = MetaData(naming_convention={**RECOMMENDED_NAMES, "uq": unique_name})
    Table(
        "owners",
        metadata,
        Column("owner_id", String(8), primary_key=True),
        Column("email", String(32), index=True),
        Column("handle", String(32), unique=True),
    )
    rows = fixture_set(tmp_path, **{"owners.jsonl": '{"owner_id": "o1", "email": "o@x"}\n'})
    bulk = settings.model_copy(update={"bulk_load_min_bytes": 0})
    async with FixtureManager(bulk, metadata=metadata) as manager:
        await drop_every_tenant(manager)
        try:
            await manager.create_tenant("indexed")
            await manager.load_fixtures("indexed", rows)
            report = await manager.validate_tenant("indexed")
            [drift] = await manager.check_drift(["indexed"])
            async with manager.store.session("indexed", readonly=True) as session:
                schema = None if session.schema_name == "main" else session.schema_name
                names = await session.connection.run_sync(
                    lambda sync: (
                        [
                            i["name"]
                            for i in inspect(sync).get_indexes("owners", schema)
                            if not i["unique"]  # SQLite lists unique constraints too
                        ],
                        [u["name"] for u in inspect(sync).get_unique_constraints("owners", schema)],
                    )
                )
        finally:
            await drop_every_tenant(manager)

    assert report.ok, report.problems
    assert [] == drift.findings
    assert (["ix_owners_email"], ["uq_owners_handle"]) == names


@pytest.mark.postgres
async def test_a_tenant_made_with_other_index_names_still_takes_a_bulk_load(
    postgres_url: str, tmp_path: Path
) -> None:
    """A tenant created before column-declared indexes kept the schema's names holds
    them as ``ix_tenant_...``: its first bulk load keeps its keys in place rather than
    failing to drop them by the names the schema gives now."""
    metadata = MetaData(naming_convention=RECOMMENDED_NAMES)
    Table(
        "owners",
        metadata,
        Column("owner_id", String(8), primary_key=True),
        Column("email", String(32), index=True),
    )
    rows = fixture_set(tmp_path, **{"owners.jsonl": '{"owner_id": "o1", "email": "o@x"}\n'})
    settings = Settings(database_url=postgres_url, actor="pytest", bulk_load_min_bytes=0)
    async with FixtureManager(settings, metadata=metadata) as manager:
        await drop_every_tenant(manager)
        try:
            await manager.create_tenant("renamed")
            async with manager.store.session("renamed") as session:
                schema = session.schema_name
                await session.connection.execute(
                    text(f'ALTER INDEX "{schema}".ix_owners_email RENAME TO ix_tenant_owners_email')
                )
            report = await manager.load_fixtures("renamed", rows)
        finally:
            await drop_every_tenant(manager)

    assert {"owners": 1} == report.row_counts
