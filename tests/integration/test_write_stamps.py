"""Validation's write-stamp shortcut: a table whose rows only its recorded writes wrote
keeps their checksum without being read again (PostgreSQL); anything else is read.

Changes are made behind the library's back, through the tenant's session or raw SQL, as
a careless DBA would make them.
"""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    MetaData,
    String,
    Table,
    Text,
    delete,
    false,
    insert,
    select,
    text,
    update,
)

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.validation.integrity import IntegrityReport
from tests.cleanup import drop_every_tenant
from tests.integration.subject_data import SUBJECT, loaded_tenant

TENANT = "stamps_tenant"


async def _load(manager: FixtureManager, demo_set: Path) -> None:
    await manager.create_tenant(TENANT)
    await manager.load_fixtures(TENANT, source=demo_set)


def _methods(report: IntegrityReport) -> set[str]:
    return {content.method for content in report.checksums.values()}


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
    assert ("recomputed", "mismatch") == (
        report.checksums["tracks"].method,
        report.checksums["tracks"].status,
    )
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
    assert ("recomputed", "match") == (
        report.checksums["comments"].method,
        report.checksums["comments"].status,
    )


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
    assert ("recomputed", "not_compared") == (
        report.checksums["comments"].method,
        report.checksums["comments"].status,
    )


async def test_recompute_checksums_reads_every_table_again(
    manager: FixtureManager, demo_set: Path
) -> None:
    """The option that checks the files under the database too: no shortcut taken."""
    await _load(manager, demo_set)

    report = await manager.validate_tenant(TENANT, recompute_checksums=True)

    assert report.ok, report.problems
    assert {"recomputed"} == _methods(report)


async def test_tables_rewritten_by_an_erasure_stay_provable_by_stamps(
    manager: FixtureManager,
) -> None:
    """Erasure records what it removed and rewrote with its own transaction's stamp,
    so the tables it changed keep the shortcut (and the suite's oracle re-reads them)."""
    await loaded_tenant(manager, TENANT)
    await manager.erase_subject(TENANT, SUBJECT)

    report = await manager.validate_tenant(TENANT)

    assert report.ok, report.problems
    assert _loaded_method(manager) == report.checksums["listening_events"].method
    assert _loaded_method(manager) == report.checksums["playlist_tracks"].method


@pytest.mark.postgres
async def test_a_stamp_of_an_earlier_transaction_id_epoch_is_not_trusted(
    pg_manager: FixtureManager, demo_set: Path
) -> None:
    """A recorded id 2^32 transactions back has the same 32-bit ``xmin`` as a row
    written now; it is not used, so every table is read (and still matches)."""
    await _load(pg_manager, demo_set)
    stamps = control_plane.write_stamps_table
    async with pg_manager.store.control() as conn:
        await conn.execute(
            update(stamps).where(stamps.c.tenant_id == TENANT).values(stamp=stamps.c.stamp - 2**32)
        )

    report = await pg_manager.validate_tenant(TENANT)

    assert report.ok, report.problems
    assert {"recomputed"} == _methods(report)


@pytest.mark.postgres
async def test_dropping_a_tenant_removes_its_write_stamps(
    pg_manager: FixtureManager, demo_set: Path
) -> None:
    """A tenant made again under the same id inherits no stamps."""
    await _load(pg_manager, demo_set)
    async with pg_manager.store.control(readonly=True) as conn:
        assert await control_plane.write_stamps(conn, TENANT)

    await pg_manager.drop_tenant(TENANT)

    async with pg_manager.store.control(readonly=True) as conn:
        assert {} == await control_plane.write_stamps(conn, TENANT)


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

    assert ("recomputed", "mismatch") == (
        report.checksums["artists"].method,
        report.checksums["artists"].status,
    )


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
    """``ADD COLUMN`` with a default keeps every row's ``xmin`` but changes what the
    checksum hashes: a stamp recorded for the old shape is not trusted."""
    settings = Settings(database_url=postgres_url, actor="pytest")
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

    assert ("recomputed", "mismatch") == (
        report.checksums["notes"].method,
        report.checksums["notes"].status,
    )
