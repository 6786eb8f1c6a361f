"""Choosing the loaders for a path: a fixture set of table files, source files, or both.

``load-fixtures T PATH`` accepts a fixture set directory (files named after tables,
optionally a ``fixtures.json`` manifest, whose entries may also name source files
with a ``format``), a directory of source files (Spotify exports, Web API responses,
MPD slices...) or one source file. With ``format`` given, PATH is read as source
files of that format; without, each source file's format is detected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData

from tenancy_fixtures.errors import FixtureSetError
from tenancy_fixtures.loading.data_loader import DataLoader
from tenancy_fixtures.loading.fixture_sets import (
    MANIFEST_NAME,
    FixtureFile,
    open_fixture_set,
    split_name,
)
from tenancy_fixtures.loading.registry import LOADERS
from tenancy_fixtures.loading.sources import SourceLoader, find_source_files, source_file

__all__ = ["open_loaders"]


def _is_table_set(directory: Path, metadata: MetaData) -> bool:
    if (directory / MANIFEST_NAME).is_file():
        return True
    tables = {t.name for t in metadata.sorted_tables}
    stems = [
        parsed[0]
        for child in directory.iterdir()
        if (parsed := split_name(child.name)) is not None and child.is_file()
    ]
    named = [stem in tables for stem in stems]
    if any(named) and not all(named):
        strangers = sorted(
            stem for stem, is_table in zip(stems, named, strict=True) if not is_table
        )
        raise FixtureSetError(
            f"directory mixes table files with other files ({', '.join(strangers[:5])}); "
            "name source files in a fixtures.json manifest with their 'format'",
            path=directory,
        )
    return any(named)


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
    if format is None and path.is_dir() and _is_table_set(path, metadata):
        fixture_set = open_fixture_set(path, metadata=metadata)
        loaders: list[DataLoader] = []
        by_loader: dict[str, list[FixtureFile]] = {}
        for file in fixture_set.files:
            by_loader.setdefault(file.loader or DataLoader.loader_name, []).append(file)
        for name, files_of_loader in by_loader.items():
            if name not in LOADERS:
                raise FixtureSetError(
                    f"unknown loader {name!r}; known: {', '.join(sorted(LOADERS))}",
                    path=path,
                )
            subset = replace(fixture_set, files=tuple(files_of_loader))
            loaders.append(LOADERS[name](subset, metadata=metadata, batch_size=batch_size))
        if fixture_set.sources:
            files = [
                source_file(
                    path,
                    entry.path,
                    format=entry.format,
                    options={**given, **entry.options},
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
                )
            )
        return loaders
    directory, names = find_source_files(path)
    files = [source_file(directory, name, format=format, options=given) for name in names]
    return [SourceLoader(files, metadata=metadata, batch_size=batch_size)]
