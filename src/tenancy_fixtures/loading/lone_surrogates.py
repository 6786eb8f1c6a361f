"""Lone surrogate escapes in JSON text, found in its bytes before a parser decodes them.

JSON's ``\\uXXXX`` escapes may name half of a UTF-16 surrogate pair alone (``"\\ud800"``),
which no Unicode text holds. ijson's C backend (yajl) does not refuse one: it decodes a
lone high surrogate as ``?`` or pairs it with whatever escape follows, so the value
would be stored changed, and nothing after parsing can tell. The JSON array reader
scans the bytes it feeds the parser: a piece without a backslash costs one byte search,
one with escapes one regex search in C (every alternative starts with a backslash).
"""

from __future__ import annotations

import re

__all__ = ["LoneSurrogate", "LoneSurrogateScan"]

_HIGH = rb"u[dD][89abAB][0-9a-fA-F]{2}"
_LOW = rb"u[dD][c-fC-F][0-9a-fA-F]{2}"
#: A high surrogate escape no low one follows, a low one no high one precedes, or a
#: pair after a backslash (which may make the high one text, ``\\ud800``, not an escape).
_LONE = re.compile(
    rb"\\(?:"
    rb"(?P<high>" + _HIGH + rb")(?!\\u[dD][c-fC-F])"
    rb"|" + _LOW + rb"(?<!\\" + _HIGH + rb"\\" + _LOW + rb")"
    rb"|\\" + _HIGH + rb"(?P<low>\\" + _LOW + rb")"
    rb")"
)
#: What may still turn out to be the start of a low surrogate escape.
_LOW_START = re.compile(rb"(?:\\(?:u[dD]?)?)?")
#: Bytes of one piece kept for the next: a surrogate pair's escapes take 12.
_KEPT = 12
_BACKSLASH = 0x5C


class LoneSurrogate(Exception):
    """The text fed to a :class:`LoneSurrogateScan` holds a lone surrogate escape."""


class LoneSurrogateScan:
    """Finds the first lone surrogate escape in JSON text fed to it piece by piece.

    A backslash escaped by another (``"\\\\ud800"``, text that reads ``\\ud800``) starts
    no escape; a high surrogate escape at the end of a piece waits for the next one.
    """

    def __init__(self) -> None:
        self._kept = b""  # the end of the text fed so far
        self._escaped = False  # whether an odd run of backslashes stands before it
        self._found = False

    def passed(self, data: bytes) -> bytes:
        """``data`` up to the first lone surrogate escape of the text fed so far, for a
        parser to read; :class:`LoneSurrogate` once the bytes before it were passed
        (``b""`` would read as the end of the text)."""
        if self._found:
            raise LoneSurrogate
        lone = self.feed(data)
        if lone is not None:
            self._found = True
            data = data[: max(lone, 0)]
            if not data:
                raise LoneSurrogate
        return data

    def feed(self, data: bytes) -> int | None:
        """Where in ``data`` the first lone surrogate escape of the text fed so far
        starts (below 0 when it started in an earlier piece), or ``None``."""
        kept = self._kept
        text = kept + data if kept else data
        found = self._first(text, len(kept)) if b"\\" in text else None
        start = max(len(text) - _KEPT, 0)
        self._escaped = _odd_run(text, start, self._escaped)
        self._kept = text[start:]
        return None if found is None else found - len(kept)

    def _first(self, text: bytes, seen: int) -> int | None:
        """Where the first lone surrogate escape in ``text`` starts; its first ``seen``
        bytes were scanned before, with their own context (only a high surrogate there
        may be waiting for what follows it)."""
        for match in _LONE.finditer(text):
            high = match.group("high") is not None
            if match.end() <= seen and not high:
                continue  # a low surrogate scanned before
            if match.group("low") is not None:
                if _odd_run(text, match.start() + 1, self._escaped):
                    return match.start("low")  # its high surrogate is text
            elif _odd_run(text, match.start(), self._escaped):
                continue  # text, not an escape
            elif high and _LOW_START.fullmatch(text, match.end()) is not None:
                return None  # the next piece says whether a low surrogate follows
            else:
                return match.start()
        return None


def _odd_run(text: bytes, end: int, before: bool) -> bool:
    """Whether an odd run of backslashes stands just before ``text[end]``; ``before``
    says whether one stood just before ``text``."""
    if end == 0:
        return before
    if text[end - 1] != _BACKSLASH:
        return False
    head = text[:end]
    run = len(head) - len(head.rstrip(b"\\"))
    return (run % 2 == 1) != (before and run == end)
