"""The columns each recorded table write's checksum covers: kept with the write, and
added to a control plane made before they were."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

import asyncpg
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from tenancy_fixtures import FixtureManager, PermissionDeniedError, Settings
from tenancy_fixtures.errors import FixtureError
from tenancy_fixtures.fixtures.base import BaseFixture, apply_fixtures
from tenancy_fixtures.fixtures.context import LoadContext
from tenancy_fixtures.loading.table_checksums import table_checksum
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.base import TenantSession
from tenancy_fixtures.store.control_plane import TableChecksum
from tests.integration.chain_db import OwnDatabase
from tests.postgres import asyncpg_dsn


async def test_each_write_records_the_columns_its_checksum_covers(own: OwnDatabase) -> None:
    async with own.manager() as manager:
        await manager.create_tenant("covered")
        await manager.load_fixtures("covered")
        async with manager.store.session("covered", readonly=True) as session:
            tracks = [c.name for c in session.metadata.tables["tenant.tracks"].columns]

    rows = await own.sql(
        "SELECT column_names FROM tenancy.table_checksums WHERE table_name = 'tracks'"
    )

    assert len(rows) == 1
    recorded = rows[0][0]
    assert (recorded if isinstance(recorded, list) else json.loads(recorded)) == tracks


async def test_a_control_plane_made_before_columns_were_kept_gains_them_and_still_validates(
    own: OwnDatabase,
) -> None:
    async with own.manager() as manager:
        await manager.create_tenant("legacy")
        await manager.load_fixtures("legacy")
    await own.sql("ALTER TABLE tenancy.table_checksums DROP COLUMN column_names")

    async with own.manager() as manager:
        report = await manager.validate_tenant("legacy", recompute_checksums=True)
        await manager.create_tenant("after")
        await manager.load_fixtures("after")
        after = await manager.validate_tenant("after", recompute_checksums=True)
    kept = await own.sql(
        "SELECT count(*) FROM tenancy.table_checksums WHERE column_names IS NOT NULL"
    )

    assert report.ok, report.problems
    assert {c.status for c in report.checksums.values()} <= {"match", "no_fixture"}
    assert after.ok, after.problems
    assert kept[0][0] > 0


class _OneArtist(BaseFixture):
    """A fixture of a user's own that writes one artist and says so without columns."""

    @property
    def name(self) -> str:
        return "one_artist"

    def checksum(self) -> str:
        return "1"

    async def apply(self, session: TenantSession, context: LoadContext) -> Mapping[str, int]:
        artists = next(t for t in session.metadata.sorted_tables if t.name == "artists")
        row = {"artist_id": "a" * 22, "name": "Own", "genres": [], "popularity": 1, "followers": 2}
        await session.connection.execute(insert(artists).values(**row))
        self.content = table_checksum(artists)
        self.content.add([tuple(row[c.name] for c in artists.columns)])
        return {"artists": 1}

    def table_checksums(self) -> Sequence[TableChecksum]:
        return [TableChecksum("artists", "insert", 1, self.content.hexdigest(), 1)]


async def test_a_fixture_that_does_not_say_its_columns_is_recorded_with_the_tables(
    own: OwnDatabase,
) -> None:
    async with own.manager() as manager:
        await manager.create_tenant("own_fixture")
        async with manager.store.session("own_fixture") as session:
            await apply_fixtures(session, [_OneArtist()], context=LoadContext(run_id="r1"))
            artists = [c.name for c in session.metadata.tables["tenant.artists"].columns]
        async with manager.store.control(readonly=True) as conn:
            [written] = await control_plane.table_checksums(conn, "own_fixture")
        report = await manager.validate_tenant("own_fixture", recompute_checksums=True)

    assert written.columns == tuple(artists)
    assert report.checksums["artists"].status == "match"


class _LongNamed(_OneArtist):
    @property
    def name(self) -> str:
        return "n" * (control_plane.FIXTURE_NAME_LENGTH + 1)


async def test_a_fixture_named_longer_than_the_control_plane_keeps_is_refused_before_it_runs(
    own: OwnDatabase,
) -> None:
    """On both backends (PostgreSQL failed at the write, exit 7; SQLite kept the name):
    a FixtureError naming the limit, and the fixture's row is not written."""
    async with own.manager() as manager:
        await manager.create_tenant("long_named")
        with pytest.raises(FixtureError, match=r"at most 200 are recorded"):
            async with manager.store.session("long_named") as session:
                await apply_fixtures(session, [_LongNamed()], context=LoadContext(run_id="r1"))
        async with manager.store.session("long_named", readonly=True) as session:
            artists = session.metadata.tables["tenant.artists"]
            query = select(func.count()).select_from(artists)
            rows = (await session.connection.execute(query)).scalar_one()

    assert 0 == rows


@asynccontextmanager
async def _older_plane_and_a_user(own: OwnDatabase, privileges: str) -> AsyncIterator[str]:
    """A control plane made before ``column_names`` (one loaded tenant, ``readable``),
    and a login granted ``privileges`` on its tables; yields its URL."""
    async with own.manager() as manager:
        await manager.create_tenant("readable")
        await manager.load_fixtures("readable")
        schema = manager.store.storage_name("readable")
    await own.sql("ALTER TABLE tenancy.table_checksums DROP COLUMN column_names")
    user = f"tf_user_{uuid.uuid4().hex[:10]}"
    database = make_url(own.url).database
    for statement in (
        f"CREATE ROLE {user} LOGIN",
        f'GRANT CONNECT ON DATABASE "{database}" TO {user}',
        f"GRANT USAGE ON SCHEMA tenancy, {schema} TO {user}",
        f"GRANT {privileges} ON ALL TABLES IN SCHEMA tenancy, {schema} TO {user}",
    ):
        await own.sql(statement)
    try:
        yield make_url(own.url).set(username=user).render_as_string(hide_password=False)
    finally:
        await own.sql(f"DROP OWNED BY {user}")
        await own.sql(f"DROP ROLE {user}")


@pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_read_only_user_works_on_before_the_owner_adds_the_columns(
    own: OwnDatabase,
) -> None:
    """After an upgrade, a user who may only read cannot add the new column: its
    commands run without it (validation compares as before) until the owner starts."""
    async with _older_plane_and_a_user(own, "SELECT") as as_reader:
        async with FixtureManager(Settings(database_url=as_reader, actor="pytest")) as read:
            listed = [t.tenant_id for t in await read.list_tenants()]
            report = await read.validate_tenant("readable", recompute_checksums=True)
        before = await own.sql(_COLUMN_THERE)
        async with own.manager() as owner:
            await owner.list_tenants()
        after = await own.sql(_COLUMN_THERE)

    assert listed == ["readable"]
    assert report.ok, report.problems
    assert report.checksums["tracks"].status == "match"
    assert (before, after) == ([(0,)], [(1,)])


@pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_user_who_records_writes_waits_for_the_owner_to_add_the_columns(
    own: OwnDatabase,
) -> None:
    """It would record table writes without the columns their checksums cover."""
    async with _older_plane_and_a_user(own, "SELECT, INSERT") as as_writer:
        with pytest.raises(PermissionDeniedError) as refused:
            async with FixtureManager(Settings(database_url=as_writer, actor="pytest")) as write:
                await write.list_tenants()

    assert "columns added since it was made" in refused.value.message


_COLUMN_THERE = (
    "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'tenancy' "
    "AND table_name = 'table_checksums' AND column_name = 'column_names'"
)


@pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
async def test_adding_a_column_behind_a_long_load_never_holds_up_other_sessions(
    own: OwnDatabase,
) -> None:
    """A load holds its lock on ``table_checksums`` until it commits. The start that adds
    the column must wait for it, but not in the lock queue, where it would hold up every
    other session that reads or writes the table; it adds the column once the load ends."""
    async with own.manager() as manager:
        await manager.list_tenants()
    await own.sql("ALTER TABLE tenancy.table_checksums DROP COLUMN column_names")
    load = await asyncpg.connect(asyncpg_dsn(own.url))
    reader = await asyncpg.connect(asyncpg_dsn(own.url))
    try:
        await load.execute("BEGIN; LOCK TABLE tenancy.table_checksums IN ROW EXCLUSIVE MODE")
        starting = asyncio.create_task(_start(own))
        await asyncio.sleep(1.5)  # the start has tried to add the column by now
        await reader.execute("SET statement_timeout = '3s'")
        read = await reader.fetchval("SELECT count(*) FROM tenancy.table_checksums")
        waiting = not starting.done()
        await load.execute("COMMIT")
        await asyncio.wait_for(starting, 30)
    finally:
        await load.close()
        await reader.close()

    assert (read, waiting) == (0, True)
    assert await own.sql(_COLUMN_THERE) == [(1,)]


async def _start(own: OwnDatabase) -> None:
    async with own.manager() as manager:
        await manager.list_tenants()
