"""The items of a top-level JSON array, split in C when the file is small enough to read whole.

Streaming a JSON array through ijson costs tens of microseconds an item in Python (an
event at a time); a source export file (Spotify splits its streaming history into
files of about 12 MB) is read far faster whole: msgspec finds where each item starts
and ends without building it, then orjson builds one item at a time. Memory holds the
file's bytes and one item. A larger file, or one msgspec cannot split (malformed, not
an array), is left to the streaming reader, which says where it went wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

import msgspec
import orjson

__all__ = ["MAX_WHOLE_ARRAY_BYTES", "whole_array_items"]

#: The largest (decompressed) JSON array read whole.
MAX_WHOLE_ARRAY_BYTES = 64 * 1024 * 1024

_BOM = b"\xef\xbb\xbf"
_SPLIT = msgspec.json.Decoder(list[msgspec.Raw])


def whole_array_items(handle: IO[bytes]) -> Iterator[Any] | None:
    """The items of the JSON array ``handle`` holds, or ``None``: reopen the file and
    stream it. Iterating raises :class:`ValueError` for an item no JSON parser reads."""
    data = handle.read(MAX_WHOLE_ARRAY_BYTES + 1)
    if len(data) > MAX_WHOLE_ARRAY_BYTES:
        return None
    data = data.removeprefix(_BOM)
    if not data.lstrip().startswith(b"["):
        return None
    try:
        items = _SPLIT.decode(data)
    except msgspec.DecodeError:
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
