"""Choosing the loaders for a path: a fixture set of table files, source files, or both.

``load-fixtures T PATH`` accepts a fixture set directory (files named after tables,
optionally a ``fixtures.json`` manifest, whose entries may also name source files
with a ``format``), a directory of source files (Spotify exports, Web API responses,
MPD slices...) or one source file. With ``format`` given, PATH is read as source
files of that format; without, each source file's format is detected.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy import MetaData

from tenancy_fixtures.errors import ConfigError, FixtureSetError
from tenancy_fixtures.loading.data_loader import DataLoader
from tenancy_fixtures.loading.fixture_sets import (
    MANIFEST_NAME,
    FixtureFile,
    FixtureSet,
    open_fixture_set,
    split_name,
)
from tenancy_fixtures.loading.readers import first_array_item
from tenancy_fixtures.loading.registry import LOADERS, guarding_loader
from tenancy_fixtures.loading.sources import (
    SOURCE_EXTENSIONS,
    SourceLoader,
    confined_options,
    find_source_files,
    known_format_or_fail,
    no_source_path,
    source_file,
)
from tenancy_fixtures.logs import get_logger

__all__ = ["open_loaders"]

log = get_logger("tenancy_fixtures.loading")


#: What an empty JSON array or JSON Lines file holds: no rows, but rows of a table.
_NO_ROWS = object()
#: A file that does not decompress or parse: read as the table it is named for, whose
#: reader then says where it breaks (file, line).
_UNREADABLE = object()
#: A UTF-8 byte order mark, which the readers skip: sniffing must too.
_BOM = b"\xef\xbb\xbf"


def _first_document(path: Path, fmt: str, compressed: bool) -> Any:
    """The first object of a JSON array or JSON Lines file, :data:`_NO_ROWS` for an
    empty one, :data:`_UNREADABLE` for one that does not decompress or parse, ``None``
    for anything else (a JSON object)."""
    import ijson  # only when a file has to be told apart: start-up stays light

    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as stream:
            if fmt == "jsonl":
                for line in stream:
                    if line.strip():
                        return orjson.loads(line)
                return _NO_ROWS
            opening = _first_byte(stream)
            if opening == b"":
                return _UNREADABLE  # no JSON at all: the table's reader says so
            if opening != b"[":
                return None
            stream.seek(0)
            if stream.read(len(_BOM)) != _BOM:
                stream.seek(0)
            return first_array_item(stream, _NO_ROWS)
    except (OSError, EOFError, zlib.error, ValueError, ijson.JSONError):
        return _UNREADABLE


def _first_byte(stream: IO[bytes] | gzip.GzipFile) -> bytes:
    """The first byte of a JSON file past its byte order mark and white space (``b""``
    for a file that holds none), however much white space comes first."""
    chunk = stream.read(64).removeprefix(_BOM)
    while chunk:
        if stripped := chunk.lstrip():
            return stripped[:1]
        chunk = stream.read(4096)
    return b""


def _is_table_file(path: Path, columns_of: Mapping[str, set[str]]) -> bool:
    """Whether ``path`` holds rows of the table it is named for: CSV and YAML always,
    JSON and JSON Lines when their first object's keys are that table's columns (a
    source document named like a table, such as ``workspaces.json`` holding
    ``{"workspaces": [...]}``, is not)."""
    parsed = split_name(path.name)
    if parsed is None or parsed[0] not in columns_of:
        return False
    table, fmt, compressed = parsed
    if fmt not in ("json", "jsonl"):
        return True
    first = _first_document(path, fmt, compressed)
    if first is _NO_ROWS or first is _UNREADABLE:
        return True
    return isinstance(first, dict) and bool(first) and set(first) <= columns_of[table]


def _split_files(path: Path, metadata: MetaData) -> tuple[Path, list[str], list[str], list[str]]:
    """The directory ``path`` names (or is in) and its table files and source files,
    told apart file by file the same way whether ``path`` is a directory or one file;
    and the files of the directory no loader reads (an unknown extension, such as the
    typo ``users.json1``; hidden files are not counted)."""
    columns_of = {t.name: {c.name for c in t.columns} for t in metadata.sorted_tables}
    directory, candidates, unread = _listed(path)
    tables = [n for n in candidates if _is_table_file(directory / n, columns_of)]
    if path.is_file() and not tables:
        return directory, [], [path.name], unread
    strangers = [n for n in candidates if n not in tables and not _is_source_name(n)]
    if strangers:
        raise FixtureSetError(
            f"{', '.join(strangers[:5])}: named for no table of the schema, and only "
            ".json/.jsonl/.yaml files can be source files; rename the file after its table",
            path=directory,
        )
    if path.is_file():
        return directory, tables, [], unread
    # Source files may sit in subdirectories (exports keep their folders).
    _, sources = find_source_files(path) if _has_sources(path, tables) else (path, [])
    return directory, tables, [s for s in sources if s not in tables], unread


def _listed(path: Path) -> tuple[Path, list[str], list[str]]:
    """The directory ``path`` names (or is in), the files in it a loader may read, and
    those it does not (listed once)."""
    if path.is_file():
        return path.parent, [path.name], []
    if not path.is_dir():
        raise no_source_path(path)
    names = sorted(c.name for c in path.iterdir() if c.is_file())
    candidates = [n for n in names if split_name(n) is not None]
    unread = [n for n in names if split_name(n) is None and not n.startswith(".")]
    return path, candidates, unread


def _is_source_name(name: str) -> bool:
    return name.lower().removesuffix(".gz").endswith(SOURCE_EXTENSIONS)


def _has_sources(directory: Path, tables: list[str]) -> bool:
    return any(
        c.is_file()
        and _is_source_name(c.name)
        and c.relative_to(directory).as_posix() not in tables
        for c in directory.rglob("*")
    )


def open_loaders(
    source: Path | str,
    *,
    metadata: MetaData,
    batch_size: int,
    format: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> list[DataLoader]:
    """The loaders that load ``source`` (see the module docstring). ``options`` go to
    every source file's format (a manifest entry's own options win)."""
    given = dict(options or {})
    path = Path(source)
    if format is not None:
        known_format_or_fail(format)
        directory, names = find_source_files(path)
        files = [source_file(directory, name, format=format, options=given) for name in names]
        return [SourceLoader(files, metadata=metadata, batch_size=batch_size, shared_options=given)]
    if path.is_dir() and (path / MANIFEST_NAME).is_file():
        fixture_set = open_fixture_set(path, metadata=metadata)
        of_set = _set_loaders(fixture_set, given, metadata=metadata, batch_size=batch_size)
        _refuse_unread_options(of_set, given, path)
        return of_set
    directory, tables, sources, unread = _split_files(path, metadata)
    loaders: list[DataLoader] = []
    if tables:
        # A directory of table files alone is the set itself, named as it always was.
        only = None if path.is_dir() and not sources else tables
        fixture_set = open_fixture_set(directory, metadata=metadata, only=only)
        loaders = _set_loaders(fixture_set, given, metadata=metadata, batch_size=batch_size)
    if sources:
        files = [source_file(directory, name, format=None, options=given) for name in sources]
        loaders.append(
            SourceLoader(files, metadata=metadata, batch_size=batch_size, shared_options=given)
        )
    if not loaders:
        raise FixtureSetError(
            "no fixture files to load: table files are named <table>.jsonl, .json or .csv "
            "(optionally .gz), source files .json, .jsonl or .yaml"
            + (f"; not read: {', '.join(unread[:5])}" if unread else ""),
            path=path,
        )
    if unread:
        log.warning("fixture_files_not_read", directory=str(path), files=unread[:20])
    _refuse_unread_options(loaders, given, path)
    return loaders


def _refuse_unread_options(loaders: list[DataLoader], given: Mapping[str, Any], path: Path) -> None:
    """Options go to source files' formats: for a load without any, a typo or a
    misplaced ``-o`` would be ignored. A :class:`ConfigError` naming the first."""
    if given and not any(isinstance(loader, SourceLoader) for loader in loaders):
        key = next(iter(given))
        raise ConfigError(
            f"unknown option {key!r}: {path} holds no source files, and options (-o) go to "
            "source files' formats",
            key=f"options.{key}",
        )


def _set_loaders(
    fixture_set: FixtureSet, given: Mapping[str, Any], *, metadata: MetaData, batch_size: int
) -> list[DataLoader]:
    """The loaders of a fixture set: one per domain loader its files name (or that
    guards their table), and one for the source files its manifest lists."""
    path = fixture_set.directory
    loaders: list[DataLoader] = []
    by_loader: dict[str, list[FixtureFile]] = {}
    for file in fixture_set.files:
        name = file.loader or DataLoader.loader_name
        if name == DataLoader.loader_name:
            # A table a domain guards is loaded through its checks (exports name no loader).
            name = guarding_loader(file.table, metadata) or name
        by_loader.setdefault(name, []).append(file)
    for name, files_of_loader in by_loader.items():
        if name not in LOADERS:
            raise FixtureSetError(
                f"unknown loader {name!r}; known: {', '.join(sorted(LOADERS))}", path=path
            )
        subset = replace(fixture_set, files=tuple(files_of_loader))
        loaders.append(LOADERS[name](subset, metadata=metadata, batch_size=batch_size))
    if fixture_set.sources:
        files = [
            source_file(
                path,
                entry.path,
                format=entry.format,
                options={**given, **confined_options(path, entry.options)},
                loader=entry.loader,
            )
            for entry in fixture_set.sources
        ]
        loaders.append(
            SourceLoader(
                files,
                name=f"sources:{fixture_set.name}",
                metadata=metadata,
                batch_size=batch_size,
                shared_options=given,
            )
        )
    return loaders
