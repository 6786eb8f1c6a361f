"""Validation's write-stamp shortcut: a table whose rows only its recorded writes wrote
keeps their checksum without being read again (PostgreSQL); anything else is read.

Changes are made behind the library's back, through the tenant's session or raw SQL, as
a careless DBA would make them.
"""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    CHAR,
    Boolean,
    Column,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    delete,
    false,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.compliance.erasure import ErasureMode
from tenancy_fixtures.fixtures.context import LoadContext
from tenancy_fixtures.loading.data_loader import DataLoader
from tenancy_fixtures.loading.opening import open_loaders
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.base import TenantSession
from tenancy_fixtures.store.types import JSONDocument
from tenancy_fixtures.validation.integrity import IntegrityReport
from tests.cleanup import drop_every_tenant
from tests.integration.subject_data import SUBJECT, loaded_tenant

TENANT = "stamps_tenant"
#: Every load of this module is a bulk load, so its writes are stamped.
STAMPING: dict[str, Any] = {"bulk_load_min_bytes": 0}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The backend's settings, every load stamping its writes."""
    return settings.model_copy(update=STAMPING)


@pytest.fixture
async def pg_manager(postgres_url: str) -> AsyncIterator[FixtureManager]:
    """A manager on the run's PostgreSQL database whose loads stamp their writes."""
    settings = Settings(database_url=postgres_url, actor="pytest").model_copy(update=STAMPING)
    async with FixtureManager(settings) as manager:
        await drop_every_tenant(manager)
        yield manager
        await drop_every_tenant(manager)


async def _load(manager: FixtureManager, demo_set: Path) -> None:
    await manager.create_tenant(TENANT)
    await manager.load_fixtures(TENANT, source=demo_set)


async def _change_tracks(session: TenantSession) -> None:
    """Change every tracks row in ``session``'s transaction (not through a load)."""
    tracks = session.metadata.tables["tenant.tracks"]
    await session.connection.execute(
        update(tracks).values(popularity=(tracks.c.popularity + 1) % 101)
    )


def _methods(report: IntegrityReport) -> set[str]:
    return {content.method for content in report.checksums.values()}


def _outcome(report: IntegrityReport, table: str) -> tuple[str, str]:
    """How ``table``'s checksum was found, and how it compared."""
    return report.checksums[table].method, report.checksums[table].status


async def _own_schema_report(
    settings: Settings, metadata: MetaData, source: Path, *, recompute: bool = False
) -> IntegrityReport:
    """Load ``source`` into a new tenant ``things`` of ``metadata`` and validate it; the
    tenant is dropped afterwards."""
    async with FixtureManager(settings, metadata=metadata) as manager:
        await drop_every_tenant(manager)
        try:
            await manager.create_tenant("things")
            await manager.load_fixtures("things", source)
            return await manager.validate_tenant("things", recompute_checksums=recompute)
        finally:
            await drop_every_tenant(manager)


def _loaded_method(manager: FixtureManager) -> str:
    return "write_stamps" if manager.store.backend == "postgresql" else "recomputed"


async def test_loaded_tables_are_proven_by_their_write_stamps_on_postgresql_only(
    manager: FixtureManager, demo_set: Path
) -> None:
    """On PostgreSQL every loaded table keeps its recorded checksum unread; SQLite rows
    carry no writer, so SQLite reads every table again. Both match."""
    await _load(manager, demo_set)

    report = await manager.validate_tenant(TENANT)

    assert report.ok, report.problems
    loaded = {name for name, rows in report.row_counts.items() if rows}
    assert {_loaded_method(manager)} == {report.checksums[name].method for name in loaded}
    assert {"match"} == {report.checksums[name].status for name in loaded}
    assert _loaded_method(manager) == report.as_dict()["checksums"]["tracks"]["method"]


@pytest.mark.postgres
async def test_a_load_smaller_than_a_bulk_load_stamps_nothing(
    postgres_url: str, demo_set: Path
) -> None:
    """Below ``bulk_load_min_bytes`` a stamp would cost more than re-reading saves: the
    demo set's tables are read again."""
    settings = Settings(database_url=postgres_url, actor="pytest")
    async with FixtureManager(settings) as manager:
        try:
            await _load(manager, demo_set)
            report = await manager.validate_tenant(TENANT)
        finally:
            await drop_every_tenant(manager)

    assert report.ok, report.problems
    assert {"recomputed"} == _methods(report)


async def test_a_value_changed_after_loading_makes_its_table_read_again_and_fail(
    manager: FixtureManager, demo_set: Path
) -> None:
    """An UPDATE leaves a row written by another transaction: tracks is recomputed and
    fails; the untouched tables keep their shortcut."""
    await _load(manager, demo_set)
    async with manager.store.session(TENANT) as session:
        tracks = session.metadata.tables["tenant.tracks"]
        first = (await session.connection.execute(select(tracks.c.track_id).limit(1))).scalar()
        await session.connection.execute(
            update(tracks)
            .where(tracks.c.track_id == first)
            .values(popularity=(tracks.c.popularity + 1) % 101)
        )

    report = await manager.validate_tenant(TENANT)

    assert ["checksums"] == report.failed_checks
    assert ("recomputed", "mismatch") == _outcome(report, "tracks")
    assert _loaded_method(manager) == report.checksums["artists"].method


async def test_a_row_deleted_and_put_back_as_it_was_is_read_again_and_matches(
    manager: FixtureManager, demo_set: Path
) -> None:
    """The row is the same but its writer is not a load: the table is read, and its
    content still matches what was loaded."""
    await _load(manager, demo_set)
    async with manager.store.session(TENANT) as session:
        comments = session.metadata.tables["tenant.comments"]
        row = (await session.connection.execute(select(comments).limit(1))).one()
        key = comments.c.comment_id == row.comment_id
        await session.connection.execute(delete(comments).where(key))
        await session.connection.execute(insert(comments).values(**row._mapping))

    report = await manager.validate_tenant(TENANT)

    assert report.ok, report.problems
    assert ("recomputed", "match") == _outcome(report, "comments")


async def test_a_deleted_row_is_found_by_the_row_count_whatever_the_stamps_say(
    manager: FixtureManager, demo_set: Path
) -> None:
    """A DELETE leaves no row version behind, so the count is what shows it."""
    await _load(manager, demo_set)
    async with manager.store.session(TENANT) as session:
        comments = session.metadata.tables["tenant.comments"]
        first = (await session.connection.execute(select(comments.c.comment_id).limit(1))).scalar()
        await session.connection.execute(delete(comments).where(comments.c.comment_id == first))

    report = await manager.validate_tenant(TENANT)

    assert ["row_counts"] == report.failed_checks
    assert ("recomputed", "not_compared") == _outcome(report, "comments")


async def test_recompute_checksums_reads_every_table_again(
    manager: FixtureManager, demo_set: Path
) -> None:
    """The option that checks the files under the database too: no shortcut taken."""
    await _load(manager, demo_set)

    report = await manager.validate_tenant(TENANT, recompute_checksums=True)

    assert report.ok, report.problems
    assert {"recomputed"} == _methods(report)


@pytest.mark.parametrize("mode", ["delete", "pseudonymise"])
async def test_an_erasure_keeps_the_shortcut_where_it_only_deleted_rows(
    manager: FixtureManager, mode: ErasureMode
) -> None:
    """Rows an erasure deletes leave no row behind and are recorded as purged, so a
    table it only deleted from keeps the shortcut; rows it rewrote carry its own id,
    and their tables are read again. Both match."""
    await loaded_tenant(manager, TENANT)
    erased = await manager.erase_subject(TENANT, SUBJECT, mode=mode)

    report = await manager.validate_tenant(TENANT)

    assert report.ok, report.problems
    assert erased.updated or mode == "delete"
    for name in erased.updated:
        assert "recomputed" == report.checksums[name].method, name
    for name in set(erased.deleted) - set(erased.updated):
        assert _loaded_method(manager) == report.checksums[name].method, name


@pytest.mark.postgres
async def test_dropping_a_tenant_removes_its_write_stamps(
    pg_manager: FixtureManager, demo_set: Path
) -> None:
    """A tenant made again under the same id inherits no stamps."""
    await _load(pg_manager, demo_set)
    stamps = control_plane.write_stamps_table
    held = select(func.count()).select_from(stamps).where(stamps.c.tenant_id == TENANT)
    async with pg_manager.store.control(readonly=True) as conn:
        assert 0 < (await conn.execute(held)).scalar_one()

    await pg_manager.drop_tenant(TENANT)

    async with pg_manager.store.control(readonly=True) as conn:
        assert 0 == (await conn.execute(held)).scalar_one()


@pytest.mark.postgres
async def test_the_suites_oracle_fails_when_a_recorded_checksum_does_not_describe_the_rows(
    pg_manager: FixtureManager, demo_set: Path
) -> None:
    """The shortcut trusts the recorded checksum; a writer recording a wrong one is
    caught in this suite by re-reading every table the shortcut proves."""
    await _load(pg_manager, demo_set)
    writes = control_plane.table_checksums_table
    async with pg_manager.store.control() as conn:
        await conn.execute(
            update(writes)
            .where(writes.c.tenant_id == TENANT, writes.c.table_name == "tracks")
            .values(checksum="0123456789abcdef")
        )

    with pytest.raises(AssertionError, match=r"tracks: proven by write stamps"):
        await pg_manager.validate_tenant(TENANT)


@pytest.mark.postgres
async def test_rows_written_with_triggers_off_still_carry_their_writer(
    pg_manager: FixtureManager, demo_set: Path
) -> None:
    """``session_replication_role = replica`` turns triggers off, not ``xmin``."""
    await _load(pg_manager, demo_set)
    async with pg_manager.store.session(TENANT) as session:
        schema = pg_manager.store.storage_name(TENANT)
        await session.connection.execute(text("SET LOCAL session_replication_role = replica"))
        await session.connection.execute(
            text(f'UPDATE "{schema}".artists SET popularity = (popularity + 1) % 101')
        )

    report = await pg_manager.validate_tenant(TENANT)

    assert ("recomputed", "mismatch") == _outcome(report, "artists")


def _notes(*, pinned: bool) -> MetaData:
    metadata = MetaData()
    columns: list[Column[Any]] = [
        Column("note_id", String(32), primary_key=True),
        Column("body", Text),
    ]
    if pinned:
        columns.append(Column("pinned", Boolean, nullable=False, server_default=false()))
    Table("notes", metadata, *columns)
    return metadata


@pytest.mark.postgres
async def test_a_column_added_without_rewriting_rows_makes_the_table_read_again(
    postgres_url: str, tmp_path: Path
) -> None:
    """``ADD COLUMN`` with a default keeps every row's ``xmin`` but changes the table's
    shape: a stamp recorded for the old shape is not trusted, and the rows are read
    again and hashed over the columns the load covered."""
    settings = Settings(database_url=postgres_url, actor="pytest").model_copy(update=STAMPING)
    source = tmp_path / "notes_set"
    source.mkdir()
    (source / "notes.jsonl").write_text('{"note_id": "n-1", "body": "hello"}\n')
    async with FixtureManager(settings, metadata=_notes(pinned=False)) as old:
        await drop_every_tenant(old)
        await old.create_tenant("shop")
        await old.load_fixtures("shop", source)
        assert "write_stamps" == (await old.validate_tenant("shop")).checksums["notes"].method
        schema = old.store.storage_name("shop")
        async with old.store.session("shop") as session:
            await session.connection.execute(
                text(
                    f'ALTER TABLE "{schema}".notes ADD COLUMN pinned boolean NOT NULL DEFAULT false'
                )
            )
    async with FixtureManager(settings, metadata=_notes(pinned=True)) as new:
        try:
            report = await new.validate_tenant("shop")
        finally:
            await drop_every_tenant(new)

    assert ("recomputed", "match") == _outcome(report, "notes")


@pytest.mark.postgres
async def test_a_column_dropped_and_added_again_makes_the_table_read_again(
    pg_manager: FixtureManager, demo_set: Path
) -> None:
    """Dropping ``popularity`` and adding it back (every value now 0) rewrites no row and
    leaves the definition as it was; the catalog's column numbers show it."""
    await _load(pg_manager, demo_set)
    schema = pg_manager.store.storage_name(TENANT)
    async with pg_manager.store.session(TENANT) as session:
        for statement in (
            "ALTER TABLE {s}.tracks DROP COLUMN popularity",
            "ALTER TABLE {s}.tracks ADD COLUMN popularity integer NOT NULL DEFAULT 0",
            "ALTER TABLE {s}.tracks ALTER COLUMN popularity DROP DEFAULT",
            "ALTER TABLE {s}.tracks ADD CONSTRAINT ck_tracks_popularity "
            "CHECK (popularity BETWEEN 0 AND 100)",
        ):
            await session.connection.execute(text(statement.format(s=f'"{schema}"')))

    report = await pg_manager.validate_tenant(TENANT)

    assert ("recomputed", "mismatch") == _outcome(report, "tracks")


@pytest.mark.postgres
async def test_a_write_in_the_same_load_outside_the_recorded_one_is_not_trusted(
    pg_manager: FixtureManager, demo_set: Path
) -> None:
    """A loader that updates rows after writing them, in the load's own transaction:
    the update does not carry the write's stamp, so tracks is read again."""

    class Bumping(DataLoader):
        async def apply(self, session: TenantSession, context: LoadContext) -> Mapping[str, int]:
            counts = await super().apply(session, context)
            if "tracks" in self.tables():
                await _change_tracks(session)
            return counts

    metadata = pg_manager.store.metadata
    loaders = [
        Bumping(loader.fixture_set, name=loader.name, tables=loader.tables(), metadata=metadata)
        for loader in open_loaders(demo_set, metadata=metadata, batch_size=1000)
    ]
    await pg_manager.create_tenant(TENANT)
    await pg_manager.load_fixtures(TENANT, fixtures=loaders)

    report = await pg_manager.validate_tenant(TENANT)

    assert ("recomputed", "mismatch") == _outcome(report, "tracks")
    assert "write_stamps" == report.checksums["artists"].method


@pytest.mark.postgres
async def test_a_load_committed_while_validating_turns_the_shortcut_off(
    pg_manager: FixtureManager, demo_set: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between reading the recorded writes and counting the rows, another transaction
    updates tracks and records it: the count sees more writes than were read, and
    every table is read again."""
    await _load(pg_manager, demo_set)
    read_writes = control_plane.table_checksums

    async def racing(conn: AsyncConnection, tenant_id: str) -> list[control_plane.TableChecksum]:
        writes = await read_writes(conn, tenant_id)
        async with pg_manager.store.session(tenant_id) as session:
            await _change_tracks(session)
            await control_plane.record_table_checksums(
                session.connection,
                tenant_id,
                fixture="racing",
                run_id="racing",
                checksums=[control_plane.TableChecksum("tracks", "upsert", 100, "0" * 16, 0, 100)],
            )
        return writes

    monkeypatch.setattr(control_plane, "table_checksums", racing)
    report = await pg_manager.validate_tenant(TENANT)

    assert {"recomputed"} == _methods(report)


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("column", "value"),
    [
        pytest.param(Column("amount", CHAR(5)), '"ab"', id="char-padded"),
    ],
)
async def test_a_table_whose_values_the_database_changes_on_the_way_in_is_read_again(
    postgres_url: str, tmp_path: Path, column: Column[Any], value: str
) -> None:
    """The load's checksum is of the values it sent; padded values differ from them, so
    such tables never take the shortcut: they are read again, and match (trailing
    blanks of ``CHAR`` do not count)."""
    metadata = MetaData()
    Table("things", metadata, Column("thing_id", String(32), primary_key=True), column)
    source = tmp_path / "things_set"
    source.mkdir()
    (source / "things.jsonl").write_text(f'{{"thing_id": "a", "amount": {value}}}\n')
    settings = Settings(database_url=postgres_url, actor="pytest").model_copy(update=STAMPING)
    report = await _own_schema_report(settings, metadata, source)

    assert ("recomputed", "match") == _outcome(report, "things")


@pytest.mark.postgres
async def test_a_table_two_loads_wrote_is_read_again_when_one_row_is_missing(
    pg_manager: FixtureManager, tmp_path: Path
) -> None:
    """Two loads of ten artists each: 20 expected. One deleted leaves 19, which no single
    load's count shows as short; the shortcut's own count refuses it."""
    for part in (0, 1):
        source = tmp_path / f"artists_{part}"
        source.mkdir()
        rows = [
            {"artist_id": f"{part}{i:021d}", "name": f"A{part}{i}", "genres": [], "popularity": 1}
            for i in range(10)
        ]
        (source / "artists.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        if part == 0:
            await pg_manager.create_tenant(TENANT)
        await pg_manager.load_fixtures(TENANT, source=source)
    async with pg_manager.store.session(TENANT) as session:
        artists = session.metadata.tables["tenant.artists"]
        await session.connection.execute(delete(artists).where(artists.c.artist_id == f"0{0:021d}"))

    report = await pg_manager.validate_tenant(TENANT)

    assert [] == report.failed_checks or ["checksums"] == report.failed_checks
    assert ("recomputed", "mismatch") == _outcome(report, "artists")


@pytest.mark.postgres
async def test_a_copied_stamp_is_not_trusted_though_it_shares_the_rows_writer(
    pg_manager: FixtureManager, demo_set: Path
) -> None:
    """A dump restored in one transaction gives stamp rows and data rows one new id; here
    one transaction changes tracks and rewrites its stamp: the stamp's own ``xmin`` is
    no longer the one it was written with, so tracks is read again."""
    await _load(pg_manager, demo_set)
    stamps = control_plane.write_stamps_table
    async with pg_manager.store.session(TENANT) as session:
        await _change_tracks(session)
        await session.connection.execute(
            update(stamps)
            .where(stamps.c.tenant_id == TENANT, stamps.c.table_name == "tracks")
            .values(shape=stamps.c.shape)
        )

    report = await pg_manager.validate_tenant(TENANT)

    assert ("recomputed", "mismatch") == _outcome(report, "tracks")
    assert "write_stamps" == report.checksums["artists"].method


@pytest.mark.postgres
@pytest.mark.parametrize(
    "age", [pytest.param(2**30 + 1, id="too-old"), pytest.param(-1000, id="from-the-future")]
)
async def test_a_stamp_outside_the_wraparound_horizon_is_not_trusted(
    pg_manager: FixtureManager, demo_set: Path, age: int
) -> None:
    """Transaction ids are reused after 2^32. One transaction changes tracks and rewrites
    its stamp as if that transaction had written it (own ``xmin`` kept) but ``age``
    transactions ago: a stamp older than 2^30 transactions, or newer than the newest id
    (another cluster's), is not trusted, and tracks is read again."""
    await _load(pg_manager, demo_set)
    stamps = control_plane.write_stamps_table
    async with pg_manager.store.session(TENANT) as session:
        await _change_tracks(session)
        now = (await session.connection.execute(text("SELECT txid_current()"))).scalar_one()
        await session.connection.execute(
            update(stamps)
            .where(stamps.c.tenant_id == TENANT, stamps.c.table_name == "tracks")
            .values(written=now - age, own_xmin=now % 2**32)
        )

    report = await pg_manager.validate_tenant(TENANT)

    assert ("recomputed", "mismatch") == _outcome(report, "tracks")


async def test_values_the_database_normalises_still_match_when_read_again(
    settings: Settings, tmp_path: Path
) -> None:
    """A JSON float past 2^53 (1e23, which jsonb keeps as 10^23) and a NUMERIC -0 (kept
    as 0) hash as they read back, so re-reading them matches the load's checksum."""
    metadata = MetaData()
    Table(
        "things",
        metadata,
        Column("thing_id", String(32), primary_key=True),
        Column("doc", JSONDocument),
        Column("amount", Numeric),
    )
    source = tmp_path / "things_set"
    source.mkdir()
    (source / "things.jsonl").write_text(
        '{"thing_id": "a", "doc": {"n": 1e23, "m": [2.0, 1.5]}, "amount": "-0.00"}\n'
    )
    report = await _own_schema_report(settings, metadata, source, recompute=True)

    assert report.ok, report.problems
    assert ("recomputed", "match") == _outcome(report, "things")


@pytest.mark.postgres
async def test_a_stamped_write_that_fails_leaves_nothing_and_the_transaction_usable(
    pg_manager: FixtureManager,
) -> None:
    """The write's rows are rolled back to its savepoint and no stamp is written; what
    the transaction does next commits."""
    await pg_manager.create_tenant(TENANT)
    stamps = control_plane.write_stamps_table
    async with pg_manager.store.session(TENANT) as session:
        artists = session.metadata.tables["tenant.artists"]
        row = {"name": "A", "genres": [], "popularity": 1}

        async def failing_write() -> None:
            async with session.stamping(artists, replace=False):
                await session.connection.execute(insert(artists).values(**row, artist_id="a" * 22))
                raise RuntimeError("the write failed")

        with pytest.raises(RuntimeError, match="the write failed"):
            await failing_write()
        await session.connection.execute(insert(artists).values(**row, artist_id="b" * 22))

    async with pg_manager.store.session(TENANT, readonly=True) as session:
        kept = (await session.connection.execute(select(artists.c.artist_id))).scalars().all()
        stamped = (
            await session.connection.execute(
                select(func.count()).select_from(stamps).where(stamps.c.tenant_id == TENANT)
            )
        ).scalar_one()
    assert (["b" * 22], 0) == (kept, stamped)
