"""Source formats: files as other systems produce them, normalised into tenant tables.

A :class:`SourceFormat` reads documents (a Web API response, a streaming-history entry,
a Million Playlist Dataset playlist, an AI model config) and emits rows for one or more
tables into a :class:`RowSink`. The sink stages them as a fixture set of JSON Lines
files in a private temporary directory, and :class:`SourceLoader` loads that set
through the ordinary :class:`DataLoader` path: the same typing, validation, atomic
transaction and idempotency. Errors found in staged rows are pointed back at the
source file and record they came from.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import math
import tempfile
import zlib
from abc import ABC, abstractmethod
from array import array
from collections.abc import (
    Callable,
    Collection,
    Generator,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    Sequence,
)
from contextlib import closing
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import chain
from pathlib import Path
from typing import IO, Any, ClassVar, Literal

import msgspec
import orjson
from sqlalchemy import MetaData, Table

from tenancy_fixtures.errors import (
    ConfigError,
    FixtureError,
    FixtureFormatError,
    FixtureSetError,
    RecordError,
)
from tenancy_fixtures.fixtures.context import LoadContext
from tenancy_fixtures.fixtures.paths import resolve_inside
from tenancy_fixtures.loading.data_loader import DEFAULT_BATCH_SIZE, TableMode, files_bytes
from tenancy_fixtures.loading.derived import RefreshesDerivedTables
from tenancy_fixtures.loading.fixture_sets import (
    MANIFEST_NAME,
    FixtureFile,
    files_sha256,
    fitted_name,
    open_fixture_set,
)
from tenancy_fixtures.loading.json_arrays import is_json_text, read_whole, whole_array_items
from tenancy_fixtures.loading.lone_surrogates import LoneSurrogate, LoneSurrogateScan
from tenancy_fixtures.loading.parse_workers import POOL, call_in_workers
from tenancy_fixtures.loading.readers import (
    MAX_DEPTH,
    exact_numbers,
    exact_retry,
    is_integer_overflow,
    iter_records,
    yaml_items,
)
from tenancy_fixtures.settings import Settings
from tenancy_fixtures.store import control_plane
from tenancy_fixtures.store.base import TENANT_SCHEMA, TenantSession
from tenancy_fixtures.store.control_plane import FIXTURE_NAME_LENGTH

__all__ = [
    "SOURCE_EXTENSIONS",
    "SOURCE_FORMATS",
    "Origin",
    "ReadAhead",
    "RowSink",
    "SetAside",
    "SourceDocument",
    "SourceFile",
    "SourceFormat",
    "SourceLoader",
    "check_options",
    "confined_options",
    "detect_format",
    "iter_documents",
    "known_format_or_fail",
    "path_options",
    "read_source_file",
    "register_engine_formats",
    "register_format",
    "source_file",
    "stage_document",
    "whole_json",
]

#: Source formats by name (``--format``), filled by :func:`register_format`.
SOURCE_FORMATS: dict[str, type[SourceFormat]] = {}
#: A single JSON document larger than this is refused (stream arrays or JSON Lines).
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
#: Names a source file may end in (before an optional ``.gz``).
SOURCE_EXTENSIONS = (".json", ".jsonl", ".ndjson", ".yaml", ".yml")
_LINE_FLAG = 1 << 62
#: Staging subdirectories of authoritative rows and of the others (names no error
#: from a user's own files can carry).
STAGED = "_staged"
DERIVED = "_derived"
_FILE_SHIFT = 40
#: Ranks of merged rows (:meth:`RowSink.merge`): a higher one replaces a lower one.
_RANK_PLACEHOLDER, _RANK_DERIVED, _RANK_AUTHORITATIVE = 0, 1, 2


@dataclass(frozen=True)
class SourceFile:
    """One source file: where it is, how it is framed, which format reads it."""

    path: Path
    relative: str
    container: Literal["json", "jsonl", "yaml"]
    compressed: bool
    format: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    #: Detect the format among this domain loader's formats only.
    loader: str | None = None

    def with_format(self, name: str) -> SourceFile:
        """This file, read by format ``name``."""
        return SourceFile(
            self.path,
            self.relative,
            self.container,
            self.compressed,
            name,
            self.options,
            self.loader,
        )


def known_format_or_fail(name: str) -> None:
    """Refuse a format a caller names (``--format``) that no registered format has: a
    mistaken argument (:class:`ConfigError`, exit 2), not data refused."""
    register_engine_formats()
    if name not in SOURCE_FORMATS:
        raise ConfigError(
            f"unknown format {name!r}; known: {', '.join(sorted(SOURCE_FORMATS))}", key="format"
        )


def register_engine_formats() -> None:
    """Register the formats the engine itself brings (``django``), whatever the domain;
    imported on first use, so that processes that read no source file never load them."""
    if "django" not in SOURCE_FORMATS:
        from tenancy_fixtures.loading.django_format import DjangoFormat

        register_format(DjangoFormat)


def source_file(
    directory: Path,
    relative: str,
    *,
    format: str | None = None,
    options: Mapping[str, Any] | None = None,
    loader: str | None = None,
) -> SourceFile:
    """A source file at ``relative`` under ``directory`` (never outside it)."""
    register_engine_formats()
    path = resolve_inside(directory, relative)
    name = path.name.lower()
    compressed = name.endswith(".gz")
    base = name[:-3] if compressed else name
    if not base.endswith(SOURCE_EXTENSIONS):
        raise FixtureSetError(
            f"{relative!r} is not a source file (.json, .jsonl, .ndjson, .yaml, .yml, "
            "optionally .gz)",
            path=directory,
        )
    if not path.is_file():
        raise FixtureSetError("file does not exist", path=path)
    if format is not None and format not in SOURCE_FORMATS:
        raise FixtureSetError(
            f"unknown format {format!r}; known: {', '.join(sorted(SOURCE_FORMATS))}", path=path
        )
    container: Literal["json", "jsonl", "yaml"] = "jsonl"
    if base.endswith(".json"):
        container = "json"
    elif base.endswith((".yaml", ".yml")):
        container = "yaml"
    if loader is not None and not any(f.loader == loader for f in SOURCE_FORMATS.values()):
        raise FixtureSetError(f"no source format belongs to loader {loader!r}", path=path)
    return SourceFile(path, relative, container, compressed, format, dict(options or {}), loader)


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """One document of a source file and where it stands (line for JSON Lines, else the
    index of the document in the file)."""

    value: Any
    line: int | None
    record: int


def _open(file: SourceFile) -> IO[bytes]:
    raw = file.path.open("rb")
    if file.compressed:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def iter_documents(
    file: SourceFile, *, stream: str | None = None, require_stream: bool = False
) -> Generator[SourceDocument, None, None]:
    """The documents of ``file``: each line of JSON Lines; each element of a top-level
    JSON array or YAML list; the items at the ``stream`` prefix of a top-level object
    (e.g. ``"playlists.item"``); or the whole object. Raises :class:`FixtureFormatError`,
    with ``require_stream`` also for a top-level object without the ``stream`` array
    (staging a file: it would load nothing; detecting a format only peeks)."""
    table_file = FixtureFile(
        file.format or "source", file.path, file.relative, "jsonl", file.compressed
    )
    if file.container == "jsonl":
        for record in iter_records(table_file):
            yield SourceDocument(record.values, record.line, record.record)
        return
    if file.container == "yaml":
        for record in yaml_items(table_file):
            yield SourceDocument(record.values, None, record.record)
        return
    yield from _json_documents(file, stream, require_stream)


def _json_documents(
    file: SourceFile, stream: str | None, require_stream: bool = False
) -> Generator[SourceDocument, None, None]:
    """The documents of a JSON file: an array's items (read whole where it is small
    enough), the items at ``stream``, or the whole object."""
    try:
        with _open(file) as handle:
            items = whole_array_items(handle)
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, zlib.error):
        items = None  # the streaming reader says where
    if items is None:
        yield from _streamed_documents(file, stream, require_stream)
        return
    index = 0
    try:
        for index, value in enumerate(items, 1):
            yield SourceDocument(value, None, index)
    except ValueError as exc:
        raise FixtureFormatError(
            f"unreadable JSON in document {index + 1}: {exc}", path=file.relative, record=index + 1
        ) from None


#: ijson's read size for streamed JSON sources (see :func:`_stream_documents`).
_PARSE_BUFFER = 2048
_OPENING = frozenset({"start_map", "start_array"})
_CLOSING = frozenset({"end_map", "end_array"})


class _UnicodeChecked:
    """A JSON source's bytes as ijson reads them, up to a lone surrogate escape: yajl
    would decode one as ``?``; the documents before it are read, then
    :class:`LoneSurrogate` is raised."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._scan = LoneSurrogateScan()

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""  # ijson reads 0 bytes to learn whether the stream is binary
        return self._scan.passed(self._stream.read(size))


def _streamed_documents(
    file: SourceFile, stream: str | None, require_stream: bool
) -> Generator[SourceDocument, None, None]:
    """The documents of a JSON file, streamed by ijson; one holding an integer beyond
    64 bits is read again from there with exact numbers (the format or the load then
    refuses the value, naming its document and field), not called malformed."""
    import ijson  # only JSON documents need it: not imported by processes that never read one

    read = [0]  # the documents yielded so far
    try:
        try:
            whole = yield from _stream_documents(file, stream, read, exact=False)
        except ijson.JSONError as exc:
            if not is_integer_overflow(exc):
                raise
            with exact_retry(exc):
                whole = yield from _stream_documents(file, stream, read, exact=True)
    except LoneSurrogate:
        raise RecordError(
            "text that is not valid Unicode (a lone surrogate escape)",
            path=file.relative,
            record=read[0] + 1,
            rule="encoding",
        ) from None
    except ijson.JSONError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "parse error"
        raise FixtureFormatError(
            f"malformed JSON after document {read[0]}: {reason}",
            path=file.relative,
            record=read[0] + 1,
        ) from None
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise FixtureFormatError(
            f"unreadable: {exc}", path=file.relative, record=read[0] + 1
        ) from None
    if whole:
        yield SourceDocument(_whole(file), None, 1)
    elif whole is None and require_stream:
        container = (stream or "").removesuffix(".item")
        raise FixtureFormatError(
            f"no {container!r} array to read: expected an array of documents or an object "
            f"whose {container!r} is one",
            path=file.relative,
            record=1,
        )


def _stream_documents(
    file: SourceFile, stream: str | None, read: list[int], *, exact: bool
) -> Generator[SourceDocument, None, bool | None]:
    """The documents of a JSON file after the first ``read[0]`` (counted in it as they
    are yielded); returns whether the file is one whole document instead, ``None`` when
    it is an object that holds no array at ``stream``. ``exact``: numbers read by
    :func:`exact_numbers` (slower; integers of any size)."""
    import ijson

    with _open(file) as handle:
        # A small buffer: ijson makes each event's prefix, so one buffer of a deeply
        # nested file costs memory quadratic in its size before the depth is checked.
        parsed = ijson.parse(_UnicodeChecked(handle), use_float=not exact, buf_size=_PARSE_BUFFER)
        events = _depth_capped(file, parsed, read)
        if exact:
            events = exact_numbers(events)
        first = next(events, None)
        if first is None:
            raise FixtureFormatError("empty file: expected a JSON document", path=file.relative)
        prefix = "item" if first[1] == "start_array" else stream
        if prefix is None:
            return True
        container = prefix.removesuffix(".item")
        found = [prefix == "item"]

        def watched() -> Iterator[tuple[Any, ...]]:
            for event in chain([first], events):
                if event[1] == "start_array" and event[0] == container:
                    found[0] = True
                yield event

        for index, value in enumerate(ijson.items(watched(), prefix), 1):
            if index > read[0]:
                read[0] = index
                yield SourceDocument(value, None, index)
    return False if found[0] else None


def _depth_capped(
    file: SourceFile, events: Iterator[tuple[Any, ...]], read: list[int]
) -> Iterator[tuple[Any, ...]]:
    """ijson's events, refused past :data:`MAX_DEPTH` levels of nesting (deep nesting is
    how parsers are made to exhaust memory)."""
    depth = 0
    for event in events:
        kind = event[1]
        if kind in _OPENING:
            depth += 1
            if depth > MAX_DEPTH:
                raise FixtureFormatError(
                    f"a value nested deeper than {MAX_DEPTH} levels",
                    path=file.relative,
                    record=read[0] + 1,
                )
        elif kind in _CLOSING:
            depth -= 1
        yield event


def _whole(file: SourceFile) -> Any:
    with _open(file) as handle:
        data = handle.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise FixtureFormatError(
            f"a single JSON document larger than {MAX_DOCUMENT_BYTES >> 20} MiB; "
            "use an array or JSON Lines",
            path=file.relative,
        )
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FixtureFormatError(f"malformed JSON: {exc}", path=file.relative) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise FixtureFormatError(f"unreadable: {exc}", path=file.relative) from None


def whole_json(file: SourceFile) -> bytes | None:
    """The bytes of a JSON source file small enough to read whole (decompressed, without
    a byte order mark) and readable as text, or ``None``: a larger file, or one that
    cannot be read whole, is left to :func:`iter_documents`, which says what is wrong."""
    if file.container != "json":
        return None
    try:
        with _open(file) as handle:
            data = read_whole(handle)
    except (EOFError, gzip.BadGzipFile, zlib.error):
        return None
    return data if data is not None and is_json_text(data) else None


@dataclass(frozen=True, slots=True)
class ReadAhead:
    """A call a format asks for on one source file before the file's turn to stage
    (:meth:`SourceFormat.read_ahead`): ``function`` is a module-level function of an
    importable module; it, ``args`` and what it returns travel pickled."""

    function: Callable[..., Any]
    args: tuple[Any, ...]


_LINE = msgspec.json.Encoder()


def _file_index(code: int) -> int:
    """The file an encoded origin (see :meth:`RowSink.decode`) is in."""
    return (code & ~_LINE_FLAG) >> _FILE_SHIFT


def _not_finite(value: Any) -> bool:
    """Whether ``value`` is a NaN or an infinity."""
    return isinstance(value, float) and not math.isfinite(value)


def _not_unicode(value: Any) -> bool:
    """Whether ``value`` is text UTF-8 cannot encode."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _json_line(row: Mapping[str, Any]) -> bytes:
    """``row`` as a staged JSON line; an integer past 64 bits (which orjson refuses) is
    written as it is, for the load to refuse it with the record it came from."""
    try:
        return orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        return _LINE.encode(row) + b"\n"


def _restorer(values: dict[str, Any], column: str) -> Callable[[], object]:
    """What gives ``values`` back the ``column`` it holds now (or none)."""
    if column in values:
        return partial(values.__setitem__, column, values[column])
    return partial(values.pop, column)


def _rank(*, authoritative: bool, placeholder: bool) -> int:
    """The rank of a merged row (:meth:`RowSink.merge`)."""
    if placeholder:
        return _RANK_PLACEHOLDER
    return _RANK_AUTHORITATIVE if authoritative else _RANK_DERIVED


@dataclass(frozen=True, slots=True)
class SetAside:
    """A document its format refused while a lenient load staged it: its rows taken back,
    it goes to the reject file instead."""

    error: RecordError
    #: The table the format was filling (``None``: unknown).
    table: str | None
    #: The document as read (as its format shows it: a secret redacted, say).
    record: Any
    #: Its number in its file (from 1).
    index: int
    #: What its row would hold from the format's options (whose it is, say).
    implied: Mapping[str, Any] = field(default_factory=dict)


def _cut_back(handle: IO[bytes], origins: array[int], position: int, count: int) -> None:
    """Take a staged file back to ``position`` and its origins to ``count`` entries."""
    handle.seek(position)
    handle.truncate()
    del origins[count:]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a staged row came from: a source file and its line or document."""

    path: str
    line: int | None
    record: int | None


class RowSink:
    """Collects the rows a source produces, staged as one JSON Lines file per table.

    ``add`` appends a row as it comes (events, playlist entries); ``merge`` keeps one
    row per primary key (the same artist named by a thousand tracks): the first
    occurrence fixes the values, later ones only fill values still missing, unless
    they rank higher than the kept row (authoritative over derived over placeholder).
    Rows that are not authoritative (simplified objects; placeholders made up from
    names) are staged in files of their own, ``_derived/<table>.jsonl``, loaded after
    the table's authoritative rows without overwriting rows the tenant already has;
    a derived row whose key the tenant holds as a placeholder is staged with the
    authoritative ones (:meth:`promote`), to replace it.

    With ``set_aside`` (a lenient load), what each document staged is journaled while
    :func:`stage_document` normalises it, so that a document its format refuses is
    taken back whole and listed in :attr:`set_aside` instead of refusing the load.
    """

    def __init__(
        self,
        directory: Path,
        metadata: MetaData,
        files: Sequence[SourceFile],
        *,
        set_aside: bool = False,
    ):
        self.directory = directory
        self.metadata = metadata
        self._files = list(files)
        #: Which files are YAML, by index (their rows are checked for NaN and infinity).
        self._yaml = [file.container == "yaml" for file in self._files]
        self._file_index = 0
        self._position = 0
        self._is_line = False
        self._handles: dict[str, IO[bytes]] = {}
        self._origins: dict[str, array[int]] = {}
        self._merged: dict[str, dict[tuple[Any, ...], tuple[dict[str, Any], int, int]]] = {}
        self._keys: dict[str, tuple[str, ...]] = {}
        self._taken: dict[tuple[str, str], set[Any]] = {}
        #: ``(table, staged file)`` in the order the files were started.
        self.staged: list[tuple[str, str]] = []
        #: The documents set aside so far (``None``: a refusal refuses the load).
        self.set_aside: list[SetAside] | None = [] if set_aside else None
        #: What undoes the current document's rows, in order (``None``: no journal).
        self._journal: list[Callable[[], object]] | None = None
        self._marked: set[str] = set()

    def at(self, file_index: int, document: SourceDocument) -> None:
        """Mark the rows that follow as coming from ``document`` of file ``file_index``."""
        self._file_index = file_index
        self._is_line = document.line is not None
        self._position = document.line if document.line is not None else document.record

    def at_record(self, file_index: int, record: int) -> None:
        """Mark the rows that follow as coming from document ``record`` (counted from 1)
        of file ``file_index``, a JSON file read whole."""
        self._file_index = file_index
        self._is_line = False
        self._position = record

    def _origin(self) -> int:
        code = (self._file_index << _FILE_SHIFT) | self._position
        return code | _LINE_FLAG if self._is_line else code

    def decode(self, code: int) -> Origin:
        """The origin an encoded position stands for."""
        is_line = bool(code & _LINE_FLAG)
        file = self._files[_file_index(code)]
        position = code & ((1 << _FILE_SHIFT) - 1)
        return Origin(file.relative, position if is_line else None, None if is_line else position)

    def origin(self) -> Origin:
        """Where the current document is."""
        return self.decode(self._origin())

    def refuse(self, message: str, *, column: str | None = None, rule: str) -> RecordError:
        """An error naming the current document (raise it)."""
        origin = self.origin()
        return RecordError(
            message,
            path=origin.path,
            line=origin.line,
            record=origin.record,
            column=column,
            rule=rule,
        )

    def _table(self, name: str) -> Table:
        table = self.metadata.tables.get(f"{TENANT_SCHEMA}.{name}")
        if table is None:
            raise ValueError(f"source format wrote unknown table {name!r}")
        return table

    def _file(self, table: str, authoritative: bool) -> tuple[IO[bytes], array[int]]:
        """The staged file of ``table``'s rows (started on first use) and its origins."""
        relative = f"{STAGED if authoritative else DERIVED}/{table}.jsonl"
        handle = self._handles.get(relative)
        if handle is None:
            self._table(table)
            path = self.directory / relative
            path.parent.mkdir(exist_ok=True)
            handle = path.open("wb")
            self._handles[relative] = handle
            self._origins[relative] = array("q")
            self.staged.append((table, relative))
            self.on_undo(partial(self._unstage, table, relative))
        origins = self._origins[relative]
        if self._journal is not None and relative not in self._marked:
            self._marked.add(relative)
            self._journal.append(partial(_cut_back, handle, origins, handle.tell(), len(origins)))
        return handle, origins

    def _unstage(self, table: str, relative: str) -> None:
        """Forget the staged file ``relative``, started by a document taken back."""
        self._handles.pop(relative).close()
        del self._origins[relative]
        self.staged.remove((table, relative))
        (self.directory / relative).unlink()

    def on_undo(self, action: Callable[[], object]) -> None:
        """Have ``action`` called if the current document is taken back (a lenient load
        sets it aside): how a format forgets what it remembered of its rows. Nothing
        happens outside :func:`stage_document`'s journal."""
        if self._journal is not None:
            self._journal.append(action)

    def begin_document(self) -> None:
        """Journal what the rows that follow stage, until :meth:`end_document`."""
        self._journal = []
        self._marked = set()

    def take_back(self) -> None:
        """Undo what was staged since :meth:`begin_document`, last first."""
        journal = self._journal or []
        self._journal = None
        for action in reversed(journal):
            action()

    def end_document(self) -> None:
        """Stop journaling (what was staged stays)."""
        self._journal = None

    def _write(self, table: str, row: Mapping[str, Any], origin: int, authoritative: bool) -> None:
        handle, origins = self._file(table, authoritative)
        handle.write(self._line(table, row, origin))
        origins.append(origin)

    def _line(self, table: str, row: Mapping[str, Any], origin: int) -> bytes:
        """``row`` as its staged line. Refused at the row's document: text that is no
        valid Unicode (a lone surrogate, which YAML's and JSON's escapes can give), and
        from a YAML file a NaN or an infinity (``.nan``, ``.inf``), which JSON lines
        would stage as ``null``."""
        if self._yaml[_file_index(origin)]:
            column = next((k for k, v in row.items() if _not_finite(v)), None)
            if column is not None:
                raise self._refusal(
                    origin, f"{table}: {row[column]!r} is no number", table, column, "type"
                )
        try:
            return _json_line(row)
        except UnicodeEncodeError:
            column = next((k for k, v in row.items() if _not_unicode(v)), None)
            message = f"{table}: text that is not valid Unicode (a lone surrogate)"
            raise self._refusal(origin, message, table, column, "encoding") from None

    def _refusal(
        self, origin: int, message: str, table: str, column: str | None, rule: str
    ) -> RecordError:
        at = self.decode(origin)
        return RecordError(
            message,
            path=at.path,
            table=table,
            line=at.line,
            record=at.record,
            column=column,
            rule=rule,
        )

    def add(self, table: str, row: Mapping[str, Any], *, authoritative: bool = True) -> None:
        """Stage ``row`` for ``table`` as it is."""
        self._write(table, row, self._origin(), authoritative)

    def add_records(
        self,
        table: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        file_index: int,
        records: Sequence[int],
    ) -> None:
        """Stage ``rows`` for ``table`` as they are, row ``i`` from document
        ``records[i]`` of the JSON file ``file_index`` (as :meth:`at_record` and
        :meth:`add` a row at a time would)."""
        if len(rows) != len(records):
            raise ValueError(f"{len(rows)} rows but {len(records)} records")
        if not rows:
            return
        handle, origins = self._file(table, True)
        file = file_index << _FILE_SHIFT
        for row, record in zip(rows, records, strict=True):
            # Not joined first: orjson's output buffers, all alive, cost more.
            handle.write(self._line(table, row, file | record))
        origins.extend([file | record for record in records])

    def add_lines(
        self, table: str, lines: bytes, *, file_index: int, records: Sequence[int]
    ) -> None:
        """Stage rows for ``table`` already encoded as JSON lines (each ending in a line
        break, as :meth:`add` writes them), line ``i`` from document ``records[i]`` of
        the JSON file ``file_index``."""
        count = lines.count(b"\n")
        if count != len(records):
            raise ValueError(f"{count} lines but {len(records)} records")
        if not records:
            return
        handle, origins = self._file(table, True)
        handle.write(lines)
        file = file_index << _FILE_SHIFT
        origins.extend([file | record for record in records])

    def merge(
        self,
        table: str,
        row: dict[str, Any],
        *,
        authoritative: bool = True,
        placeholder: bool = False,
    ) -> None:
        """Stage ``row`` once per primary key, completing it from later occurrences.
        ``placeholder``: a row made up from names only (a history's "Unknown track"),
        below a derived row; a row of a higher rank than the kept one replaces its
        values."""
        keys = self._keys.get(table)
        if keys is None:
            keys = tuple(c.name for c in self._table(table).primary_key.columns)
            self._keys[table] = keys
            self._merged.setdefault(table, {})
        key = tuple(row.get(k) for k in keys)
        rows = self._merged[table]
        kept = rows.get(key)
        rank = _rank(authoritative=authoritative, placeholder=placeholder)
        journal = self._journal
        if kept is None:
            rows[key] = (row, self._origin(), rank)
            if journal is not None:
                journal.append(partial(rows.pop, key))
            return
        values, _, kept_rank = kept
        if rank > kept_rank:
            # The row is this document's now: a value it refuses is most likely its own.
            rows[key] = (
                {**values, **{k: v for k, v in row.items() if v is not None}},
                self._origin(),
                rank,
            )
            if journal is not None:
                journal.append(partial(rows.__setitem__, key, kept))
            return
        for column, value in row.items():
            if value is not None and values.get(column) is None:
                if journal is not None:
                    journal.append(_restorer(values, column))
                values[column] = value

    def derived_keys(self, table: str) -> list[tuple[Any, ...]]:
        """The primary keys of the derived rows (neither authoritative nor
        placeholders) merged into ``table`` so far."""
        rows = self._merged.get(table, {})
        return [key for key, (_, _, rank) in rows.items() if rank == _RANK_DERIVED]

    def promote(self, table: str, keys: Iterable[tuple[Any, ...]]) -> None:
        """Stage the derived rows of ``keys`` with ``table``'s authoritative rows: the
        tenant holds those keys as placeholders, which these rows are to replace."""
        rows = self._merged.get(table, {})
        for key in keys:
            kept = rows.get(key)
            if kept is not None and kept[2] == _RANK_DERIVED:
                rows[key] = (kept[0], kept[1], _RANK_AUTHORITATIVE)

    def taken(self, table: str, group: str) -> set[Any]:
        """The keys staged so far for ``table``'s rows of ``group`` (the times a listener
        played at, say): one set every format of the load adds to, so that a row two
        formats stage under one key is staged once (the first)."""
        return self._taken.setdefault((table, group), set())

    def take(self, table: str, group: str, key: Any) -> bool:
        """Whether ``key`` is new among :meth:`taken` ``(table, group)``; it is taken now
        (again free if the current document is taken back)."""
        taken = self.taken(table, group)
        if key in taken:
            return False
        taken.add(key)
        self.on_undo(partial(taken.discard, key))
        return True

    def seen(self, table: str, *key: Any) -> bool:
        """Whether a row with this primary key was merged into ``table``."""
        return key in self._merged.get(table, {})

    def merged_keys(self, table: str) -> KeysView[tuple[Any, ...]]:
        """The primary keys merged into ``table`` so far (a live view: :meth:`seen`
        for many keys)."""
        self._table(table)
        return self._merged.setdefault(table, {}).keys()

    def close(self) -> dict[str, array[int]]:
        """Write the merged rows, close the files; the origins of each staged line, by
        staged file."""
        for table, rows in self._merged.items():
            for values, origin, rank in rows.values():
                self._write(table, values, origin, rank == _RANK_AUTHORITATIVE)
        self._merged.clear()
        for handle in self._handles.values():
            handle.close()
        return self._origins


class SourceFormat(ABC):
    """Turns the documents of one kind of source file into rows of tenant tables."""

    #: The name ``--format`` and manifests use.
    name: ClassVar[str]
    #: The domain loader this format belongs to (``spotify``, ``analytics``...).
    loader: ClassVar[str]
    #: The tables it may fill.
    tables: ClassVar[frozenset[str]]
    #: Items of a top-level object to stream one at a time (``playlists.item``);
    #: ``None``: a top-level object is one document.
    stream: ClassVar[str | None] = None
    #: The settings of the load reading the files (secret keys, template directory),
    #: set before the first document; ``None``: the environment's.
    settings: Settings | None = None
    #: Per-table write modes of the rows that were not authoritative
    #: (names the format had to derive), e.g. ``insert_missing`` for catalogue rows.
    derived_modes: ClassVar[Mapping[str, TableMode]] = {}
    #: The options the format reads (``-o KEY=VALUE``, a manifest entry's ``options``),
    #: its :attr:`path_options` too: any other is refused, not silently ignored.
    option_names: ClassVar[frozenset[str]] = frozenset()
    #: Options that name a file the format reads: given in a manifest, they must lie
    #: inside its set (and are resolved against it); the service takes none of them.
    path_options: ClassVar[frozenset[str]] = frozenset()
    #: Tables the format stages placeholders in (rows made up from names), which
    #: :meth:`placeholders` recognises among the tenant's rows.
    placeholder_tables: ClassVar[frozenset[str]] = frozenset()
    #: Checks the format makes only over the tenant's rows (:meth:`after_load`), said
    #: for people: a check of the files alone names them as not made.
    tenant_checks: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options = dict(options or {})

    def derived_mode(self, table: str) -> TableMode | None:
        """How the rows this format staged as not authoritative for ``table`` are
        written (``None``: ``insert_missing``); :attr:`derived_modes` by default."""
        return self.derived_modes.get(table)

    @classmethod
    @abstractmethod
    def sniff(cls, document: Any) -> bool:
        """Whether ``document`` (the first of a file) looks like this format."""

    @abstractmethod
    def normalize(self, document: Any, sink: RowSink) -> None:
        """Emit the rows ``document`` stands for; raise ``sink.refuse(...)`` when it is bad.
        A lenient load then takes back what it staged: what the format remembers of those
        rows (a cache of rows staged) it forgets through :meth:`RowSink.on_undo`."""

    def read_ahead(self, file: SourceFile) -> ReadAhead | None:
        """Work on ``file`` that :meth:`stage_file` needs and that depends on nothing but
        the file and the options (decoding, typing, encoding rows), for a big load to
        run in parse worker processes a few files ahead of staging; ``None`` (the
        default): none."""
        del file
        return None

    def stage_file(self, file: SourceFile, index: int, sink: RowSink, ahead: Any = None) -> bool:
        """Stage the whole of ``file`` (file number ``index``) at once, where the format
        has a faster way than a document at a time; ``False`` (the default): read it a
        document at a time. ``ahead`` is what the file's :meth:`read_ahead` returned,
        when the load ran it (``None``: the format does that work itself).

        What it stages must be exactly what :meth:`normalize` would, record numbers
        included. A file it cannot vouch for as a whole is declined before anything is
        staged, so that the document path finds and names what is wrong.
        """
        del file, index, sink, ahead
        return False

    def finish(self, sink: RowSink) -> None:
        """Called once after the last document (emit rows that needed all of them)."""
        del sink

    def declared_tables(self, metadata: MetaData) -> frozenset[str]:
        """The tables this reader may fill given its options (by default ``tables``),
        known before any file is read: loads are ordered by them."""
        del metadata
        return self.tables

    def source_field(self, table: str, column: str) -> str | None:
        """The field of the source documents that ``column`` of ``table`` came from, for
        errors found in staged rows (``None``: the column's name says it)."""
        del table, column
        return None

    def record_table(self, document: Any) -> str | None:
        """The table ``document`` fills a row of, which a reject line of it names
        (``None``, the default: unknown)."""
        del document
        return None

    def shown(self, document: Any) -> Any:
        """``document`` as a reject file may show it (by default as read)."""
        return document

    def implied(self, document: Any) -> Mapping[str, Any]:
        """Values the row of ``document`` takes from the options, not from the document
        (a history export's listener): a reject line keeps them, so that erasing that
        person finds their refused documents. None by default."""
        del document
        return {}

    def fingerprint(self) -> str:
        """What a load's checksum covers besides the files and the options (e.g. the
        content of a file an option names); empty by default."""
        return ""

    async def prepare(self, files: Sequence[SourceFile], session: TenantSession | None) -> None:
        """Called once before the first document when a load stages the files, with the
        files this reader reads and the load's session: read what normalizing needs from
        all of them and from the tenant's rows (natural keys that point forward or at
        rows loaded before). Not called by :meth:`SourceLoader.stage` alone."""
        del files, session

    def tenant_lookups(self) -> str:
        """What :meth:`prepare` looks up among the tenant's rows, said for people (empty:
        nothing): without a tenant, the files this reader reads cannot be staged."""
        return ""

    @classmethod
    async def placeholders(
        cls, session: TenantSession, table: str, keys: Sequence[tuple[Any, ...]]
    ) -> set[tuple[Any, ...]]:
        """Those of ``keys`` (primary keys of ``table``, one of
        :attr:`placeholder_tables`) whose rows in the tenant are placeholders this
        format staged: a later load's derived row of the key replaces them."""
        del session, table, keys
        return set()

    async def after_load(self, session: TenantSession, files: Sequence[FixtureFile]) -> None:
        """Called in the load's transaction after the rows were written: checks that need
        the tenant's other rows (raise a typed error to refuse the whole load). ``files``
        are the staged files, where an error may be located."""
        del session, files

    def rows_refused(self, origins: Collection[Origin]) -> None:
        """Told, before :meth:`after_load`, where the documents are whose staged rows a
        lenient load refused (nothing to do by default)."""
        del origins

    def removed(self) -> Sequence[control_plane.TableChecksum]:
        """The rows :meth:`after_load` deleted, as ``purge`` writes recorded with the
        load's (none by default)."""
        return ()


def read_source_file(
    reader: SourceFormat, file: SourceFile, index: int, sink: RowSink, ahead: Any = None
) -> None:
    """Normalise every document of ``file`` (file number ``index`` of the load) into
    ``sink``: at once where ``reader`` can (:meth:`SourceFormat.stage_file`, given what
    the file's read-ahead returned, if it ran), else a document at a time."""
    held = len(sink.set_aside or ())
    if reader.stage_file(file, index, sink, ahead):
        if sink.set_aside is not None and len(sink.set_aside) > held:
            _as_read(reader, file, sink.set_aside, held)
        return
    for document in iter_documents(file, stream=type(reader).stream, require_stream=True):
        sink.at(index, document)
        stage_document(reader, document.value, sink, document.record)


def stage_document(reader: SourceFormat, value: Any, sink: RowSink, record: int) -> None:
    """Normalise ``value``, document ``record`` of its file, into ``sink``. In a lenient
    load (:attr:`RowSink.set_aside`) a document the format refuses is taken back whole
    and set aside; a refused option (``option:*``), which every document would break,
    still refuses the load."""
    if sink.set_aside is None:
        reader.normalize(value, sink)
        return
    sink.begin_document()
    try:
        reader.normalize(value, sink)
    except RecordError as exc:
        if (exc.rule or "").startswith("option:"):
            raise
        sink.take_back()
        table = exc.table or reader.record_table(value)
        aside = SetAside(exc, table, reader.shown(value), record, reader.implied(value))
        sink.set_aside.append(aside)
    finally:
        sink.end_document()


def _as_read(reader: SourceFormat, file: SourceFile, found: list[SetAside], held: int) -> None:
    """The documents set aside from ``file`` after the first ``held`` of ``found``, as
    read: a format staging a file whole normalised them from what it decoded."""
    wanted = {aside.index: at for at, aside in enumerate(found) if at >= held}
    for document in iter_documents(file, stream=type(reader).stream):
        at = wanted.pop(document.record, None)
        if at is not None:
            found[at] = replace(found[at], record=reader.shown(document.value))
        if not wanted:
            return


def path_options() -> frozenset[str]:
    """The options any registered format reads a file from (see
    :attr:`SourceFormat.path_options`)."""
    register_engine_formats()
    return frozenset().union(*(fmt.path_options for fmt in SOURCE_FORMATS.values()))


def check_options(
    formats: Iterable[type[SourceFormat]], options: Iterable[str], *, where: str = ""
) -> None:
    """A :class:`ConfigError` for an option none of ``formats`` reads (a typo would
    otherwise be ignored), naming it and the options each format takes; ``where``
    prefixes the message (the file whose options they are)."""
    readers = sorted(set(formats), key=lambda fmt: fmt.name)
    for key in options:
        if any(key in fmt.option_names | fmt.path_options for fmt in readers):
            continue
        taken = "; ".join(
            f"format {fmt.name!r} takes "
            + (", ".join(sorted(fmt.option_names | fmt.path_options)) or "no options")
            for fmt in readers
        )
        raise ConfigError(f"{where}unknown option {key!r}: {taken}", key=f"options.{key}")


def confined_options(directory: Path, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` of a manifest entry, each naming a file (:func:`path_options`)
    resolved inside ``directory``: a set cannot make a format read outside itself."""
    named = path_options()
    return {
        key: str(resolve_inside(directory, value, what=f"option {key!r}"))
        if key in named and isinstance(value, str)
        else value
        for key, value in options.items()
    }


def register_format(cls: type[SourceFormat]) -> type[SourceFormat]:
    """Class decorator: make a format available by its name."""
    SOURCE_FORMATS[cls.name] = cls
    return cls


def detect_format(file: SourceFile) -> str:
    """The name of the format whose ``sniff`` accepts the file's first document."""
    register_engine_formats()
    first: SourceDocument | None = None
    candidates = [f for f in SOURCE_FORMATS.values() if file.loader in (None, f.loader)]
    # Formats that stream the same prefix see the same first document: read it once each.
    firsts: dict[str | None, SourceDocument | None] = {}
    for fmt in candidates:
        if fmt.stream not in firsts:
            documents = iter_documents(file, stream=fmt.stream)
            try:
                firsts[fmt.stream] = next(documents, None)
            finally:
                documents.close()
        first = firsts[fmt.stream]
        if first is not None and fmt.sniff(first.value):
            return fmt.name
    if first is None:
        raise FixtureFormatError("no documents to detect a format from", path=file.relative)
    raise FixtureFormatError(
        "cannot tell the format of this file; give one of "
        + ", ".join(sorted(f.name for f in candidates)),
        path=file.relative,
    )


def no_source_path(path: Path) -> FixtureSetError:
    """The refusal of a ``PATH`` that is neither a file nor a directory: missing, or a
    device, pipe or socket (``/dev/null`` said "does not exist")."""
    if path.exists():
        return FixtureSetError(
            "source path is neither a file nor a directory (a device, pipe or socket): "
            "give a fixture set directory or source files",
            path=path,
        )
    return FixtureSetError("source path does not exist", path=path)


def find_source_files(path: Path) -> tuple[Path, list[str]]:
    """The directory and the source files (relative, subdirectories included) a
    ``PATH`` argument names."""
    if path.is_file():
        return path.parent, [path.name]
    if not path.is_dir():
        raise no_source_path(path)
    names = sorted(
        child.relative_to(path).as_posix()
        for child in path.rglob("*")
        if child.is_file() and child.name.lower().removesuffix(".gz").endswith(SOURCE_EXTENSIONS)
    )
    if not names:
        raise FixtureSetError("no source files (.json, .jsonl, .yaml, optionally .gz)", path=path)
    return path, names


def _name_field(error: RecordError, readers: Sequence[SourceFormat]) -> None:
    """The sink refuses a row by its table's column; the user wrote a field: name it."""
    if error.table is not None and error.column is not None:
        named = (r.source_field(error.table, error.column) for r in readers)
        error.column = next((n for n in named if n is not None), error.column)


def _discard(staging: tempfile.TemporaryDirectory[str], sink: RowSink) -> None:
    """Close ``sink`` and remove its directory (staging failed)."""
    sink.close()
    staging.cleanup()


class SourceLoader(RefreshesDerivedTables):
    """Loads source files (each read by its format) through a staged fixture set; the
    tables a domain derives from the rows it writes are refreshed after them."""

    loader_name = "sources"

    def __init__(
        self,
        files: Sequence[SourceFile],
        *,
        name: str | None = None,
        metadata: MetaData,
        batch_size: int = DEFAULT_BATCH_SIZE,
        modes: Mapping[str, TableMode] | None = None,
        shared_options: Iterable[str] | None = None,
    ) -> None:
        if not files:
            raise FixtureSetError("no source files given")
        register_engine_formats()
        self.schema = metadata
        self.sources = [
            f if f.format is not None else f.with_format(detect_format(f)) for f in files
        ]
        self.formats = [SOURCE_FORMATS[f.format or ""] for f in self.sources]
        self._check_options(shared_options)
        formats = sorted({fmt.name for fmt in self.formats})
        default = f"{'+'.join(formats)}:{self.sources[0].path.parent.name}"
        self._name = name or fitted_name(default, FIXTURE_NAME_LENGTH)
        self.batch_size = batch_size
        self.user_modes: dict[str, TableMode] = dict(modes or {})
        self.modes = dict(self.user_modes)
        self.files = []
        self.write_counts = {}
        self.written = {}
        self._checksum = None
        self._staging: tempfile.TemporaryDirectory[str] | None = None
        self._origins: dict[str, array[int]] = {}
        self._sink: RowSink | None = None
        self._relocated: set[int] = set()
        #: The rows the formats deleted after the last apply (:meth:`SourceFormat.removed`).
        self._removed: list[control_plane.TableChecksum] = []
        self._groups: dict[str, tuple[SourceFormat, list[SourceFile]]] | None = None
        #: The format instances that read the files (after staging).
        self.readers: list[SourceFormat] = []
        #: The documents a lenient staging set aside (:func:`stage_document`).
        self.set_aside: list[SetAside] = []

    def _check_options(self, shared_options: Iterable[str] | None) -> None:
        """Refuse an option nothing reads. ``shared_options`` went to every file (``-o``,
        a load's ``options``): one format of the load reading each is enough; a file's
        other options must be its own format's. ``None``: every option is shared."""
        given = {key for file in self.sources for key in file.options}
        shared = given if shared_options is None else frozenset(shared_options)
        for file, fmt in zip(self.sources, self.formats, strict=True):
            check_options([fmt], set(file.options) - shared, where=f"{file.relative}: ")
        check_options(self.formats, shared)

    @property
    def name(self) -> str:
        return self._name

    def source_bytes(self) -> int | None:
        return files_bytes(self.sources)

    def tables(self) -> list[str]:
        names = frozenset[str]().union(
            *(reader.declared_tables(self.schema) for reader, _ in self._reader_groups().values())
        )
        return [t.name for t in self.schema.sorted_tables if t.name in names]

    def _reader_groups(self) -> dict[str, tuple[SourceFormat, list[SourceFile]]]:
        """One reader per format and options, with the files it reads (so ``prepare``
        and ``finish`` see all of them)."""
        if self._groups is None:
            groups: dict[str, tuple[SourceFormat, list[SourceFile]]] = {}
            for file in self.sources:
                fmt_cls = SOURCE_FORMATS[file.format or ""]
                key = json.dumps([fmt_cls.name, sorted(file.options.items())], default=str)
                if key not in groups:
                    groups[key] = (fmt_cls(file.options), [])
                groups[key][1].append(file)
            self._groups = groups
        return self._groups

    def tenant_lookups(self) -> dict[str, str]:
        """Source file (relative path) -> what its format looks up among the tenant's
        rows before staging (:meth:`SourceFormat.tenant_lookups`): only a load stages it."""
        return {
            file.relative: reader.tenant_lookups()
            for reader, files in self._reader_groups().values()
            if reader.tenant_lookups()
            for file in files
        }

    def tenant_checks(self) -> list[str]:
        """The checks this loader's formats, and the guards of the tables it staged,
        make only over the tenant's rows."""
        found = (type(reader).tenant_checks for reader, _ in self._reader_groups().values())
        return list(dict.fromkeys(chain(*found, super().tenant_checks())))

    def left_out(self, context: LoadContext) -> bool:
        return bool(self.set_aside) or super().left_out(context)

    def checksum(self) -> str:
        if self._checksum is None:
            digests = files_sha256([f.path for f in self.sources])
            manifest: list[list[Any]] = [
                [f.relative, f.format, sorted(f.options.items()), digest]
                for f, digest in zip(self.sources, digests, strict=True)
            ]
            extra = [reader.fingerprint() for reader, _ in self._reader_groups().values()]
            if any(extra):
                manifest.append(extra)
            payload = json.dumps([self.loader_name, self.version, manifest], default=str)
            self._checksum = hashlib.sha256(payload.encode()).hexdigest()
        return self._checksum

    def stage(self, settings: Settings | None = None, *, set_aside: bool = False) -> None:
        """Read every source file and write the staged fixture set (once); the formats
        get ``settings`` (secret keys, template directory). ``set_aside``: a document a
        format refuses is left out and listed in :attr:`set_aside` (lenient)."""
        if self._staging is None:
            self._finish_staging(*self._start_staging(settings, set_aside))

    async def prepare(
        self, session: TenantSession, settings: Settings | None = None, *, set_aside: bool = False
    ) -> None:
        """Stage the files for a load in ``session`` (once): each format first prepares
        with the session (:meth:`SourceFormat.prepare`), then the files are read, and
        derived rows whose keys the tenant holds as placeholders are promoted.
        ``set_aside`` as for :meth:`stage`."""
        if self._staging is not None:
            return
        for reader, files in self._reader_groups().values():
            reader.settings = settings
            await reader.prepare(files, session)
        staging, sink = await asyncio.to_thread(self._start_staging, settings, set_aside)
        try:
            await self._replace_placeholders(session, sink)
        except BaseException:
            _discard(staging, sink)
            raise
        await asyncio.to_thread(self._finish_staging, staging, sink)

    def _start_staging(
        self, settings: Settings | None, set_aside: bool = False
    ) -> tuple[tempfile.TemporaryDirectory[str], RowSink]:
        """A private directory and a sink holding every source file's rows (not yet
        closed)."""
        staging = tempfile.TemporaryDirectory(prefix="tf_stage_")
        sink = RowSink(Path(staging.name), self.schema, self.sources, set_aside=set_aside)
        try:
            self.readers = self._read_sources(sink, settings)
        except BaseException:
            _discard(staging, sink)
            raise
        self.set_aside = list(sink.set_aside or ())
        for aside in self.set_aside:
            _name_field(aside.error, self.readers)
        return staging, sink

    def _finish_staging(self, staging: tempfile.TemporaryDirectory[str], sink: RowSink) -> None:
        """Close the sink and load from the files it staged."""
        try:
            self._origins = sink.close()
        except BaseException:
            _discard(staging, sink)
            raise
        self._staging, self._sink = staging, sink
        if not self._origins:
            self.files = []
            return
        self._open_staged(Path(staging.name), sink)

    async def _replace_placeholders(self, session: TenantSession, sink: RowSink) -> None:
        """Promote the derived rows whose keys the tenant holds as placeholders (those
        a format of this load's domains recognises as its own; a table still empty
        holds none): they replace them instead of being left out."""
        domains = {fmt.loader for fmt in self.formats}
        owners = sorted(
            (f for f in SOURCE_FORMATS.values() if f.loader in domains and f.placeholder_tables),
            key=lambda f: f.name,
        )
        for fmt in owners:
            for table in sorted(fmt.placeholder_tables):
                keys = sink.derived_keys(table)
                if keys and not await session.is_empty(self._table(session, table)):
                    sink.promote(table, await fmt.placeholders(session, table, keys))

    def _read_sources(self, sink: RowSink, settings: Settings | None) -> list[SourceFormat]:
        """Normalize every source file into ``sink``; returns the format readers used."""
        reader_of: dict[int, SourceFormat] = {}
        for reader, files in self._reader_groups().values():
            reader.settings = settings
            reader_of.update((id(file), reader) for file in files)
        aheads = self._read_ahead([reader_of[id(file)] for file in self.sources], settings)
        readers = [reader for reader, _ in self._reader_groups().values()]
        try:
            with closing(aheads):
                for index, (file, ahead) in enumerate(zip(self.sources, aheads, strict=True)):
                    read_source_file(reader_of[id(file)], file, index, sink, ahead)
        except RecordError as exc:
            _name_field(exc, readers)
            raise
        for reader in readers:
            reader.finish(sink)
        return readers

    def _read_ahead(
        self, readers: list[SourceFormat], settings: Settings | None
    ) -> Generator[Any, None, None]:
        """What each file's read-ahead returned, in file order (``None`` where it has
        none or it was not run): run by parse worker processes, a few files ahead of
        staging, when the files that have one are big enough to pay for the workers;
        else left to the formats, which do that work as they stage."""
        jobs = [reader.read_ahead(file) for reader, file in zip(readers, self.sources, strict=True)]
        wanted = settings.workers_for_parsing if settings is not None else 0
        size = sum(f.path.stat().st_size for f, job in zip(self.sources, jobs, strict=True) if job)
        if (
            not wanted
            or not self._pays_for_workers(size, POOL.idle > 0)
            or any(j.function.__module__ == "__main__" for j in jobs if j is not None)
        ):
            yield from (None for _ in jobs)
            return
        with POOL.lend(wanted) as workers:
            if not workers:  # another load holds them all
                yield from (None for _ in jobs)
                return
            calls = ((j.function, j.args) for j in jobs if j is not None)
            with closing(call_in_workers(workers, calls)) as results:
                for job in jobs:
                    yield None if job is None else next(results)

    def _open_staged(self, directory: Path, sink: RowSink) -> None:
        """Load from the staged files: a manifest in table order, derived rows last."""
        order = {t.name: i for i, t in enumerate(self.schema.sorted_tables)}
        entries = sorted(sink.staged, key=lambda e: (order[e[0]], e[1].startswith(DERIVED)))
        manifest = {"files": [{"table": table, "path": path} for table, path in entries]}
        (directory / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")
        staged = open_fixture_set(directory, metadata=self.schema)
        self.fixture_set = staged
        self.files = list(staged.files)
        self.file_modes = {}
        for table, path in entries:
            if path.startswith(DERIVED) and table not in self.user_modes:
                declared = (fmt.derived_mode(table) for fmt in self.readers)
                self.file_modes[path] = next((m for m in declared if m), "insert_missing")

    async def apply(self, session: TenantSession, context: LoadContext) -> Mapping[str, int]:
        self._removed = []
        await self.prepare(session, context.settings)
        if not self.files:
            self.write_counts, self.written, self.refreshed = {}, {}, {}
            return {}
        try:
            counts = await super().apply(session, context)
            refused = self._refused_origins(context)
            for reader in self.readers:
                if refused:
                    reader.rows_refused(refused)
                await reader.after_load(session, self.files)
            self._removed = [entry for reader in self.readers for entry in reader.removed()]
        except FixtureError as exc:
            self.relocate(exc)
            raise
        return counts

    def _refused_origins(self, context: LoadContext) -> set[Origin]:
        """The source documents whose staged rows a lenient load left out."""
        found: set[Origin] = set()
        for file in self.files:
            skipped = context.skip_records.get(file.path)
            origins = self._origins.get(file.relative)
            if skipped and origins is not None and self._sink is not None:
                found.update(self._sink.decode(origins[r - 1]) for r in skipped)
        return found

    def table_checksums(self) -> list[control_plane.TableChecksum]:
        """What the load wrote to each table, then what its formats deleted after it."""
        return [*super().table_checksums(), *self._removed]

    def relocate(self, error: FixtureError) -> None:
        """Point an error located in a staged file at the source document it came from."""
        if self._sink is None or error.table is None or error.path is None:
            return
        # Not before it has a line: the load may find that line later (by the key the
        # database printed) and relocate again.
        if id(error) in self._relocated or error.line is None:
            return
        self._relocated.add(id(error))
        origins = self._origins.get(str(error.path))
        if origins is None or not 0 < error.line <= len(origins):
            return
        origin = self._sink.decode(origins[error.line - 1])
        error.path, error.line, error.record = origin.path, origin.line, origin.record
        if error.column is not None:
            named = (r.source_field(error.table, error.column) for r in self.readers)
            error.column = next((n for n in named if n is not None), error.column)

    def close(self) -> None:
        """Remove the staged files; a next load (of another tenant, say) stages with new
        format readers (a reader keeps what it staged: the plays it saw, its listener)."""
        if self._staging is not None:
            self._staging.cleanup()
            self._staging = None
        self._groups = None
        self.set_aside = []
