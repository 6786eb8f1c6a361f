"""Streaming readers: one record at a time from JSON, JSON Lines, CSV and YAML files.

JSON arrays are parsed incrementally (ijson), JSON Lines and CSV line by line, gzip
on the fly, so memory does not grow with a file's size. YAML is the exception: it is
parsed whole, so keep YAML for small files. Every failure is a
:class:`FixtureFormatError` naming the file and the line or record.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import IO, Any

import ijson
import orjson
import yaml

from tenancy_fixtures.errors import FixtureFormatError
from tenancy_fixtures.loaders.fixture_sets import FixtureFile

__all__ = ["SourceRecord", "iter_records"]

_DECODE_ERRORS = (UnicodeDecodeError, EOFError, gzip.BadGzipFile, zlib.error)
_BOM = "\ufeff"
_BOM_BYTES = _BOM.encode()


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
            events = ijson.parse(stream, use_float=True)
            first = next(events, None)
            if first is None:
                return
            if first[:2] != ("", "start_array"):
                raise _error(
                    file, "a .json fixture file must hold a JSON array of objects", record=1
                )
            for index, value in enumerate(ijson.items(chain([first], events), "item"), 1):
                yield SourceRecord(_object(file, value, record=index), None, index)
    except ijson.JSONError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "parse error"
        raise _error(
            file, f"malformed JSON after record {index}: {reason}", record=index + 1
        ) from None
    except _DECODE_ERRORS as exc:
        raise _error(file, f"unreadable: {exc}", record=index + 1) from None


def _decoded_lines(stream: IO[bytes] | gzip.GzipFile, counter: list[int]) -> Iterator[str]:
    """Lines as text, decoded one at a time so a bad byte is reported at its own line."""
    for counter[0], raw in enumerate(stream, 1):
        line = raw.decode("utf-8")
        yield line[1:] if counter[0] == 1 and line.startswith(_BOM) else line


def _json_lines(file: FixtureFile) -> Iterator[SourceRecord]:
    # orjson parses bytes directly (UTF-8 checked as it goes) about three times faster
    # than json; it also refuses NaN and Infinity, which JSON does not have.
    line_no = 0
    record = 0
    try:
        with _binary(file) as stream:
            for line_no, raw in enumerate(stream, 1):
                if line_no == 1 and raw.startswith(_BOM_BYTES):
                    raw = raw[len(_BOM_BYTES) :]
                if not raw.strip():
                    continue
                try:
                    value = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    kind = "unreadable" if "UTF-8" in str(exc) else "malformed JSON"
                    raise _error(file, f"{kind}: {exc}", line=line_no) from None
                record += 1
                if type(value) is not dict:
                    _object(file, value, line=line_no)
                yield SourceRecord(value, line_no, record)
    except _DECODE_ERRORS as exc:
        raise _error(file, f"unreadable: {exc}", line=max(line_no, 1)) from None


def _csv(file: FixtureFile) -> Iterator[SourceRecord]:
    record = 0
    counter = [0]
    ended = 1
    try:
        with _binary(file) as stream:
            reader = csv.reader(_decoded_lines(stream, counter), strict=True)
            header = next(reader, None)
            if not header:
                raise _error(file, "CSV file has no header row", line=1)
            if len(set(header)) != len(header):
                raise _error(file, "CSV header names a column twice", line=1)
            ended = reader.line_num
            for row in reader:
                started, ended = ended + 1, reader.line_num
                if not any(row):
                    continue
                record += 1
                if len(row) != len(header):
                    raise _error(
                        file,
                        f"row has {len(row)} fields, the header has {len(header)}",
                        line=started,
                    )
                values = {k: (v if v != "" else None) for k, v in zip(header, row, strict=True)}
                yield SourceRecord(values, started, record)
    except csv.Error as exc:
        raise _error(file, f"malformed CSV: {exc}", line=ended + 1) from None
    except _DECODE_ERRORS as exc:
        raise _error(file, f"unreadable: {exc}", line=max(counter[0], 1)) from None


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
