"""The items of a top-level JSON array, split in C when the file is small enough to read whole.

Streaming a JSON array through ijson costs tens of microseconds an item in Python (an
event at a time); a source export file (Spotify splits its streaming history into
files of about 12 MB) is read far faster whole: msgspec finds where each item starts
and ends without building it, then orjson builds one item at a time. Memory holds the
file's bytes and one item. A larger file, or one msgspec cannot split (malformed, not
an array), is left to the streaming reader, which says where it went wrong.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import IO, Any

import msgspec
import orjson

__all__ = ["MAX_WHOLE_ARRAY_BYTES", "is_json_text", "read_whole", "whole_array_items"]

#: The largest (decompressed) JSON array read whole.
MAX_WHOLE_ARRAY_BYTES = 64 * 1024 * 1024

_BOM = b"\xef\xbb\xbf"
#: Bytes checked as UTF-8 at a time.
_CHECK_BYTES = 1 << 20
_SPLIT = msgspec.json.Decoder(list[msgspec.Raw])


def read_whole(handle: IO[bytes]) -> bytes | None:
    """What ``handle`` holds, without a byte order mark, if it is at most
    :data:`MAX_WHOLE_ARRAY_BYTES`; else ``None``."""
    data = handle.read(MAX_WHOLE_ARRAY_BYTES + 1)
    if len(data) > MAX_WHOLE_ARRAY_BYTES:
        return None
    return data.removeprefix(_BOM)


def is_json_text(data: bytes) -> bool:
    """Whether ``data`` decodes as the standard library's JSON reader decodes it (UTF-8,
    encoded surrogates allowed): what orjson refuses, it is tried with. Checked a
    megabyte at a time, so that a big file is not held twice as text."""
    if data.isascii():
        return True
    decoder = codecs.getincrementaldecoder("utf-8")("surrogatepass")
    view = memoryview(data)
    try:
        for start in range(0, len(view), _CHECK_BYTES):
            decoder.decode(view[start : start + _CHECK_BYTES])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def whole_array_items(handle: IO[bytes]) -> Iterator[Any] | None:
    """The items of the JSON array ``handle`` holds, or ``None``: reopen the file and
    stream it. Iterating raises :class:`ValueError` for an item no JSON parser reads."""
    data = read_whole(handle)
    if data is None or not data.lstrip().startswith(b"["):
        return None
    try:
        items = _SPLIT.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    return _built(items)


def _built(items: list[msgspec.Raw]) -> Iterator[Any]:
    """Each item built by orjson; one it refuses is tried with the standard library, and
    what neither reads (text that is not UTF-8) raises :class:`ValueError`."""
    for index in range(len(items)):
        raw, items[index] = items[index], msgspec.Raw()  # keep one item's bytes at a time
        try:
            yield orjson.loads(memoryview(raw))
        except orjson.JSONDecodeError:
            yield json.loads(bytes(raw), parse_constant=_no_constants)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
