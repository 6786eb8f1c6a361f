"""Storage sizes written for people (``"100GB"``) and read as bytes.

Units are binary: 1 KB = 1024 B, as disks and quotas are usually counted.
"""

from __future__ import annotations

import re
from decimal import Decimal

__all__ = ["format_size", "parse_size"]

_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_SIZE = re.compile(r"\s*(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z]*)\s*")


def parse_size(value: str | int) -> int:
    """Bytes in ``value``: an int of bytes or a string like ``"100GB"``, ``"1.5 TB"``.

    Raises ``ValueError`` for a negative number, an unknown unit or anything else.
    """
    if isinstance(value, bool):
        raise ValueError("expected a size such as '100GB', not a boolean")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"size must not be negative: {value}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a size such as '100GB', not {type(value).__name__}")
    if value.strip().startswith("-"):
        raise ValueError(f"size must not be negative: {value!r}")
    match = _SIZE.fullmatch(value)
    if match is None:
        raise ValueError(f"expected a size such as '100GB', not {value!r}")
    unit = match["unit"].upper() or "B"
    if unit not in _UNITS:
        raise ValueError(f"unknown unit {match['unit']!r} in {value!r}; use B, KB, MB, GB or TB")
    # Decimal, not float: past 2**53 bytes a float would round the size it was given.
    size = Decimal(match["number"]) * _UNITS[unit]
    if size != size.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number of bytes")
    return int(size)


def format_size(size: int) -> str:
    """``size`` bytes in the largest unit that keeps the number at least 1."""
    for unit in ("TB", "GB", "MB", "KB"):
        if size >= _UNITS[unit] and size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    for unit in ("TB", "GB", "MB", "KB"):
        if size >= _UNITS[unit]:
            return f"{size / _UNITS[unit]:.1f}{unit}"
    return f"{size}B"
