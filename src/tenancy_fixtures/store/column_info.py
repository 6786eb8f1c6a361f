"""What a schema declares about its columns in ``Column(info=...)``, beyond their DDL.

Changing a column's info changes no DDL, so it needs no migration. Keys read here:

``{"encrypted": True}``
    A text column whose values the loader encrypts with the tenant's data key (see
    :mod:`tenancy_fixtures.tenancy.data_keys`): the table holds Fernet tokens, and a
    dropped tenant's tokens can no longer be decrypted.
``{"encrypted": "reference"}``
    A JSON credential reference (``{"encrypted": TOKEN}``, ``{"env": NAME}``...) whose
    ``encrypted`` token, given encrypted with the master key, is stored re-encrypted
    with the tenant's data key.
``{"retention": "event_time"}``
    The time of the event a row records: rows older than the tenant's
    ``retention_days`` are purged by ``cleanup --expired``.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Column, Table

__all__ = [
    "ENCRYPTED_INFO",
    "EVENT_TIME",
    "RETENTION_INFO",
    "EncryptedKind",
    "encrypted_columns",
    "event_time_column",
]

ENCRYPTED_INFO = "encrypted"
RETENTION_INFO = "retention"
EVENT_TIME = "event_time"

EncryptedKind = Literal["value", "reference"]


def _kind(column: Column[Any]) -> EncryptedKind | None:
    declared = column.info.get(ENCRYPTED_INFO)
    if declared is True:
        return "value"
    if declared == "reference":
        return "reference"
    return None


def encrypted_columns(table: Table) -> dict[int, EncryptedKind]:
    """The positions (in column order) of ``table``'s encrypted columns, with their kind."""
    found: dict[int, EncryptedKind] = {}
    for position, column in enumerate(table.columns):
        kind = _kind(column)
        if kind is not None:
            found[position] = kind
    return found


def event_time_column(table: Table) -> Column[Any] | None:
    """The column holding the time of the event each row of ``table`` records, if any."""
    for column in table.columns:
        if column.info.get(RETENTION_INFO) == EVENT_TIME:
            return column
    return None
