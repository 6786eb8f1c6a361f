"""JSON Lines integers beyond 64 bits, read exactly.

orjson reads an integer outside the signed and unsigned 64-bit ranges as a float: past
2**64 it silently rounds (``18446744073709551617`` becomes ``1.8446744073709552e19``), and
past the float range it refuses the line as an infinity. Such an integer needs at least 19
digits in a row, which a block of lines is asked for first, in C; only a line holding
such a run is read again by :mod:`json`, which keeps every integer whole (as the JSON
array reader does).
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["TooLongInteger", "exact_line", "long_digit_runs"]

#: Digits as ``0``, every other byte as a space: a run of digits shows as a run of ``0``.
_DIGITS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
#: The shortest integer orjson may not read exactly: -(2**63)-1 has 19 digits.
_LONG_RUN = b"0" * 19


class TooLongInteger(ValueError):
    """An integer of more digits than Python reads (``sys.get_int_max_str_digits()``),
    in the record's field ``column``."""

    def __init__(self, digits: int, column: str | None) -> None:
        super().__init__(f"an integer of {digits} digits: too long to read exactly")
        self.column = column


class _Digits(str):
    """The text of an integer too long to read, kept in place of its value."""

    __slots__ = ()


class _NotFinite(ValueError):
    """A float literal past the float range (``1e400``), which JSON Lines refuses."""


def long_digit_runs(data: bytes) -> bool:
    """Whether ``data`` holds 19 digits in a row, where a long integer may stand."""
    return _LONG_RUN in data.translate(_DIGITS)


def exact_line(raw: bytes) -> Any:
    """The JSON value of ``raw`` (JSON orjson reads, or refuses for a number past the
    float range) with every integer whole; ``None`` if a float literal is past the
    float range (refused as orjson refuses it) or nested too deeply for :mod:`json`
    (refused by the depth check). :class:`TooLongInteger` names the field of an integer
    too long for Python to read."""
    found: list[_Digits] = []
    try:
        value = json.loads(raw, parse_float=_finite, parse_int=lambda t: _integer(t, found))
    except (_NotFinite, RecursionError):
        return None
    if found:
        fields = value.items() if isinstance(value, dict) else ()
        column = next((name for name, field in fields if _holds(field)), None)
        raise TooLongInteger(len(found[0].lstrip("-")), column)
    return value


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


def _integer(text: str, found: list[_Digits]) -> int | _Digits:
    try:
        return int(text)
    except ValueError:  # past the digits Python converts
        found.append(_Digits(text))
        return found[-1]


def _holds(value: Any) -> bool:
    """Whether ``value`` is or holds an integer too long to read."""
    if isinstance(value, _Digits):
        return True
    if isinstance(value, dict):
        return any(map(_holds, value.values()))
    return isinstance(value, list) and any(map(_holds, value))
