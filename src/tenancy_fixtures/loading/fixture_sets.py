"""Fixture sets: a directory of data files, one table each, and an optional manifest.

A data file is named ``<table>.<json|jsonl|ndjson|csv|yaml|yml>``, optionally ``.gz``.
``fixtures.json`` may list the files explicitly (and name each file's table). Every
path resolves inside the set's directory: ``..``, absolute paths and symlinks that
point elsewhere are refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData

from tenancy_fixtures.errors import FixtureSetError
from tenancy_fixtures.fixtures.paths import resolve_inside

__all__ = [
    "ARCHIVE_SUFFIXES",
    "FORMATS",
    "MANIFEST_NAME",
    "MAX_LOADER_NAME",
    "MAX_SET_NAME",
    "FixtureFile",
    "FixtureSet",
    "SourceEntry",
    "fitted_name",
    "is_archive_name",
    "open_fixture_set",
]

MANIFEST_NAME = "fixtures.json"
#: Longest set name, and loader name: a set is recorded as ``<loader>:<set name>`` in
#: the control plane's 200-character fixture columns.
MAX_SET_NAME = 150
MAX_LOADER_NAME = 49
#: File extension -> reader format.
FORMATS = {
    "json": "json",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "csv": "csv",
    "yaml": "yaml",
    "yml": "yaml",
}
#: Names of files taken for archives of a fixture set (see ``loading/archives.py``).
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")
_CHUNK = 1 << 20
#: Below this many bytes in all, files are hashed one after the other.
_PARALLEL_BYTES = 16 << 20


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def files_sha256(paths: Sequence[Path]) -> list[str]:
    """The SHA-256 of each file, in order: several big files on as many threads as there
    are cores (hashing and reading release the GIL), which halves the wait before a
    multi-file load on two cores."""
    threads = min(len(paths), os.cpu_count() or 1)
    if threads < 2 or sum(path.stat().st_size for path in paths) < _PARALLEL_BYTES:
        return [file_sha256(path) for path in paths]
    with ThreadPoolExecutor(threads, thread_name_prefix="tf-sha256") as pool:
        return list(pool.map(file_sha256, paths))


@dataclass(frozen=True)
class FixtureFile:
    """One data file of a set: the table it fills and how to read it."""

    table: str
    path: Path
    relative: str
    format: str
    compressed: bool
    #: The domain loader the manifest names for this file (``None``: the generic one).
    loader: str | None = None

    @cached_property
    def sha256(self) -> str:
        """The checksum of the file's bytes (computed once)."""
        return file_sha256(self.path)


@dataclass(frozen=True)
class SourceEntry:
    """A manifest entry naming a source file and the format that reads it (a Web API
    response, a streaming-history export...), rather than a table's rows."""

    path: str
    format: str | None
    options: dict[str, Any]
    #: The domain loader named instead of a format (its formats are tried).
    loader: str | None = None


@dataclass(frozen=True)
class FixtureSet:
    """A directory of fixture files, in foreign-key order of their tables."""

    directory: Path
    name: str
    files: tuple[FixtureFile, ...]
    #: Source files the manifest names with a ``format``; loaded by ``SourceLoader``.
    sources: tuple[SourceEntry, ...] = ()

    def tables(self) -> list[str]:
        """The tables this set fills, in load order, each once."""
        return list(dict.fromkeys(f.table for f in self.files))


def is_archive_name(path: Path) -> bool:
    """Whether ``path`` is named as an archive of a set (``.tar.gz``, ``.zip``...)."""
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def split_name(name: str) -> tuple[str, str, bool] | None:
    """``(table, format, compressed)`` for a data file name, ``None`` for any other."""
    compressed = name.endswith(".gz")
    base = name[:-3] if compressed else name
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem or ext.lower() not in FORMATS:
        return None
    return stem, FORMATS[ext.lower()], compressed


def _is_source_entry(entry: dict[str, Any], tables: set[str]) -> bool:
    """Whether a manifest entry names a source file: it gives a ``format``, or a
    ``loader`` for a file that is not named for a table."""
    if "format" in entry:
        return True
    if "loader" not in entry or "table" in entry:
        return False
    parsed = split_name(Path(entry["path"]).name)
    return parsed is None or parsed[0] not in tables


def _file(
    directory: Path,
    relative: str,
    table: str | None,
    metadata: MetaData,
    *,
    loader: str | None = None,
) -> FixtureFile:
    path = resolve_inside(directory, relative)
    parsed = split_name(path.name)
    if parsed is None:
        raise FixtureSetError(
            f"{relative!r} is not a data file (.json, .jsonl, .ndjson, .csv, .yaml, .yml, "
            "optionally .gz)",
            path=directory,
        )
    stem, fmt, compressed = parsed
    table_name = table or stem
    if table_name not in {t.name for t in metadata.sorted_tables}:
        raise FixtureSetError(f"unknown table {table_name!r}", path=path, table=table_name)
    if not path.is_file():
        # A FIFO or device would block or never end; only regular files are read.
        problem = "is not a regular file" if path.exists() else "file does not exist"
        raise FixtureSetError(problem, path=path, table=table_name)
    return FixtureFile(table_name, path, relative, fmt, compressed, loader)


def _members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members; a key given twice is refused (``json`` keeps the last)."""
    members = dict(pairs)
    if len(members) < len(pairs):
        repeated = next(key for index, (key, _) in enumerate(pairs) if key in dict(pairs[:index]))
        raise ValueError(f"key {repeated!r} appears twice in one object")
    return members


def _manifest_entries(directory: Path, manifest: Path) -> tuple[str, list[dict[str, Any]]]:
    resolve_inside(directory, MANIFEST_NAME, what="manifest")
    try:
        # utf-8-sig: a byte order mark is skipped, as in data files.
        text = manifest.read_text(encoding="utf-8-sig")
        document = json.loads(text, object_pairs_hook=_members)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FixtureSetError(f"manifest is not valid JSON: {exc}", path=manifest) from None
    except RecursionError:
        raise FixtureSetError("manifest is nested too deeply", path=manifest) from None
    if not isinstance(document, dict) or not isinstance(document.get("files"), list):
        raise FixtureSetError("manifest must be an object with a 'files' list", path=manifest)
    entries = [
        _manifest_entry(entry, manifest, index)
        for index, entry in enumerate(document["files"], start=1)
    ]
    name = document.get("name")
    if isinstance(name, str) and len(name) > MAX_SET_NAME:
        raise FixtureSetError(
            f"'name' is {len(name)} characters long: a set's name is at most {MAX_SET_NAME}",
            path=manifest,
        )
    return (name if isinstance(name, str) and name else fitted_name(directory.name)), entries


def fitted_name(name: str, limit: int = MAX_SET_NAME) -> str:
    """``name``, or when longer than ``limit`` its start and a digest of the whole: a
    name made from a directory's or files' names, which nobody chose to fit."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{name[: limit - len(digest) - 1]}~{digest}"


#: The optional fields of a manifest entry: the type each must have, as people say it.
_ENTRY_FIELDS: dict[str, tuple[type, str]] = {
    "table": (str, "a string"),
    "format": (str, "a string"),
    "options": (dict, "an object"),
    "loader": (str, "a string"),
}


def _manifest_entry(entry: Any, manifest: Path, index: int) -> dict[str, Any]:
    """Entry ``index`` of the manifest's ``files``, checked (a bare string is a path)."""
    if isinstance(entry, str):
        entry = {"path": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        raise FixtureSetError(
            "each 'files' entry needs a 'path' string", path=manifest, record=index
        )
    for field, (kind, named) in _ENTRY_FIELDS.items():
        if field in entry and not isinstance(entry[field], kind):
            raise FixtureSetError(f"'{field}' must be {named}", path=manifest, record=index)
    return entry


def _listed_files(
    directory: Path, metadata: MetaData, only: Collection[str] | None
) -> tuple[str, list[FixtureFile]]:
    """The set's name and data files when no manifest lists them: every file named for a
    table, or the ``only`` ones."""
    name = directory.resolve().name
    if only is not None:
        name = f"{name}/{'+'.join(sorted(only))}"
    name = fitted_name(name)
    files = [
        _file(directory, child.name, None, metadata)
        for child in sorted(directory.iterdir())
        if child.name != MANIFEST_NAME
        and split_name(child.name) is not None
        and (only is None or child.name in only)
    ]
    return name, files


def open_fixture_set(
    source: Path | str, *, metadata: MetaData, only: Collection[str] | None = None
) -> FixtureSet:
    """Read a fixture set's layout (not its data); raises :class:`FixtureSetError`.

    ``only``: the names of the files to take, manifest or not (the table files of a
    directory that also holds source files, or one table file given alone); the set is
    then named ``<directory>/<files>``.
    """
    directory = Path(source)
    if not directory.is_dir():
        raise FixtureSetError("fixture set directory does not exist", path=directory)
    manifest = directory / MANIFEST_NAME
    if manifest.is_file() and only is None:
        name, entries = _manifest_entries(directory, manifest)
        tables = {t.name for t in metadata.sorted_tables}
        is_source = [_is_source_entry(e, tables) for e in entries]
        files = [
            _file(directory, e["path"], e.get("table"), metadata, loader=e.get("loader"))
            for e, source in zip(entries, is_source, strict=True)
            if not source
        ]
        sources = tuple(
            SourceEntry(e["path"], e.get("format"), dict(e.get("options", {})), e.get("loader"))
            for e, source in zip(entries, is_source, strict=True)
            if source
        )
    else:
        sources = ()
        name, files = _listed_files(directory, metadata, only)
    if not files and not sources:
        raise FixtureSetError("fixture set holds no data files", path=directory)
    listed: set[tuple[Path, str]] = set()
    for file in files:
        if (file.path, file.table) in listed:
            raise FixtureSetError(
                f"{file.relative!r} loads a file into {file.table!r} a second time",
                path=directory,
                table=file.table,
            )
        listed.add((file.path, file.table))
    order = {t.name: i for i, t in enumerate(metadata.sorted_tables)}
    files.sort(key=lambda f: order[f.table])
    return FixtureSet(directory, name, tuple(files), sources)
