"""Column types of a user's own schema that the database stores its own way: decimals
past their scale or past what SQLite keeps, and named PostgreSQL enum types."""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    ARRAY,
    CHAR,
    DOUBLE_PRECISION,
    JSON,
    NCHAR,
    REAL,
    UUID,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Enum,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Uuid,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeEngine

from tenancy_fixtures import FixtureManager, Settings, TenantFixture
from tenancy_fixtures.errors import RecordError, RecordsRefusedError, SettingsError
from tenancy_fixtures.loading.data_loader import DataLoader
from tenancy_fixtures.validation.integrity import IntegrityReport
from tests.cleanup import drop_every_tenant, drop_shared_tenants

#: Past what a 64-bit float keeps, and past what SQLite keeps of an integer.
BIG = "123456789012345678901234"


def _metadata() -> MetaData:
    metadata = MetaData()
    Table(
        "items",
        metadata,
        Column("item_id", String(10), primary_key=True),
        Column("cost", Numeric(10, 2)),
        Column("price", Numeric(30, 0)),
        Column("mood", Enum("happy", "sad", name="mood")),
    )
    return metadata


@pytest.fixture
async def shop(settings: Settings) -> AsyncIterator[FixtureManager]:
    async with FixtureManager(settings, metadata=_metadata()) as manager:
        await drop_shared_tenants(manager)
        yield manager
        await drop_shared_tenants(manager)


def _set(tmp_path: Path, *rows: dict[str, Any]) -> Path:
    source = tmp_path / f"items_{len(list(tmp_path.iterdir()))}"
    source.mkdir()
    (source / "items.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return source


async def _stored(
    manager: FixtureManager, tenant_id: str, table: str = "items"
) -> list[tuple[Any, ...]]:
    """The rows of ``table`` of the tenant, by primary key."""
    async with manager.store.session(tenant_id, readonly=True) as session:
        found = next(t for t in session.metadata.sorted_tables if t.name == table)
        rows = await session.connection.execute(select(found).order_by(*found.primary_key))
        return [tuple(row) for row in rows]


async def test_a_decimal_past_its_columns_scale_is_loaded_as_it_is_stored(
    shop: FixtureManager, tmp_path: Path
) -> None:
    """NUMERIC(10, 2) keeps 1.005 as 1.01 (half away from zero): the load's checksum
    is of that, so validation matches on both backends."""
    await shop.create_tenant("rounded")
    rows: list[dict[str, Any]] = [
        {"item_id": "a", "cost": "1.005"},
        {"item_id": "b", "cost": -2.675},
    ]
    await shop.load_fixtures("rounded", _set(tmp_path, *rows))

    report = await shop.validate_tenant("rounded", recompute_checksums=True)

    assert [Decimal("1.01"), Decimal("-2.68")] == [row[1] for row in await _stored(shop, "rounded")]
    assert report.ok, report.problems
    assert report.checksums["items"].status == "match"


async def test_a_decimal_sqlite_would_store_changed_is_refused_naming_its_record(
    sqlite_manager: FixtureManager, tmp_path: Path
) -> None:
    """SQLite keeps such a NUMERIC as a 64-bit float: refused, and nothing is loaded."""
    async with FixtureManager(sqlite_manager.store.settings, metadata=_metadata()) as shop:
        await shop.create_tenant("exact")
        rows = [{"item_id": "a", "price": "12"}, {"item_id": "b", "price": BIG}]
        with pytest.raises(RecordsRefusedError) as refused:
            await shop.load_fixtures("exact", _set(tmp_path, *rows))
        async with shop.store.session("exact", readonly=True) as session:
            items = next(t for t in session.metadata.sorted_tables if t.name == "items")
            count = await session.connection.execute(select(func.count()).select_from(items))

    error = refused.value
    assert (error.line, error.column) == (2, "price")
    assert "SQLite would keep 123456789012345685803008 for " + BIG in str(error)
    assert count.scalar_one() == 0


@pytest.mark.postgres
async def test_postgresql_keeps_a_decimal_past_what_a_float_holds(
    pg_manager: FixtureManager, tmp_path: Path
) -> None:
    async with FixtureManager(pg_manager.store.settings, metadata=_metadata()) as shop:
        try:
            await shop.create_tenant("exact")
            await shop.load_fixtures("exact", _set(tmp_path, {"item_id": "b", "price": BIG}))
            report = await shop.validate_tenant("exact", recompute_checksums=True)
            stored = await _stored(shop, "exact")
        finally:
            await drop_every_tenant(shop)

    assert [Decimal(BIG)] == [row[2] for row in stored]
    assert report.ok, report.problems


async def test_a_schema_with_a_named_enum_gives_each_tenant_its_own_type(
    shop: FixtureManager, tmp_path: Path
) -> None:
    """On PostgreSQL the enum type is made in each tenant's schema with its tables (the
    tables refer to it there), is not reported as undeclared, and goes with the tenant."""
    source = _set(tmp_path, {"item_id": "a", "mood": "happy"})
    for tenant_id in ("moods_1", "moods_2"):
        await shop.create_tenant(tenant_id)
        await shop.load_fixtures(tenant_id, source)
    reports = [await shop.validate_tenant(t) for t in ("moods_1", "moods_2")]
    drift = await shop.check_drift(["moods_1", "moods_2"])
    await shop.drop_tenant("moods_1")
    still = await _stored(shop, "moods_2")

    assert all(r.ok for r in reports), [r.problems for r in reports]
    assert all(d.ok for d in drift), [d.findings for d in drift]
    assert ["happy"] == [row[3] for row in still]


async def test_a_value_outside_a_named_enum_is_refused(
    shop: FixtureManager, tmp_path: Path
) -> None:
    await shop.create_tenant("moody")

    with pytest.raises(RecordsRefusedError) as refused:
        await shop.load_fixtures("moody", _set(tmp_path, {"item_id": "a", "mood": "angry"}))

    assert (refused.value.line, refused.value.column) == (1, "mood")


@pytest.mark.postgres
async def test_percent_signs_in_enum_labels_defaults_and_checks_are_created_as_declared(
    pg_manager: FixtureManager, tmp_path: Path
) -> None:
    """The DDL is run as it is rendered: a ``%`` must not come out as ``%%``."""
    metadata = MetaData()
    Table(
        "shares",
        metadata,
        Column("share_id", String(10), primary_key=True),
        Column("part", Enum("50%", "100%", name="part")),
        Column("label", String(10), server_default="5%"),
        CheckConstraint("share_id NOT LIKE '%!'", name="no_bang"),
    )
    source = tmp_path / "shares"
    source.mkdir()
    (source / "shares.jsonl").write_text('{"share_id": "a", "part": "50%"}\n')
    async with FixtureManager(pg_manager.store.settings, metadata=metadata) as shop:
        try:
            await shop.create_tenant("percent")
            await shop.load_fixtures("percent", source)
            async with shop.store.session("percent", readonly=True) as session:
                shares = next(t for t in session.metadata.sorted_tables if t.name == "shares")
                stored = (await session.connection.execute(select(shares))).all()
                schema = session.schema_name
                declared = await session.connection.execute(
                    text(
                        "SELECT column_default FROM information_schema.columns "
                        "WHERE table_schema = :schema AND column_name = 'label' "
                        "UNION ALL SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k "
                        "JOIN pg_namespace n ON n.oid = k.connamespace "
                        "WHERE n.nspname = :schema AND k.contype = 'c'"
                    ),
                    {"schema": schema},
                )
                definitions = sorted(str(d) for d in declared.scalars())
            drift = await shop.check_drift(["percent"])
        finally:
            await drop_every_tenant(shop)

    assert [("a", "50%")] == [tuple(row)[:2] for row in stored]
    assert ["'5%'::character varying", "CHECK (((share_id)::text !~~ '%!'::text))"] == definitions
    assert drift[0].ok, drift[0].findings


@pytest.mark.postgres
async def test_a_spare_schemas_enum_types_are_handed_to_the_tenants_owner_role(
    postgres_url: str, tenant_ids: Any
) -> None:
    """As its tables are: the owner role (which migrations run as) can alter them."""
    settings = Settings(database_url=postgres_url, actor="pytest", tenant_roles=True)
    tenant_id = tenant_ids("spare_enum")
    async with FixtureManager(settings, metadata=_metadata()) as shop:
        try:
            await drop_every_tenant(shop)
            await shop.warm_up(1)
            await shop.create_tenant(tenant_id)
            async with shop.store.control(readonly=True) as conn:
                owners = await conn.execute(
                    text(
                        "SELECT t.typname, pg_get_userbyid(t.typowner) FROM pg_type t "
                        "JOIN pg_namespace n ON n.oid = t.typnamespace "
                        "WHERE n.nspname = :schema AND t.typname IN ('mood', '_mood')"
                    ),
                    {"schema": shop.store.storage_name(tenant_id)},
                )
                found: dict[str, str] = {str(k): str(v) for k, v in owners.all()}
            owner = shop.store.owner_role(tenant_id)
        finally:
            await drop_every_tenant(shop)
            await shop.warm_up(0)

    assert found == {"mood": owner, "_mood": owner}


async def _one_value_loaded(
    settings: Settings, tmp_path: Path, column: Column[Any], *values: str
) -> tuple[list[Any], IntegrityReport]:
    """A table ``things`` of a key and ``column``, loaded with a row for each JSON value
    of ``values``: the values stored, in that order, and the tenant's validation
    (checksums recomputed)."""
    metadata = _things_metadata(column)
    source = tmp_path / "things"
    source.mkdir()
    lines = [f'{{"thing_id": "{i}", "{column.name}": {value}}}\n' for i, value in enumerate(values)]
    (source / "things.jsonl").write_text("".join(lines))
    rows, report = await _loaded(settings, metadata, source)
    return [row[1] for row in rows], report


def _things_metadata(column: Column[Any]) -> MetaData:
    """A schema of one table, ``things``: a text key ``thing_id`` and ``column``."""
    metadata = MetaData()
    Table("things", metadata, Column("thing_id", String(10), primary_key=True), column)
    return metadata


async def _loaded(
    settings: Settings, metadata: MetaData, source: Path
) -> tuple[list[tuple[Any, ...]], IntegrityReport]:
    """A tenant of ``metadata`` loaded from ``source``: the rows of its table ``things``
    by key, and its validation (checksums recomputed); dropped afterwards."""
    async with FixtureManager(settings, metadata=metadata) as shop:
        try:
            await drop_every_tenant(shop)
            await shop.create_tenant("things")
            await shop.load_fixtures("things", source)
            report = await shop.validate_tenant("things", recompute_checksums=True)
            stored = await _stored(shop, "things", "things")
        finally:
            await drop_every_tenant(shop)
    return stored, report


@pytest.mark.parametrize(
    "declared",
    [
        pytest.param(REAL(), id="real"),
        pytest.param(Float().with_variant(REAL(), "postgresql"), id="real-on-postgresql"),
    ],
)
async def test_a_real_column_stores_and_checks_the_nearest_four_byte_float(
    settings: Settings, tmp_path: Path, declared: TypeEngine[Any]
) -> None:
    """PostgreSQL's ``real`` keeps 4 bytes and SQLite 8: the loader rounds to 4 bytes on
    both, so the rows and their checksum agree everywhere."""
    values, report = await _one_value_loaded(settings, tmp_path, Column("ratio", declared), "0.1")

    assert [0.10000000149011612] == values
    assert report.ok, report.problems
    assert report.checksums["things"].status == "match"


@pytest.mark.parametrize(
    "declared",
    [
        pytest.param(postgresql.TIMESTAMP(timezone=True, precision=3), id="timestamp-3"),
        pytest.param(
            DateTime(timezone=True).with_variant(
                postgresql.TIMESTAMP(timezone=True, precision=3), "postgresql"
            ),
            id="timestamp-3-on-postgresql",
        ),
    ],
)
async def test_a_timestamp_column_with_fewer_places_stores_and_checks_the_rounded_time(
    settings: Settings, tmp_path: Path, declared: TypeEngine[Any]
) -> None:
    """``TIMESTAMP(3)`` keeps milliseconds on PostgreSQL; the loader rounds as it does,
    on both backends, so the rows and their checksum agree everywhere."""
    column = Column("at", declared)
    values, report = await _one_value_loaded(
        settings, tmp_path, column, '"2024-01-01T00:00:00.1235+00:00"'
    )

    assert [datetime(2024, 1, 1, 0, 0, 0, 124000)] == [v.replace(tzinfo=None) for v in values]
    assert report.ok, report.problems
    assert report.checksums["things"].status == "match"


@pytest.mark.parametrize("aware", [True, False], ids=["with-time-zone", "without-time-zone"])
async def test_a_timestamp_past_microseconds_is_rounded_to_them_as_postgresql_rounds_its_text(
    settings: Settings, tmp_path: Path, aware: bool
) -> None:
    """Python cuts a fraction of a second to 6 digits; PostgreSQL rounds its text to them
    (``rint(strtod(fraction) * 1e6)``: .1234565 is just under half, so it stays .123456).
    Both backends store PostgreSQL's value, and the checksum is of it."""
    offset = "+00:00" if aware else ""
    written = ["00:00:00.9999995", "00:00:00.1234567", "00:00:00.1234565", "23:59:59.99999999"]
    values, report = await _one_value_loaded(
        settings,
        tmp_path,
        Column("at", DateTime(timezone=aware)),
        *(f'"2024-01-01T{t}{offset}"' for t in written),
    )

    assert [
        datetime(2024, 1, 1, 0, 0, 1),
        datetime(2024, 1, 1, 0, 0, 0, 123457),
        datetime(2024, 1, 1, 0, 0, 0, 123456),
        datetime(2024, 1, 2),
    ] == [v.replace(tzinfo=None) for v in values]
    assert report.ok, report.problems
    assert report.checksums["things"].status == "match"


async def test_a_numeric_variant_for_postgresql_rounds_as_postgresql_stores_it(
    settings: Settings, tmp_path: Path
) -> None:
    """``Numeric().with_variant(Numeric(10, 2), "postgresql")`` keeps 2 places there:
    the loader rounds to them on both backends."""
    declared = Numeric().with_variant(Numeric(10, 2), "postgresql")
    values, report = await _one_value_loaded(
        settings, tmp_path, Column("cost", declared), '"1.005"'
    )

    assert [Decimal("1.01")] == values
    assert report.ok, report.problems
    assert report.checksums["things"].status == "match"


@pytest.mark.parametrize(
    "declared",
    [
        pytest.param(CHAR(5), id="char"),
        pytest.param(String(5).with_variant(CHAR(5), "postgresql"), id="char-on-postgresql"),
    ],
)
async def test_a_char_column_pads_on_postgresql_and_its_values_validate_on_both_backends(
    settings: Settings, tmp_path: Path, backend: str, declared: TypeEngine[Any]
) -> None:
    """``CHAR(5)`` keeps ``"ab"`` as ``"ab   "`` on PostgreSQL and as given on SQLite;
    trailing blanks of a ``CHAR`` value do not count (as in PostgreSQL), so the checksum
    taken while loading matches the rows read back on both."""
    values, report = await _one_value_loaded(
        settings, tmp_path, Column("code", declared), '"ab"', '"abcde"', '"ab "'
    )

    if backend == "postgresql":
        assert ["ab   ", "abcde", "ab   "] == values
    else:
        assert ["ab", "abcde", "ab "] == values
    assert report.ok, report.problems
    assert report.checksums["things"].status == "match"


async def test_a_char_without_a_length_takes_one_character_on_both_backends(
    settings: Settings, tmp_path: Path
) -> None:
    """PostgreSQL makes ``CHAR`` without a length ``CHAR(1)``: a longer value is refused
    on both backends, naming its line and column, and nothing is loaded."""
    values, report = await _one_value_loaded(settings, tmp_path, Column("flag", CHAR()), '"y"')
    (tmp_path / "longer").mkdir()
    with pytest.raises(RecordsRefusedError) as refused:
        await _one_value_loaded(settings, tmp_path / "longer", Column("flag", CHAR()), '"yes"')

    assert ["y"] == values
    assert report.ok, report.problems
    assert (refused.value.line, refused.value.column) == (1, "flag")
    assert "longer than 1 characters" in str(refused.value)


async def test_an_enum_without_a_type_name_is_refused_when_the_manager_starts(
    settings: Settings, tmp_path: Path
) -> None:
    """PostgreSQL makes a named type of each enum, so one without a name cannot be made
    (a bare ``CompileError`` at the first tenant before); the manager says so when it
    starts, naming the column, on both backends (the schema is PostgreSQL's DDL)."""
    column: Column[str] = Column("mood", Enum("happy", "sad"))
    with pytest.raises(SettingsError) as refused:
        await _one_value_loaded(settings, tmp_path, column, '"happy"')

    assert "things.mood" in refused.value.message
    assert 'name="mood"' in refused.value.message


@pytest.mark.parametrize(
    "declared",
    [
        pytest.param(Float(24), id="float-24"),
        pytest.param(NCHAR(3), id="nchar"),
        pytest.param(DOUBLE_PRECISION(), id="double-precision"),
    ],
)
async def test_a_type_the_database_keeps_under_another_name_is_no_drift(
    settings: Settings, tmp_path: Path, declared: TypeEngine[Any]
) -> None:
    """PostgreSQL makes ``FLOAT(24)`` a ``real`` and ``NCHAR(3)`` a ``character(3)``;
    SQLite reads ``DOUBLE PRECISION`` back as ``REAL``: a new
    tenant of such a schema validates (it failed with "has type REAL, the schema says
    FLOAT" before)."""
    value = '"abc"' if isinstance(declared, String) else "0.5"
    _, report = await _one_value_loaded(settings, tmp_path, Column("v", declared), value)

    assert report.ok, report.problems


async def test_a_default_function_fills_each_row_left_without_the_column_on_both_backends(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``default=uuid.uuid4`` gave NULL before; now each row gets its own value and the
    table validates. Such a table is parsed in the loading process even where the file
    is big enough for the parse workers (a lambda does not travel to them)."""
    monkeypatch.setattr(DataLoader, "parallel_min_bytes", 0)
    metadata = MetaData()
    Table(
        "things",
        metadata,
        Column("thing_id", String(10), primary_key=True),
        Column("token", Uuid, default=uuid.uuid4, nullable=False),
        Column("label", String(10), default=lambda: "made"),
    )
    source = tmp_path / "things"
    source.mkdir()
    (source / "things.jsonl").write_text("".join(f'{{"thing_id": "{i}"}}\n' for i in range(3)))

    stored, report = await _loaded(settings, metadata, source)

    assert report.ok, report.problems
    assert 3 == len({token for _, token, _ in stored})
    assert {"made"} == {label for _, _, label in stored}


async def test_a_uuid_column_read_as_text_loads_and_validates_on_both_backends(
    settings: Settings, tmp_path: Path
) -> None:
    """``Uuid(as_uuid=False)`` takes and gives text: the load failed with a bare
    ``AttributeError`` on SQLite, the loader having typed the value as a UUID."""
    given = "12345678-1234-5678-1234-567812345678"
    column = Column("ref", Uuid(as_uuid=False))
    values, report = await _one_value_loaded(settings, tmp_path, column, f'"{given.upper()}"')

    assert [given] == values
    assert report.ok, report.problems


async def test_a_column_declared_uuid_is_refused_on_sqlite_and_kept_on_postgresql(
    settings: Settings, tmp_path: Path, backend: str
) -> None:
    """SQLite gives the type name ``UUID`` numeric affinity: a UUID whose hex is all
    digits was stored as a float (and validation crashed reading it)."""
    given = "12345678-1234-5678-1234-567812345678"
    column = Column("ref", UUID())
    if backend == "sqlite":
        with pytest.raises(SettingsError) as refused:
            await _one_value_loaded(settings, tmp_path, column, f'"{given}"')
        assert "things.ref: declared UUID" in refused.value.message
        assert "declare Uuid instead" in refused.value.message
    else:
        values, report = await _one_value_loaded(settings, tmp_path, column, f'"{given}"')
        assert [uuid.UUID(given)] == values
        assert report.ok, report.problems


@pytest.mark.parametrize(
    ("declared", "value"),
    [
        pytest.param(Numeric(10, 2, asdecimal=False), '"1.5"', id="read-as-a-float"),
        pytest.param(Numeric(10, 2, asdecimal=False), '"5.00"', id="read-as-an-integer"),
    ],
)
async def test_a_number_column_read_back_as_the_other_python_type_validates(
    settings: Settings, tmp_path: Path, declared: TypeEngine[Any], value: str
) -> None:
    """A load gives a ``Decimal`` to ``Numeric``; with ``asdecimal=False`` SQLite reads
    back a float (or an integer), and the table failed validation there."""
    _, report = await _one_value_loaded(settings, tmp_path, Column("amount", declared), value)

    assert report.ok, report.problems


class Mood(enum.Enum):
    """Members whose names (what the column stores) differ from their values."""

    happy = "HAPPY"
    sad = "SAD"


@pytest.mark.parametrize(
    ("declared", "given"),
    [
        pytest.param(Enum(Mood, name="mood"), "happy", id="by-name"),
        pytest.param(
            Enum(Mood, name="mood", values_callable=lambda kind: [m.value for m in kind]),
            "HAPPY",
            id="by-value",
        ),
    ],
)
async def test_a_python_enum_column_validates_and_its_export_reloads(
    settings: Settings, tmp_path: Path, declared: TypeEngine[Any], given: str
) -> None:
    """``Enum(Mood)`` stores and takes member names (values, with ``values_callable``);
    it reads back members. The read members were hashed by value (validation failed on
    SQLite) and exported by value ("'HAPPY' is not one of ['happy', 'sad']" on
    reloading)."""
    metadata = _things_metadata(Column("mood", declared))
    source = tmp_path / "things"
    source.mkdir()
    (source / "things.jsonl").write_text(f'{{"thing_id": "a", "mood": "{given}"}}\n')
    out = tmp_path / "export"

    first, copied, rows = await _exported_and_reloaded(settings, metadata, source, out)

    assert first.ok, first.problems
    assert copied.ok, copied.problems
    assert [("a", Mood.happy)] == rows
    assert f'"mood":"{given}"' in (out / "things.jsonl").read_text()


async def _exported_and_reloaded(
    settings: Settings, metadata: MetaData, source: Path, out: Path
) -> tuple[IntegrityReport, IntegrityReport, list[tuple[Any, ...]]]:
    """``source`` loaded into a tenant, exported to ``out`` and loaded into another: both
    validations (checksums recomputed) and the copy's rows of the schema's first table."""
    async with FixtureManager(settings, metadata=metadata) as shop:
        try:
            await drop_every_tenant(shop)
            await shop.create_tenant(TenantFixture(tenant_id="first", tier="enterprise"))
            await shop.load_fixtures("first", source)
            first = await shop.validate_tenant("first", recompute_checksums=True)
            await shop.export_tenant("first", out)
            await shop.create_tenant(TenantFixture(tenant_id="copied", tier="enterprise"))
            await shop.load_fixtures("copied", out)
            copied = await shop.validate_tenant("copied", recompute_checksums=True)
            rows = await _stored(shop, "copied", metadata.sorted_tables[0].name)
        finally:
            await drop_every_tenant(shop)
    return first, copied, rows


async def test_an_export_of_timestamps_without_time_zone_reloads_as_they_were(
    settings: Settings, tmp_path: Path
) -> None:
    """A naive ``DateTime`` column's values are exported without an offset (the column
    refuses one); an aware column's with theirs."""
    metadata = MetaData()
    Table(
        "visits",
        metadata,
        Column("visit_id", String(10), primary_key=True),
        Column("local_at", DateTime),
        Column("at", DateTime(timezone=True)),
    )
    source = tmp_path / "visits"
    source.mkdir()
    (source / "visits.jsonl").write_text(
        '{"visit_id": "a", "local_at": "2024-05-01T09:30:00", "at": "2024-05-01T07:30:00+00:00"}\n'
    )
    out = tmp_path / "export"

    _, report, _ = await _exported_and_reloaded(settings, metadata, source, out)

    assert report.ok, report.problems
    assert report.checksums["visits"].status == "match"


@pytest.mark.postgres
async def test_drift_names_an_enum_type_whose_values_differ_from_the_schemas(
    pg_manager: FixtureManager,
) -> None:
    """A value added to the schema but not to the tenant's type (a missed migration),
    or to the type behind the library's back."""
    wider = _metadata()
    wider.tables["items"].c.mood.type = Enum("happy", "sad", "angry", name="mood")
    async with FixtureManager(pg_manager.store.settings, metadata=_metadata()) as shop:
        try:
            await shop.create_tenant("moods")
            [before] = await shop.check_drift(["moods"])
            async with FixtureManager(shop.store.settings, metadata=wider) as newer:
                [behind] = await newer.check_drift(["moods"])
            schema = shop.store.storage_name("moods")
            async with shop.store.session("moods") as session:
                await session.connection.execute(text(f"ALTER TYPE {schema}.mood ADD VALUE 'calm'"))
            [changed] = await shop.check_drift(["moods"])
        finally:
            await drop_every_tenant(shop)

    assert before.ok, before.findings
    assert behind.findings == [
        "enum type mood has values ('happy', 'sad'), the schema says ('happy', 'sad', 'angry')"
    ]
    assert changed.findings == [
        "enum type mood has values ('happy', 'sad', 'calm'), the schema says ('happy', 'sad')"
    ]


@pytest.mark.parametrize("keys", ["kept", "dropped"])
async def test_a_plain_json_column_reloads_changed_rows_and_leaves_the_same_alone(
    settings: Settings, tmp_path: Path, keys: str
) -> None:
    """PostgreSQL's ``json`` (``JSON`` without a ``JSONB`` variant) has no equality
    operator: merging a changed set into a loaded tenant failed with ``operator does not
    exist: json = json``, with the keys in place and after a bulk load dropped them."""
    if keys == "dropped":
        settings = settings.model_copy(update={"bulk_load_min_bytes": 0})
    metadata = _things_metadata(Column("body", JSON))
    first, second = tmp_path / "first", tmp_path / "second"
    for source, rows in (
        (first, [{"thing_id": "same", "body": {"a": [1, 2]}}, {"thing_id": "changed", "body": 1}]),
        (second, [{"thing_id": "same", "body": {"a": [1, 2]}}, {"thing_id": "changed", "body": 2}]),
    ):
        source.mkdir()
        (source / "things.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    async with FixtureManager(settings, metadata=metadata) as manager:
        await drop_every_tenant(manager)
        try:
            await manager.create_tenant("things")
            await manager.load_fixtures("things", first)
            report = await manager.load_fixtures("things", second)
            stored = await _stored(manager, "things", "things")
            validation = await manager.validate_tenant("things", recompute_checksums=True)
        finally:
            await drop_every_tenant(manager)

    counts = report.writes["things"]
    assert (0, 1, 1) == (counts.inserted, counts.updated, counts.unchanged)
    assert [("changed", 2), ("same", {"a": [1, 2]})] == stored
    assert validation.ok, validation.problems


def _arrays_metadata() -> MetaData:
    metadata = MetaData()
    Table(
        "things",
        metadata,
        Column("thing_id", String(10), primary_key=True),
        Column("tags", postgresql.ARRAY(String(8))),
        Column("scores", ARRAY(Numeric(6, 2))),
        Column("grid", ARRAY(Integer, dimensions=2)),
        Column("seen", ARRAY(DateTime(timezone=True))),
        Column("labels", ARRAY(String(8)), server_default=text("'{}'"), nullable=False),
    )
    return metadata


@pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
@pytest.mark.parametrize("path", ["in-process", "bulk-in-workers"])
async def test_array_columns_load_validate_export_and_reload_as_lists(
    settings: Settings, tmp_path: Path, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ARRAY`` columns (a ``SettingsError`` at start before: no converter): each element
    typed and checked as its type's values are (a NUMERIC(6, 2) rounded, a timestamp's
    offset kept as UTC), nulls kept; from JSON lists, and from CSV as a list's JSON text;
    a left-out column with the server default ``'{}'`` empty; also with the keys deferred
    and the JSON Lines parsed by worker processes."""
    if path == "bulk-in-workers":
        monkeypatch.setattr(DataLoader, "parallel_min_bytes", 0)
        settings = settings.model_copy(update={"bulk_load_min_bytes": 0, "parse_workers": 2})
    source = tmp_path / "things"
    source.mkdir()
    seen = ["2026-01-01T12:00:00+02:00", None]
    (source / "things.jsonl").write_text(
        json.dumps(
            {
                "thing_id": "a",
                "tags": ["x", None],
                "scores": [1.005],
                "grid": [[1, 2], [3, 4]],
                "seen": seen,
            }
        )
        + "\n"
    )
    (source / "more.csv").write_text('thing_id,tags\nb,"[""y""]"\n')
    manifest = {"files": [{"table": "things", "path": p} for p in ("things.jsonl", "more.csv")]}
    (source / "fixtures.json").write_text(json.dumps(manifest))

    first, copied, rows = await _exported_and_reloaded(
        settings, _arrays_metadata(), source, tmp_path / "out"
    )

    assert first.ok, first.problems
    assert copied.ok, copied.problems
    noon = datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert [
        ("a", ["x", None], [Decimal("1.01")], [[1, 2], [3, 4]], [noon, None], []),
        ("b", ["y"], None, None, None, []),
    ] == rows


async def test_an_array_element_breaking_its_type_is_refused_naming_the_column(
    settings: Settings, tmp_path: Path, backend: str
) -> None:
    """On PostgreSQL a refusal of the element's rule; on SQLite, which has no arrays,
    the schema is refused when the manager starts."""
    source = tmp_path / "things"
    source.mkdir()
    (source / "things.jsonl").write_text('{"thing_id": "a", "tags": ["far too long"]}\n')
    if backend == "sqlite":
        with pytest.raises(SettingsError, match=r"things\.tags, .*: declared ARRAY"):
            FixtureManager(settings, metadata=_arrays_metadata())
        return
    with pytest.raises((RecordsRefusedError, RecordError)) as refused:
        await _loaded(settings, _arrays_metadata(), source)
    assert "tags" in str(refused.value)


async def test_a_check_declared_on_a_column_is_checked_by_the_loader_and_is_no_drift(
    settings: Settings, tmp_path: Path
) -> None:
    """``Column("n", Integer, CheckConstraint("n > 0"))``: SQLAlchemy keeps it with the
    column, not in ``table.constraints``, so the loader left it to the database and
    validation reported the tenant's own CHECK as "not in the schema definition"; so it
    did every CHECK declared without a name (the database names it), on both backends,
    and a Boolean's or an Enum's own CHECK (``create_constraint=True``; on PostgreSQL,
    where booleans and named enums are native and have none, the scan for rows breaking
    it failed with ``operator does not exist: boolean = integer``)."""
    metadata = MetaData()
    Table(
        "things",
        metadata,
        Column("thing_id", String(10), primary_key=True),
        Column("n", Integer, CheckConstraint("n > 0", name="positive_n")),
        Column("m", Integer, CheckConstraint("m < 100")),
        Column("flag", Boolean(create_constraint=True)),
        Column("kind", Enum("a", "b", native_enum=False, create_constraint=True)),
        Column("mood", Enum("up", "down", name="updown", create_constraint=True)),
        CheckConstraint("m > -100"),
    )
    source = tmp_path / "things"
    source.mkdir()
    (source / "things.jsonl").write_text('{"thing_id": "a", "n": 1}\n{"thing_id": "b", "n": 0}\n')
    with pytest.raises((RecordError, RecordsRefusedError)) as refused:
        await _loaded(settings, metadata, source)
    assert "check:positive_n" in str(refused.value)

    (source / "things.jsonl").write_text('{"thing_id": "a", "n": 1}\n')
    rows, report = await _loaded(settings, metadata, source)
    assert [("a", 1, None, None, None, None)] == rows
    assert report.ok, report.problems


@pytest.mark.parametrize("backend", [pytest.param("sqlite", id="sqlite")], indirect=True)
def test_sqlite_refuses_an_autoincrement_in_a_composite_key_when_the_manager_starts(
    settings: Settings,
) -> None:
    """A serial inside a composite key (fine on PostgreSQL) was a bare ``CompileError``
    at ``init-tenant`` (exit 1, "unexpected error") on SQLite."""
    metadata = MetaData()
    Table(
        "parts",
        metadata,
        Column("grp", Integer, primary_key=True, autoincrement=False),
        Column("n", Integer, primary_key=True, autoincrement=True),
    )
    with pytest.raises(SettingsError, match=r"parts\.n: autoincrement=True in a composite"):
        FixtureManager(settings, metadata=metadata)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("1_0.5", id="underscore"),
        pytest.param("\uff11\uff12", id="full-width-digits"),
        pytest.param("\u0661\u0662", id="arabic-indic-digits"),
    ],
)
async def test_a_csv_number_with_underscores_or_non_ascii_digits_is_refused_naming_line_and_column(
    settings: Settings, tmp_path: Path, text: str
) -> None:
    """Decimal() read ``1_0.5`` as 10.5 and full-width ``12`` as 12, and stored them;
    such text is refused (rule type) at its line and column."""
    metadata = _things_metadata(Column("cost", Numeric(10, 2)))
    source = tmp_path / "numbers"
    source.mkdir()
    (source / "things.csv").write_text(f'thing_id,cost\na,1.5\nb,"{text}"\n', encoding="utf-8")

    with pytest.raises(RecordError) as caught:
        await _loaded(settings, metadata, source)

    error = caught.value
    assert ("things.csv", 3, "cost", "type") == (error.path, error.line, error.column, error.rule)
