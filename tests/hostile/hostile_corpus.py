"""The hostile-input corpus: broken fixture sets built at test time, and what each must do.

Every case starts from :func:`build_base_set`, a small valid set cut from the built-in
demo (users, artists, albums, five tracks, listed in a ``fixtures.json``), and changes
it: a broken file is written and listed, usually for a table loaded after the base
ones, so a refused load has rows to roll back. Each case says either what it must
raise (:class:`Refused`: the error class and the file, line or record, and column it
names) or what it must load (:class:`Loads`: rows per table, and values that must
read back unchanged). Big inputs (10 MB strings, 100,000 levels of nesting) are
generated here, never committed.

Decisions the cases pin:

- A UTF-8 byte order mark is skipped in JSON, JSON Lines, CSV, YAML and the manifest.
- An empty ``.jsonl``, a header-only ``.csv``, an empty YAML file and ``[]`` load
  zero rows; an empty (or blank) ``.json`` and a zero-byte ``.csv`` are format errors,
  since neither is a document of its format.
- A key given twice in one object is a format error naming the record's column; a
  value nested deeper than :data:`MAX_DEPTH` levels is a format error.
- Integers beyond a column's range are record errors where the parser reads them
  (JSON Lines, CSV, YAML, and ``.json``: an array ijson's fast number reading refuses
  for an integer beyond 64 bits is read again with exact numbers); a JSON Lines
  integer orjson reads as an infinite float is a format error.
- Text longer than ``max_text_length`` (1 MiB) is a record error, text of exactly that
  length loads verbatim from JSON and JSON Lines; CSV fields longer than the csv
  module's limit (128 KiB) are format errors.
- A tenant's refused load leaves its tables empty and records no data fixture; values
  that are SQL are stored as text and every table is still there afterwards.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tenancy_fixtures.errors import (
    FixtureError,
    FixtureFormatError,
    FixtureSetError,
    RecordError,
)
from tenancy_fixtures.fixtures.templates import BUILTIN_TEMPLATE_DIR
from tenancy_fixtures.loading.readers import MAX_DEPTH, MAX_RECORD_BYTES
from tenancy_fixtures.settings import Settings

__all__ = [
    "ANY_LINE",
    "BASE_ROWS",
    "CASES",
    "SQL_STRINGS",
    "YAML_RAN",
    "Case",
    "Loads",
    "Refused",
    "build_base_set",
    "build_case",
]

DEMO = BUILTIN_TEMPLATE_DIR / "fixtures" / "demo"
MANIFEST = "fixtures.json"
#: ``Refused.line`` for errors whose line depends on the compressor: any line >= 1.
ANY_LINE = -1
TEN_MB = 10 * 1024 * 1024
#: The longest text an unbounded text column takes (the ``max_text_length`` default).
MAX_TEXT = int(Settings.model_fields["max_text_length"].default)
DEEP = 100_000
#: YAML nesting for the deep case: past the parser's recursion limit (about 600
#: levels), yet cheap to scan (PyYAML's scanner slows with depth).
DEEP_YAML = 1_000
#: The file the YAML tag case would create if its tag were constructed.
YAML_RAN = "hostile-yaml-ran"
#: SQL a careless loader would run; it must be stored as text and read back as given.
SQL_STRINGS = (
    "'); DROP TABLE users;--",
    'Robert"); DELETE FROM tracks; --',
    "x' OR '1'='1",
)


@dataclass(frozen=True)
class Refused:
    """The load must raise ``error`` naming this place, and leave the tenant empty."""

    error: type[FixtureError]
    #: ``error.path`` (the file's path in the set) for errors about one data file.
    path: str | None = None
    line: int | None = None
    record: int | None = None
    column: str | None = None
    #: A fragment of the error's message.
    says: str = ""
    #: A fragment of ``str(error)`` (for set-level errors: the entry refused).
    names: str = ""


@dataclass(frozen=True)
class Loads:
    """The load must succeed with these rows per table (every other table: none)."""

    rows: Mapping[str, int]
    #: Per table, rows (some columns) that must read back exactly as written.
    values: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """One hostile input: how to break the base set, and what must happen."""

    name: str
    #: Breaks the base set in the directory given (whatever it returns is ignored).
    build: Callable[[Path], object]
    outcome: Refused | Loads
    #: Why a strict xfail: a known bug outside the readers (``None``: must pass).
    bug: str | None = None


# --- material from the demo set -------------------------------------------------------


def _demo_json(name: str) -> list[dict[str, Any]]:
    records = json.loads((DEMO / name).read_text(encoding="utf-8"))
    assert isinstance(records, list)
    return records


def _demo_jsonl(name: str, count: int | None = None) -> list[dict[str, Any]]:
    lines = (DEMO / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()][:count]


def _demo_csv(name: str, count: int) -> list[dict[str, Any]]:
    with (DEMO / name).open(encoding="utf-8", newline="") as handle:
        return [dict(row) for row, _ in zip(csv.DictReader(handle), range(count), strict=False)]


USERS = _demo_csv("users.csv", 3)
ARTISTS = _demo_json("artists.json")
ALBUMS = _demo_json("albums.json")
TRACKS = _demo_jsonl("tracks.jsonl", 5)
_TRACK_IDS = {t["track_id"] for t in TRACKS}
AUDIO_FEATURES = [f for f in _demo_jsonl("audio_features.jsonl") if f["track_id"] in _TRACK_IDS]
AI_MODEL = _demo_json("ai_models.json")[0]
PLAYLIST: dict[str, Any] = {
    "playlist_id": "h0st1lePlaylist0000001",
    "owner_id": USERS[0]["user_id"],
    "name": "Hostile Mix",
    "description": "Songs for testing.",
    "public": True,
    "collaborative": False,
    "created_at": "2026-01-01T00:00:00+00:00",
}
BASE_ROWS = {"users": len(USERS), "artists": len(ARTISTS), "albums": len(ALBUMS), "tracks": 5}


# --- encoders -------------------------------------------------------------------------


def as_json(records: Sequence[Mapping[str, Any]]) -> bytes:
    """A ``.json`` file: an array, one member a line (as people write them)."""
    return json.dumps(list(records), indent=1, ensure_ascii=False).encode()


def as_jsonl(records: Sequence[Mapping[str, Any]]) -> bytes:
    """A ``.jsonl`` file: one object a line."""
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)


def csv_cell(value: Any) -> str:
    """A value as a CSV cell: empty for null, JSON for a mapping or list."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def as_csv(records: Sequence[Mapping[str, Any]]) -> bytes:
    """A ``.csv`` file: a header of the first record's columns, then one row each."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = list(records[0])
    writer.writerow(columns)
    for record in records:
        writer.writerow([csv_cell(record.get(c)) for c in columns])
    return out.getvalue().encode()


def as_yaml(records: Sequence[Mapping[str, Any]]) -> bytes:
    """A ``.yaml`` file: a list of mappings."""
    return yaml.safe_dump([dict(r) for r in records], allow_unicode=True).encode()


def changed(records: Sequence[Mapping[str, Any]], index: int, **values: Any) -> list[Any]:
    """``records`` with ``values`` set in the record at ``index`` (0-based)."""
    copy = [dict(r) for r in records]
    copy[index].update(values)
    return copy


def nested(depth: int) -> str:
    """JSON text of arrays nested ``depth`` levels: ``[[...]]``."""
    return "[" * depth + "]" * depth


# --- building sets --------------------------------------------------------------------


def _manifest(directory: Path) -> dict[str, Any]:
    document = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _save_manifest(directory: Path, document: Mapping[str, Any]) -> None:
    (directory / MANIFEST).write_text(json.dumps(document, indent=1), encoding="utf-8")


def build_base_set(directory: Path) -> Path:
    """Write the base set (users, artists, albums, five tracks) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "users.csv").write_bytes(as_csv(USERS))
    (directory / "artists.json").write_bytes(as_json(ARTISTS))
    (directory / "albums.json").write_bytes(as_json(ALBUMS))
    (directory / "tracks.jsonl").write_bytes(as_jsonl(TRACKS))
    files = [
        {"table": table, "path": path}
        for table, path in (
            ("users", "users.csv"),
            ("artists", "artists.json"),
            ("albums", "albums.json"),
            ("tracks", "tracks.jsonl"),
        )
    ]
    _save_manifest(directory, {"name": "hostile-base", "files": files})
    return directory


def put(directory: Path, name: str, data: bytes) -> None:
    """Write ``name`` and make it the only file of its table (named by its stem)."""
    table = name.split(".", 1)[0]
    document = _manifest(directory)
    for entry in document["files"]:
        if entry.get("table") == table and entry["path"] != name:
            (directory / entry["path"]).unlink(missing_ok=True)
    document["files"] = [e for e in document["files"] if e.get("table") != table]
    document["files"].append({"table": table, "path": name})
    _save_manifest(directory, document)
    (directory / name).write_bytes(data)


def list_entry(directory: Path, entry: str | Mapping[str, Any]) -> None:
    """Add a raw entry to the manifest's ``files``."""
    document = _manifest(directory)
    document["files"].append(entry)
    _save_manifest(directory, document)


def outside(directory: Path) -> Path:
    """A valid tracks file outside the set (next to it), for escapes to point at."""
    target = directory.parent / "outside" / "tracks.jsonl"
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(as_jsonl(TRACKS))
    return target


def without_manifest(directory: Path) -> None:
    """Remove the manifest: the set is then every data file in the directory."""
    (directory / MANIFEST).unlink()


def build_case(case: Case, root: Path) -> Path:
    """The broken set of ``case``, built under ``root``; returns its directory."""
    directory = build_base_set(root / "set")
    case.build(directory)
    return directory


# --- the cases ------------------------------------------------------------------------

#: Every demo track (their albums and artists are in the base set), gzipped.
_GZ_TRACKS = gzip.compress(as_jsonl(_demo_jsonl("tracks.jsonl")), mtime=0)
_JSON_TRACKS = as_json(TRACKS)
_BIG = "x" * TEN_MB
_PLAYLIST_ROWS = {**BASE_ROWS, "playlists": 1}


def _longest_text_case(name: str, fmt: Callable[[Sequence[Mapping[str, Any]]], bytes]) -> Case:
    longest = "\u00e9" * MAX_TEXT
    return Case(
        f"longest-text-{name.rsplit('.', 1)[1]}-loads-verbatim",
        lambda d: put(d, name, fmt(changed([PLAYLIST], 0, description=longest))),
        Loads(
            _PLAYLIST_ROWS,
            {"playlists": [{"playlist_id": PLAYLIST["playlist_id"], "description": longest}]},
        ),
    )


def _ten_mb_text_case(name: str, fmt: Callable[[Sequence[Mapping[str, Any]]], bytes]) -> Case:
    ext = name.rsplit(".", 1)[1]
    return Case(
        f"ten-mb-text-{ext}-is-over-the-text-limit",
        lambda d: put(d, name, fmt(changed([PLAYLIST], 0, description=_BIG))),
        Refused(
            RecordError,
            name,
            line=1 if ext == "jsonl" else None,
            record=1 if ext == "json" else None,
            column="description",
            says=f"longer than {MAX_TEXT}",
        ),
    )


def _bom(name: str, data: bytes) -> Case:
    return Case(
        f"utf8-bom-{name.split('.', 1)[1].replace('.', '-')}-is-skipped",
        lambda d: put(d, name, b"\xef\xbb\xbf" + data),
        Loads(BASE_ROWS),
    )


def _escape(name: str, edit: Callable[[Path], None], says: str, names: str = "") -> Case:
    return Case(name, edit, Refused(FixtureSetError, says=says, names=names))


def _symlink_entry(directory: Path) -> None:
    (directory / "tracks.jsonl").unlink()
    (directory / "tracks.jsonl").symlink_to(outside(directory))


def _symlink_no_manifest(directory: Path) -> None:
    _symlink_entry(directory)
    without_manifest(directory)


def _symlink_manifest(directory: Path) -> None:
    away = directory.parent / "outside" / MANIFEST
    away.parent.mkdir(exist_ok=True)
    shutil.copy(directory / MANIFEST, away)
    (directory / MANIFEST).unlink()
    (directory / MANIFEST).symlink_to(away)


def _device_symlink(directory: Path) -> None:
    (directory / "tracks.jsonl").unlink()
    (directory / "tracks.jsonl").symlink_to("/dev/zero")


def _fifo(directory: Path) -> None:
    (directory / "tracks.jsonl").unlink()
    os.mkfifo(directory / "tracks.jsonl")


def _directory_entry(directory: Path) -> None:
    (directory / "tracks.jsonl").unlink()
    (directory / "tracks.jsonl").mkdir()


def _listed_twice(directory: Path) -> None:
    list_entry(directory, {"table": "tracks", "path": "tracks.jsonl"})


def _repeated_key_line(records: Sequence[Mapping[str, Any]], index: int, key: str) -> bytes:
    """JSON Lines whose record ``index`` gives ``key`` a second time (last value differs)."""
    lines = as_jsonl(records).splitlines(keepends=True)
    record = json.dumps(records[index])
    lines[index] = (record[:-1] + f', "{key}": "second"}}\n').encode()
    return b"".join(lines)


def _json_with_repeated_key(records: Sequence[Mapping[str, Any]], index: int, key: str) -> bytes:
    items = [json.dumps(r) for r in records]
    items[index] = items[index][:-1] + f', "{key}": "second"}}'
    return ("[\n" + ",\n".join(items) + "\n]\n").encode()


def _spaced_repeated_key(records: Sequence[Mapping[str, Any]], index: int, key: str) -> bytes:
    """As :func:`_repeated_key_line`, written with a space before every colon."""
    lines = [json.dumps(r, separators=(", ", " : ")) for r in records]
    lines[index] = lines[index][:-1] + f', "{key}" : "second"}}'
    return "".join(line + "\n" for line in lines).encode()


def _model_with(parameters_json: str) -> str:
    """An ai_models record as JSON text whose ``parameters`` is the given JSON text."""
    record = json.dumps({**AI_MODEL, "parameters": None})
    return record.replace('"parameters": null', f'"parameters": {parameters_json}')


def _event_with(properties_json: str) -> str:
    """A product_events record as JSON text whose ``properties`` (a JSON column no domain
    rule shapes, unlike an AI model's parameters) is the given JSON text."""
    record = json.dumps(
        {
            "event_id": "hostile-event-1",
            "user_id": USERS[0]["user_id"],
            "occurred_at": "2026-01-01T00:00:00+00:00",
            "event_type": "page_view",
            "properties": None,
        }
    )
    return record.replace('"properties": null', f'"properties": {properties_json}')


def _deep_yaml(depth: int) -> bytes:
    record = yaml.safe_dump([{**AI_MODEL, "parameters": "PLACEHOLDER"}], default_flow_style=None)
    return record.replace("PLACEHOLDER", nested(depth)).encode()


_BILLION_LAUGHS = (
    b'- {model_id: m, provider: p, model_name: n, version: "1", task: chat, parameters: *i}\n'
)
_LAUGHS_HEAD = b"".join(
    f"- &{chr(97 + level)} [".encode()
    + b", ".join(
        [f"*{chr(96 + level)}".encode() if level else b'"lol"'] * 10,
    )
    + b"]\n"
    for level in range(9)
)


@functools.cache
def _bomb(head: bytes, *, filler: bytes = b"x") -> bytes:
    """``head``, then more than MAX_RECORD_BYTES without a newline, gzipped to ~70 KB."""
    return gzip.compress(head + filler * (MAX_RECORD_BYTES + 1), compresslevel=1, mtime=0)


def _broken_line(data: bytes, index: int) -> bytes:
    """``data`` with line ``index`` (0-based) cut before its last field's value."""
    lines = data.splitlines(keepends=True)
    lines[index] = lines[index][: lines[index].rindex(b":") + 1] + b" }\n"
    return b"".join(lines)


def _users_csv_quoted_newline(tail: str) -> bytes:
    """users.csv whose second user's name spans lines 3-4; ``tail`` is line 5 onwards."""
    head = as_csv(USERS[:2]).decode()
    head = head.replace(USERS[1]["display_name"], '"Ada\nLovelace"', 1)
    return (head + tail).encode()


def _user_row(**values: str) -> str:
    row = {**USERS[2], **values}
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(row.values())
    return out.getvalue()


CASES: list[Case] = [
    # --- malformed and truncated ------------------------------------------------------
    Case(
        "malformed-json-array",
        lambda d: put(
            d, "tracks.json", _JSON_TRACKS.replace(f'"{TRACKS[2]["name"]}"'.encode(), b"Bad", 1)
        ),
        Refused(FixtureFormatError, "tracks.json", record=3, says="malformed JSON after record 2"),
    ),
    Case(
        "truncated-json-array",
        lambda d: put(
            d, "tracks.json", _JSON_TRACKS[: _JSON_TRACKS.index(TRACKS[3]["name"].encode())]
        ),
        Refused(FixtureFormatError, "tracks.json", record=4, says="malformed JSON after record 3"),
    ),
    Case(
        "malformed-jsonl-line",
        lambda d: put(d, "tracks.jsonl", _broken_line(as_jsonl(TRACKS), 2)),
        Refused(FixtureFormatError, "tracks.jsonl", line=3, says="malformed JSON"),
    ),
    Case(
        "truncated-jsonl-last-line",
        lambda d: put(d, "tracks.jsonl", as_jsonl(TRACKS)[:-40]),
        Refused(FixtureFormatError, "tracks.jsonl", line=5, says="malformed JSON"),
    ),
    Case(
        "truncated-gzip",
        lambda d: put(d, "tracks.jsonl.gz", _GZ_TRACKS[: len(_GZ_TRACKS) // 2]),
        Refused(FixtureFormatError, "tracks.jsonl.gz", line=ANY_LINE, says="unreadable"),
    ),
    Case(
        "truncated-gzip-json-array",
        lambda d: put(d, "tracks.json.gz", gzip.compress(_JSON_TRACKS, mtime=0)[:-20]),
        Refused(FixtureFormatError, "tracks.json.gz", record=ANY_LINE, says="unreadable"),
    ),
    # --- byte order marks and encodings -----------------------------------------------
    _bom("tracks.json", _JSON_TRACKS),
    _bom("tracks.jsonl", as_jsonl(TRACKS)),
    _bom("users.csv", as_csv(USERS)),
    _bom("tracks.yaml", as_yaml(TRACKS)),
    Case(
        "utf8-bom-inside-gzip-is-skipped",
        lambda d: put(d, "tracks.jsonl.gz", gzip.compress(b"\xef\xbb\xbf" + as_jsonl(TRACKS))),
        Loads(BASE_ROWS),
    ),
    Case(
        "utf8-bom-in-manifest-is-skipped",
        lambda d: (d / MANIFEST).write_bytes(b"\xef\xbb\xbf" + (d / MANIFEST).read_bytes()),
        Loads(BASE_ROWS),
    ),
    Case(
        "invalid-utf8-jsonl",
        lambda d: put(
            d,
            "tracks.jsonl",
            as_jsonl(TRACKS).replace(TRACKS[1]["name"].encode(), b"Caf\xe9", 1),
        ),
        Refused(FixtureFormatError, "tracks.jsonl", line=2, says="unreadable"),
    ),
    Case(
        "invalid-utf8-json-array",
        lambda d: put(
            d, "tracks.json", _JSON_TRACKS.replace(TRACKS[1]["name"].encode(), b"Caf\xe9", 1)
        ),
        Refused(FixtureFormatError, "tracks.json", record=2, says="malformed JSON after record 1"),
    ),
    Case(
        "invalid-utf8-csv",
        lambda d: put(
            d, "users.csv", as_csv(USERS).replace(USERS[1]["display_name"].encode(), b"\xff", 1)
        ),
        Refused(FixtureFormatError, "users.csv", line=3, says="unreadable"),
    ),
    Case(
        "invalid-utf8-yaml",
        lambda d: put(
            d, "tracks.yaml", as_yaml(TRACKS).replace(TRACKS[1]["name"].encode(), b"\xff", 1)
        ),
        Refused(FixtureFormatError, "tracks.yaml", says="malformed YAML"),
    ),
    # --- CSV ----------------------------------------------------------------------------
    Case(
        "csv-quoted-newline-loads",
        lambda d: put(d, "users.csv", _users_csv_quoted_newline(_user_row())),
        Loads(
            BASE_ROWS,
            {"users": [{"user_id": USERS[1]["user_id"], "display_name": "Ada\nLovelace"}]},
        ),
    ),
    Case(
        "csv-ragged-row-after-a-quoted-newline-names-its-line",
        lambda d: put(d, "users.csv", _users_csv_quoted_newline(_user_row().strip() + ",x\n")),
        Refused(FixtureFormatError, "users.csv", line=5, says="row has 7 fields, the header has 6"),
    ),
    Case(
        "csv-bad-value-after-a-quoted-newline-names-its-line",
        lambda d: put(d, "users.csv", _users_csv_quoted_newline(_user_row(country="XXX"))),
        Refused(RecordError, "users.csv", line=5, column="country"),
    ),
    Case(
        "csv-ragged-row",
        lambda d: put(
            d,
            "users.csv",
            as_csv(USERS).replace(USERS[1]["created_at"].encode(), b"2026-01-01T00:00:00Z,x", 1),
        ),
        Refused(FixtureFormatError, "users.csv", line=3, says="row has 7 fields, the header has 6"),
    ),
    Case(
        "csv-unterminated-quote",
        lambda d: put(
            d,
            "users.csv",
            as_csv(USERS).replace(USERS[1]["display_name"].encode(), b'"Ada', 1),
        ),
        Refused(FixtureFormatError, "users.csv", line=3, says="malformed CSV"),
    ),
    Case(
        "csv-header-names-a-column-twice",
        lambda d: put(d, "users.csv", as_csv(USERS).replace(b"country", b"email", 1)),
        Refused(FixtureFormatError, "users.csv", line=1, column="email", says="twice"),
    ),
    # --- repeated keys ------------------------------------------------------------------
    Case(
        "repeated-key-jsonl",
        lambda d: put(d, "tracks.jsonl", _repeated_key_line(TRACKS, 1, "name")),
        Refused(FixtureFormatError, "tracks.jsonl", line=2, column="name", says="appears twice"),
    ),
    Case(
        "repeated-key-jsonl-with-space-before-colon",
        lambda d: put(d, "tracks.jsonl", _spaced_repeated_key(TRACKS, 1, "name")),
        Refused(FixtureFormatError, "tracks.jsonl", line=2, column="name", says="appears twice"),
    ),
    Case(
        "repeated-key-json-array",
        lambda d: put(d, "tracks.json", _json_with_repeated_key(TRACKS, 1, "name")),
        Refused(FixtureFormatError, "tracks.json", record=2, column="name", says="appears twice"),
    ),
    Case(
        "repeated-key-inside-a-json-value",
        lambda d: put(
            d,
            "ai_models.json",
            ("[" + _model_with('{"top_k": 1, "top_k": 2}') + "]").encode(),
        ),
        Refused(
            FixtureFormatError, "ai_models.json", record=1, column="parameters", says="'top_k'"
        ),
    ),
    Case(
        "repeated-key-inside-a-jsonl-value",
        lambda d: put(
            d, "ai_models.jsonl", (_model_with('{"top_k": 1, "top_k": 2}') + "\n").encode()
        ),
        Refused(FixtureFormatError, "ai_models.jsonl", line=1, column="parameters", says="'top_k'"),
    ),
    Case(
        "repeated-key-yaml",
        lambda d: put(
            d,
            "tracks.yaml",
            as_yaml(TRACKS).replace(
                f"  name: {TRACKS[1]['name']}\n".encode(),
                f"  name: {TRACKS[1]['name']}\n  name: second\n".encode(),
                1,
            ),
        ),
        Refused(FixtureFormatError, "tracks.yaml", record=2, column="name", says="appears twice"),
    ),
    Case(
        "repeated-key-in-manifest",
        lambda d: (d / MANIFEST).write_text(
            (d / MANIFEST).read_text(encoding="utf-8")[:-2] + ', "name": "again"}',
            encoding="utf-8",
        ),
        Refused(FixtureSetError, says="appears twice", names=MANIFEST),
    ),
    # --- NaN, Infinity and numbers out of range -----------------------------------------
    Case(
        "nan-in-jsonl",
        lambda d: put(
            d,
            "audio_features.jsonl",
            as_jsonl(AUDIO_FEATURES).replace(b'"danceability": ', b'"danceability": NaN, "x": ', 2),
        ),
        Refused(FixtureFormatError, "audio_features.jsonl", line=1, says="malformed JSON"),
    ),
    Case(
        "infinity-in-json-array",
        lambda d: put(
            d,
            "audio_features.json",
            as_json(AUDIO_FEATURES).replace(b'"tempo": ', b'"tempo": Infinity, "x": ', 1),
        ),
        Refused(FixtureFormatError, "audio_features.json", record=1, says="malformed JSON"),
    ),
    Case(
        "nan-in-csv",
        lambda d: put(
            d, "audio_features.csv", as_csv(changed(AUDIO_FEATURES, 1, danceability="NaN"))
        ),
        Refused(RecordError, "audio_features.csv", line=3, column="danceability", says="finite"),
    ),
    Case(
        "infinity-in-csv",
        lambda d: put(
            d, "audio_features.csv", as_csv(changed(AUDIO_FEATURES, 0, loudness="-Infinity"))
        ),
        Refused(RecordError, "audio_features.csv", line=2, column="loudness", says="finite"),
    ),
    Case(
        "nan-in-yaml",
        lambda d: put(
            d,
            "audio_features.yaml",
            as_yaml(changed(AUDIO_FEATURES, 1, danceability=float("nan"))),
        ),
        Refused(RecordError, "audio_features.yaml", record=2, column="danceability"),
    ),
    Case(
        "float-overflow-in-jsonl",
        lambda d: put(
            d,
            "audio_features.jsonl",
            as_jsonl(AUDIO_FEATURES).replace(b'"tempo": ', b'"tempo": 1e400, "x": ', 1),
        ),
        Refused(FixtureFormatError, "audio_features.jsonl", line=1, says="malformed JSON"),
    ),
    Case(
        "int32-out-of-range-jsonl",
        lambda d: put(d, "tracks.jsonl", as_jsonl(changed(TRACKS, 2, track_number=2**31))),
        Refused(RecordError, "tracks.jsonl", line=3, column="track_number", says="out of range"),
    ),
    Case(
        "int32-out-of-range-csv",
        lambda d: put(
            d, "audio_features.csv", as_csv(changed(AUDIO_FEATURES, 0, key=str(-(2**31) - 1)))
        ),
        Refused(RecordError, "audio_features.csv", line=2, column="key", says="out of range"),
    ),
    Case(
        "int64-out-of-range-jsonl",
        lambda d: put(d, "artists.jsonl", as_jsonl(changed(ARTISTS, 1, followers=2**63))),
        Refused(RecordError, "artists.jsonl", line=2, column="followers", says="out of range"),
    ),
    Case(
        "int64-out-of-range-csv",
        lambda d: put(d, "artists.csv", as_csv(changed(ARTISTS, 1, followers=2**63))),
        Refused(RecordError, "artists.csv", line=3, column="followers", says="out of range"),
    ),
    Case(
        "int64-out-of-range-json-array",
        lambda d: put(d, "artists.json", as_json(changed(ARTISTS, 1, followers=2**63))),
        Refused(RecordError, "artists.json", record=2, column="followers", says="out of range"),
    ),
    Case(
        "huge-integer-jsonl",
        lambda d: put(d, "tracks.jsonl", as_jsonl(changed(TRACKS, 1, duration_ms=10**400))),
        Refused(RecordError, "tracks.jsonl", line=2, column="duration_ms", says="out of range"),
    ),
    Case(
        "huge-integer-json-array",
        lambda d: put(d, "tracks.json", as_json(changed(TRACKS, 1, duration_ms=10**400))),
        Refused(RecordError, "tracks.json", record=2, column="duration_ms", says="out of range"),
    ),
    Case(
        "huge-integer-csv",
        lambda d: put(d, "artists.csv", as_csv(changed(ARTISTS, 0, followers=10**400))),
        Refused(RecordError, "artists.csv", line=2, column="followers", says="expected an integer"),
    ),
    Case(
        "huge-integer-yaml",
        lambda d: put(d, "tracks.yaml", as_yaml(changed(TRACKS, 3, duration_ms=10**400))),
        Refused(RecordError, "tracks.yaml", record=4, column="duration_ms", says="out of range"),
    ),
    Case(
        "integer-just-below-int64-is-not-rounded-into-range",
        lambda d: put(d, "playlists.jsonl", as_jsonl([{**PLAYLIST, "followers": -(2**63) - 1}])),
        Refused(RecordError, "playlists.jsonl", line=1, column="followers", says="out of range"),
    ),
    Case(
        "timestamp-that-leaves-the-calendar-in-utc",
        lambda d: put(
            d,
            "playlists.jsonl",
            as_jsonl([{**PLAYLIST, "created_at": "0001-01-01T00:00:00+01:00"}]),
        ),
        Refused(RecordError, "playlists.jsonl", line=1, column="created_at"),
    ),
    Case(
        "nul-inside-a-json-value",
        lambda d: put(d, "ai_models.jsonl", (_model_with('{"note": "a\\u0000b"}') + "\n").encode()),
        Refused(RecordError, "ai_models.jsonl", line=1, column="parameters", says="NUL"),
    ),
    Case(
        "nul-in-a-text-value",
        lambda d: put(d, "tracks.jsonl", as_jsonl(changed(TRACKS, 1, name="a\u0000b"))),
        Refused(RecordError, "tracks.jsonl", line=2, column="name", says="NUL"),
    ),
    # --- big values ---------------------------------------------------------------------
    Case(
        "ten-mb-string-in-a-bounded-column",
        lambda d: put(d, "tracks.jsonl", as_jsonl(changed(TRACKS, 1, name=_BIG))),
        Refused(RecordError, "tracks.jsonl", line=2, column="name", says="longer than 400"),
    ),
    _ten_mb_text_case("playlists.json", as_json),
    _ten_mb_text_case("playlists.jsonl", as_jsonl),
    _longest_text_case("playlists.json", as_json),
    _longest_text_case("playlists.jsonl", as_jsonl),
    Case(
        "ten-mb-csv-field-is-over-the-csv-field-limit",
        lambda d: put(d, "playlists.csv", as_csv(changed([PLAYLIST], 0, description=_BIG))),
        Refused(FixtureFormatError, "playlists.csv", line=2, says="field larger than field limit"),
    ),
    Case(
        "gzip-bomb-without-a-newline-jsonl",
        lambda d: put(d, "tracks.jsonl.gz", _bomb(b"")),
        Refused(FixtureFormatError, "tracks.jsonl.gz", line=1, says="a line is larger than"),
    ),
    Case(
        # Whitespace, not a long string: ijson re-reads an unfinished string at every
        # chunk (quadratic), which would make this test slow; the limit is the same.
        "gzip-bomb-inside-a-json-array",
        lambda d: put(d, "tracks.json.gz", _bomb(b"[", filler=b" ")),
        Refused(FixtureFormatError, "tracks.json.gz", record=1, says="a record is larger than"),
    ),
    # --- deep nesting -------------------------------------------------------------------
    Case(
        "deeply-nested-json-array-value",
        lambda d: put(d, "ai_models.json", ("[" + _model_with(nested(DEEP)) + "]").encode()),
        Refused(
            FixtureFormatError,
            "ai_models.json",
            record=1,
            column="parameters",
            says=f"nested deeper than {MAX_DEPTH}",
        ),
    ),
    Case(
        "deeply-nested-jsonl-value",
        lambda d: put(d, "ai_models.jsonl", (_model_with(nested(DEEP)) + "\n").encode()),
        Refused(
            FixtureFormatError, "ai_models.jsonl", line=1, says=f"nested deeper than {MAX_DEPTH}"
        ),
    ),
    Case(
        "jsonl-value-nested-past-the-limit",
        lambda d: put(d, "ai_models.jsonl", (_model_with(nested(MAX_DEPTH)) + "\n").encode()),
        Refused(
            FixtureFormatError,
            "ai_models.jsonl",
            line=1,
            column="parameters",
            says=f"nested deeper than {MAX_DEPTH}",
        ),
    ),
    Case(
        "jsonl-value-nested-to-the-limit-loads",
        lambda d: put(
            d, "product_events.jsonl", (_event_with(nested(MAX_DEPTH - 1)) + "\n").encode()
        ),
        Loads({**BASE_ROWS, "product_events": 1}),
    ),
    Case(
        "json-array-value-nested-to-the-limit-loads",
        lambda d: put(
            d, "product_events.json", ("[" + _event_with(nested(MAX_DEPTH - 1)) + "]").encode()
        ),
        Loads({**BASE_ROWS, "product_events": 1}),
    ),
    Case(
        "deeply-nested-yaml-value",
        lambda d: put(d, "ai_models.yaml", _deep_yaml(DEEP_YAML)),
        Refused(FixtureFormatError, "ai_models.yaml", says=f"nested deeper than {MAX_DEPTH}"),
    ),
    Case(
        "yaml-value-nested-past-the-limit",
        lambda d: put(d, "ai_models.yaml", _deep_yaml(MAX_DEPTH)),
        Refused(
            FixtureFormatError,
            "ai_models.yaml",
            record=1,
            column="parameters",
            says=f"nested deeper than {MAX_DEPTH}",
        ),
    ),
    Case(
        "deeply-nested-json-text-in-a-csv-cell",
        lambda d: put(
            d,
            "ai_models.csv",
            as_csv([{**AI_MODEL, "parameters": "PARAMS"}]).replace(
                b"PARAMS", nested(DEEP).encode()
            ),
        ),
        Refused(RecordError, "ai_models.csv", line=2, column="parameters"),
    ),
    Case(
        "deeply-nested-manifest",
        lambda d: (d / MANIFEST).write_text('{"files": ' + nested(DEEP) + "}", encoding="utf-8"),
        Refused(FixtureSetError, says="nested too deeply", names=MANIFEST),
    ),
    Case(
        "yaml-aliases-that-expand-a-billion-times",
        lambda d: put(d, "ai_models.yaml", _LAUGHS_HEAD + _BILLION_LAUGHS),
        Refused(FixtureFormatError, "ai_models.yaml", says="aliases expand"),
    ),
    Case(
        "yaml-alias-inside-itself",
        lambda d: put(
            d,
            "ai_models.yaml",
            b'- &m {model_id: m, provider: p, model_name: n, version: "1", task: chat,'
            b" parameters: *m}\n",
        ),
        Refused(FixtureFormatError, "ai_models.yaml", says="refers to a value that contains it"),
    ),
    Case(
        "yaml-python-tag-is-not-constructed",
        lambda d: put(
            d,
            "tracks.yaml",
            f'- !!python/object/apply:os.system ["touch {d / YAML_RAN}"]\n'.encode(),
        ),
        Refused(FixtureFormatError, "tracks.yaml", line=1, says="malformed YAML"),
    ),
    # --- SQL in values ------------------------------------------------------------------
    Case(
        "sql-in-jsonl-strings-is-stored-verbatim",
        lambda d: put(
            d,
            "tracks.jsonl",
            as_jsonl([{**t, "name": s} for t, s in zip(TRACKS, SQL_STRINGS, strict=False)]),
        ),
        Loads(
            {**BASE_ROWS, "tracks": len(SQL_STRINGS)},
            {
                "tracks": [
                    {"track_id": t["track_id"], "name": s}
                    for t, s in zip(TRACKS, SQL_STRINGS, strict=False)
                ]
            },
        ),
    ),
    Case(
        "sql-in-csv-strings-is-stored-verbatim",
        lambda d: put(
            d,
            "users.csv",
            as_csv([{**u, "display_name": s} for u, s in zip(USERS, SQL_STRINGS, strict=True)]),
        ),
        Loads(
            BASE_ROWS,
            {
                "users": [
                    {"user_id": u["user_id"], "display_name": s}
                    for u, s in zip(USERS, SQL_STRINGS, strict=True)
                ]
            },
        ),
    ),
    Case(
        "sql-in-a-column-name",
        lambda d: put(
            d,
            "tracks.jsonl",
            as_jsonl(changed(TRACKS, 0, **{'name"; DROP TABLE users;--': "x"})),
        ),
        Refused(
            RecordError,
            "tracks.jsonl",
            line=1,
            column='name"; DROP TABLE users;--',
            says="unknown column",
        ),
    ),
    Case(
        "sql-in-a-table-name",
        lambda d: put(d, "users; DROP TABLE tracks.jsonl", b""),
        Refused(FixtureSetError, says="unknown table", names="DROP TABLE"),
    ),
    # --- paths that leave the set -------------------------------------------------------
    _escape(
        "manifest-entry-with-parent-path",
        lambda d: list_entry(d, os.path.relpath(outside(d), d)),
        "resolves outside",
        "../outside/tracks.jsonl",
    ),
    _escape(
        "manifest-entry-climbing-out-of-a-subdirectory",
        lambda d: list_entry(d, "sub/../" + os.path.relpath(outside(d), d)),
        "resolves outside",
        "sub/../../outside/tracks.jsonl",
    ),
    _escape(
        "manifest-entry-with-absolute-path",
        lambda d: list_entry(d, str(outside(d))),
        "must be relative",
        "outside/tracks.jsonl",
    ),
    _escape(
        "symlinked-file-pointing-outside",
        _symlink_entry,
        "resolves outside",
        "tracks.jsonl",
    ),
    _escape(
        "symlinked-file-pointing-outside-without-manifest",
        _symlink_no_manifest,
        "resolves outside",
        "tracks.jsonl",
    ),
    _escape(
        "symlinked-file-pointing-at-a-device",
        _device_symlink,
        "resolves outside",
        "tracks.jsonl",
    ),
    _escape("symlinked-manifest-pointing-outside", _symlink_manifest, "resolves outside", MANIFEST),
    _escape("fifo-named-as-a-data-file", _fifo, "is not a regular file", "tracks.jsonl"),
    _escape("directory-named-as-a-data-file", _directory_entry, "is not a regular file"),
    _escape(
        "manifest-entry-for-a-missing-file",
        lambda d: list_entry(d, "playlists.json"),
        "file does not exist",
        "playlists.json",
    ),
    _escape("manifest-lists-a-file-twice", _listed_twice, "a second time", "tracks.jsonl"),
    # --- unknown tables and columns -----------------------------------------------------
    _escape(
        "unknown-table-file",
        lambda d: put(d, "no_such_table.jsonl", as_jsonl(TRACKS)),
        "unknown table 'no_such_table'",
    ),
    _escape(
        "unknown-table-in-a-manifest-entry",
        lambda d: list_entry(d, {"path": "tracks.jsonl", "table": "no_such_table"}),
        "unknown table 'no_such_table'",
    ),
    Case(
        "unknown-column-jsonl",
        lambda d: put(d, "tracks.jsonl", as_jsonl(changed(TRACKS, 1, bogus=1))),
        Refused(RecordError, "tracks.jsonl", line=2, column="bogus", says="unknown column"),
    ),
    Case(
        "unknown-column-json-array",
        lambda d: put(d, "tracks.json", as_json(changed(TRACKS, 0, bogus=1))),
        Refused(RecordError, "tracks.json", record=1, column="bogus", says="unknown column"),
    ),
    Case(
        "unknown-column-csv",
        lambda d: put(d, "users.csv", as_csv(changed(USERS, 0, bogus="1"))),
        Refused(RecordError, "users.csv", line=2, column="bogus", says="unknown column"),
    ),
    # --- empty files --------------------------------------------------------------------
    Case(
        "empty-json-file-is-refused",
        lambda d: put(d, "tracks.json", b""),
        Refused(FixtureFormatError, "tracks.json", says="the file is empty"),
    ),
    Case(
        "blank-json-file-is-refused",
        lambda d: put(d, "tracks.json", b"\xef\xbb\xbf \n\t\n"),
        Refused(FixtureFormatError, "tracks.json", says="the file is empty"),
    ),
    Case(
        "empty-json-array-loads-no-rows",
        lambda d: put(d, "tracks.json", b"[]\n"),
        Loads({**BASE_ROWS, "tracks": 0}),
    ),
    Case(
        "empty-jsonl-file-loads-no-rows",
        lambda d: put(d, "tracks.jsonl", b""),
        Loads({**BASE_ROWS, "tracks": 0}),
    ),
    Case(
        "header-only-csv-loads-no-rows",
        lambda d: put(d, "users.csv", as_csv(USERS).splitlines(keepends=True)[0]),
        Loads({**BASE_ROWS, "users": 0}),
    ),
    Case(
        "header-only-csv-with-an-unknown-column-is-refused",
        lambda d: put(d, "users.csv", b"user_id,display_name,bogus\n"),
        Refused(RecordError, "users.csv", line=1, column="bogus", says="unknown column"),
    ),
    Case(
        "zero-byte-csv-is-refused",
        lambda d: put(d, "users.csv", b""),
        Refused(FixtureFormatError, "users.csv", line=1, says="no header row"),
    ),
    Case(
        "empty-yaml-file-loads-no-rows",
        lambda d: put(d, "tracks.yaml", b""),
        Loads({**BASE_ROWS, "tracks": 0}),
    ),
    # --- files that are not what their extension says -----------------------------------
    Case(
        "gzip-named-json",
        lambda d: put(d, "tracks.json", gzip.compress(_JSON_TRACKS)),
        Refused(FixtureFormatError, "tracks.json", record=1, says="malformed JSON"),
    ),
    Case(
        "csv-named-json",
        lambda d: put(d, "users.json", as_csv(USERS)),
        Refused(FixtureFormatError, "users.json", record=1, says="malformed JSON"),
    ),
    Case(
        "jsonl-named-json",
        lambda d: put(d, "tracks.json", as_jsonl(TRACKS)),
        Refused(FixtureFormatError, "tracks.json", record=1, says="must hold a JSON array"),
    ),
    Case(
        "json-array-named-jsonl",
        lambda d: put(d, "tracks.jsonl", _JSON_TRACKS),
        Refused(FixtureFormatError, "tracks.jsonl", line=1, says="malformed JSON"),
    ),
    Case(
        "binary-junk-named-jsonl",
        lambda d: put(d, "tracks.jsonl", bytes(range(256)) * 4),
        Refused(FixtureFormatError, "tracks.jsonl", line=1),
    ),
    Case(
        "plain-text-named-gz",
        lambda d: put(d, "tracks.jsonl.gz", as_jsonl(TRACKS)),
        Refused(FixtureFormatError, "tracks.jsonl.gz", line=1, says="unreadable"),
    ),
    Case(
        "png-named-csv",
        lambda d: put(d, "users.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)),
        Refused(FixtureFormatError, "users.csv", line=1, says="unreadable"),
    ),
    Case(
        "json-array-named-csv",
        lambda d: put(d, "users.csv", as_json(USERS)),
        Refused(FixtureFormatError, "users.csv", line=3, says="row has 2 fields"),
    ),
    Case(
        "yaml-named-json",
        lambda d: put(d, "tracks.json", as_yaml(TRACKS)),
        Refused(FixtureFormatError, "tracks.json", record=1, says="malformed JSON"),
    ),
]
