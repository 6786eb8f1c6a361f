"""The benchmark data: a generated Spotify fixture set (cached) and its CSV export.

The set is generated once per scale and seed under ``bench/.data/<scale>-<seed>/set``
(git-ignored) and reused by later runs; ``complete.json`` marks a finished set so an
interrupted generation is redone. It also holds a fingerprint of what the generator
writes (a digest of its scale-1 set): a set another generator made is made again, and
what was derived from it under ``<scale>-<seed>/`` (CSV export, big RSS sets) goes
too. The CSV export, for the ``psql \\copy`` limits, is written next to it, also once:
every non-NULL value is quoted, NULL is an unquoted empty field (PostgreSQL's CSV
default), so an empty string and NULL stay apart.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import MetaData

from tenancy_fixtures.spotify.generator import generate_fixture_set
from tenancy_fixtures.spotify.schema import spotify_metadata

__all__ = [
    "DATA_DIR",
    "SCALES",
    "CsvSet",
    "Dataset",
    "ScaleConfig",
    "export_csv",
    "generator_fingerprint",
    "iter_source_records",
    "prepare_dataset",
]

DATA_DIR = Path(__file__).resolve().parent / ".data"
_MARKER = "complete.json"
MiB = 1 << 20


@dataclass(frozen=True)
class ScaleConfig:
    """How big each case of one scale is."""

    name: str
    generator_scale: int
    repeats: int
    provision_tenants: int
    sqlite_tenants: int
    concurrent_tenants: int
    rss_bytes: int
    django_rows: int
    django_tenants: int
    django_repeats: int
    #: Plays in the streaming-history export (issue 15, d): as many as the set's
    #: listening events.
    history_entries: int
    seed: int = 42


SCALES: dict[str, ScaleConfig] = {
    "small": ScaleConfig(
        name="small",
        generator_scale=20,
        repeats=3,
        provision_tenants=50,
        sqlite_tenants=50,
        concurrent_tenants=100,
        rss_bytes=50 * MiB,
        django_rows=2_000,
        django_tenants=3,
        django_repeats=3,
        history_entries=10_000,
    ),
    "full": ScaleConfig(
        name="full",
        generator_scale=2000,
        repeats=3,
        provision_tenants=200,
        sqlite_tenants=50,
        concurrent_tenants=1000,
        rss_bytes=1024 * MiB,
        django_rows=20_000,
        django_tenants=10,
        django_repeats=1,
        history_entries=1_000_000,
    ),
}


@dataclass(frozen=True)
class Dataset:
    """A generated fixture set: where it is and how many rows each table has."""

    root: Path
    directory: Path
    files: dict[str, str]
    rows: dict[str, int]
    generator_scale: int
    seed: int

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


@dataclass(frozen=True)
class CsvSet:
    """The same rows as one CSV file per table, for ``\\copy``."""

    directory: Path
    columns: dict[str, list[str]]
    rows: dict[str, int]

    def path(self, table: str) -> Path:
        return self.directory / f"{table}.csv"


def generator_fingerprint() -> str:
    """A digest of the set the generator writes at scale 1, seed 0 (about 0.1 s)."""
    digest = hashlib.sha256()
    with tempfile.TemporaryDirectory(prefix="bench-fingerprint-") as scratch:
        generate_fixture_set(Path(scratch), scale=1, seed=0)
        for path in sorted(Path(scratch).iterdir()):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def prepare_dataset(config: ScaleConfig, *, log: Any = print) -> Dataset:
    """The scale's fixture set, generated now unless a finished one by the same
    generator is cached."""
    root = DATA_DIR / f"{config.name}-{config.seed}"
    directory = root / "set"
    marker = directory / _MARKER
    fingerprint = generator_fingerprint()
    if marker.is_file():
        info = json.loads(marker.read_text(encoding="utf-8"))
        if (info.get("generator_scale"), info.get("generator")) == (
            config.generator_scale,
            fingerprint,
        ):
            return Dataset(
                root, directory, info["files"], info["rows"], config.generator_scale, config.seed
            )
    if root.exists():  # the set and what was derived from it
        shutil.rmtree(root)
    log(
        f"generating the {config.name} fixture set (scale {config.generator_scale}, "
        f"seed {config.seed}) into {directory} ..."
    )
    started = time.perf_counter()
    generated = generate_fixture_set(directory, scale=config.generator_scale, seed=config.seed)
    files = {f.table: f.path.as_posix() for f in generated.files}
    rows = {f.table: f.rows for f in generated.files}
    info = {
        "generator_scale": config.generator_scale,
        "generator": fingerprint,
        "files": files,
        "rows": rows,
    }
    marker.write_text(json.dumps(info), encoding="utf-8")
    log(f"  {generated.total_rows:,} rows in {time.perf_counter() - started:.1f}s")
    return Dataset(root, directory, files, rows, config.generator_scale, config.seed)


def _open_text(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def iter_source_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of one fixture file, read with the standard library only.

    JSON arrays are read whole (``json.load``), JSON Lines line by line, CSV with
    ``csv.DictReader`` (an empty field is ``None``); ``.gz`` is decompressed on the fly.
    """
    name = path.name.removesuffix(".gz")
    with _open_text(path) as handle:
        if name.endswith(".csv"):
            for row in csv.DictReader(handle):
                yield {k: (v if v != "" else None) for k, v in row.items()}
        elif name.endswith((".jsonl", ".ndjson")):
            for line in handle:
                if line.strip():
                    yield json.loads(line)
        elif name.endswith(".json"):
            yield from json.load(handle)
        else:
            raise ValueError(f"no stdlib reader for {path.name}")


def _csv_field(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _quoted(value: str | None) -> str:
    return "" if value is None else '"' + value.replace('"', '""') + '"'


def export_csv(dataset: Dataset, *, metadata: MetaData | None = None, log: Any = print) -> CsvSet:
    """Write every table of ``dataset`` as CSV (once; cached next to the set)."""
    md = metadata if metadata is not None else spotify_metadata()
    directory = dataset.root / "csv"
    marker = directory / _MARKER
    # The generated tables only (the daily aggregates are computed, not generated).
    columns = {
        t.name: [c.name for c in t.columns] for t in md.sorted_tables if t.name in dataset.files
    }
    if marker.is_file():
        info = json.loads(marker.read_text(encoding="utf-8"))
        if info.get("rows") == dataset.rows and info.get("columns") == columns:
            return CsvSet(directory, columns, info["rows"])
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    log(f"exporting the set to CSV for psql \\copy into {directory} ...")
    started = time.perf_counter()
    rows: dict[str, int] = {}
    for table, cols in columns.items():
        source = dataset.directory / dataset.files[table]
        count = 0
        with (directory / f"{table}.csv").open("w", encoding="utf-8", newline="") as out:
            out.write(",".join(cols) + "\n")
            for record in iter_source_records(source):
                out.write(",".join(_quoted(_csv_field(record.get(c))) for c in cols) + "\n")
                count += 1
        rows[table] = count
    if rows != dataset.rows:
        raise RuntimeError(f"CSV export row counts {rows} differ from the set's {dataset.rows}")
    marker.write_text(json.dumps({"rows": rows, "columns": columns}), encoding="utf-8")
    log(f"  {sum(rows.values()):,} rows in {time.perf_counter() - started:.1f}s")
    return CsvSet(directory, columns, rows)
