"""A table's shape: what its content checksum depends on besides the rows' values.

A content checksum hashes each row's values in column order, with encrypted columns
counted as null; a column added, dropped, moved, retyped or newly encrypted changes the
checksum of rows that did not change. A write stamp is only trusted for the shape the
table had when the write was recorded.
"""

from __future__ import annotations

from hashlib import blake2b

from sqlalchemy import Table

from tenancy_fixtures.store.column_info import ENCRYPTED_INFO

__all__ = ["table_shape"]


def table_shape(table: Table) -> str:
    """16 hex digits naming ``table``'s columns, in order, with their types and masking."""
    described = "|".join(
        f"{column.name}:{column.type!r}:{bool(column.info.get(ENCRYPTED_INFO))}"
        for column in table.columns
    )
    return blake2b(described.encode(), digest_size=8).hexdigest()
