"""Content checksums: an order-independent digest of a table's rows, cheap enough to take
while loading and to recompute from the database.

Each row is encoded canonically and hashed to 64 bits with BLAKE2b; a table's checksum
is the sum of its rows' digests modulo 2**64 (an additive multiset hash), so it depends
neither on row order nor on batch boundaries, and the checksums of the parts of a
table add up to the checksum of the whole.

The canonical encoding is a compact JSON array of the row's values (orjson):

* ``None``, booleans, integers, floats and strings stay distinct (``null``, ``true``,
  ``1``, ``1.0``, ``"1"``); floats are written in their shortest exact form;
* timestamps are ISO 8601 in UTC (a naive timestamp, as SQLite returns them, is UTC;
  one in another zone is converted, a pass a batch of UTC timestamps skips);
* dates and UUIDs are ISO text; decimals are their normalised text (``1.10`` is ``1.1``,
  ``-0`` is ``0``);
* JSON columns: object keys sorted, and a whole-numbered float is written as the
  integer its shortest text names (``1e23`` as ``100000000000000000000000``), because
  PostgreSQL's ``jsonb`` does not keep ``1e16`` a float.
* ``CHAR(n)`` text without its trailing blanks: PostgreSQL pads it to ``n`` and counts
  trailing blanks as insignificant, SQLite keeps it as given.
* a member of a Python enum (an ``Enum(MyEnum)`` column reads them back) as the text
  the column stores for it (its name, or what ``values_callable`` gives), which is what
  a load gives.
* a number of a column read back as floats (``Numeric(asdecimal=False)``) as a float:
  loads give a decimal, SQLite reads a float or an integer.

Rows whose JSON holds an integer beyond 64 bits, which orjson refuses, are encoded by
the standard library with the same rules.
"""

from __future__ import annotations

import enum
import json
import sys
from array import array
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

try:
    # CPython's own BLAKE2: hashlib would also load OpenSSL for its other algorithms,
    # 3.4 MiB in a parse worker that needs none of them.
    from _blake2 import blake2b
except ImportError:  # another interpreter
    from hashlib import blake2b

__all__ = ["ContentChecksum", "add_checksums", "row_digest"]

_MASK = (1 << 64) - 1
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NAIVE_UTC
_BIG_ENDIAN = sys.byteorder == "big"
_EXACT_FLOAT_INTEGERS = 2**53
_dumps = orjson.dumps


def _other(value: Any) -> Any:
    """What orjson cannot encode itself: decimals, and UUIDs of a driver's own class
    (asyncpg reads them as a subclass of :class:`uuid.UUID`, which orjson refuses)."""
    if isinstance(value, Decimal):
        # PostgreSQL keeps no negative zero in NUMERIC: -0 and 0 are one value.
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"no canonical encoding for {type(value).__name__}")


def _stdlib_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.isoformat()
    if isinstance(value, date | time | UUID):
        return str(value)
    return _other(value)


def _encode(row: Sequence[Any]) -> bytes:
    """One row's canonical bytes (the slow path only for what orjson refuses)."""
    try:
        return _dumps(row, default=_other, option=_OPTIONS)
    except orjson.JSONEncodeError:
        text = json.dumps(
            list(row),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,  # as orjson writes text
            default=_stdlib_value,
        )
        # A lone surrogate (which orjson refuses) still gets bytes: the driver refuses
        # the row later, with the error that names it.
        return text.encode("utf-8", "surrogatepass")


def _canonical_json(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        if not value.is_integer():
            return value
        # Past 2**53 a float's integer is not the number its shortest text names
        # (1e23 is 99999999999999991611392), which is what jsonb keeps.
        return int(value) if abs(value) < _EXACT_FLOAT_INTEGERS else int(Decimal(repr(value)))
    if kind is list:
        return [_canonical_json(item) for item in value]
    if kind is dict:
        return {key: _canonical_json(item) for key, item in value.items()}
    return value


def row_digest(row: Sequence[Any]) -> int:
    """The 64-bit digest of one row, whose JSON values are already canonical."""
    return int.from_bytes(blake2b(_encode(row), digest_size=8).digest(), "little")


def add_checksums(checksums: Iterable[str]) -> str:
    """The checksum of the union of the row sets whose checksums are given."""
    return f"{sum(int(c, 16) for c in checksums) & _MASK:016x}"


class ContentChecksum:
    """The running content checksum of one table: rows seen and the sum of their digests.

    Feed it batches of rows in column order, typed as the loader builds them or as
    SQLAlchemy reads them back; equal row multisets give equal checksums.
    """

    __slots__ = (
        "_blank_padded_positions",
        "_float_positions",
        "_json_positions",
        "_masked_positions",
        "_picked",
        "_stored_text",
        "_timestamp_positions",
        "columns",
        "rows",
        "total",
    )

    def __init__(
        self,
        json_positions: Sequence[int] = (),
        timestamp_positions: Sequence[int] = (),
        masked_positions: Sequence[int] = (),
        blank_padded_positions: Sequence[int] = (),
        stored_text: Mapping[int, Mapping[Any, str]] | None = None,
        float_positions: Sequence[int] = (),
        *,
        columns: Sequence[str] | None = None,
        picked: Sequence[int] | None = None,
    ) -> None:
        self._json_positions = tuple(json_positions)
        self._timestamp_positions = tuple(timestamp_positions)
        #: Encrypted columns: a fresh token each write, so they count as null.
        self._masked_positions = tuple(masked_positions)
        #: ``CHAR(n)`` columns: hashed without trailing blanks.
        self._blank_padded_positions = tuple(blank_padded_positions)
        #: Columns of a Python enum: the text stored for each member, by position.
        self._stored_text = dict(stored_text or {})
        #: Numeric columns whose decimals are hashed as floats.
        self._float_positions = tuple(float_positions)
        #: Rows added so far.
        self.rows = 0
        #: The sum of their digests, modulo 2**64.
        self.total = 0
        #: The names of the columns hashed, in order, where known.
        self.columns = None if columns is None else tuple(columns)
        #: The positions hashed of each row given, where rows hold more columns.
        self._picked = None if picked is None else tuple(picked)

    def add(self, rows: Sequence[Sequence[Any]]) -> None:
        """Add a batch of rows."""
        if not rows:
            return
        if self._picked is not None:
            rows = [tuple(row[i] for i in self._picked) for row in rows]
        if (
            self._json_positions
            or self._masked_positions
            or self._blank_padded_positions
            or self._stored_text
            or self._float_positions
            or self._zoned(rows)
        ):
            rows = [self._canonical(row) for row in rows]
        try:
            # The fast path: one orjson call and one BLAKE2b call per row, all in C.
            digests = b"".join(
                [
                    blake2b(_dumps(row, default=_other, option=_OPTIONS), digest_size=8).digest()
                    for row in rows
                ]
            )
        except orjson.JSONEncodeError:
            digests = b"".join([blake2b(_encode(row), digest_size=8).digest() for row in rows])
        values = array("Q", digests)
        if _BIG_ENDIAN:
            values.byteswap()
        self.total = (self.total + sum(values)) & _MASK
        self.rows += len(rows)

    def combine(self, total: int, rows: int) -> None:
        """Add the checksum of rows summed elsewhere (another process's part of the table)."""
        self.total = (self.total + total) & _MASK
        self.rows += rows

    def hexdigest(self) -> str:
        """The checksum as 16 hex digits."""
        return f"{self.total:016x}"

    def _zoned(self, rows: Sequence[Sequence[Any]]) -> bool:
        """Whether a timestamp of the batch is in a zone other than UTC.

        The loader's rows and asyncpg's are UTC and SQLite's naive, so one set of zones
        per column, built in C, usually saves the per-row pass.
        """
        for i in self._timestamp_positions:
            zones = {value.tzinfo for row in rows if (value := row[i]) is not None}
            if zones - {None, UTC}:
                return True
        return False

    def _canonical(self, row: Sequence[Any]) -> list[Any]:
        values = list(row)
        for i in self._masked_positions:
            values[i] = None
        for i in self._json_positions:
            values[i] = _canonical_json(values[i])
        for i in self._blank_padded_positions:
            if isinstance(text := values[i], str):
                values[i] = text.rstrip(" ")
        for i, stored in self._stored_text.items():
            if isinstance(member := values[i], enum.Enum):
                values[i] = stored[member]
        for i in self._float_positions:
            if isinstance(number := values[i], Decimal | int) and not isinstance(number, bool):
                values[i] = float(number)
        for i in self._timestamp_positions:
            value = values[i]
            if value is not None and value.tzinfo is not None and value.tzinfo is not UTC:
                values[i] = value.astimezone(UTC)
        return values
