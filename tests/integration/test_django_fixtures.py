"""Django ``dumpdata`` fixtures loaded with the ``django`` source format, on both backends.

The fixtures are written here in the shapes ``dumpdata`` writes (JSON array, JSON
Lines, YAML, gzipped or not; lowercased model labels; ``--natural-foreign`` lists;
many-to-many lists) and loaded into the built-in schema, a user's own schema
(``tests/user_schema.py``) and a small schema with a many-to-many through table.
"""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest
import yaml
from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    UniqueConstraint,
    insert,
    select,
)

from tenancy_fixtures import FixtureManager, LoadReport, Settings
from tenancy_fixtures.errors import FixtureError, FixtureSetError, RecordError
from tenancy_fixtures.loading.django_format import DjangoFormat
from tenancy_fixtures.store.base import TENANT_SCHEMA, WriteCounts
from tenancy_fixtures.store.control_plane import count_rows
from tests.cleanup import drop_shared_tenants
from tests.postgres import asyncpg_dsn
from tests.user_schema import NAMING, user_metadata

TENANT = "django_tenant"
RADIOHEAD = "4Z8W4fKeB5YxbusRsdQVPb"
PORTISHEAD = "6liAMWkVf5LH7YR9yfFy1Y"
OK_COMPUTER = "6dVIqQ8qmQ5GBnJ9shOYGE"
DUMMY = "3539EbNgIdEDGBKkUf4wno"
AIRBAG = "6ozW8LHADDHzZFFMOCCsUW"
PARANOID = "6LgJvl0Xdtc73RJ1mmpotq"
MAPPING = {
    "models": {"music.Track": {"table": "tracks", "columns": {"title": "name"}}},
    "natural_keys": {"music.Artist": ["name"]},
}


def artist(pk: str, name: str, **fields: Any) -> dict[str, Any]:
    return {"model": "music.artist", "pk": pk, "fields": {"name": name, **fields}}


def album(pk: str, name: str, by: Any) -> dict[str, Any]:
    return {"model": "music.album", "pk": pk, "fields": {"name": name, "artist": by}}


def track(pk: str, title: str, on: str, by: Any, **fields: Any) -> dict[str, Any]:
    values = {"title": title, "album": on, "artist": by, "explicit": False, **fields}
    return {"model": "music.track", "pk": pk, "fields": values}


CATALOGUE = [
    artist(RADIOHEAD, "Radiohead", popularity=80, genres=["art rock"]),
    album(OK_COMPUTER, "OK Computer", RADIOHEAD),
    track(AIRBAG, "Airbag", OK_COMPUTER, RADIOHEAD, duration_ms=284400),
    track(PARANOID, "Paranoid Android", OK_COMPUTER, RADIOHEAD, track_number=2),
]


def dump(path: Path, records: list[dict[str, Any]]) -> Path:
    """Write ``records`` as ``dumpdata`` would, in the format ``path``'s name says."""
    name = path.name.removesuffix(".gz")
    if name.endswith(".jsonl"):
        data = "".join(json.dumps(r) + "\n" for r in records)
    elif name.endswith(".yaml"):
        data = yaml.safe_dump(records, sort_keys=False, allow_unicode=True)
    else:
        data = json.dumps(records, indent=2)
    raw = data.encode()
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)
    return path


async def rows(manager: FixtureManager, table: str, tenant: str = TENANT) -> list[dict[str, Any]]:
    """The rows of ``table``, as dicts in primary-key order."""
    async with manager.store.session(tenant, readonly=True) as session:
        found = session.metadata.tables[f"{TENANT_SCHEMA}.{table}"]
        query = select(found).order_by(*found.primary_key.columns)
        return [dict(r._mapping) for r in await session.connection.execute(query)]


def loaded(report: LoadReport) -> dict[str, int]:
    """Rows written per table by the load's one fixture."""
    [result] = report.results
    return dict(result.row_counts)


async def total_rows(manager: FixtureManager) -> int:
    async with manager.store.session(TENANT, readonly=True) as session:
        counts = await count_rows(session.connection, session.metadata.sorted_tables)
    return sum(counts.values())


async def test_a_dumpdata_json_file_loads_each_model_into_its_table_in_foreign_key_order(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """Tracks come before their album and artist in the file; tables still load in order."""
    path = dump(tmp_path / "music.json", list(reversed(CATALOGUE)))
    await manager.create_tenant(TENANT)

    report = await manager.load_fixtures(
        TENANT, path, options={"models": "music.Track:tracks", "mapping": MAPPING}
    )

    assert {"artists": 1, "albums": 1, "tracks": 2} == loaded(report)
    tracks = await rows(manager, "tracks")
    assert [
        ("Paranoid Android", OK_COMPUTER, RADIOHEAD, 2),
        ("Airbag", OK_COMPUTER, RADIOHEAD, None),
    ] == [(t["name"], t["album_id"], t["artist_id"], t["track_number"]) for t in tracks]
    assert [["art rock"]] == [a["genres"] for a in await rows(manager, "artists")]


@pytest.mark.parametrize("name", ["music.jsonl", "music.yaml", "music.json.gz", "music.yaml.gz"])
async def test_json_lines_yaml_and_gzipped_fixtures_load_the_same_rows(
    manager: FixtureManager, tmp_path: Path, name: str
) -> None:
    path = dump(tmp_path / name, CATALOGUE)
    await manager.create_tenant(TENANT)

    report = await manager.load_fixtures(
        TENANT, path, format="django", options={"mapping": MAPPING}
    )

    assert {"artists": 1, "albums": 1, "tracks": 2} == loaded(report)
    assert {AIRBAG, PARANOID} == {t["track_id"] for t in await rows(manager, "tracks")}


async def test_a_yaml_dump_with_timestamps_loads_them_as_timestamps(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """Django's YAML serializer writes datetimes as YAML timestamps, not strings."""
    joined = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    user = {
        "model": "auth.user",
        "pk": "u_ada",
        "fields": {"display_name": "Ada", "created_at": joined},
    }
    path = dump(tmp_path / "accounts.yaml", [user])
    await manager.create_tenant(TENANT)

    await manager.load_fixtures(TENANT, path, options={"models": "auth.User:users"})

    [row] = await rows(manager, "users")
    assert joined == row["created_at"].replace(tzinfo=row["created_at"].tzinfo or UTC)


async def test_a_mapping_file_names_tables_renames_fields_and_the_load_is_idempotent(
    manager: FixtureManager, tmp_path: Path
) -> None:
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    dump(fixtures / "music.jsonl", CATALOGUE)
    mapping = tmp_path / "django.yaml"
    mapping.write_text(yaml.safe_dump(MAPPING), encoding="utf-8")
    await manager.create_tenant(TENANT)

    first = await manager.load_fixtures(TENANT, fixtures, options={"mapping": str(mapping)})
    again = await manager.load_fixtures(TENANT, fixtures, options={"mapping": str(mapping)})

    assert first.changed
    assert not again.changed
    assert ["Paranoid Android", "Airbag"] == [t["name"] for t in await rows(manager, "tracks")]


async def test_natural_foreign_keys_find_rows_later_in_the_load_and_in_the_tenant(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """``dumpdata --natural-foreign``: an album names its artist by name before the
    artist's record; a second load names an artist only the tenant's table holds."""
    await manager.create_tenant(TENANT)
    first = dump(
        tmp_path / "first.json",
        [
            album(OK_COMPUTER, "OK Computer", ["Radiohead"]),
            artist(RADIOHEAD, "Radiohead"),
            artist(PORTISHEAD, "Portishead"),
        ],
    )
    await manager.load_fixtures(TENANT, first, options={"mapping": MAPPING})
    second = dump(
        tmp_path / "second.jsonl",
        [
            album(DUMMY, "Dummy", ["Portishead"]),
            track(AIRBAG, "Airbag", OK_COMPUTER, ["Radiohead"]),
        ],
    )

    await manager.load_fixtures(TENANT, second, options={"mapping": MAPPING})

    albums = {a["album_id"]: a["artist_id"] for a in await rows(manager, "albums")}
    assert {OK_COMPUTER: RADIOHEAD, DUMMY: PORTISHEAD} == albums
    assert [RADIOHEAD] == [t["artist_id"] for t in await rows(manager, "tracks")]


BAD_RECORDS: dict[str, tuple[dict[str, Any], str, str]] = {
    "unknown model": (
        {"model": "music.concert", "pk": 1, "fields": {"name": "Live"}},
        "model",
        "maps to no table",
    ),
    "missing pk": ({"model": "music.artist", "fields": {"name": "Nobody"}}, "pk", "missing 'pk'"),
    "wrong type": (
        artist(PORTISHEAD, "Portishead", popularity="loud"),
        "fields.popularity",
        "integer",
    ),
    "renamed field too long": (
        track("3Dl8GKJyWZ3ZsQZtPQnRNG", "x" * 401, OK_COMPUTER, RADIOHEAD),
        "fields.title",
        "longer than",
    ),
    "field not in table": (
        artist(PORTISHEAD, "Portishead", hometown="Bristol"),
        "fields.hometown",
        "no column for field 'hometown'",
    ),
    "unknown natural key": (
        album(DUMMY, "Dummy", ["Nobody Known"]),
        "fields.artist",
        "matches no record of this load nor any row",
    ),
    "unmapped many-to-many": (
        artist(PORTISHEAD, "Portishead", members=[1, 2]),
        "fields.members",
        "no through table is mapped",
    ),
}


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
@pytest.mark.parametrize("case", list(BAD_RECORDS))
async def test_a_bad_record_names_its_file_record_and_field_and_nothing_is_written(
    manager: FixtureManager, tmp_path: Path, case: str, suffix: str
) -> None:
    bad, column, message = BAD_RECORDS[case]
    path = dump(tmp_path / f"dump{suffix}", [*CATALOGUE, bad])
    await manager.create_tenant(TENANT)

    with pytest.raises(RecordError) as caught:
        await manager.load_fixtures(TENANT, path, format="django", options={"mapping": MAPPING})

    error = caught.value
    where = (None, 5) if suffix == ".json" else (5, None)
    assert (f"dump{suffix}", *where, column) == (
        error.path,
        error.line,
        error.record,
        error.column,
    )
    assert message in str(error)
    assert 0 == await total_rows(manager)


@pytest.mark.parametrize(
    ("fields", "other", "field", "column"),
    [
        ({"name": "Airbag"}, "title", "name", "name"),  # title is renamed to name
        ({"album_id": OK_COMPUTER}, "album", "album_id", "album_id"),
    ],
    ids=["a-rename-and-a-field", "a-foreign-key-and-its-column"],
)
async def test_two_fields_of_a_record_loading_into_one_column_are_refused_naming_both(
    manager: FixtureManager,
    tmp_path: Path,
    fields: dict[str, Any],
    other: str,
    field: str,
    column: str,
) -> None:
    """The later field's value silently replaced the earlier one's."""
    bad = track("3Dl8GKJyWZ3ZsQZtPQnRNG", "Airbag", OK_COMPUTER, RADIOHEAD, **fields)
    path = dump(tmp_path / "dump.jsonl", [*CATALOGUE, bad])
    await manager.create_tenant(TENANT)

    with pytest.raises(RecordError) as caught:
        await manager.load_fixtures(TENANT, path, format="django", options={"mapping": MAPPING})

    error = caught.value
    assert ("dump.jsonl", 5, f"fields.{field}") == (error.path, error.line, error.column)
    assert f"fields '{other}' and '{field}' both load into column {column} of tracks" in str(error)
    assert 0 == await total_rows(manager)


# --- a user's own schema ---------------------------------------------------------------

SHOP_MAPPING = {
    "models": {
        "shop.User": {
            "table": "User",
            "columns": {"id": "UserId", "username": "select", "created": "CreatedAt"},
        },
        "shop.Order": {
            "table": "Order",
            "columns": {"user": "User", "ordered": "OrderDate", "total": "Total"},
        },
        "shop.OrderLine": {
            "table": "OrderLine",
            "columns": {
                "order": "OrderId",
                "line": "LineNo",
                "qty": "Quantity",
                "price": "UnitPrice",
            },
        },
    },
    "natural_keys": {"shop.User": ["username"]},
}
SHOP = [
    {
        "model": "shop.user",
        "pk": 1,
        "fields": {"username": "ada", "created": "2024-01-02T03:04:05Z"},
    },
    {
        "model": "shop.order",
        "pk": 10,
        "fields": {"user": ["ada"], "ordered": "2024-02-03T04:05:06", "total": "12.50"},
    },
    {
        "model": "shop.orderline",
        "pk": 100,
        "fields": {"order": 10, "line": 1, "qty": 5, "price": "2.50"},
    },
]


@asynccontextmanager
async def manager_on(settings: Settings, metadata: MetaData) -> AsyncIterator[FixtureManager]:
    """A manager on ``metadata``'s schema; its tenants are dropped around the test on
    PostgreSQL."""
    async with FixtureManager(settings, metadata=metadata) as manager:
        await drop_shared_tenants(manager)
        yield manager
        await drop_shared_tenants(manager)


@pytest.fixture
async def shop(settings: Settings) -> AsyncIterator[FixtureManager]:
    """A manager on the user's schema; its tenants are dropped around the test."""
    async with manager_on(settings, user_metadata()) as manager:
        yield manager


async def test_a_user_schema_loads_renamed_fields_natural_keys_and_a_composite_key(
    shop: FixtureManager, tmp_path: Path
) -> None:
    """The line's ``pk`` (Django's own id) has no column: its fields carry the table's
    composite key (OrderId, LineNo)."""
    path = dump(tmp_path / "shop.yaml", SHOP)
    await shop.create_tenant(TENANT)

    report = await shop.load_fixtures(TENANT, path, options={"mapping": SHOP_MAPPING})

    assert {"User": 1, "Order": 1, "OrderLine": 1} == loaded(report)
    [order] = await rows(shop, "Order")
    assert (10, 1) == (order["OrderId"], order["User"])
    [line] = await rows(shop, "OrderLine")
    assert (10, 1, 5) == (line["OrderId"], line["LineNo"], line["Quantity"])


async def test_a_composite_key_the_fields_do_not_carry_is_refused_with_the_record(
    shop: FixtureManager, tmp_path: Path
) -> None:
    line = {"model": "shop.orderline", "pk": 100, "fields": {"order": 10, "qty": 5, "price": "1"}}
    path = dump(tmp_path / "shop.json", [*SHOP[:2], line])
    await shop.create_tenant(TENANT)

    with pytest.raises(RecordError, match="composite primary key") as caught:
        await shop.load_fixtures(TENANT, path, options={"mapping": SHOP_MAPPING})

    assert ("shop.json", 3, "pk") == (caught.value.path, caught.value.record, caught.value.column)
    assert [] == await rows(shop, "User")


def _referring(template: dict[str, Any], field: str, key: str, **changes: Any) -> dict[str, Any]:
    """``template`` (a record of SHOP) naming by natural key ``[key]`` in ``field``."""
    return {**template, **changes, "fields": {**template["fields"], field: [key]}}


@pytest.mark.parametrize(
    ("natural_key", "record", "table"),
    [
        ("created", _referring(SHOP[1], "user", "2024-01-02T03:04:05Z", pk=11), "Order"),
        ("created", _referring(SHOP[1], "user", "2024-01-02T04:04:05+01:00", pk=11), "Order"),
        ("ordered", _referring(SHOP[2], "order", "2024-02-03T04:05:06"), "OrderLine"),
    ],
    ids=["aware", "aware-other-offset", "naive"],
)
async def test_a_natural_key_of_a_timestamp_column_finds_the_tenants_row(
    shop: FixtureManager, tmp_path: Path, natural_key: str, record: dict[str, Any], table: str
) -> None:
    """On SQLite the lookup bound SQLAlchemy's text of the timestamp
    (``2024-01-02 03:04:05.000000``), never equal to what the load had stored
    (``2024-01-02 03:04:05+00:00``): the row was reported missing."""
    await shop.create_tenant(TENANT)
    first = dump(tmp_path / "first.jsonl", SHOP[:2])
    await shop.load_fixtures(TENANT, first, options={"mapping": SHOP_MAPPING})
    model = "shop.User" if natural_key == "created" else "shop.Order"
    mapping = {**SHOP_MAPPING, "natural_keys": {model: [natural_key]}}
    second = dump(tmp_path / "second.jsonl", [record])

    report = await shop.load_fixtures(TENANT, second, options={"mapping": mapping})

    assert {table: 1} == loaded(report)
    if table == "Order":
        assert [(10, 1), (11, 1)] == [(o["OrderId"], o["User"]) for o in await rows(shop, table)]
    else:
        assert [(10, 1)] == [(li["OrderId"], li["LineNo"]) for li in await rows(shop, table)]


# --- many-to-many -----------------------------------------------------------------------


def blog_metadata() -> MetaData:
    """Posts and tags, linked through ``post_tags`` as Django's own through table would."""
    md = MetaData(naming_convention=NAMING)  # constraints need names on PostgreSQL
    Table("tags", md, Column("id", Integer, primary_key=True), Column("slug", String(40)))
    Table("posts", md, Column("id", Integer, primary_key=True), Column("title", String(80)))
    Table(
        "post_tags",
        md,
        Column("post_id", ForeignKey("posts.id"), primary_key=True),
        Column("tag_id", ForeignKey("tags.id"), primary_key=True),
    )
    return md


@pytest.fixture
async def blog(settings: Settings) -> AsyncIterator[FixtureManager]:
    async with manager_on(settings, blog_metadata()) as manager:
        yield manager


async def test_a_many_to_many_field_fills_its_through_table_by_pk_and_by_natural_key(
    blog: FixtureManager, tmp_path: Path
) -> None:
    records = [
        {"model": "blog.tag", "pk": 1, "fields": {"slug": "django"}},
        {"model": "blog.tag", "pk": 2, "fields": {"slug": "sql"}},
        {"model": "blog.post", "pk": 7, "fields": {"title": "Moving", "tags": [1, ["sql"]]}},
    ]
    path = dump(tmp_path / "blog.json", records)
    mapping = {
        "models": {"blog.Post": {"table": "posts", "many_to_many": {"tags": "post_tags"}}},
        "natural_keys": {"blog.Tag": ["slug"]},
    }
    await blog.create_tenant(TENANT)

    report = await blog.load_fixtures(TENANT, path, options={"mapping": mapping})

    assert {"tags": 2, "posts": 1, "post_tags": 2} == loaded(report)
    assert [(7, 1), (7, 2)] == [(r["post_id"], r["tag_id"]) for r in await rows(blog, "post_tags")]


BLOG_MAPPING = {"models": {"blog.Post": {"table": "posts", "many_to_many": {"tags": "post_tags"}}}}


@pytest.mark.parametrize(
    ("post", "field"),
    [
        ({"model": "blog.post", "pk": "seven", "fields": {"title": "Moving"}}, "pk"),
        ({"model": "blog.post", "pk": 7, "fields": {"title": "Moving", "tags": [1, "x"]}}, "tags"),
    ],
    ids=["pk", "many-to-many"],
)
async def test_a_bad_pk_or_many_to_many_value_is_refused_naming_the_fixture_field(
    blog: FixtureManager, tmp_path: Path, post: dict[str, Any], field: str
) -> None:
    """The refusal named the table column the value was staged in (``id``, ``tag_id``)."""
    tag = {"model": "blog.tag", "pk": 1, "fields": {"slug": "django"}}
    path = dump(tmp_path / "blog.jsonl", [tag, post])
    await blog.create_tenant(TENANT)

    with pytest.raises(RecordError, match="expected an integer") as caught:
        await blog.load_fixtures(TENANT, path, options={"mapping": BLOG_MAPPING})

    error = caught.value
    expected = "pk" if field == "pk" else f"fields.{field}"
    assert ("blog.jsonl", 2, expected) == (error.path, error.line, error.column)
    assert [] == await rows(blog, "tags")


def django_blog_metadata() -> MetaData:
    """Posts and tags linked through the table Django makes for a ManyToManyField: an
    ``id`` key of its own and the pair unique."""
    return _posts_and_tags("tags", "posts", "post_tags")


def _posts_and_tags(tags: str, posts: str, links: str) -> MetaData:
    """Tags, posts and their through table (own ``id``, the pair unique), so named."""
    md = MetaData(naming_convention=NAMING)
    Table(tags, md, Column("id", Integer, primary_key=True), Column("slug", String(40)))
    Table(posts, md, Column("id", Integer, primary_key=True), Column("title", String(80)))
    Table(
        links,
        md,
        Column("id", Integer, primary_key=True),
        Column("post_id", ForeignKey(f"{posts}.id"), nullable=False),
        Column("tag_id", ForeignKey(f"{tags}.id"), nullable=False),
        UniqueConstraint("post_id", "tag_id"),
    )
    return md


@pytest.fixture
async def django_blog(settings: Settings) -> AsyncIterator[FixtureManager]:
    async with manager_on(settings, django_blog_metadata()) as manager:
        yield manager


async def test_a_through_table_with_its_own_id_is_numbered_and_loading_again_changes_nothing(
    django_blog: FixtureManager, tmp_path: Path
) -> None:
    """The ``id`` was refused as a required value left out. Now a new link takes the
    next id past the table's highest, a link made twice is one row, a link the tenant
    holds keeps its id (a forced reload and a later dump naming it change nothing), and
    the database's own numbering goes on after the ids the load gave."""
    tags = [{"model": "blog.tag", "pk": n, "fields": {"slug": s}} for n, s in enumerate("abc", 1)]
    fields: dict[str, Any] = {"title": "Moving", "tags": [1, ["b"], 1]}
    post = {"model": "blog.post", "pk": 7, "fields": fields}
    first = dump(tmp_path / "first.json", [*tags, post])
    options = {"mapping": {**BLOG_MAPPING, "natural_keys": {"blog.Tag": ["slug"]}}}
    await django_blog.create_tenant(TENANT)

    await django_blog.load_fixtures(TENANT, first, options=options)
    links = [(r["id"], r["post_id"], r["tag_id"]) for r in await rows(django_blog, "post_tags")]
    again = await django_blog.load_fixtures(TENANT, first, options=options)
    forced = await django_blog.load_fixtures(TENANT, first, options=options, force=True)
    fields["tags"] = [3, 1]
    later = dump(tmp_path / "later.json", [post])
    await django_blog.load_fixtures(TENANT, later, options=options)
    async with django_blog.store.session(TENANT) as session:
        found = session.metadata.tables
        await session.connection.execute(insert(found[f"{TENANT_SCHEMA}.posts"]).values(id=8))
        through = found[f"{TENANT_SCHEMA}.post_tags"]
        await session.connection.execute(insert(through).values(post_id=8, tag_id=1))

    assert [(1, 7, 1), (2, 7, 2)] == links
    assert not again.changed
    assert WriteCounts(unchanged=2) == forced.writes["post_tags"]
    # The last row is the application's own insert, numbered by the database.
    # (7, 2) went: the later dump lists post 7's tags as 3 and 1 alone.
    assert [(1, 7, 1), (3, 7, 3), (4, 8, 1)] == [
        (r["id"], r["post_id"], r["tag_id"]) for r in await rows(django_blog, "post_tags")
    ]


@pytest.mark.parametrize(
    "schema", [blog_metadata, django_blog_metadata], ids=["pair-key", "own-id"]
)
async def test_a_reload_leaves_a_record_the_links_its_list_names_and_others_theirs(
    settings: Settings, tmp_path: Path, schema: Any
) -> None:
    """As ``loaddata`` sets a many-to-many field: post 7 reloaded with tags [3], then [],
    keeps those links alone (its links to 1 and 2 were kept, the reload only added);
    post 8, which the reload does not name, keeps its own; the recorded contents still
    match the tables."""
    tags = [{"model": "blog.tag", "pk": n, "fields": {"slug": s}} for n, s in enumerate("abc", 1)]

    def post(pk: int, linked: list[int]) -> dict[str, Any]:
        return {"model": "blog.post", "pk": pk, "fields": {"title": "T", "tags": linked}}

    options = {"mapping": BLOG_MAPPING}
    async with manager_on(settings, schema()) as blog:
        await blog.create_tenant(TENANT)
        first = dump(tmp_path / "first.json", [*tags, post(7, [1, 2]), post(8, [1])])
        await blog.load_fixtures(TENANT, first, options=options)
        fewer = dump(tmp_path / "fewer.json", [post(7, [3])])
        await blog.load_fixtures(TENANT, fewer, options=options)
        after_fewer = [(r["post_id"], r["tag_id"]) for r in await rows(blog, "post_tags")]
        none = dump(tmp_path / "none.json", [post(7, [])])
        await blog.load_fixtures(TENANT, none, options=options)
        after_none = [(r["post_id"], r["tag_id"]) for r in await rows(blog, "post_tags")]
        report = await blog.validate_tenant(TENANT, recompute_checksums=True)

    assert [(7, 3), (8, 1)] == sorted(after_fewer)
    assert [(8, 1)] == after_none
    assert report.ok, report.problems
    assert "match" == report.checksums["post_tags"].status


async def test_a_record_a_lenient_reload_refuses_keeps_its_links(
    blog: FixtureManager, tmp_path: Path
) -> None:
    """Its row is set aside, so its list does not apply either: post 7's title is too
    long, and its links to 1 and 2 stay."""
    tags = [{"model": "blog.tag", "pk": n, "fields": {"slug": s}} for n, s in enumerate("ab", 1)]
    post = {"model": "blog.post", "pk": 7, "fields": {"title": "T", "tags": [1, 2]}}
    options = {"mapping": BLOG_MAPPING}
    await blog.create_tenant(TENANT)
    await blog.load_fixtures(TENANT, dump(tmp_path / "first.json", [*tags, post]), options=options)
    post["fields"] = {"title": "T" * 81, "tags": [1]}

    report = await blog.load_fixtures(
        TENANT,
        dump(tmp_path / "bad.json", [post]),
        options=options,
        validation="lenient",
        reject_dir=tmp_path / "rejects",
    )

    assert 1 == report.rejected
    assert [(7, 1), (7, 2)] == [(r["post_id"], r["tag_id"]) for r in await rows(blog, "post_tags")]


def django_named_metadata() -> MetaData:
    """The tables a Django app ``blog`` makes itself: ``blog_tag``, ``blog_post`` and the
    through table of ``Post.tags``, ``blog_post_tags``."""
    return _posts_and_tags("blog_tag", "blog_post", "blog_post_tags")


@pytest.mark.parametrize(
    "options",
    [{}, {"models": "blog.Post:blog_post"}],
    ids=["no-mapping", "model-mapped-field-not"],
)
async def test_a_many_to_many_field_no_mapping_names_fills_djangos_own_through_table(
    settings: Settings, tmp_path: Path, options: dict[str, Any]
) -> None:
    """As the model's table is Django's ``app_model``, its field's through table is
    Django's ``app_model_field``: the field was refused as having no through table."""
    records = [
        {"model": "blog.tag", "pk": 1, "fields": {"slug": "django"}},
        {"model": "blog.post", "pk": 7, "fields": {"title": "Moving", "tags": [1]}},
    ]
    async with manager_on(settings, django_named_metadata()) as blog:
        await blog.create_tenant(TENANT)
        report = await blog.load_fixtures(
            TENANT, dump(tmp_path / "b.json", records), options=options
        )
        links = [(r["id"], r["post_id"], r["tag_id"]) for r in await rows(blog, "blog_post_tags")]

    assert {"blog_tag": 1, "blog_post": 1, "blog_post_tags": 1} == loaded(report)
    assert [(1, 7, 1)] == links


async def test_a_many_to_many_field_to_its_own_model_fills_djangos_from_to_through_table(
    settings: Settings, tmp_path: Path
) -> None:
    """``friends = ManyToManyField("self", symmetrical=False)``: Django's through table
    has ``from_person_id`` and ``to_person_id``, both keys to the model's table (the
    field was refused: which is which could not be told)."""
    md = MetaData(naming_convention=NAMING)
    Table("people_person", md, Column("id", Integer, primary_key=True))
    Table(
        "people_person_friends",
        md,
        Column("id", Integer, primary_key=True),
        Column("from_person_id", ForeignKey("people_person.id"), nullable=False),
        Column("to_person_id", ForeignKey("people_person.id"), nullable=False),
    )
    records = [
        {"model": "people.person", "pk": 1, "fields": {"friends": [2]}},
        {"model": "people.person", "pk": 2, "fields": {"friends": []}},
    ]
    async with manager_on(settings, md) as people:
        await people.create_tenant(TENANT)
        await people.load_fixtures(TENANT, dump(tmp_path / "p.json", records))
        links = await rows(people, "people_person_friends")

    assert [(1, 2)] == [(r["from_person_id"], r["to_person_id"]) for r in links]


async def test_a_mapping_naming_a_missing_table_is_refused_before_anything_loads(
    blog: FixtureManager, tmp_path: Path
) -> None:
    path = dump(tmp_path / "blog.json", [{"model": "blog.tag", "pk": 1, "fields": {}}])
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"models": {"blog.Tag": "labels"}}), encoding="utf-8")
    await blog.create_tenant(TENANT)

    with pytest.raises(FixtureSetError, match=r"'blog\.tag' maps to table 'labels'") as caught:
        await blog.load_fixtures(TENANT, path, options={"mapping": str(mapping)})

    assert str(mapping) == str(caught.value.path)


async def test_a_manifest_reads_its_mapping_file_inside_the_set_and_nowhere_else(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """A ``mapping`` a set's fixtures.json names is read next to it; one outside the set
    (absolute, or up and out) is refused before it is read: it once was read from the
    working directory or anywhere, its text echoed in the parse error."""
    fixtures = tmp_path / "set"
    fixtures.mkdir()
    dump(fixtures / "music.jsonl", CATALOGUE)
    (fixtures / "django.yaml").write_text(yaml.safe_dump(MAPPING), encoding="utf-8")
    secret = tmp_path / "secret.yaml"
    secret.write_text("password: [hunter2\n", encoding="utf-8")

    def manifest(mapping: str) -> None:
        entry = {"path": "music.jsonl", "format": "django", "options": {"mapping": mapping}}
        (fixtures / "fixtures.json").write_text(json.dumps({"files": [entry]}), encoding="utf-8")

    await manager.create_tenant(TENANT)
    for outside in (str(secret), "../secret.yaml"):
        manifest(outside)
        with pytest.raises(FixtureSetError) as caught:
            await manager.load_fixtures(TENANT, fixtures)
        assert "hunter2" not in str(caught.value)
        assert "option 'mapping'" in str(caught.value)
    manifest("django.yaml")

    report = await manager.load_fixtures(TENANT, fixtures)

    assert report.changed
    assert ["Paranoid Android", "Airbag"] == [t["name"] for t in await rows(manager, "tracks")]


@pytest.mark.parametrize(
    "many_to_many",
    [None, ["tags"], "tags", {"tags": {"table": "track_tags", "source": ["a"]}}],
    ids=["empty", "a-list", "a-string", "a-list-as-column"],
)
async def test_a_malformed_many_to_many_in_a_mapping_file_is_refused_naming_it(
    manager: FixtureManager, tmp_path: Path, many_to_many: Any
) -> None:
    """Once a raw TypeError or ValueError; now a FixtureSetError naming the file (an empty
    entry is no many-to-many field)."""
    path = tmp_path / "music.jsonl"
    dump(path, CATALOGUE)
    artist = {"table": "artists", "many_to_many": many_to_many}
    mapping = tmp_path / "django.yaml"
    models = {**cast(dict[str, Any], MAPPING["models"]), "music.Artist": artist}
    mapping.write_text(yaml.safe_dump({**MAPPING, "models": models}), encoding="utf-8")
    options = {"mapping": str(mapping)}
    await manager.create_tenant(TENANT)

    if many_to_many is None:
        assert (await manager.load_fixtures(TENANT, path, format="django", options=options)).changed
        return
    with pytest.raises(FixtureSetError, match="many_to_many") as caught:
        await manager.load_fixtures(TENANT, path, format="django", options=options)
    assert str(mapping) == str(caught.value.path)


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


async def _refusal_of_yaml(
    manager: FixtureManager, path: Path, text: str
) -> tuple[str | None, int | None, str | None, str | None]:
    """Where loading the dump ``text`` (written at ``path``) into a new tenant was refused:
    file, record, field and rule."""
    _write_text(path, text)
    await manager.create_tenant(TENANT)
    with pytest.raises(RecordError) as caught:
        await manager.load_fixtures(TENANT, path, format="django")
    error = caught.value
    return (None if error.path is None else str(error.path), error.record, error.column, error.rule)


async def test_text_that_is_not_unicode_is_refused_at_its_record_and_field(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """A lone surrogate, which YAML's escapes give: refused as a table file's is (it was
    a raw UnicodeEncodeError), naming the file, record and field; nothing is written."""
    text = (
        '- model: auth.user\n  pk: u1\n  fields: {display_name: "Ann"}\n'
        '- model: auth.user\n  pk: u2\n  fields: {display_name: "B\\ud800b"}\n'
    )

    refused = await _refusal_of_yaml(manager, tmp_path / "people.yaml", text)

    assert ("people.yaml", 2, "fields.display_name", "encoding") == refused
    assert 0 == await total_rows(manager)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
async def test_a_yaml_nan_or_infinity_is_refused_at_its_record_not_stored_as_null(
    manager: FixtureManager, tmp_path: Path, value: str
) -> None:
    """JSON lines hold neither: staged, they became ``null`` and loaded as NULL."""
    text = f"- model: music.artist\n  pk: {RADIOHEAD}\n  fields: {{name: X, popularity: {value}}}\n"

    refused = await _refusal_of_yaml(manager, tmp_path / "artists.yaml", text)

    assert ("artists.yaml", 1, "fields.popularity", "type") == refused
    assert 0 == await total_rows(manager)


async def test_a_link_a_load_numbers_never_overwrites_a_row_the_app_wrote_meanwhile(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app takes the next id of the through table (from its sequence) while a load
    has numbered its new link with the same one: the load fails, the app's row stays (it
    was upserted over). PostgreSQL only: SQLite lets one writer at a time."""
    tags = [{"model": "blog.tag", "pk": n, "fields": {"slug": s}} for n, s in enumerate("ab", 1)]
    first = {"model": "blog.post", "pk": 5, "fields": {"title": "First", "tags": [1]}}
    later = {"model": "blog.post", "pk": 7, "fields": {"title": "Later", "tags": [1]}}
    settings = Settings(database_url=postgres_url, actor="pytest")
    looked_up = DjangoFormat._look_up_links

    async def app_writes_meanwhile(
        self: DjangoFormat, session: Any, through: Any, sources: set[Any]
    ) -> None:
        await looked_up(self, session, through, sources)
        app = await asyncpg.connect(asyncpg_dsn(postgres_url))
        try:
            await app.execute(
                f'INSERT INTO "{TENANT}".post_tags (id, post_id, tag_id) VALUES ($1, 5, 2)',
                self._last["post_tags"] + 1,
            )
        finally:
            await app.close()

    async with manager_on(settings, django_blog_metadata()) as manager:
        await manager.create_tenant(TENANT)
        options = {"mapping": BLOG_MAPPING}
        await manager.load_fixtures(
            TENANT, dump(tmp_path / "a.json", [*tags, first]), options=options
        )
        monkeypatch.setattr(DjangoFormat, "_look_up_links", app_writes_meanwhile)

        later_dump = dump(tmp_path / "b.json", [later])
        with pytest.raises(FixtureError, match="pk_post_tags"):
            await manager.load_fixtures(TENANT, later_dump, options=options)

        links = [(r["id"], r["post_id"], r["tag_id"]) for r in await rows(manager, "post_tags")]
        assert [(1, 5, 1), (2, 5, 2)] == sorted(links)


# --- natural keys of typed columns ------------------------------------------------------


def shelf_metadata() -> MetaData:
    """Editions with a BIGINT, a DATE and a NUMERIC column to name them by; copies of them."""
    md = MetaData(naming_convention=NAMING)
    Table(
        "editions",
        md,
        Column("id", Integer, primary_key=True),
        Column("serial", BigInteger),
        Column("issued", Date),
        Column("price", Numeric(6, 2)),
    )
    Table(
        "copies",
        md,
        Column("id", Integer, primary_key=True),
        Column("edition_id", ForeignKey("editions.id")),
    )
    return md


@pytest.fixture
async def shelf(settings: Settings) -> AsyncIterator[FixtureManager]:
    async with manager_on(settings, shelf_metadata()) as manager:
        yield manager


def edition(
    pk: int, serial: int = 7, issued: str = "2024-01-02", price: str = "1.50"
) -> dict[str, Any]:
    fields = {"serial": serial, "issued": issued, "price": price}
    return {"model": "shelf.edition", "pk": pk, "fields": fields}


def copy(pk: int, of: Any) -> dict[str, Any]:
    return {"model": "shelf.copy", "pk": pk, "fields": {"edition": of}}


def shelf_options(*natural_key: str) -> dict[str, Any]:
    return {"models": "shelf.Copy:copies", "natural_keys": {"shelf.Edition": list(natural_key)}}


@pytest.mark.parametrize("suffix", [".jsonl", ".yaml"])
@pytest.mark.parametrize("value", [2**63, -(2**63) - 1], ids=["2**63", "-2**63-1"])
async def test_a_natural_key_beyond_64_bits_is_refused_naming_its_record_and_field(
    shelf: FixtureManager, tmp_path: Path, value: int, suffix: str
) -> None:
    """It was a raw OverflowError from SQLite, a StorageError from PostgreSQL: the value
    went to the database to look the key up among the tenant's rows."""
    path = dump(tmp_path / f"dump{suffix}", [edition(1), copy(1, [value])])
    await shelf.create_tenant(TENANT)

    with pytest.raises(RecordError, match="out of range") as caught:
        await shelf.load_fixtures(TENANT, path, format="django", options=shelf_options("serial"))

    error = caught.value
    assert (f"dump{suffix}", 2, "fields.edition") == (
        error.path,
        error.line or error.record,
        error.column,
    )
    assert 0 == await total_rows(shelf)


@pytest.mark.parametrize(
    ("field", "value"),
    [("issued", "2024-01-02"), ("price", "1.50"), ("price", "1.5")],
    ids=["date", "numeric", "numeric-unpadded"],
)
async def test_a_natural_key_of_a_date_or_numeric_column_finds_the_tenants_row(
    shelf: FixtureManager, tmp_path: Path, field: str, value: str
) -> None:
    """The key's text was compared with the stored date or decimal: never equal, so the
    row the tenant holds was reported missing."""
    await shelf.create_tenant(TENANT)
    await shelf.load_fixtures(TENANT, dump(tmp_path / "editions.json", [edition(1)]))
    path = dump(tmp_path / "copies.json", [copy(1, [value])])

    await shelf.load_fixtures(TENANT, path, format="django", options=shelf_options(field))

    assert [1] == [c["edition_id"] for c in await rows(shelf, "copies")]


@pytest.mark.parametrize("held_by", ["tenant", "load"])
async def test_a_natural_key_matching_more_than_one_row_is_refused_naming_its_record_and_field(
    shelf: FixtureManager, tmp_path: Path, held_by: str
) -> None:
    """Two editions share serial 7 (two rows of the tenant, or two records of the load):
    the key was resolved silently to the first one found."""
    await shelf.create_tenant(TENANT)
    editions = [edition(1), edition(2)]
    if held_by == "tenant":
        await shelf.load_fixtures(TENANT, dump(tmp_path / "editions.json", editions))
        editions = []
    path = dump(tmp_path / "copies.jsonl", [*editions, copy(1, [7])])

    with pytest.raises(RecordError, match="matches more than one row") as caught:
        await shelf.load_fixtures(TENANT, path, format="django", options=shelf_options("serial"))

    error = caught.value
    line = len(editions) + 1
    assert ("copies.jsonl", line, "fields.edition") == (error.path, error.line, error.column)
    assert [] == await rows(shelf, "copies")
    assert (2 if held_by == "tenant" else 0) == len(await rows(shelf, "editions"))
