"""A user's MetaData, declared without a schema, placed in the tenant placeholder schema."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table

from tenancy_fixtures import FixtureManager, Settings, SettingsError
from tenancy_fixtures.spotify.schema import spotify_metadata
from tenancy_fixtures.store import open_store, place_in_tenant_schema, render_schema_sql
from tenancy_fixtures.store.base import TENANT_SCHEMA
from tests.user_schema import NAMING, user_metadata


def shape(metadata: MetaData) -> dict[str, Any]:
    """Everything placing could change: tables, schemas, keys, constraint names."""
    return {
        "schema": metadata.schema,
        "naming": dict(metadata.naming_convention),
        "tables": {
            key: (
                table.schema,
                [c.name for c in table.columns],
                sorted(str(c.name) for c in table.constraints),
                sorted(str(ix.name) for ix in table.indexes),
                sorted(fk.target_fullname for fk in table.foreign_keys),
            )
            for key, table in metadata.tables.items()
        },
    }


def test_tables_declared_without_a_schema_are_copied_into_the_placeholder_schema() -> None:
    """Every table of the copy is in schema 'tenant', with the same name and columns."""
    declared = user_metadata()

    placed = place_in_tenant_schema(declared)

    assert {f"{TENANT_SCHEMA}.{key}" for key in declared.tables} == set(placed.tables)
    assert {TENANT_SCHEMA} == {t.schema for t in placed.tables.values()}
    for key, table in declared.tables.items():
        copy = placed.tables[f"{TENANT_SCHEMA}.{key}"]
        assert [c.name for c in table.columns] == [c.name for c in copy.columns]


def test_foreign_keys_of_the_copy_point_at_the_copies() -> None:
    """Plain, self-referencing and composite foreign keys refer to the placed tables."""
    placed = place_in_tenant_schema(user_metadata())

    def targets(table: str) -> set[tuple[str, ...]]:
        return {
            tuple(e.column.table.fullname + "." + e.column.name for e in fk.elements)
            for fk in placed.tables[f"{TENANT_SCHEMA}.{table}"].foreign_key_constraints
        }

    assert {("tenant.Employee.EmployeeId",)} == targets("Employee")
    assert {("tenant.User.UserId",), ("tenant.Employee.EmployeeId",)} == targets("Order")
    assert {("tenant.OrderLine.OrderId", "tenant.OrderLine.LineNo")} == targets("Shipment")


def test_the_naming_convention_and_the_constraint_names_are_kept() -> None:
    """The copy names its keys, indexes and CHECKs as the user's MetaData does."""
    declared = user_metadata()

    placed = place_in_tenant_schema(declared)

    assert NAMING == dict(placed.naming_convention)
    expected = {k: v[2:4] for k, v in shape(declared)["tables"].items()}
    actual = {k.removeprefix("tenant."): v[2:4] for k, v in shape(placed)["tables"].items()}
    assert expected == actual
    assert "ck_OrderLine_quantity_positive" in actual["OrderLine"][0]


def test_placing_leaves_the_users_metadata_as_it_was() -> None:
    """The user's MetaData keeps its tables, schemas, keys and names."""
    declared = user_metadata()
    before = shape(declared)

    place_in_tenant_schema(declared)

    assert before == shape(declared)
    assert {None} == {t.schema for t in declared.tables.values()}


def test_metadata_already_in_the_placeholder_schema_is_used_as_it_is() -> None:
    """The built-in schema (declared in 'tenant') is not copied."""
    builtin = spotify_metadata()

    assert builtin is place_in_tenant_schema(builtin)


def test_the_copy_renders_the_ddl_of_the_schema_declared_in_the_placeholder() -> None:
    """Placed by the engine or declared in 'tenant' by hand: the same DDL, constraints in
    the order declared (to_metadata alone copies them in a set's order, which varies)."""
    by_hand = user_metadata(schema=TENANT_SCHEMA)

    for _ in range(5):
        assert render_schema_sql(by_hand) == render_schema_sql(
            place_in_tenant_schema(user_metadata())
        )


def _in_schema(schema: str | None) -> MetaData:
    metadata = MetaData()
    Table("plain", metadata, Column("id", Integer, primary_key=True))
    Table(
        "shared",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("plain_id", Integer, ForeignKey("plain.id")),
        schema=schema,
    )
    return metadata


@pytest.mark.parametrize("schema", ["public", "tenancy", "sales"])
def test_a_table_in_a_schema_of_its_own_is_refused_naming_it(schema: str) -> None:
    """A table in another explicit schema would be shared by every tenant: SettingsError."""
    with pytest.raises(SettingsError) as caught:
        place_in_tenant_schema(_in_schema(schema))

    assert f"these are not: {schema}.shared" in str(caught.value)


def test_open_store_refuses_a_table_in_a_schema_of_its_own(tmp_path: Any) -> None:
    """The refusal happens when the store is opened, before any storage is touched."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'data'}")

    with pytest.raises(SettingsError):
        open_store(settings, _in_schema("public"))
    with pytest.raises(SettingsError):
        FixtureManager(settings, metadata=_in_schema("public"))
    assert not (tmp_path / "data").exists()


def test_the_managers_store_holds_the_placed_copy(tmp_path: Any) -> None:
    """FixtureManager(metadata=md).store.metadata is the copy in 'tenant', not md."""
    declared = user_metadata()

    manager = FixtureManager(
        Settings(database_url=f"sqlite:///{tmp_path / 'data'}"), metadata=declared
    )

    assert manager.store.metadata is not declared
    assert shape(place_in_tenant_schema(user_metadata())) == shape(manager.store.metadata)


def test_columns_declaring_unique_keys_render_in_one_order_under_a_label_convention() -> None:
    """Unique constraints ``unique=True`` columns declare, named by column label, keep
    their declared order in the copy: every placing renders the same DDL (a schema
    rendering differently each time rebuilds templates and drops spare schemas)."""
    renderings = set()
    for _ in range(40):
        metadata = MetaData(naming_convention={"uq": "uq_%(column_0_label)s"})
        Table(
            "people",
            metadata,
            Column("person_id", Integer, primary_key=True),
            *(Column(f"alias_{n}", Integer, unique=True) for n in range(4)),
        )
        renderings.add(render_schema_sql(place_in_tenant_schema(metadata)))

    assert 1 == len(renderings)
    assert "uq_people_alias_0" in renderings.pop()


def _departments(**key: Any) -> MetaData:
    """``dept`` declared before ``emp``, which each refer to the other."""
    metadata = MetaData()
    Table(
        "dept",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("head_id", Integer, ForeignKey("emp.id", name="fk_dept_head", **key)),
    )
    Table(
        "emp",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("dept_id", Integer, ForeignKey("dept.id")),
    )
    return metadata


def test_a_foreign_key_to_a_table_declared_later_is_placed() -> None:
    placed = place_in_tenant_schema(_departments(use_alter=True))

    keys = placed.tables["tenant.dept"].foreign_keys
    assert ["tenant.emp.id"] == [fk.target_fullname for fk in keys]


def test_the_schema_sql_adds_a_use_alter_foreign_key_once_its_tables_exist() -> None:
    """CREATE TABLE leaves out a key declared ``use_alter``: it follows as ALTER TABLE."""
    sql = render_schema_sql(place_in_tenant_schema(_departments(use_alter=True)))

    added = (
        "ALTER TABLE tenant.dept ADD CONSTRAINT fk_dept_head "
        "FOREIGN KEY(head_id) REFERENCES tenant.emp (id);\n"
    )
    assert sql.endswith(added)
    assert sql.index("CREATE TABLE tenant.emp") < sql.index("ALTER TABLE tenant.dept")


def test_a_name_postgresql_would_cut_short_is_refused_naming_it() -> None:
    """63 bytes is PostgreSQL's limit: 32 two-byte letters are past it, 63 ASCII not."""
    metadata = MetaData()
    Table("é" * 32, metadata, Column("id", Integer, primary_key=True), Column("c" * 63, Integer))
    Table("kept", metadata, Column("id", Integer, primary_key=True), Column("d" * 64, Integer))

    with pytest.raises(SettingsError) as refused:
        place_in_tenant_schema(metadata)

    assert str(refused.value).endswith(f": {'é' * 32}, kept.{'d' * 64}")
