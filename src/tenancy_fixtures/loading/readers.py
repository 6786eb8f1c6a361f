"""Streaming readers: one record at a time from JSON, JSON Lines, CSV and YAML files.

JSON arrays are parsed incrementally (ijson events), JSON Lines and CSV line by line,
gzip on the fly, so memory does not grow with a file's size. YAML is the exception: it
is parsed whole, so keep YAML for small files; its plain scalars are typed by the YAML
1.2 core schema (:mod:`~tenancy_fixtures.loading.yaml_core`), not PyYAML's 1.1, which
reads ``017`` as 15, ``1:30`` as 90 and ``on`` as true. Every failure is a
:class:`FixtureFormatError` naming the file and the line or record, but for a lone
surrogate escape (``"\\ud800"``, text no Unicode string holds) in JSON or in a YAML
key: that is a :class:`RecordError` (rule ``encoding``) naming the field too, as the
loader's refusal of such a value is (a YAML value's is left to it).

The readers refuse what a parser would otherwise accept silently or choke on: a key
given twice in one object (parsers keep the last), values nested deeper than
:data:`MAX_DEPTH` (deep nesting is how parsers are made to exhaust memory or the
stack), records larger than :data:`MAX_RECORD_BYTES` (a missing newline, a gzip bomb),
and YAML aliases that expand to far more values than the file holds. A UTF-8 byte
order mark at the start of a file is skipped. CSV fields may be as long as
:data:`MAX_CSV_FIELD_BYTES` (above the default text cap, so CSV holds what JSON can):
the :mod:`csv` module's process-wide ``field_size_limit`` is raised to it, never
lowered.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import orjson

from tenancy_fixtures.errors import FixtureError, FixtureFormatError, RecordError
from tenancy_fixtures.loading.fixture_sets import FixtureFile
from tenancy_fixtures.loading.lone_surrogates import LoneSurrogate, LoneSurrogateScan
from tenancy_fixtures.loading.long_integers import TooLongInteger, exact_line, long_digit_runs

if TYPE_CHECKING:
    import yaml

__all__ = [
    "MAX_DEPTH",
    "MAX_RECORD_BYTES",
    "SourceRecord",
    "csv_header",
    "exact_numbers",
    "exact_retry",
    "first_array_item",
    "is_integer_overflow",
    "iter_records",
    "json_lines_blocks",
    "json_lines_records",
    "yaml_items",
]

#: Deepest nesting of objects and arrays a record may have (the record itself is 1).
MAX_DEPTH = 100
#: Largest record in bytes: a JSON Lines or CSV line, a member of a JSON array, a whole
#: YAML file. Far above any record a table takes (text is capped at 1 Mi characters),
#: it stops a missing newline or a gzip bomb from filling memory, and bounds the time
#: ijson takes over one long string (it re-reads an unfinished token at every chunk).
MAX_RECORD_BYTES = 16 * 1024 * 1024
#: The longest CSV field read.
MAX_CSV_FIELD_BYTES = 2 * 1024 * 1024

_DECODE_ERRORS = (UnicodeDecodeError, EOFError, gzip.BadGzipFile, zlib.error)
_BOM = "\ufeff"
_BOM_BYTES = _BOM.encode()
#: Bytes of JSON Lines read per block (whole lines; a longer line is read whole).
_BLOCK = 1 << 16
#: Values a YAML file may expand to (aliases included), per byte of the file.
_YAML_VALUES_PER_BYTE = 10
_YAML_MIN_VALUES = 10_000


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One record as read: its values and where it stands in the file."""

    values: dict[str, Any]
    line: int | None
    record: int


class _Refused(Exception):
    """A value the readers will not pass on; turned into a FixtureFormatError with its
    place, or a RecordError when it breaks a record's ``rule``."""

    def __init__(self, message: str, column: str | None = None, rule: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column
        self.rule = rule


class _NotUnicode(_Refused):
    """A lone surrogate, in the text of field ``column`` or (``key``) in a record's key:
    no Unicode text holds one, though JSON's and YAML's escapes can write one."""

    def __init__(self, column: str | None = None, *, key: bool = False) -> None:
        what = "a key" if key else "text"
        message = f"{what} that is not valid Unicode (a lone surrogate)"
        super().__init__(message, column, "encoding")


@contextmanager
def _binary(file: FixtureFile) -> Iterator[IO[bytes] | gzip.GzipFile]:
    with file.path.open("rb") as raw:
        if file.compressed:
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield unzipped
        else:
            yield raw


def _error(
    file: FixtureFile,
    message: str,
    *,
    line: int | None = None,
    record: int | None = None,
    column: str | None = None,
) -> FixtureFormatError:
    return FixtureFormatError(
        message, path=file.relative, table=file.table, line=line, record=record, column=column
    )


def _refusal(
    file: FixtureFile, refused: _Refused, *, line: int | None = None, record: int | None = None
) -> FixtureError:
    """``refused`` at its place: a RecordError if it breaks a rule (text that is not
    Unicode), as the loader's refusals do, else a FixtureFormatError."""
    if refused.rule is not None:
        return RecordError(
            refused.message,
            path=file.relative,
            table=file.table,
            line=line,
            record=record,
            column=refused.column,
            rule=refused.rule,
        )
    return _error(file, refused.message, line=line, record=record, column=refused.column)


def _object(
    file: FixtureFile, value: Any, *, line: int | None = None, record: int | None = None
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _error(
            file, f"expected an object, found {type(value).__name__}", line=line, record=record
        )
    return value


def _too_deep(column: str | None) -> _Refused:
    return _Refused(f"value nested deeper than {MAX_DEPTH} levels", column)


def _duplicate(key: Any, column: str | None) -> _Refused:
    return _Refused(f"key {str(key)!r:.80} appears twice in one object", column)


def _too_large(what: str) -> _Refused:
    return _Refused(f"{what} is larger than {MAX_RECORD_BYTES} bytes")


# --- JSON arrays ---------------------------------------------------------------------


class _ArrayStream:
    """A JSON array's bytes as ijson reads them: a UTF-8 byte order mark at the start
    skipped, and no more than MAX_RECORD_BYTES read for one record (``record_read``
    marks where the last one ended). The bytes before a lone surrogate escape are read,
    then :class:`_NotUnicode` raised: yajl would decode it as ``?``."""

    def __init__(self, stream: IO[bytes] | gzip.GzipFile) -> None:
        self._stream = stream
        self._head: bytes | None = None
        self._since_record = 0
        self._surrogates = LoneSurrogateScan()

    def record_read(self) -> None:
        self._since_record = 0

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""  # ijson reads 0 bytes to learn whether the stream is binary
        if self._since_record > MAX_RECORD_BYTES:
            raise _too_large("a record")
        if self._head is None:
            head = b""
            while len(head) < len(_BOM_BYTES):
                more = self._stream.read(len(_BOM_BYTES) - len(head))
                if not more:
                    break
                head += more
            self._head = head.removeprefix(_BOM_BYTES)
        if self._head:
            data, self._head = self._head, b""
        else:
            data = self._stream.read(size)
        return self._checked(data)

    def _checked(self, data: bytes) -> bytes:
        """``data`` up to a lone surrogate escape; raises once what came before is parsed."""
        try:
            data = self._surrogates.passed(data)
        except LoneSurrogate:
            raise _NotUnicode() from None
        self._since_record += len(data)
        return data


def _array_items(events: Iterator[tuple[str, Any]]) -> Iterator[Any]:
    """The items of a top-level JSON array, built from ijson's basic events.

    ijson's own item builder keeps every open level's path, which makes deep nesting
    cost memory quadratic in the depth; this one stops at :data:`MAX_DEPTH` and
    refuses a key repeated in one object instead of keeping the last. A lone surrogate
    escape the stream stops before is refused at the field being read.
    """
    _array_start(events)
    stack: list[Any] = []  # containers open inside the top-level array
    keys: list[Any] = []  # the key each open container is stored under in its parent
    top: Any = None
    key: Any = None
    try:
        for event, value in events:
            if event == "map_key":
                if value in top:
                    raise _duplicate(value, _outermost(keys, value))
                key = value
            elif event in ("start_map", "start_array"):
                new: Any = {} if event == "start_map" else []
                if stack:
                    if len(stack) >= MAX_DEPTH:
                        raise _too_deep(_outermost(keys, key))
                    if type(top) is dict:
                        top[key] = new
                    else:
                        top.append(new)
                keys.append(key)
                stack.append(new)
                top, key = new, None
            elif event in ("end_map", "end_array"):
                if not stack:
                    continue  # the top-level array closed; the parser refuses anything after it
                done = stack.pop()
                key = keys.pop()
                if stack:
                    top = stack[-1]
                else:
                    top = None
                    yield done
            elif stack:
                if type(top) is dict:
                    top[key] = value
                else:
                    top.append(value)
            else:
                yield value
    except _NotUnicode:
        raise _lone_surrogate_field(stack, keys, key) from None


def first_array_item(stream: IO[bytes] | gzip.GzipFile, empty: Any) -> Any:
    """The first item of the JSON array ``stream`` holds, ``empty`` for an empty one;
    ``ValueError`` for one nested past :data:`MAX_DEPTH` or with a repeated key (ijson's
    own item builder would spend memory quadratic in the nesting depth first)."""
    import ijson

    try:
        return next(_array_items(ijson.basic_parse(stream, use_float=True)), empty)
    except _Refused as exc:
        raise ValueError(exc.message) from None


def _array_start(events: Iterator[tuple[str, Any]]) -> None:
    """Step into the top-level array; refuse a file that holds no array."""
    first = next(events, None)
    if first is None or first[0] != "start_array":
        raise _Refused("a .json fixture file must hold a JSON array of objects")


def _lone_surrogate_field(stack: list[Any], keys: list[Any], key: Any) -> _NotUnicode:
    """The refusal of a lone surrogate escape in the string being read, named at the
    record's field: in an object, the string is ``key``'s value unless that is set (or
    no key was read yet), when it is the next key."""
    if not stack:
        return _NotUnicode()  # an item that is no object
    top = stack[-1]
    if type(top) is dict and (key is None or key in top):
        if len(stack) == 1:
            return _NotUnicode(key=True)
        return _NotUnicode(keys[1])
    return _NotUnicode(_outermost(keys, key))


def _outermost(keys: list[Any], key: Any) -> Any:
    """The key of the record's field being read (``key`` when that is the field)."""
    return keys[1] if len(keys) > 1 else key


def is_integer_overflow(error: Exception) -> bool:
    """Whether ijson refused a well-formed JSON integer beyond 64 bits: its C parser
    does, reading numbers with ``use_float=True`` (read again with :func:`exact_numbers`)."""
    return str(error).lstrip().startswith("parse error: integer overflow")


def exact_numbers(events: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """ijson events read with ``use_float=False`` as ``use_float=True`` gives them, but
    for integers beyond 64 bits, kept whole: a ``Decimal`` becomes a float, and one past
    the float range is refused as the C parser refuses it."""
    import ijson

    for event in events:
        value = event[-1]
        if event[-2] != "number" or type(value) is int:
            yield event
            continue
        number = float(value)
        if not math.isfinite(number):
            raise ijson.JSONError("parse error: numeric (floating point) overflow")
        yield (*event[:-1], number)


@contextmanager
def exact_retry(overflow: Exception) -> Iterator[None]:
    """Around a read again with :func:`exact_numbers` after ``overflow``: an integer
    Python will not read (past 4,300 digits; ijson's C parser then raises a
    ``SystemError``) is refused as ``overflow`` refused it."""
    try:
        yield
    except UnicodeDecodeError:
        raise
    except (SystemError, ValueError):
        raise overflow from None


def _json_array(file: FixtureFile) -> Iterator[SourceRecord]:
    import ijson  # only JSON arrays need it: not imported by processes that never read one

    read = [0]  # the records yielded so far
    try:
        try:
            yield from _json_array_records(file, read, exact=False)
        except ijson.JSONError as exc:
            if not is_integer_overflow(exc):
                raise
            with exact_retry(exc):
                yield from _json_array_records(file, read, exact=True)
    except _Refused as exc:
        raise _refusal(file, exc, record=read[0] + 1) from None
    except ijson.JSONError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "parse error"
        if read[0] == 0 and "premature EOF" in reason and _is_blank(file):
            raise _error(
                file, "the file is empty: a .json fixture file holds a JSON array ([] for none)"
            ) from None
        raise _error(
            file, f"malformed JSON after record {read[0]}: {reason}", record=read[0] + 1
        ) from None
    except _DECODE_ERRORS as exc:
        raise _error(file, f"unreadable: {exc}", record=read[0] + 1) from None


def _json_array_records(
    file: FixtureFile, read: list[int], *, exact: bool
) -> Iterator[SourceRecord]:
    """The records of a JSON array after the first ``read[0]`` (counted in it as they
    are yielded); ``exact``: numbers read by :func:`exact_numbers`, slower, for a file
    holding an integer beyond 64 bits, which the load then refuses by its record."""
    import ijson

    with _binary(file) as stream:
        array = _ArrayStream(stream)
        events = ijson.basic_parse(array, use_float=not exact)
        for index, value in enumerate(_array_items(exact_numbers(events) if exact else events), 1):
            array.record_read()
            if index > read[0]:
                read[0] = index
                yield SourceRecord(_object(file, value, record=index), None, index)


def _is_blank(file: FixtureFile) -> bool:
    """Whether the (decompressed) file holds nothing but whitespace and a BOM."""
    with _binary(file) as stream:
        while chunk := stream.read(_BLOCK):
            if chunk.removeprefix(_BOM_BYTES).strip():
                return False
    return True


# --- JSON Lines ----------------------------------------------------------------------


def _nested_keys(value: dict[str, Any]) -> int:
    """Keys of a record at every level; refuses nesting deeper than MAX_DEPTH."""
    keys = 0
    pending: list[tuple[Any, int, str | None]] = [(value, 1, None)]
    while pending:
        node, depth, where = pending.pop()
        if depth > MAX_DEPTH:
            raise _too_deep(where)
        if type(node) is dict:
            keys += len(node)
            for name, child in node.items():
                if type(child) is dict or type(child) is list:
                    pending.append((child, depth + 1, where if depth > 1 else name))
        elif type(node) is list:
            for child in node:
                if type(child) is dict or type(child) is list:
                    pending.append((child, depth + 1, where))
    return keys


class _Pairs(list[tuple[str, Any]]):
    """An object's members in file order, a repeated key kept (``json`` hook result)."""


def _repeated_key(raw: bytes) -> _Refused | None:
    """The first key repeated in one object of ``raw``, with the record's column holding it."""
    pending: list[tuple[Any, str | None]] = [(json.loads(raw, object_pairs_hook=_Pairs), None)]
    while pending:
        node, column = pending.pop()
        if isinstance(node, _Pairs):
            seen: set[str] = set()
            for name, child in node:
                if name in seen:
                    return _duplicate(name, column if column is not None else name)
                seen.add(name)
                pending.append((child, column if column is not None else name))
        elif isinstance(node, list):
            pending.extend((child, column) for child in node)
    return None


def _whitespace_before_colon(data: bytes) -> bool:
    # Single bytes are found far faster than pairs: look for the pair only when needed.
    return b" :" in data or (b"\t" in data and b"\t:" in data) or (b"\r" in data and b"\r:" in data)


def _deep_arrays_possible(data: bytes) -> bool:
    """Whether ``data`` holds enough ``[`` for a record without nested keys to be too deep.

    Without objects below the record, every level below it but the last is an array.
    """
    return b"[" in data and data.count(b"[") > MAX_DEPTH - 2


def _check_line(raw: bytes, value: dict[str, Any]) -> None:
    """Refuse a repeated key or deep nesting in one JSON Lines record.

    orjson keeps the last of a repeated key and allows 1024 levels, so the raw line is
    compared with the parsed record. Every key of the line ends in ``":`` unless
    whitespace stands before its colon (and a ``":`` may also stand inside a string),
    so when the line holds no more ``":`` than the record has keys, counted at every
    level, no key was dropped. Only lines where the counts differ are parsed again,
    keeping repeats, to find the repeated key.
    """
    quoted_colons = raw.count(b'":')
    spaced = _whitespace_before_colon(raw)
    if not spaced and quoted_colons == len(value) and not _deep_arrays_possible(raw):
        return
    keys = _nested_keys(value)
    if spaced or keys != quoted_colons:
        repeated = _repeated_key(raw)
        if repeated is not None:
            raise repeated


def _json_lines(file: FixtureFile) -> Iterator[SourceRecord]:
    records = 0
    for block, before in json_lines_blocks(file):
        parsed, failure = json_lines_records(file, block, before, records)
        records += len(parsed)
        yield from parsed
        if failure is not None:
            raise failure


def json_lines_blocks(file: FixtureFile, *, min_lines: int = 0) -> Iterator[tuple[bytes, int]]:
    """A JSON Lines file as blocks of whole lines, each with the number of lines before it.

    A block holds at least ``min_lines`` lines where the file has them (blocks are read
    64 KiB at a time). Decompressing and cutting lines is all that happens here;
    :func:`json_lines_records` parses a block, in this process or another one.
    """
    line_no = 0
    pieces: list[bytes] = []
    lines = 0
    try:
        with _binary(file) as stream:
            for block in _line_blocks(stream):
                if line_no == 0 and not pieces:
                    block = block.removeprefix(_BOM_BYTES)
                count = block.count(b"\n") + (not block.endswith(b"\n"))
                pieces.append(block)
                lines += count
                if lines < min_lines:
                    continue
                yield (b"".join(pieces) if len(pieces) > 1 else pieces[0]), line_no
                line_no += lines
                pieces, lines = [], 0
            if pieces:
                yield b"".join(pieces), line_no
                line_no += lines
    except _Refused as exc:
        raise _error(file, exc.message, line=line_no + lines + 1) from None
    except _DECODE_ERRORS as exc:
        raise _error(file, f"unreadable: {exc}", line=_whole_lines(file) + 1) from None


def json_lines_records(
    file: FixtureFile, block: bytes, before: int, records: int = 0
) -> tuple[list[SourceRecord], FixtureError | None]:
    """The records of one block of :func:`json_lines_blocks`, numbered after ``records``,
    up to the first refused line, and the error for that line (numbered from the start
    of the file), if any: the records before it are still to be checked first."""
    # orjson parses bytes directly (UTF-8 checked as it goes) about three times faster
    # than json; it also refuses NaN and Infinity, which JSON does not have.
    lines = block.split(b"\n")
    if block.endswith(b"\n"):
        lines.pop()
    return _json_lines_block(file, block, lines, before, records)


def _line_blocks(stream: IO[bytes] | gzip.GzipFile) -> Iterator[bytes]:
    """The stream in blocks of whole lines (the last may lack its newline).

    Reading a block at a time rather than a line at a time lets the checks below run
    once per block; a line longer than MAX_RECORD_BYTES is refused as it is read.
    """
    pieces: list[bytes] = []
    pending = 0
    while chunk := stream.read(_BLOCK):
        cut = chunk.rfind(b"\n") + 1
        if not cut:
            pieces.append(chunk)
            pending += len(chunk)
            if pending > MAX_RECORD_BYTES:
                raise _too_large("a line")
            continue
        yield b"".join((*pieces, chunk[:cut])) if pieces else chunk[:cut]
        pieces = [chunk[cut:]]
        pending = len(chunk) - cut
    if pending:
        yield b"".join(pieces)


def _json_lines_block(
    file: FixtureFile, block: bytes, lines: list[bytes], before: int, records: int
) -> tuple[list[SourceRecord], FixtureError | None]:
    """The records of a block of lines up to the first refused one, and its error.

    The checks for repeated keys and deep nesting (see :func:`_check_line`) run on the
    whole block at once when no record of it holds an object or many arrays: the
    common case costs a few byte counts per block, not per line.
    """
    parsed: list[SourceRecord] = []
    raws: list[bytes] = []
    failure: FixtureError | None = None
    keys = 0
    long_runs = long_digit_runs(block)
    for at, raw in enumerate(lines, before + 1):
        if not raw.strip():
            continue
        try:
            value = _line_value(file, raw, at, long_runs=long_runs)
        except _LineRefused as refused:
            failure = refused.error
            break
        if type(value) is not dict:
            failure = _error(file, f"expected an object, found {type(value).__name__}", line=at)
            break
        keys += len(value)
        records += 1
        parsed.append(SourceRecord(value, at, records))
        raws.append(raw)
    # No line repeats a key or holds an object: only arrays could still nest too deep.
    flat = block.count(b'":') == keys and not _whitespace_before_colon(block)
    if failure is None and flat and not _deep_arrays_possible(block):
        return parsed, None
    for index, (source, raw) in enumerate(zip(parsed, raws, strict=True)):
        if flat and not _deep_arrays_possible(raw):
            continue
        try:
            _check_line(raw, source.values)
        except _Refused as exc:
            return parsed[:index], _error(file, exc.message, line=source.line, column=exc.column)
    return parsed, failure


class _LineRefused(Exception):
    """A refused line (``error`` says where and why)."""

    def __init__(self, error: FixtureError) -> None:
        super().__init__(error.message)
        self.error = error


def _line_value(file: FixtureFile, raw: bytes, at: int, *, long_runs: bool) -> Any:
    """The JSON value of line ``at``; an integer beyond 64 bits (which orjson rounds, or
    refuses past the float range) read whole where the block has ``long_runs``."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        exact = _past_floats(file, raw, at) if long_runs and "infinity" in str(exc) else None
        if exact is None:
            raise _LineRefused(_line_error(file, raw, at, exc)) from None
        return exact
    if long_runs and long_digit_runs(raw):
        exact = _exactly(file, raw, at)
        return value if exact is None else exact
    return value


def _past_floats(file: FixtureFile, raw: bytes, at: int) -> Any:
    """Line ``at``, which orjson refused as an infinity, read whole if that was an integer
    past the float range; ``None`` if it is not (or is no JSON): orjson's refusal stands."""
    if not long_digit_runs(raw):
        return None
    lone = _lone_surrogate_in(raw)  # orjson refuses one; json keeps it
    if lone is not None:
        raise _LineRefused(_refusal(file, lone, line=at))
    try:
        return _exactly(file, raw, at)
    except ValueError:  # not UTF-8, or malformed after the number
        return None


def _exactly(file: FixtureFile, raw: bytes, at: int) -> Any:
    """:func:`exact_line` of line ``at``, an integer too long to read refused by its field."""
    try:
        return exact_line(raw)
    except TooLongInteger as exc:
        refused = _Refused(str(exc), exc.column, "range")
        raise _LineRefused(_refusal(file, refused, line=at)) from None


def _line_error(
    file: FixtureFile, raw: bytes, at: int, exc: orjson.JSONDecodeError
) -> FixtureError:
    """Why orjson refused line ``at`` (``raw``): nesting too deep, bytes that are not
    UTF-8, a lone surrogate escape (JSON allows one, Unicode text does not), or JSON
    that is malformed."""
    if "depth limit" in str(exc):  # orjson's own limit, far above ours
        return _error(file, _too_deep(None).message, line=at)
    if "UTF-8" in str(exc):
        return _error(file, f"unreadable: {exc}", line=at)
    lone = _lone_surrogate_in(raw) if "surrogate" in str(exc) else None
    if lone is not None:
        return _refusal(file, lone, line=at)
    return _error(file, f"malformed JSON: {exc}", line=at)


def _lone_surrogate_in(raw: bytes) -> _NotUnicode | None:
    """The refusal of the first field of the JSON object ``raw`` whose key, or text at
    any depth, holds a lone surrogate; ``None`` if none does (or ``raw`` is no object).
    The standard library's parser keeps a lone surrogate escape as it is."""
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if type(record) is not dict:
        return None
    for name, field in record.items():
        if _not_unicode(name):
            return _NotUnicode(key=True)
        pending = [field]
        while pending:
            node = pending.pop()
            if type(node) is dict:
                pending.extend(node)  # its keys
                pending.extend(node.values())
            elif type(node) is list:
                pending.extend(node)
            elif _not_unicode(node):
                return _NotUnicode(name)
    return None


def _not_unicode(value: Any) -> bool:
    """Whether ``value`` is text UTF-8 cannot encode (it holds a lone surrogate)."""
    if type(value) is not str:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return True
    return False


def _whole_lines(file: FixtureFile) -> int:
    """How many whole lines can be read before the file's bytes fail to decompress."""
    count = 0
    try:
        with _binary(file) as stream:
            while stream.readline(MAX_RECORD_BYTES + 1):
                count += 1
    except _DECODE_ERRORS:
        pass
    return count


# --- CSV -----------------------------------------------------------------------------


def _decoded_lines(stream: IO[bytes] | gzip.GzipFile, counter: list[int]) -> Iterator[str]:
    """Lines as text, decoded one at a time so a bad byte is reported at its own line;
    a line longer than MAX_RECORD_BYTES is refused as it is read."""
    while raw := stream.readline(MAX_RECORD_BYTES + 1):
        counter[0] += 1
        if len(raw) > MAX_RECORD_BYTES:
            raise _too_large("a line")
        line = raw.decode("utf-8")
        yield line[1:] if counter[0] == 1 and line.startswith(_BOM) else line


def _allow_long_csv_fields() -> None:
    if csv.field_size_limit() < MAX_CSV_FIELD_BYTES:
        csv.field_size_limit(MAX_CSV_FIELD_BYTES)


def csv_header(file: FixtureFile) -> list[str]:
    """The column names of a CSV file's header row (empty for an empty file), so they
    can be checked against the table even when no row follows."""
    counter = [0]
    _allow_long_csv_fields()
    try:
        with _binary(file) as stream:
            return next(csv.reader(_decoded_lines(stream, counter), strict=True), [])
    except csv.Error as exc:
        raise _error(file, f"malformed CSV: {exc}", line=1) from None
    except _Refused as exc:
        raise _error(file, exc.message, line=1) from None
    except _DECODE_ERRORS as exc:
        raise _error(file, f"unreadable: {exc}", line=max(counter[0], 1)) from None


def _csv(file: FixtureFile) -> Iterator[SourceRecord]:
    record = 0
    counter = [0]
    ended = 1
    _allow_long_csv_fields()
    try:
        with _binary(file) as stream:
            reader = csv.reader(_decoded_lines(stream, counter), strict=True)
            header = next(reader, None)
            if not header:
                raise _error(file, "CSV file has no header row", line=1)
            repeated = [name for index, name in enumerate(header) if name in header[:index]]
            if repeated:
                raise _error(file, "CSV header names a column twice", line=1, column=repeated[0])
            ended = reader.line_num
            for row in reader:
                started, ended = ended + 1, reader.line_num
                if not row:  # a blank line; a row of empty fields (",,") is a record
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
    except _Refused as exc:
        raise _error(file, exc.message, line=counter[0]) from None
    except UnicodeDecodeError as exc:
        raise _error(file, f"unreadable: {exc}", line=max(counter[0], 1)) from None
    except _DECODE_ERRORS as exc:
        raise _error(file, f"unreadable: {exc}", line=counter[0] + 1) from None


# --- YAML ----------------------------------------------------------------------------
# PyYAML is imported by the functions below, not by the module: most processes (parse
# workers among them) never read a YAML file.

#: The tag of ``<<`` merge keys (left to PyYAML, which lets explicit keys override them).
_YAML_MERGE = "tag:yaml.org,2002:merge"


class _YamlRefused(_Refused):
    """A YAML value refused before the document is built, with its record's number."""

    def __init__(
        self,
        message: str,
        column: str | None = None,
        record: int | None = None,
        rule: str | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message, column, rule)
        self.record = record
        self.line = line


def _yaml(file: FixtureFile) -> Iterator[SourceRecord]:
    import yaml

    from tenancy_fixtures.loading.yaml_core import CoreLoader

    try:
        with _binary(file) as stream:
            data = stream.read(MAX_RECORD_BYTES + 1)
        if len(data) > MAX_RECORD_BYTES:
            raise _YamlRefused(_too_large("a YAML file (parsed whole)").message)
        loader = CoreLoader(data)
        try:
            node = loader.get_single_node()
            if node is not None:
                _check_yaml(node, budget=max(_YAML_MIN_VALUES, _YAML_VALUES_PER_BYTE * len(data)))
            document = _yaml_document(loader, node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise _error(file, f"malformed YAML: {_yaml_reason(exc)}", line=line) from None
    except RecursionError:
        raise _error(file, f"value nested deeper than {MAX_DEPTH} levels") from None
    except _YamlRefused as exc:
        raise _refusal(file, exc, line=exc.line, record=exc.record) from None
    except _DECODE_ERRORS as exc:
        raise _error(file, f"unreadable: {exc}") from None
    if document is None:
        return
    if not isinstance(document, list):
        raise _error(file, "a YAML fixture file must hold a list of mappings")
    for index, value in enumerate(document, 1):
        yield SourceRecord(_object(file, value, record=index), None, index)


def _yaml_reason(error: yaml.YAMLError) -> str:
    """What went wrong, on one line (PyYAML's own text quotes the document over several)."""
    import yaml

    if isinstance(error, yaml.MarkedYAMLError):
        parts = [error.context, error.problem]
        reason = ", ".join(str(part) for part in parts if part)
    else:
        reason = str(error)
    return " ".join(reason.split()) or type(error).__name__


def _yaml_children(node: yaml.Node) -> list[yaml.Node]:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def _yaml_sizes(root: yaml.Node) -> dict[int, tuple[int, int]]:
    """``id(node) -> (values once aliases are expanded, depth)`` for every node.

    Aliases make a YAML graph, not a tree: sizes are counted per distinct node (so a
    "billion laughs" file is measured without being expanded), and a node that
    contains itself is refused.
    """
    import yaml

    sizes: dict[int, tuple[int, int]] = {}
    open_nodes: set[int] = set()
    pending: list[tuple[yaml.Node, bool]] = [(root, False)]
    while pending:
        node, finished = pending.pop()
        children = _yaml_children(node)
        if finished:
            values = 1 + sum(sizes[id(child)][0] for child in children)
            depth = 0
            if isinstance(node, yaml.CollectionNode):
                depth = 1 + max((sizes[id(child)][1] for child in children), default=0)
            sizes[id(node)] = (values, depth)
            open_nodes.discard(id(node))
        elif id(node) not in sizes:
            if id(node) in open_nodes:
                raise _YamlRefused("a YAML alias refers to a value that contains it")
            open_nodes.add(id(node))
            pending.append((node, True))
            pending.extend((child, False) for child in children if id(child) not in sizes)
    return sizes


def _check_yaml(root: yaml.Node, *, budget: int) -> None:
    """Refuse aliases that expand too far, nesting deeper than MAX_DEPTH, repeated keys."""
    import yaml

    sizes = _yaml_sizes(root)
    values = sizes[id(root)][0]
    if values > budget:
        raise _YamlRefused(f"YAML aliases expand the file to {values} values (at most {budget})")
    if not isinstance(root, yaml.SequenceNode):
        return
    for record, item in enumerate(root.value, 1):
        _check_yaml_item(item, record, sizes)


def _check_yaml_item(item: yaml.Node, record: int, sizes: dict[int, tuple[int, int]]) -> None:
    """Refuse nesting deeper than MAX_DEPTH, or a repeated key or one that is not
    Unicode (an escaped lone surrogate) in one item of a list."""
    import yaml

    if sizes[id(item)][1] > MAX_DEPTH:
        column = next((k.value for k, v in _pairs(item) if sizes[id(v)][1] + 1 > MAX_DEPTH), None)
        raise _YamlRefused(_too_deep(column).message, column, record)
    pending: list[tuple[yaml.Node, str | None]] = [(item, None)]
    while pending:
        node, column = pending.pop()
        seen: set[tuple[str, str]] = set()
        for key, value in _pairs(node):
            name = str(key.value)
            if isinstance(key, yaml.ScalarNode) and key.tag != _YAML_MERGE:
                if (key.tag, name) in seen:
                    refused = _duplicate(name, column if column is not None else name)
                    raise _YamlRefused(refused.message, refused.column, record)
                if not name.isascii() and _not_unicode(name):
                    refused = _NotUnicode(column, key=column is None)
                    raise _YamlRefused(refused.message, refused.column, record, refused.rule)
                seen.add((key.tag, name))
            pending.append((value, column if column is not None else name))
        if isinstance(node, yaml.SequenceNode):
            pending.extend((child, column) for child in node.value)


def _pairs(node: yaml.Node) -> list[tuple[yaml.Node, yaml.Node]]:
    import yaml

    return list(node.value) if isinstance(node, yaml.MappingNode) else []


def yaml_items(file: FixtureFile) -> Iterator[SourceRecord]:
    """The items of a YAML file holding a list, composed and built one at a time.

    Unlike the table files' reader (which parses a file whole), memory holds one item:
    the source formats read exports far larger than a table file. The checks are the
    same, per item: aliases may expand an item to :data:`_YAML_VALUES_PER_BYTE` values
    per character it spans, nesting stops at :data:`MAX_DEPTH`, a key may not repeat.
    """
    import yaml

    from tenancy_fixtures.loading.yaml_core import CoreLoader

    record = 0
    try:
        with _binary(file) as stream:
            loader = CoreLoader(stream)
            try:
                if _yaml_list_start(loader, file):
                    while not loader.check_event(yaml.SequenceEndEvent):
                        record += 1
                        yield SourceRecord(_yaml_item(loader, file, record), None, record)
            finally:
                loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = f"malformed YAML: {_yaml_reason(exc)}"
        raise _error(file, reason, line=line, record=None if line else record) from None
    except RecursionError:
        raise _error(file, _too_deep(None).message, record=record) from None
    except _YamlRefused as exc:
        raise _refusal(file, exc, line=exc.line, record=exc.record) from None
    except _DECODE_ERRORS as exc:
        raise _error(file, f"unreadable: {exc}", record=record or None) from None


def _yaml_list_start(loader: yaml.SafeLoader, file: FixtureFile) -> bool:
    """Step into the file's top-level list; ``False`` for an empty file or document."""
    import yaml

    loader.get_event()  # type: ignore[no-untyped-call]  # the stream's start
    if loader.check_event(yaml.StreamEndEvent):
        return False
    loader.get_event()  # type: ignore[no-untyped-call]  # the document's start
    if loader.check_event(yaml.ScalarEvent):
        event = loader.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.ScalarEvent) and event.value in ("", "~", "null"):
            return False
    if not loader.check_event(yaml.SequenceStartEvent):
        raise _error(file, "a YAML file must hold a list of mappings")
    loader.get_event()  # type: ignore[no-untyped-call]
    return True


def _yaml_item(loader: yaml.SafeLoader, file: FixtureFile, record: int) -> dict[str, Any]:
    """The next item of the list ``loader`` stands in, checked and built."""
    node = loader.compose_node(None, None)  # type: ignore[arg-type]
    if node is None:
        raise _YamlRefused("an empty item", None, record)
    span = node.end_mark.index - node.start_mark.index
    if span > MAX_RECORD_BYTES:
        raise _YamlRefused(_too_large("a record").message, None, record)
    sizes = _yaml_sizes(node)
    budget = max(_YAML_MIN_VALUES, _YAML_VALUES_PER_BYTE * span)
    if sizes[id(node)][0] > budget:
        raise _YamlRefused(
            f"YAML aliases expand a record to {sizes[id(node)][0]} values (at most {budget})",
            None,
            record,
        )
    _check_yaml_item(node, record, sizes)
    return _object(file, _yaml_document(loader, node, record), record=record)


def _yaml_document(loader: yaml.SafeLoader, node: yaml.Node, record: int | None = None) -> Any:
    """``node`` built into Python values; a scalar PyYAML cannot build (an impossible
    date such as ``2024-02-30``, an offset of 99 hours) is refused at its record, line
    and column (rule ``type``) rather than escaping as a bare ValueError."""
    try:
        return loader.construct_document(node)
    except (ValueError, OverflowError) as exc:
        raise _unbuildable(node, record, exc) from None


def _unbuildable(root: yaml.Node, record: int | None, error: Exception) -> _YamlRefused:
    """The refusal for the first scalar under ``root`` that PyYAML fails to build with
    ``error``: ``root`` is a record (numbered ``record``) or the whole file's list."""
    import yaml

    from tenancy_fixtures.loading.yaml_core import CoreLoader

    items = [(record, root)]
    if record is None and isinstance(root, yaml.SequenceNode):
        items = list(enumerate(root.value, 1))
    seen: set[int] = set()
    for number, item in items:
        pending: list[tuple[yaml.Node, str | None]] = [(item, None)]
        while pending:
            node, column = pending.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, yaml.ScalarNode):
                try:
                    CoreLoader("").construct_object(node)
                except (ValueError, OverflowError) as exc:
                    kind = node.tag.rsplit(":", 1)[-1]
                    message = f"{str(node.value)!r:.80} is not a valid {kind}: {exc}"
                    return _YamlRefused(message, column, number, "type", node.start_mark.line + 1)
            for key, value in _pairs(node):
                pending.append((value, column if column is not None else str(key.value)))
            if isinstance(node, yaml.SequenceNode):
                pending.extend((child, column) for child in node.value)
    return _YamlRefused(f"a value YAML cannot build: {error}", None, record)


_READERS = {"json": _json_array, "jsonl": _json_lines, "csv": _csv, "yaml": _yaml}


def iter_records(file: FixtureFile) -> Iterator[SourceRecord]:
    """Yield the records of ``file`` one by one, in file order."""
    return _READERS[file.format](file)
