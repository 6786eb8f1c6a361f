"""Extended streaming-history files read ahead by parse worker processes: the same staged
rows, origins and loaded tenant as reading them in the loading process, refusals that
name the source file and entry, on both backends."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tenancy_fixtures import FixtureManager, RecordError, Settings, spotify
from tenancy_fixtures.loading import sources
from tenancy_fixtures.loading.data_loader import DataLoader
from tenancy_fixtures.loading.parse_workers import POOL, call_in_workers
from tenancy_fixtures.loading.sources import (
    SourceLoader,
    find_source_files,
    source_file,
    whole_json,
)
from tenancy_fixtures.spotify.formats import streaming_history
from tenancy_fixtures.spotify.schema import spotify_metadata
from tenancy_fixtures.spotify.spotify_ids import derived_id
from tenancy_fixtures.store import control_plane

FORMAT = "spotify-history"
LISTENER = {"user_id": "listener", "display_name": "Lis Tener"}
LINK = f"https://open.spotify.com/track/{derived_id('track', 'linked')}"


def _entry(n: int, **changes: Any) -> dict[str, Any]:
    """An extended-export play of one of seven tracks, at second ``n`` of a day."""
    track = n % 7
    entry = {
        "ts": f"2024-07-{1 + n // 86400:02d}T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z",
        "platform": "android",
        "ms_played": 30_000 + n,
        "conn_country": "DE",
        "master_metadata_track_name": f"Song {track}",
        "master_metadata_album_artist_name": f"Band {track % 3}",
        "master_metadata_album_album_name": f"Record {track % 2}",
        "spotify_track_uri": f"spotify:track:{derived_id('track', str(track))}",
        "reason_start": "trackdone",
        "reason_end": "trackdone",
        "shuffle": n % 2 == 0,
        "skipped": n % 5 == 0,
    }
    entry.update(changes)
    return entry


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """Three export files: plain plays, plays repeating earlier times, and entries the
    format reads one at a time (an episode, a time with an offset, a link)."""
    directory = tmp_path / "export"
    directory.mkdir()
    files = [
        [_entry(n) for n in range(40)],
        [
            *(_entry(n) for n in range(40, 70)),
            _entry(5),
            _entry(71, spotify_track_uri=None, episode_name="Talk"),
            _entry(72, ts="2024-07-01T02:01:12+02:00"),
            _entry(
                73, spotify_track_uri=f"https://open.spotify.com/track/{derived_id('track', '9')}"
            ),
        ],
        [_entry(n) for n in range(74, 120)],
    ]
    for number, entries in enumerate(files):
        path = directory / f"Streaming_History_Audio_{number}.json"
        path.write_text(json.dumps(entries), encoding="utf-8")
    return directory


@pytest.fixture
def read_ahead_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Read every export ahead in the workers, however small; the calls they were sent."""
    monkeypatch.setattr(DataLoader, "parallel_min_bytes", 0)
    sent: list[Any] = []
    real = call_in_workers

    def spy(workers: Any, calls: Any) -> Iterator[Any]:
        def noted() -> Iterator[Any]:
            for call in calls:
                sent.append(call)
                yield call

        return real(workers, noted())

    monkeypatch.setattr(sources, "call_in_workers", spy)
    return sent


def _staged(export: Path, workers: int) -> tuple[dict[str, bytes], list[list[Any]]]:
    """The staged files and each staged line's origin, reading ``export`` with that
    many parse workers."""
    spotify.register()
    directory, names = find_source_files(export)
    files = [source_file(directory, n, format=FORMAT, options=LISTENER) for n in names]
    loader = SourceLoader(files, metadata=spotify_metadata())
    loader.stage(Settings(parse_workers=workers))
    try:
        staged = {f.relative: f.path.read_bytes() for f in loader.files}
        origins = [
            [loader._sink.decode(code) for code in codes]  # type: ignore[union-attr]
            for codes in loader._origins.values()
        ]
        return staged, origins
    finally:
        loader.close()


def test_files_read_ahead_by_workers_stage_what_the_loading_process_stages(
    export: Path, read_ahead_calls: list[Any]
) -> None:
    in_process = _staged(export, workers=0)
    assert [] == read_ahead_calls

    in_workers = _staged(export, workers=2)

    assert 3 == len(read_ahead_calls)
    assert in_process == in_workers
    events = in_workers[0]["_staged/listening_events.jsonl"].splitlines()
    assert 120 - 1 - 1 == len(events)  # the repeated time and the episode are not staged


def test_files_stage_in_the_loading_process_while_another_load_holds_every_worker(
    export: Path, read_ahead_calls: list[Any]
) -> None:
    expected = _staged(export, workers=0)

    with POOL.lend(2) as held:
        assert held
        staged = _staged(export, workers=len(held))

    assert [] == read_ahead_calls
    assert expected == staged


async def _checksums(manager: FixtureManager, tenant: str) -> dict[str, tuple[int, str]]:
    async with manager.store.control(readonly=True) as conn:
        writes = await control_plane.table_checksums(conn, tenant)
    return {w.table: (w.rows, w.checksum) for w in writes}


async def test_an_export_read_ahead_by_workers_loads_what_one_read_in_process_loads(
    settings: Settings, export: Path, read_ahead_calls: list[Any]
) -> None:
    loaded = {}
    for tenant, workers in (("in_process", 0), ("in_workers", 2)):
        options = {"parse_workers": workers}
        async with FixtureManager(settings.model_copy(update=options)) as manager:
            await manager.create_tenant(tenant)
            report = await manager.load_fixtures(tenant, export, format=FORMAT, options=LISTENER)
            loaded[tenant] = (report.rows, await _checksums(manager, tenant))
            assert (await manager.validate_tenant(tenant)).ok
            await manager.drop_tenant(tenant)

    assert 3 == len(read_ahead_calls)
    assert loaded["in_process"] == loaded["in_workers"]


async def test_a_refused_entry_of_a_file_read_ahead_names_its_file_and_entry_and_nothing_loads(
    settings: Settings, export: Path, read_ahead_calls: list[Any]
) -> None:
    path = export / "Streaming_History_Audio_2.json"
    entries = json.loads(path.read_text(encoding="utf-8"))
    entries[3]["ms_played"] = -5
    path.write_text(json.dumps(entries), encoding="utf-8")

    async with FixtureManager(settings.model_copy(update={"parse_workers": 2})) as manager:
        await manager.create_tenant("refused")
        with pytest.raises(RecordError) as caught:
            await manager.load_fixtures("refused", export, format=FORMAT, options=LISTENER)

        assert path in {args[0].path for _, args in read_ahead_calls}
        assert (path.name, 4, "ms_played") == (
            caught.value.path,
            caught.value.record,
            caught.value.column,
        )
        async with manager.store.session("refused", readonly=True) as session:
            tables = [t for t in session.metadata.sorted_tables if t.schema is not None]
            assert 0 == sum((await control_plane.count_rows(session.connection, tables)).values())
        await manager.drop_tenant("refused")


def test_options_that_cannot_travel_to_a_worker_do_not_stop_the_read_ahead(
    export: Path, read_ahead_calls: list[Any]
) -> None:
    spotify.register()
    directory, names = find_source_files(export)
    # An option the format reads (a display name not a string: the id is used).
    options = {**LISTENER, "display_name": threading.Lock()}
    files = [source_file(directory, n, format=FORMAT, options=options) for n in names]
    loader = SourceLoader(files, metadata=spotify_metadata())
    try:
        loader.stage(Settings(parse_workers=2))

        assert 3 == len(read_ahead_calls)
        assert 118 == len(loader.files[-1].path.read_bytes().splitlines())
    finally:
        loader.close()


def test_a_file_a_worker_declined_is_not_read_whole_again_here(
    tmp_path: Path, read_ahead_calls: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    basic = tmp_path / "basic"
    basic.mkdir()
    entries = [
        {"endTime": f"2024-07-01 10:{n:02d}", "artistName": "A", "trackName": "T", "msPlayed": n}
        for n in range(5)
    ]
    (basic / "StreamingHistory0.json").write_text(json.dumps(entries), encoding="utf-8")
    read_here: list[str] = []
    real = whole_json

    def noted(file: Any) -> Any:
        read_here.append(file.relative)
        return real(file)

    monkeypatch.setattr(streaming_history, "whole_json", noted)  # this process only

    staged, _ = _staged(basic, workers=2)

    assert 1 == len(read_ahead_calls)
    assert [] == read_here
    assert 5 == len(staged["_staged/listening_events.jsonl"].splitlines())


async def test_a_play_length_past_64_bits_is_refused_naming_its_entry_either_way(
    settings: Settings, export: Path, read_ahead_calls: list[Any]
) -> None:
    path = export / "Streaming_History_Audio_1.json"
    entries = json.loads(path.read_text(encoding="utf-8"))
    entries[6]["ms_played"] = entries[8]["ms_played"] = 2**64
    entries[6]["ts"] = entries[6]["ts"].replace("Z", "+00:00")  # read entry by entry
    path.write_text(json.dumps(entries), encoding="utf-8")

    for workers in (0, 2):
        options = {"parse_workers": workers}
        async with FixtureManager(settings.model_copy(update=options)) as manager:
            await manager.create_tenant("huge")
            with pytest.raises(RecordError) as caught:
                await manager.load_fixtures("huge", export, format=FORMAT, options=LISTENER)
            await manager.drop_tenant("huge")

        assert (path.name, 7, "ms_played") == (
            caught.value.path,
            caught.value.record,
            caught.value.column,
        )
