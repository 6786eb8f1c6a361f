"""The fixture-set generator: determinism, scaling, manifest, schema validity, flat memory."""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    Integer,
    String,
    Table,
    create_engine,
    event,
    insert,
)
from sqlalchemy.engine import Engine

from tenancy_fixtures.spotify.ai_models import ModelVocabulary, check_model, scan_for_plain_secrets
from tenancy_fixtures.spotify.generator import MAX_SCALE, GeneratedSet, generate_fixture_set
from tenancy_fixtures.spotify.schema import spotify_metadata
from tenancy_fixtures.store.base import TENANT_SCHEMA
from tests.memory import traced_peak

SPOTIFY_ID = re.compile(r"[0-9A-Za-z]{22}")
ISRC = re.compile(r"[A-Z]{2}[0-9A-Z]{3}[0-9]{7}")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")
TASKS = {"recommendation", "playlist_generation", "audio_analysis", "chat"}

Record = dict[str, Any]


def read_rows(path: Path) -> list[Record]:
    """Read one data file back with the stdlib; CSV empty fields become ``None``."""
    name = path.name
    if name.endswith(".csv"):
        with path.open(encoding="utf-8", newline="") as f:
            return [{k: (v if v != "" else None) for k, v in r.items()} for r in csv.DictReader(f)]
    if name.endswith(".jsonl.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f]
    if name.endswith(".jsonl"):
        with path.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f]
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, list)
    return data


def read_set(generated: GeneratedSet) -> dict[str, list[Record]]:
    return {f.table: read_rows(generated.directory / f.path) for f in generated.files}


def tables_by_name() -> dict[str, Table]:
    return {t.name: t for t in spotify_metadata().tables.values()}


def file_bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_same_seed_and_scale_give_identical_bytes(tmp_path: Path) -> None:
    first = generate_fixture_set(tmp_path / "a", scale=2, seed=7)
    second = generate_fixture_set(tmp_path / "b", scale=2, seed=7)

    assert first.files == second.files
    assert file_bytes(tmp_path / "a") == file_bytes(tmp_path / "b")


def test_regenerating_into_the_same_directory_overwrites_with_identical_bytes(
    tmp_path: Path,
) -> None:
    generate_fixture_set(tmp_path, seed=3)
    before = file_bytes(tmp_path)
    (tmp_path / "users.csv").write_text("garbage\n", encoding="utf-8")

    generate_fixture_set(tmp_path, seed=3)

    assert file_bytes(tmp_path) == before


def test_a_different_seed_gives_different_data(tmp_path: Path) -> None:
    a = read_set(generate_fixture_set(tmp_path / "a", seed=1))
    b = read_set(generate_fixture_set(tmp_path / "b", seed=2))

    for table in ("users", "artists", "albums", "tracks", "playlists", "listening_events"):
        assert a[table] != b[table], table


def test_row_counts_grow_with_scale(tmp_path: Path) -> None:
    small = {f.table: f.rows for f in generate_fixture_set(tmp_path / "s", scale=1).files}
    large = {f.table: f.rows for f in generate_fixture_set(tmp_path / "l", scale=4).files}

    assert small["ai_models"] == large["ai_models"]
    for table, rows in small.items():
        if table != "ai_models":
            assert large[table] > rows, table
    for table, per_unit in {
        "users": 20,
        "artists": 10,
        "albums": 20,
        "tracks": 100,
        "audio_features": 100,
        "playlists": 10,
        "listening_events": 500,
        "workspaces": 2,
        "product_events": 40,
    }.items():
        assert large[table] == 4 * per_unit, table


def test_reported_row_counts_match_the_files(tmp_path: Path) -> None:
    generated = generate_fixture_set(tmp_path, scale=2)
    rows = read_set(generated)

    assert {f.table: f.rows for f in generated.files} == {t: len(r) for t, r in rows.items()}
    assert generated.total_rows == sum(len(r) for r in rows.values())


def test_every_object_uses_the_table_columns_in_order(tmp_path: Path) -> None:
    tables = tables_by_name()
    for table, rows in read_set(generate_fixture_set(tmp_path)).items():
        columns = [c.name for c in tables[table].columns if c.name in rows[0]]
        assert rows, table
        for row in rows:
            assert list(row) == columns, table


def test_every_foreign_key_resolves(tmp_path: Path) -> None:
    data = read_set(generate_fixture_set(tmp_path, scale=2, seed=11))
    checked = 0
    for table in spotify_metadata().sorted_tables:
        for fk in table.foreign_key_constraints:
            parent = fk.referred_table.name
            child_cols = [c.name for c in fk.columns]
            parent_cols = [e.column.name for e in fk.elements]
            if table.name not in data or child_cols[0] not in data[table.name][0]:
                continue
            keys = {tuple(str(r[c]) for c in parent_cols) for r in data[parent]}
            for row in data[table.name]:
                values = [row[c] for c in child_cols]
                if None not in values:
                    assert tuple(str(v) for v in values) in keys, (table.name, child_cols, values)
                    checked += 1
    assert checked > 0


def test_ai_models_have_exactly_one_default_per_task(tmp_path: Path) -> None:
    models = read_set(generate_fixture_set(tmp_path))["ai_models"]

    defaults = Counter(m["task"] for m in models if m["is_default"])
    assert defaults == dict.fromkeys(TASKS, 1)
    assert {m["task"] for m in models} <= TASKS
    assert all(isinstance(m["parameters"], dict) and m["parameters"] for m in models)


def test_ai_models_pass_the_ai_model_loader_checks(tmp_path: Path) -> None:
    """Credentials are environment references or none; tiers, features and parameters
    are what the AI model loader accepts."""
    models = read_set(generate_fixture_set(tmp_path))["ai_models"]
    vocabulary = ModelVocabulary.from_templates()

    for row in models:
        scan_for_plain_secrets(row)
        check_model(row, vocabulary, secret_key=lambda: None)
    credentials = [m["credentials"] for m in models]
    assert all(c is None or set(c) == {"env"} for c in credentials)
    assert any(c is not None for c in credentials)
    assert any(m["tiers"] for m in models)
    assert any(m["features"] for m in models)


def test_comments_are_by_members_about_playlists_shared_in_their_workspace(
    tmp_path: Path,
) -> None:
    """Authors are members of the workspace; a commented playlist is shared in it; a
    comment is written after its author joined."""
    data = read_set(generate_fixture_set(tmp_path, scale=3, seed=2))
    joined = {(m["workspace_id"], m["user_id"]): m["joined_at"] for m in data["workspace_members"]}
    shared = {(p["workspace_id"], p["playlist_id"]) for p in data["workspace_playlists"]}

    assert data["comments"]
    for comment in data["comments"]:
        member = (comment["workspace_id"], comment["author_id"])
        assert member in joined
        assert comment["created_at"] > joined[member]
        if comment["playlist_id"] is not None:
            assert (comment["workspace_id"], comment["playlist_id"]) in shared
    assert len({c["comment_id"] for c in data["comments"]}) == len(data["comments"])


def test_product_events_are_by_existing_users_after_they_signed_up(tmp_path: Path) -> None:
    """Every event names a generated user, never before that user was created."""
    data = read_set(generate_fixture_set(tmp_path, scale=2, seed=6))
    created = {u["user_id"]: u["created_at"] for u in data["users"]}

    for row in data["product_events"]:
        assert row["occurred_at"] >= created[row["user_id"]]
        assert row["event_type"]
    ids = [e["event_id"] for e in data["product_events"]]
    assert len(set(ids)) == len(ids)


def test_every_workspace_owner_is_a_member_with_role_owner(tmp_path: Path) -> None:
    data = read_set(generate_fixture_set(tmp_path, scale=3))
    roles = {(m["workspace_id"], m["user_id"]): m["role"] for m in data["workspace_members"]}

    for workspace in data["workspaces"]:
        assert roles[(workspace["workspace_id"], workspace["owner_id"])] == "owner"
    assert Counter(roles.values())["owner"] == len(data["workspaces"])
    assert set(roles.values()) <= {"owner", "editor", "viewer"}


def test_a_play_in_an_album_or_artist_context_names_the_album_of_its_track(
    tmp_path: Path,
) -> None:
    """The album of a context is the played track's, the artist that album's artist;
    a playlist context names a generated playlist."""
    data = read_set(generate_fixture_set(tmp_path, scale=3, seed=8))
    album_of = {t["track_id"]: t["album_id"] for t in data["tracks"]}
    artist_of = {a["album_id"]: a["artist_id"] for a in data["albums"]}
    playlists = {p["playlist_id"] for p in data["playlists"]}
    kinds: Counter[str] = Counter()
    for play in data["listening_events"]:
        if play["context_uri"] is None:
            continue
        _, kind, ident = play["context_uri"].split(":")
        kinds[kind] += 1
        album = album_of[play["track_id"]]
        expected = {"album": {album}, "artist": {artist_of[album]}, "playlist": playlists}
        assert ident in expected[kind], play
    assert set(kinds) == {"album", "artist", "playlist"}


def _traced_peak(directory: Path, scale: int) -> int:
    return traced_peak(lambda: generate_fixture_set(directory, scale=scale, seed=1))


def test_memory_does_not_grow_with_the_scale(tmp_path: Path) -> None:
    """Nothing written is kept: six times the rows peak within 96 KiB of the smaller set
    (about 30 KiB apart here; keeping the ids later tables refer to, as the generator
    once did, costs about 18 KiB per unit of scale: 200 KiB more)."""
    generate_fixture_set(tmp_path / "warm-up", scale=1)  # the schema check, lazy imports

    small = _traced_peak(tmp_path / "small", 2)
    large = _traced_peak(tmp_path / "large", 12)

    assert large - small < 96 * 1024, (small, large)


@pytest.mark.parametrize("scale", [0, -1, MAX_SCALE + 1])
def test_a_scale_below_one_or_past_the_largest_raises_value_error(
    tmp_path: Path, scale: int
) -> None:
    with pytest.raises(ValueError, match="scale"):
        generate_fixture_set(tmp_path / "set", scale=scale)
    assert not (tmp_path / "set").exists()


def test_manifest_lists_every_file_in_foreign_key_order(tmp_path: Path) -> None:
    generated = generate_fixture_set(tmp_path / "set", scale=2, seed=5, name="demo")
    text = (tmp_path / "set" / "fixtures.json").read_text(encoding="utf-8")
    manifest = json.loads(text)

    assert text.endswith("}\n")
    assert manifest["name"] == "demo"
    assert manifest["version"] == 1
    assert manifest["generator"] == {"scale": 2, "seed": 5}
    paths = [f["path"] for f in manifest["files"]]
    on_disk = {p.name for p in (tmp_path / "set").iterdir()} - {"fixtures.json"}
    assert sorted(paths) == sorted(on_disk)
    assert paths == [f.path.as_posix() for f in generated.files]

    tables = tables_by_name()
    order = [f["table"] for f in manifest["files"]]
    assert set(order) <= set(tables)
    assert {"users", "tracks", "listening_events", "ai_models", "workspaces"} <= set(order)
    for position, name in enumerate(order):
        parents = {fk.column.table.name for fk in tables[name].foreign_keys} - {name}
        assert parents <= set(order[:position]), name


def test_values_match_the_documented_formats(tmp_path: Path) -> None:
    data = read_set(generate_fixture_set(tmp_path, scale=2, seed=4))

    for table, id_column in {
        "artists": "artist_id",
        "albums": "album_id",
        "tracks": "track_id",
        "playlists": "playlist_id",
    }.items():
        assert all(SPOTIFY_ID.fullmatch(r[id_column]) for r in data[table]), table
    assert all(ISRC.fullmatch(t["isrc"]) for t in data["tracks"])
    emails = [u["email"] for u in data["users"]]
    assert len(set(emails)) == len(emails)
    assert all(
        u["country"] is None or re.fullmatch(r"[A-Z]{2}", u["country"]) for u in data["users"]
    )
    for artist in data["artists"]:
        assert isinstance(artist["genres"], list)
        assert all(isinstance(g, str) for g in artist["genres"])
    precisions = Counter(a["release_date_precision"] for a in data["albums"])
    assert set(precisions) <= {"day", "year"}
    for album in data["albums"]:
        pattern = r"\d{4}-\d\d-\d\d" if album["release_date_precision"] == "day" else r"\d{4}"
        assert re.fullmatch(pattern, album["release_date"])
    tracks_per_album = Counter(t["album_id"] for t in data["tracks"])
    assert all(a["total_tracks"] == tracks_per_album[a["album_id"]] for a in data["albums"])
    events = data["listening_events"]
    assert len({(e["user_id"], e["played_at"]) for e in events}) == len(events)
    for playlist, count in Counter(p["playlist_id"] for p in data["playlist_tracks"]).items():
        positions = sorted(
            p["position"] for p in data["playlist_tracks"] if p["playlist_id"] == playlist
        )
        assert positions == list(range(count))
    timestamps = {
        "users": "created_at",
        "playlists": "created_at",
        "playlist_tracks": "added_at",
        "listening_events": "played_at",
        "workspaces": "created_at",
        "workspace_members": "joined_at",
        "workspace_playlists": "added_at",
        "comments": "created_at",
        "product_events": "occurred_at",
    }
    for table, column in timestamps.items():
        assert all(TIMESTAMP.fullmatch(r[column]) for r in data[table]), table


def _sqlite_value(column_type: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column_type, DateTime):
        parsed = datetime.fromisoformat(value)
        assert parsed.utcoffset() is not None
        return parsed
    if isinstance(value, str):
        if isinstance(column_type, Boolean):
            return {"true": True, "false": False}[value]
        if isinstance(column_type, Integer):
            return int(value)
        if isinstance(column_type, Float):
            return float(value)
        if isinstance(column_type, JSON):
            return json.loads(value)
    return value


def _foreign_keys_on(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA foreign_keys = ON")


def test_generated_set_loads_into_sqlite_with_every_constraint_enforced(tmp_path: Path) -> None:
    generated = generate_fixture_set(tmp_path, scale=2, seed=9)
    data = read_set(generated)
    metadata = spotify_metadata()
    tables = {t.name: t for t in metadata.tables.values()}
    engine = create_engine("sqlite://").execution_options(
        schema_translate_map={TENANT_SCHEMA: None}
    )
    _foreign_keys_on(engine.engine)

    with engine.begin() as conn:
        metadata.create_all(conn)
        for generated_file in generated.files:
            table = tables[generated_file.table]
            rows = []
            for row in data[table.name]:
                given = [c for c in table.columns if c.name in row]
                for column in given:
                    if isinstance(column.type, String) and column.type.length:
                        value = row[column.name]
                        assert value is None or len(value) <= column.type.length, column
                rows.append({c.name: _sqlite_value(c.type, row[c.name]) for c in given})
            conn.execute(insert(table), rows)
