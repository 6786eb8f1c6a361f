"""Pseudonyms: a personal value replaced by a keyed HMAC of it.

The same value gives the same pseudonym under one key, whichever column holds it, so
a pseudonymised user id still joins with the rows that refer to it. A pseudonym fits
its column: 32 hex digits (128 bits of the HMAC), cut to a shorter column's length,
an e-mail column gets ``<hex>@pseudonym.invalid`` so it stays a valid address, and a
JSON column ``{"pseudonym": <hex>}``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import JSON, Column, Integer, String, Table, Uuid

from tenancy_fixtures.compliance.subjects import scalar_text
from tenancy_fixtures.errors import ConfigError
from tenancy_fixtures.loading.records import integer_bounds
from tenancy_fixtures.loading.rules import FORMAT_INFO
from tenancy_fixtures.store.column_info import personal_columns, subject_columns

__all__ = ["Pseudonymiser", "pseudonymised_columns"]

_HEX = 32
_EMAIL_DOMAIN = "@pseudonym.invalid"


def pseudonymised_columns(tables: Sequence[Table]) -> dict[str, list[int]]:
    """Per table, the positions of the columns a pseudonymised copy replaces: personal
    columns, subject ids and references, and foreign keys to any of those (so joins
    keep working)."""
    chosen: set[Column[Any]] = set()
    for table in tables:
        chosen.update(personal_columns(table))
        chosen.update(subject_columns(table, "id"))
        chosen.update(subject_columns(table, "reference"))
    for table in tables:
        for column in table.columns:
            if any(k.column in chosen for k in column.foreign_keys):
                chosen.add(column)
    found: dict[str, list[int]] = {}
    for table in tables:
        positions = [i for i, c in enumerate(table.columns) if c in chosen]
        if positions:
            found[table.name] = positions
    return found


def _referenced_root(column: Column[Any]) -> Column[Any]:
    """The column ``column``'s foreign keys lead to, key after key (itself when none)."""
    for _ in range(16):  # a cycle of keys ends here too
        keys = sorted(column.foreign_keys, key=lambda k: k.target_fullname)
        if not keys:
            break
        column = keys[0].column
    return column


class Pseudonymiser:
    """Replaces values with pseudonyms keyed by ``key``."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def text(self, value: Any) -> str:
        """32 hex digits for ``value`` (a JSON document by its canonical text)."""
        plain = scalar_text(value)
        return hmac.new(self._key, plain.encode(), hashlib.sha256).hexdigest()[:_HEX]

    def _permuted(self, value: int, bits: int) -> int:
        """``value``'s image under a keyed permutation of the ``bits``-bit integers of its
        sign: distinct ids stay distinct (no collision in a key column) and keep their
        sign (a ``CHECK (id > 0)`` holds). A 4-round Feistel network over ``bits`` bits,
        walked until it lands in range."""
        if value < 0:
            return -1 - self._permuted(-1 - value, bits)
        if value >= 1 << (bits - 1):  # outside the column's range: no walk would end
            raise ConfigError(f"{value} is outside a {bits}-bit integer id", key="pseudonymise")
        half = bits // 2
        mask = (1 << half) - 1
        walked = value
        while True:
            left, right = walked >> half, walked & mask
            for round_number in range(4):
                mixed = hmac.new(self._key, f"{round_number}:{right}".encode(), hashlib.sha256)
                left, right = right, left ^ (int.from_bytes(mixed.digest()[:8], "big") & mask)
            walked = (left << half) | right
            if walked < 1 << (bits - 1):
                return walked

    def value(self, column: Column[Any], value: Any) -> Any:
        """The pseudonym of ``value`` as ``column`` can hold it (``None`` stays)."""
        if value is None:
            return None
        digest = self.text(value)
        if column.info.get(FORMAT_INFO) == "email":
            return digest + _EMAIL_DOMAIN
        if isinstance(column.type, JSON):
            # A bare string in a JSON column reads back as JSON text: keep it a document.
            return {"pseudonym": digest}
        root = _referenced_root(column)
        if isinstance(root.type, Integer) and isinstance(value, int):
            # The referenced key's width, so that a key and every column referring to
            # it (whatever its own width) get one pseudonym.
            return self._permuted(value, integer_bounds(root.type)[1].bit_length() + 1)
        if isinstance(column.type, Uuid):
            made = UUID(digest)
            return made if column.type.as_uuid else str(made)
        length = getattr(column.type, "length", None)
        if isinstance(column.type, String) and length is not None:
            return digest[:length]
        return digest

    def row(self, table: Table, row: Sequence[Any], positions: Sequence[int]) -> tuple[Any, ...]:
        """``row`` with the values at ``positions`` replaced."""
        values = list(row)
        columns = list(table.columns)
        for i in positions:
            values[i] = self.value(columns[i], values[i])
        return tuple(values)
