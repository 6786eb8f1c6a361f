"""Streaming readers: one record at a time from JSON, JSON Lines, CSV and YAML files.

JSON arrays are parsed incrementally (ijson), JSON Lines and CSV line by line, gzip
on the fly, so memory does not grow with a file's size. YAML is the exception: it is
parsed whole, so keep YAML for small files. Every failure is a
:class:`FixtureFormatError` naming the file and the line or record.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import ijson
import yaml

from tenancy_fixtures.errors import FixtureFormatError
from tenancy_fixtures.loaders.fixture_sets import FixtureFile

__all__ = ["SourceRecord", "iter_records"]

_DECODE_ERRORS = (UnicodeDecodeError, EOFError, gzip.BadGzipFile, zlib.error)


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One record as read: its values and where it stands in the file."""

    values: dict[str, Any]
    line: int | None
    record: int


@contextmanager
def _binary(file: FixtureFile) -> Iterator[IO[bytes] | gzip.GzipFile]:
    with file.path.open("rb") as raw:
        if file.compressed:
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield unzipped
        else:
            yield raw


def _error(
    file: FixtureFile, message: str, *, line: int | None = None, record: int | None = None
) -> FixtureFormatError:
    return FixtureFormatError(
        message, path=file.relative, table=file.table, line=line, record=record
    )


def _object(
    file: FixtureFile, value: Any, *, line: int | None = None, record: int | None = None
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _error(
            file, f"expected an object, found {type(value).__name__}", line=line, record=record
        )
    return value


def _json_array(file: FixtureFile) -> Iterator[SourceRecord]:
    index = 0
    try:
        with _binary(file) as stream:
            head = stream.peek(64)[:64] if hasattr(stream, "peek") else b""
            if head.lstrip()[:1] not in (b"[", b""):
                raise _error(file, "a .json fixture file must hold a JSON array of objects")
            for index, value in enumerate(ijson.items(stream, "item", use_float=True), 1):
                yield SourceRecord(_object(file, value, record=index), None, index)
    except ijson.JSONError as exc:
        raise _error(file, f"malformed JSON after record {index}: {exc}") from None
    except _DECODE_ERRORS as exc:
        raise _error(file, f"unreadable after record {index}: {exc}") from None


def _json_lines(file: FixtureFile) -> Iterator[SourceRecord]:
    line_no = 0
    record = 0
    try:
        with _binary(file) as stream:
            text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
            for line_no, line in enumerate(text, 1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise _error(file, f"malformed JSON: {exc.msg}", line=line_no) from None
                record += 1
                yield SourceRecord(_object(file, value, line=line_no), line_no, record)
    except _DECODE_ERRORS as exc:
        raise _error(file, f"unreadable: {exc}", line=line_no + 1) from None


def _csv(file: FixtureFile) -> Iterator[SourceRecord]:
    record = 0
    line_no = 1
    try:
        with _binary(file) as stream:
            text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
            reader = csv.reader(text, strict=True)
            header = next(reader, None)
            if not header:
                raise _error(file, "CSV file has no header row", line=1)
            if len(set(header)) != len(header):
                raise _error(file, "CSV header names a column twice", line=1)
            for row in reader:
                line_no = reader.line_num
                if not any(row):
                    continue
                record += 1
                if len(row) != len(header):
                    raise _error(
                        file,
                        f"row has {len(row)} fields, the header has {len(header)}",
                        line=line_no,
                    )
                values = {k: (v if v != "" else None) for k, v in zip(header, row, strict=True)}
                yield SourceRecord(values, line_no, record)
    except csv.Error as exc:
        raise _error(file, f"malformed CSV: {exc}", line=line_no) from None
    except _DECODE_ERRORS as exc:
        raise _error(file, f"unreadable: {exc}", line=line_no) from None


def _yaml(file: FixtureFile) -> Iterator[SourceRecord]:
    try:
        with _binary(file) as stream:
            document = yaml.safe_load(stream)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise _error(file, f"malformed YAML: {exc}", line=line) from None
    except _DECODE_ERRORS as exc:
        raise _error(file, f"unreadable: {exc}") from None
    if document is None:
        return
    if not isinstance(document, list):
        raise _error(file, "a YAML fixture file must hold a list of mappings")
    for index, value in enumerate(document, 1):
        yield SourceRecord(_object(file, value, record=index), None, index)


_READERS = {"json": _json_array, "jsonl": _json_lines, "csv": _csv, "yaml": _yaml}


def iter_records(file: FixtureFile) -> Iterator[SourceRecord]:
    """Yield the records of ``file`` one by one, in file order."""
    return _READERS[file.format](file)
