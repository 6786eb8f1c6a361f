"""Staging source files for a lenient load: a document its format refuses is taken back
whole (the rows it staged, what its format remembered of them) and set aside; a file
of plain plays, staged whole, journals nothing."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from tenancy_fixtures.loading.readers import iter_records
from tenancy_fixtures.loading.sources import (
    RowSink,
    SetAside,
    SourceFile,
    SourceLoader,
    read_source_file,
    source_file,
)
from tenancy_fixtures.spotify.formats.streaming_history import StreamingHistoryFormat
from tenancy_fixtures.spotify.schema import spotify_metadata

SAMPLES = Path(__file__).parent.parent / "data" / "spotify"
LISTENER = {"user_id": "listener"}
PLAYED = ["HmbdtF7LxBIT12Mi5vzzIl", "vSI8GOczALa0N2TANopNIa", "1XpCpYVVbxFhqXGER2KpUO"]
LONE = "LoneTrack0000000000001"
OPENAI_KEY = "sk-proj-" + "Q7xV2mLp9RtZ4kWb8NcJ3hYd6FsA1eGu"


def _entry(n: int, **changes: Any) -> dict[str, Any]:
    """An extended-history play at minute ``n``."""
    track = PLAYED[n % 3]
    return {
        "ts": f"2024-07-01T10:{n:02d}:00Z",
        "platform": "ios",
        "ms_played": 1000 * n,
        "conn_country": "SE",
        "master_metadata_track_name": f"Track {n % 3}",
        "master_metadata_album_artist_name": f"Artist {n % 3}",
        "master_metadata_album_album_name": "Album",
        "spotify_track_uri": f"spotify:track:{track}",
        "shuffle": False,
        "skipped": None,
        **changes,
    }


#: The first entry stages the listener, the fourth a track nothing else names, before
#: each is refused.
BAD = {
    0: _entry(0, ms_played=-1),
    3: _entry(3, spotify_track_uri=f"spotify:track:{LONE}", shuffle="x"),
}


class CountingSink(RowSink):
    """A sink counting the documents it journaled."""

    journaled = 0

    def begin_document(self) -> None:
        type(self).journaled += 1
        super().begin_document()


def _staged(*paths: Path, set_aside: bool) -> dict[str, Any]:
    """The rows staged from ``paths`` (one reader) per staged file, and the documents
    set aside."""
    files = [
        source_file(p.parent, p.name, format="spotify-history", options=LISTENER) for p in paths
    ]
    reader = StreamingHistoryFormat(LISTENER)
    with tempfile.TemporaryDirectory() as staging:
        sink = CountingSink(Path(staging), spotify_metadata(), files, set_aside=set_aside)
        for index, file in enumerate(files):
            read_source_file(reader, file, index, sink)
        sink.close()
        found: dict[str, Any] = {
            staged.relative_to(staging).as_posix(): sorted(staged.read_bytes().splitlines())
            for staged in sorted(Path(staging).glob("*/*.jsonl"))
        }
    found["set aside"] = [(a.index, a.error.column, a.table) for a in sink.set_aside or ()]
    return found


def _the_one_set_aside(file: SourceFile) -> SetAside:
    """``file`` staged leniently on its own: the one document it sets aside."""
    loader = SourceLoader([file], metadata=spotify_metadata())
    try:
        loader.stage(set_aside=True)
        (aside,) = loader.set_aside
    finally:
        loader.close()
    return aside


def test_a_set_aside_entry_leaves_the_staged_rows_as_if_it_were_not_there(
    tmp_path: Path,
) -> None:
    """Staged leniently (entry by entry: a ``shuffle`` is no boolean), the file stages
    what the file without the refused entries stages: not the listener's row taken back
    with the first (the next play stages it again), nor the lone track of the fourth."""
    entries = [BAD.get(n, _entry(n)) for n in range(8)]
    with_bad = tmp_path / "with_bad.json"
    with_bad.write_text(json.dumps(entries), encoding="utf-8")
    without = tmp_path / "without.json"
    without.write_text(json.dumps([e for n, e in enumerate(entries) if n not in BAD]))

    lenient = _staged(with_bad, set_aside=True)
    clean = _staged(without, set_aside=False)

    assert [
        (1, "ms_played", "listening_events"),
        (4, "shuffle", "listening_events"),
    ] == lenient.pop("set aside")
    assert [] == clean.pop("set aside")
    assert clean == lenient
    assert LONE not in repr(lenient)


def test_a_track_taken_back_is_staged_by_a_later_file_read_whole(tmp_path: Path) -> None:
    """The lone track the refused entry of one file staged (read entry by entry: its
    ``shuffle`` is no boolean) is forgotten by the format too: a later file of plain
    plays, staged whole, stages it from its own play of it."""
    first = tmp_path / "a.json"
    first.write_text(json.dumps([_entry(1), BAD[3]]), encoding="utf-8")
    clean_first = tmp_path / "a_clean.json"
    clean_first.write_text(json.dumps([_entry(1)]), encoding="utf-8")
    later = tmp_path / "b.json"
    lone = _entry(5, spotify_track_uri=f"spotify:track:{LONE}")
    later.write_text(json.dumps([_entry(4), lone]), encoding="utf-8")

    lenient = _staged(first, later, set_aside=True)
    clean = _staged(clean_first, later, set_aside=False)

    assert [(2, "shuffle", "listening_events")] == lenient.pop("set aside")
    clean.pop("set aside")
    assert clean == lenient
    assert LONE in repr(lenient)


def test_a_lenient_staging_of_a_file_of_plain_plays_journals_no_entry(tmp_path: Path) -> None:
    """Staged whole, a file of plain plays costs a lenient load no journal; with a bad
    entry first (it stages the listener), only that entry is journaled and set aside,
    and the plays stage as the file without it does."""
    clean = tmp_path / "clean.json"
    clean.write_text(json.dumps([_entry(n) for n in range(1, 50)]), encoding="utf-8")
    CountingSink.journaled = 0
    expected = _staged(clean, set_aside=True)
    assert 0 == CountingSink.journaled

    one_bad = tmp_path / "one_bad.json"
    one_bad.write_text(json.dumps([BAD[0], *map(_entry, range(1, 50))]), encoding="utf-8")
    staged = _staged(one_bad, set_aside=True)
    assert 1 == CountingSink.journaled
    assert [(1, "ms_played", "listening_events")] == staged.pop("set aside")
    expected.pop("set aside")
    assert expected == staged


def test_a_set_aside_entry_staged_whole_is_kept_as_read(tmp_path: Path) -> None:
    """The record kept of an entry the whole-file path set aside is the entry as the
    file holds it (fields the decode did not read included, none added)."""
    path = tmp_path / "plays.json"
    bad = {**BAD[0], "ip_addr": "192.0.2.10"}
    path.write_text(json.dumps([_entry(1), bad]), encoding="utf-8")
    file = source_file(tmp_path, "plays.json", format="spotify-history", options=LISTENER)
    aside = _the_one_set_aside(file)

    assert (bad, 2) == (aside.record, aside.index)


def test_a_set_aside_model_config_keeps_no_plain_key(tmp_path: Path) -> None:
    """An ai-models config refused for a plain key is set aside with the key redacted."""
    models = [
        {
            "model_id": name,
            "provider": "openai",
            "model_name": "gpt-4o-mini",
            "version": "2024-07-18",
            "task": "chat",
            "parameters": {"temperature": 0.4},
            "credentials": credentials,
            "tiers": ["premium", "enterprise"],
            "is_default": name == "chat-main",
        }
        for name, credentials in (
            ("chat-main", {"env": "OPENAI_API_KEY"}),
            ("chat-leaky", {"api_key": OPENAI_KEY}),
        )
    ]
    (tmp_path / "models.json").write_text(json.dumps(models), encoding="utf-8")
    file = source_file(tmp_path, "models.json", format="ai-models")
    aside = _the_one_set_aside(file)

    assert ("credentials:plain_text", "ai_models", 2) == (
        aside.error.rule,
        aside.table,
        aside.index,
    )
    assert "chat-leaky" == aside.record["model_id"]
    assert OPENAI_KEY not in json.dumps(aside.record)


def test_a_play_time_a_set_aside_page_took_is_free_for_a_later_page(tmp_path: Path) -> None:
    """A recently-played page refused for its first item's context (after that play
    took its time) is set aside whole; a later page's play at that time stages."""
    page = json.loads((SAMPLES / "recently_played.json").read_text(encoding="utf-8"))
    first = page["items"][0]
    bad = {**page, "items": [{**first, "context": {"uri": "spotify:nothing"}}]}
    (tmp_path / "a.json").write_text(json.dumps(bad), encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps({**page, "items": [first]}), encoding="utf-8")
    files = [
        source_file(tmp_path, name, format="spotify-api", options=LISTENER)
        for name in ("a.json", "b.json")
    ]
    loader = SourceLoader(files, metadata=spotify_metadata())
    try:
        loader.stage(set_aside=True)
        (aside,) = loader.set_aside
        staged = {f.table: list(iter_records(f)) for f in loader.files}
    finally:
        loader.close()

    assert ("a.json", "listening_events") == (str(aside.error.path), aside.table)
    assert ["2025-01-10T08:00:00.123000+00:00"] == [
        r.values["played_at"] for r in staged["listening_events"]
    ]
