"""Convert a generated fixture set into one Django JSON fixture (no Django needed).

Reads the set's ``fixtures.json`` manifest and data files (CSV, JSON array, JSON Lines,
gzipped JSON Lines), and streams out ``[{"model": "spotify.track", "pk": ..., "fields":
{...}}, ...]`` in the manifest's (foreign-key) order. Column names map to the Django
models' field names: a single-column primary key becomes ``pk``, a foreign-key column
``x_id`` becomes field ``x`` (``added_by`` stays ``added_by``), everything else keeps
its name. Composite-key tables have no ``pk`` (Django gives them an auto id).

Run it by hand with ``python -m bench.django_baseline.convert SET_DIR OUT.json
[--max-rows N]``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import JSON, Boolean, Float, Integer, Table

from bench.django_baseline.tables import BIG_TABLE, TABLE_MODELS
from tenancy_fixtures.spotify.schema import spotify_metadata

__all__ = ["BIG_TABLE", "TABLE_MODELS", "ConvertedFixture", "convert_fixture_set"]

_MANIFEST = "fixtures.json"


@dataclass(frozen=True)
class ConvertedFixture:
    """A written Django fixture: its path and the rows it holds per table."""

    path: Path
    rows: dict[str, int]

    @property
    def total_rows(self) -> int:
        """Objects over every table (what ``loaddata`` reports as installed)."""
        return sum(self.rows.values())


@dataclass(frozen=True)
class _TableMap:
    model: str
    pk_column: str | None
    fields: dict[str, str]  # column -> Django field name, pk column excluded
    coerce: dict[str, Any]  # column -> function for CSV text, where the type is not text


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "t", "1", "yes"):
        return True
    if lowered in ("false", "f", "0", "no"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


#: Columns added to the schema after the Django models were written; the baseline leaves
#: them out (they are NULL or small JSON, and comparisons are per row).
_NOT_MODELLED = {
    "ai_models": {"credentials", "tiers", "features"},
    "playlists": {"followers", "snapshot_id"},
}


def _table_map(table: Table) -> _TableMap:
    pk = list(table.primary_key.columns)
    pk_column = pk[0].name if len(pk) == 1 else None
    fields: dict[str, str] = {}
    coerce: dict[str, Any] = {}
    for column in table.columns:
        if isinstance(column.type, Boolean):
            coerce[column.name] = _bool
        elif isinstance(column.type, Integer):
            coerce[column.name] = int
        elif isinstance(column.type, Float):
            coerce[column.name] = float
        elif isinstance(column.type, JSON):
            coerce[column.name] = json.loads
        if column.name == pk_column or column.name in _NOT_MODELLED.get(table.name, ()):
            continue
        name = column.name
        if column.foreign_keys and name.endswith("_id"):
            name = name.removesuffix("_id")
        fields[column.name] = name
    return _TableMap(TABLE_MODELS[table.name], pk_column, fields, coerce)


def _read_csv(handle: IO[str], mapping: _TableMap) -> Iterator[dict[str, Any]]:
    for raw in csv.DictReader(handle):
        row: dict[str, Any] = {}
        for column, text in raw.items():
            if text == "":
                row[column] = None  # the generator writes NULL as an empty field
            elif column in mapping.coerce:
                row[column] = mapping.coerce[column](text)
            else:
                row[column] = text
        yield row


def _read_rows(path: Path, mapping: _TableMap) -> Iterator[dict[str, Any]]:
    name = path.name
    if name.endswith(".csv"):
        with path.open(encoding="utf-8", newline="") as handle:
            yield from _read_csv(handle, mapping)
    elif name.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)
    elif name.endswith(".json"):
        with path.open(encoding="utf-8") as handle:
            yield from json.load(handle)
    else:
        raise ValueError(f"no reader for {path}")


def _manifest(set_dir: Path) -> list[tuple[str, Path]]:
    """The set's files of the tables the Django project models (the original twelve;
    comparisons are in rows per second, so the baseline need not load every table)."""
    manifest = json.loads((set_dir / _MANIFEST).read_text(encoding="utf-8"))
    return [
        (entry["table"], set_dir / entry["path"])
        for entry in manifest["files"]
        if entry["table"] in TABLE_MODELS
    ]


def _count(path: Path, mapping: _TableMap) -> int:
    return sum(1 for _ in _read_rows(path, mapping))


def convert_fixture_set(
    set_dir: Path, out: Path, *, max_rows: int | None = None
) -> ConvertedFixture:
    """Write the set in ``set_dir`` as one Django JSON fixture at ``out``.

    With ``max_rows``, every table but :data:`BIG_TABLE` is taken whole and the big
    table only as a prefix bringing the total to about ``max_rows`` (never below the
    other tables' rows); nothing refers to the big table, and it refers only to tables
    taken whole, so every reference stays valid.
    """
    tables = {t.name: t for t in spotify_metadata().tables.values()}
    files = _manifest(set_dir)
    maps = {table: _table_map(tables[table]) for table, _ in files}
    big_limit: int | None = None
    if max_rows is not None:
        others = sum(_count(path, maps[table]) for table, path in files if table != BIG_TABLE)
        big_limit = max(0, max_rows - others)
    rows: dict[str, int] = {}
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="\n") as sink:
        sink.write("[")
        first = True
        for table, path in files:
            mapping = maps[table]
            limit = big_limit if table == BIG_TABLE else None
            count = 0
            for row in _read_rows(path, mapping):
                if limit is not None and count >= limit:
                    break
                obj: dict[str, Any] = {"model": mapping.model}
                if mapping.pk_column is not None:
                    obj["pk"] = row[mapping.pk_column]
                obj["fields"] = {field: row[column] for column, field in mapping.fields.items()}
                sink.write(("\n" if first else ",\n") + json.dumps(obj, ensure_ascii=False))
                first = False
                count += 1
            rows[table] = count
        sink.write("\n]\n")
    return ConvertedFixture(out, rows)


def main(argv: list[str] | None = None) -> None:
    """Command line: convert a fixture set and print the rows per table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--max-rows", type=int, default=None)
    args = parser.parse_args(argv)
    converted = convert_fixture_set(args.set_dir, args.out, max_rows=args.max_rows)
    print(json.dumps({"path": str(converted.path), "rows": converted.rows}))


if __name__ == "__main__":
    main()
