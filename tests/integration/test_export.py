"""Exports on both backends: a round trip through load-fixtures gives the same rows, a
subject's export holds only their rows, pseudonyms keep joins within an export, the
data_export feature gates it, and it is audited in the chain."""

from __future__ import annotations

import asyncio
import json
import os
import tarfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tenancy_fixtures import FixtureManager, Settings, TenantFixture
from tenancy_fixtures.errors import (
    DestinationExistsError,
    FeatureDisabledError,
    RecordError,
    SchemaOutdatedError,
    StorageError,
    SubjectNotFoundError,
)
from tenancy_fixtures.loading.rules import is_email
from tenancy_fixtures.loading.table_checksums import table_checksum
from tests.integration.subject_data import (
    SUBJECT,
    SUBJECT_EMAIL,
    loaded_tenant,
    table,
    table_rows,
    with_secret_key,
)

SOURCE = "exporter"
COPY = "exported_copy"


def _partials(directory: Path) -> list[Path]:
    return list(directory.glob("*.partial"))


def _names(directory: Path, pattern: str) -> set[str]:
    return {path.name for path in directory.glob(pattern)}


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_an_export_reloads_into_a_new_tenant_as_the_same_rows(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """Every table (the derived daily aggregates too) holds the same rows after the
    export is loaded into a new tenant, and validate-data finds the manifest's
    checksums there."""
    await loaded_tenant(manager, SOURCE)
    out = tmp_path / "export"
    report = await manager.export_tenant(SOURCE, out)
    await manager.create_tenant(TenantFixture(tenant_id=COPY, tier="enterprise"))
    await manager.load_fixtures(COPY, source=out)

    assert await table_rows(manager, COPY) == await table_rows(manager, SOURCE)
    manifest = json.loads((out / "fixtures.json").read_text())
    listed = {f["table"]: (f["rows"], f["checksum"]) for f in manifest["files"]}
    assert {"daily_stats", "track_daily_stats", "listening_events"} <= set(listed)
    assert listed == {t: (report.rows[t], report.checksums[t]) for t in report.rows}
    validation = await manager.validate_tenant(COPY)
    assert validation.ok, validation.problems
    assert {t: (c.rows, c.checksum) for t, c in validation.checksums.items() if c.rows} == listed
    assert not _partials(tmp_path)


async def test_an_export_loaded_back_into_its_own_tenant_changes_nothing_and_validates(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """Every row is already there. The daily aggregates, which each load recomputes
    from the plays, are not compared with what loads recorded (the export's unchanged
    rows were taken for an empty table: validation failed with "0 loaded")."""
    await loaded_tenant(manager, SOURCE)
    before = await table_rows(manager, SOURCE)
    out = tmp_path / "export"
    await manager.export_tenant(SOURCE, out)
    await manager.load_fixtures(SOURCE, source=out)

    validation = await manager.validate_tenant(SOURCE)

    assert await table_rows(manager, SOURCE) == before
    assert validation.ok, validation.problems
    assert validation.checksums["listening_events"].status == "match"
    assert validation.checksums["daily_stats"].status == "not_comparable"


async def test_a_subject_export_holds_only_the_rows_that_reach_the_person(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """Their user row, their events, playlists, the tracks of those playlists (the
    declared 'through' link) and tracks they added elsewhere; no aggregates, nobody
    else's rows."""
    await loaded_tenant(manager, SOURCE)
    out = tmp_path / "subject.tar.gz"
    report = await manager.export_tenant(SOURCE, out, subject=SUBJECT)
    with tarfile.open(out) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    unpacked = tmp_path / "unpacked"

    assert [u["user_id"] for u in _lines(unpacked / "users.jsonl")] == [SUBJECT]
    events = _lines(unpacked / "listening_events.jsonl")
    assert events
    assert {e["user_id"] for e in events} == {SUBJECT}
    playlists = {p["playlist_id"] for p in _lines(unpacked / "playlists.jsonl")}
    assert {p["owner_id"] for p in _lines(unpacked / "playlists.jsonl")} == {SUBJECT}
    tracks = _lines(unpacked / "playlist_tracks.jsonl")
    assert any(t["playlist_id"] in playlists for t in tracks)
    assert all(t["playlist_id"] in playlists or t["added_by"] == SUBJECT for t in tracks)
    assert not {"daily_stats", "track_daily_stats", "tracks"} & set(report.rows)
    async with manager.store.session(SOURCE, readonly=True) as session:
        events_table = table(manager, "listening_events")
        theirs = select(func.count()).where(events_table.c.user_id == SUBJECT)
        assert (
            report.rows["listening_events"] == (await session.connection.execute(theirs)).scalar()
        )


async def test_a_pseudonymised_export_keeps_joins_and_differs_between_exports(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """Personal columns and user ids become HMACs: the same user the same pseudonym
    throughout one export (events still join to users), e-mails still valid addresses,
    no original value in the archive, another export other pseudonyms; it reloads."""
    async with FixtureManager(with_secret_key(manager.settings)) as keyed:
        await loaded_tenant(keyed, SOURCE)
        first = tmp_path / "first"
        second = tmp_path / "second"
        await keyed.export_tenant(SOURCE, first, pseudonymise=True)
        await keyed.export_tenant(SOURCE, second, pseudonymise=True)
        await keyed.create_tenant(TenantFixture(tenant_id=COPY, tier="enterprise"))
        await keyed.load_fixtures(COPY, source=first)

    users = _lines(first / "users.jsonl")
    ids = {u["user_id"] for u in users}
    assert SUBJECT not in ids
    assert len(ids) == len(users)
    assert {e["user_id"] for e in _lines(first / "listening_events.jsonl")} <= ids
    assert {p["owner_id"] for p in _lines(first / "playlists.jsonl")} <= ids
    assert all(is_email(str(u["email"])) for u in users if u["email"])
    text = "".join(p.read_text() for p in first.iterdir())
    assert SUBJECT not in text
    assert SUBJECT_EMAIL not in text
    assert "Ingrid" not in text
    assert not ids & {u["user_id"] for u in _lines(second / "users.jsonl")}
    manifest = json.loads((first / "fixtures.json").read_text())["export"]
    assert manifest["pseudonym_key"] == "tenant-data-key"
    assert manifest["pseudonym_salt"]


async def test_an_export_is_refused_without_the_data_export_feature(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """A free tenant has no data_export: a typed refusal, audited, nothing written."""
    await manager.create_tenant(TenantFixture(tenant_id=SOURCE, tier="free"))
    with pytest.raises(FeatureDisabledError) as refused:
        await manager.export_tenant(SOURCE, tmp_path / "out" / "export")
    assert refused.value.feature == "data_export"
    assert not (tmp_path / "out").exists()
    # Newest first (audit records outlive dropped tenants on the shared PostgreSQL).
    records = [r for r in await manager.audit_log(SOURCE) if r.action == "data.export"]
    assert records[0].outcome == "refused"


async def test_an_export_is_audited_in_the_chain_without_the_subject_id(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """The audit record gives counts and the manifest's digest; the subject appears as a
    keyed fingerprint only; the chain still verifies."""
    await loaded_tenant(manager, SOURCE)
    report = await manager.export_tenant(SOURCE, tmp_path / "out", subject=SUBJECT)
    record = next(r for r in await manager.audit_log(SOURCE) if r.action == "data.export")
    assert record.outcome == "ok"
    assert record.detail["rows"] == report.rows
    assert record.detail["manifest_sha256"] == report.manifest_sha256
    assert SUBJECT not in json.dumps(record.detail)
    assert (await manager.verify_audit()).ok


@pytest.mark.parametrize("subject", [SUBJECT.upper(), "nobody"])
async def test_a_subject_export_of_an_id_no_row_reaches_is_refused_writing_nothing(
    manager: FixtureManager, tmp_path: Path, subject: str
) -> None:
    """It wrote an empty set and exited 0, as if the person had no data."""
    await loaded_tenant(manager, SOURCE)

    with pytest.raises(SubjectNotFoundError) as refused:
        await manager.export_tenant(SOURCE, tmp_path / "out", subject=subject)

    assert 4 == refused.value.exit_code
    assert "users.user_id" == refused.value.column
    assert not (tmp_path / "out").exists()
    assert not _partials(tmp_path)
    record = next(r for r in await manager.audit_log(SOURCE) if r.action == "data.export")
    assert "refused" == record.outcome


async def test_an_export_to_a_file_or_below_one_is_a_typed_error_leaving_the_file(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """A destination that is a file exists already; one below a file cannot be written
    (once a raw NotADirectoryError)."""
    await loaded_tenant(manager, SOURCE)
    mine = tmp_path / "notes.txt"
    mine.write_text("mine", encoding="utf-8")

    with pytest.raises(DestinationExistsError, match="exists already") as exists:
        await manager.export_tenant(SOURCE, mine)
    assert (exists.value.path, exists.value.tenant_id, exists.value.exit_code) == (mine, SOURCE, 2)
    with pytest.raises(StorageError, match="cannot write the export") as caught:
        await manager.export_tenant(SOURCE, mine / "export")

    assert caught.value.tenant_id == SOURCE
    assert "mine" == mine.read_text(encoding="utf-8")
    assert not _partials(tmp_path)


async def test_an_export_leaves_the_users_own_partial_files_alone(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """It wrote to, and first deleted, ``<out>.partial`` (a file or a whole directory)."""
    await loaded_tenant(manager, SOURCE)
    kept = tmp_path / "export.partial"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine", encoding="utf-8")
    (tmp_path / "export.tar.gz.partial").write_text("mine too", encoding="utf-8")

    await manager.export_tenant(SOURCE, tmp_path / "export")
    await manager.export_tenant(SOURCE, tmp_path / "export.tar.gz")

    assert "mine" == (kept / "notes.txt").read_text(encoding="utf-8")
    assert "mine too" == (tmp_path / "export.tar.gz.partial").read_text(encoding="utf-8")
    assert {"export", "export.tar.gz", "export.partial", "export.tar.gz.partial"} == _names(
        tmp_path, "export*"
    )
    assert not _names(tmp_path, ".export*")


async def test_an_export_removes_what_a_killed_one_left_and_takes_the_umasks_mode(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """A killed export's staging holds the tenant's data: the next export to the same
    place removes it. The export itself is made as any file the user writes."""
    await loaded_tenant(manager, SOURCE)
    left = tmp_path / ".export.0123456789abcdef.partial"
    left.mkdir()
    (left / "users.jsonl").write_text("{}", encoding="utf-8")
    (tmp_path / ".export.tar.gz.fedcba9876543210.partial").write_bytes(b"half")
    mask = os.umask(0o022)
    try:
        await manager.export_tenant(SOURCE, tmp_path / "export")
        await manager.export_tenant(SOURCE, tmp_path / "export.tar.gz")
    finally:
        os.umask(mask)

    assert not _names(tmp_path, ".export*")
    assert (0o755, 0o644) == (_mode(tmp_path / "export"), _mode(tmp_path / "export.tar.gz"))


async def test_an_export_of_a_tenant_behind_the_schema_head_is_refused_until_migrated(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """As a load is (once a storage error naming a column the old tables lack)."""
    await loaded_tenant(manager, SOURCE)
    await manager.migrate(tenants=[SOURCE], to="-1")
    out = tmp_path / "export"

    with pytest.raises(SchemaOutdatedError):
        await manager.export_tenant(SOURCE, out)
    assert not out.exists()
    assert not _partials(tmp_path)

    await manager.migrate(tenants=[SOURCE])
    assert (await manager.export_tenant(SOURCE, out)).total > 0


async def test_an_export_keeps_a_json_integer_beyond_64_bits_whole_through_a_reload(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """A JSON column holding 2**70 (which the loader reads exactly) crashed the export
    with orjson's raw "Integer exceeds 64-bit range"."""
    await loaded_tenant(manager, SOURCE)
    events = table(manager, "product_events")
    document = {"big": 2**70, "negative": -(2**80), "rate": 1.5, "name": "Zoë"}
    async with manager.store.session(SOURCE) as session:
        event_id = (await session.connection.execute(select(events.c.event_id))).scalar()
        await session.connection.execute(
            events.update().where(events.c.event_id == event_id).values(properties=document)
        )
    out = tmp_path / "export"

    await manager.export_tenant(SOURCE, out)
    await manager.create_tenant(TenantFixture(tenant_id=COPY, tier="enterprise"))
    await manager.load_fixtures(COPY, source=out)

    async with manager.store.session(COPY, readonly=True) as session:
        found = select(events.c.properties).where(events.c.event_id == event_id)
        assert document == (await session.connection.execute(found)).scalar()
    assert await table_rows(manager, COPY) == await table_rows(manager, SOURCE)


def _commit_a_new_listener(settings: Settings, template: dict[str, Any]) -> None:
    """In another thread (its own event loop and connections): a user and a play of
    theirs committed together, as a concurrent load does."""

    async def write() -> None:
        async with FixtureManager(settings) as other:
            user = {**template, "user_id": "late-listener", "email": "late@example.com"}
            play = {
                "user_id": "late-listener",
                "played_at": datetime(2026, 1, 1, tzinfo=UTC),
                "track_id": await _any_track(other),
                "ms_played": 1000,
            }
            async with other.store.session(SOURCE) as session:
                await session.connection.execute(table(other, "users").insert().values(user))
                await session.connection.execute(
                    table(other, "listening_events").insert().values(play)
                )

    asyncio.run(write())


async def _any_track(manager: FixtureManager) -> Any:
    tracks = table(manager, "tracks")
    async with manager.store.session(SOURCE, readonly=True) as session:
        return (await session.connection.execute(select(tracks.c.track_id))).scalar()


async def test_an_export_is_one_snapshot_while_a_load_commits_between_its_tables(
    manager: FixtureManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL each table was read at its own moment: a user and their play
    committed after users was read put the play alone in the export (which then did not
    reload: its user was missing). The export is the tenant as it was when it began."""
    await loaded_tenant(manager, SOURCE)
    before = await table_rows(manager, SOURCE)
    users = table(manager, "users")
    async with manager.store.session(SOURCE, readonly=True) as session:
        template = dict((await session.connection.execute(select(users))).mappings().first() or {})
    writer = threading.Thread(target=_commit_a_new_listener, args=(manager.settings, template))

    def midway(exported: Any) -> Any:
        if exported.name == "listening_events" and not writer.is_alive():
            writer.start()
            writer.join(timeout=3)  # SQLite's writer waits for the reader's lock
        return table_checksum(exported)

    monkeypatch.setattr("tenancy_fixtures.compliance.export.table_checksum", midway)
    out = tmp_path / "export"
    report = await manager.export_tenant(SOURCE, out)
    writer.join()

    assert report.rows == {name: len(rows) for name, rows in before.items() if rows}
    assert "late-listener" not in (out / "listening_events.jsonl").read_text()
    assert len((await table_rows(manager, SOURCE))["users"]) == len(before["users"]) + 1
    await manager.create_tenant(TenantFixture(tenant_id=COPY, tier="enterprise"))
    await manager.load_fixtures(COPY, source=out)
    assert await table_rows(manager, COPY) == before


async def test_two_exports_to_one_destination_leave_one_whole_export_and_a_typed_refusal(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """Each export removed what it took for a killed export's leftovers, the staging
    directory of the other one still writing included: that one failed with a raw "No
    such file or directory". Now the one that finishes first takes the name and the
    other is refused as finding it there."""
    await loaded_tenant(manager, SOURCE)
    out = tmp_path / "export"

    results = await asyncio.gather(
        manager.export_tenant(SOURCE, out),
        manager.export_tenant(SOURCE, out),
        return_exceptions=True,
    )

    refused = [r for r in results if isinstance(r, BaseException)]
    assert [type(r) for r in refused] == [DestinationExistsError], refused
    assert not _partials(tmp_path)
    await manager.create_tenant(TenantFixture(tenant_id=COPY, tier="enterprise"))
    await manager.load_fixtures(COPY, source=out)
    assert await table_rows(manager, COPY) == await table_rows(manager, SOURCE)


@pytest.mark.parametrize("name", ["export", "export.tar.gz"])
async def test_an_export_to_a_symbolic_link_is_refused_before_anything_is_written(
    manager: FixtureManager, tmp_path: Path, name: str
) -> None:
    """A link to an empty directory passed the check, the tables were written, then the
    rename failed with "Not a directory"; a dangling link to an archive was replaced."""
    await loaded_tenant(manager, SOURCE)
    empty = tmp_path / "empty"
    empty.mkdir()
    for link, target in ((tmp_path / name, empty), (tmp_path / f"dangling-{name}", "nowhere")):
        link.symlink_to(target)

        with pytest.raises(DestinationExistsError, match="exists already"):
            await manager.export_tenant(SOURCE, link)

        assert link.is_symlink()
        assert not any(empty.iterdir())
        assert not _partials(tmp_path)


async def test_an_export_of_an_infinite_float_is_refused_naming_the_row_writing_nothing(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """JSON has no infinity (or NaN, which PostgreSQL also stores): it was written as
    null, and the reload refused the export ("must not be null") or, for a nullable
    column, silently loaded NULL."""
    await loaded_tenant(manager, SOURCE)
    features = table(manager, "audio_features")
    async with manager.store.session(SOURCE) as session:
        track_id = (await session.connection.execute(select(features.c.track_id))).scalar()
        await session.connection.execute(
            features.update().where(features.c.track_id == track_id).values(tempo=float("inf"))
        )
    out = tmp_path / "export"

    with pytest.raises(RecordError, match=str(track_id)) as refused:
        await manager.export_tenant(SOURCE, out)

    assert (refused.value.tenant_id, refused.value.table) == (SOURCE, "audio_features")
    assert (refused.value.column, refused.value.rule) == ("tempo", "finite")
    assert not out.exists()
    assert not _partials(tmp_path)


@pytest.mark.parametrize("inside", ["tenants/evil.db", "tenants/archive.tar.gz", "copy"])
async def test_an_export_into_the_sqlite_data_directory_is_refused_writing_nothing(
    sqlite_manager: FixtureManager, inside: str
) -> None:
    """An export written under the store's own directory was taken for a tenant's
    storage: `validate-data --all` failed on an orphan tenant `evil`, and `cleanup
    --prefix` would have deleted the user's export."""
    await loaded_tenant(sqlite_manager, SOURCE)
    data_dir = sqlite_manager.settings.data_dir
    before = sorted(p.relative_to(data_dir) for p in data_dir.rglob("*"))

    with pytest.raises(DestinationExistsError, match="data directory") as caught:
        await sqlite_manager.export_tenant(SOURCE, data_dir / inside)

    assert (caught.value.tenant_id, caught.value.exit_code) == (SOURCE, 2)
    assert sorted(p.relative_to(data_dir) for p in data_dir.rglob("*")) == before
    assert all(report.ok for report in await sqlite_manager.validate_all())
