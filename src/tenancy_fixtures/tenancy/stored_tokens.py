"""The Fernet tokens a tenant's tables hold in the columns the schema declares encrypted
(``info={"encrypted": ...}``, AI model credentials included), and which key opens each:
the tenant's data key, only a master key (stored before the tenant had a data key), or
no key known now. ``keys rewrap`` moves the second kind; ``validate-data`` reports the
third."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select

from tenancy_fixtures.errors import ConfigError
from tenancy_fixtures.store.column_info import EncryptedKind, encrypted_columns

if TYPE_CHECKING:
    from sqlalchemy import Column, Table

    from tenancy_fixtures.store.base import TenantSession
    from tenancy_fixtures.tenancy.data_keys import TenantCipher

__all__ = ["OpenedBy", "StoredToken", "opened_by", "stored_tokens"]

#: Which key decrypts a token: the tenant's, only a master key, or none known now.
OpenedBy = Literal["data_key", "master_key", "none"]
_BATCH = 1000


@dataclass(frozen=True)
class StoredToken:
    """One token in a row of an encrypted column."""

    #: The row's primary key values.
    row_key: tuple[Any, ...]
    column: Column[Any]
    kind: EncryptedKind
    #: The column's value as stored (the token, or the reference holding it).
    value: Any
    token: str

    def replaced(self, token: str) -> Any:
        """The column's value with ``token`` in place of this one."""
        return token if self.kind == "value" else {**self.value, "encrypted": token}


def _token(kind: EncryptedKind, value: Any) -> str | None:
    if kind == "value":
        return value if isinstance(value, str) else None
    if isinstance(value, dict) and isinstance(value.get("encrypted"), str):
        return str(value["encrypted"])
    return None


def opened_by(cipher: TenantCipher, token: str) -> OpenedBy:
    """Which key decrypts ``token``: the data key of ``cipher``, a master key, none."""
    if cipher.is_own(token):
        return "data_key"
    try:
        cipher.decrypt(token)
    except ConfigError:
        return "none"
    return "master_key"


async def stored_tokens(session: TenantSession, table: Table) -> AsyncIterator[StoredToken]:
    """Every token ``table``'s encrypted columns hold (nulls and other references, like
    ``{"env": NAME}``, are not tokens)."""
    kinds = encrypted_columns(table)
    if not kinds:
        return
    keys = list(table.primary_key.columns)
    columns = list(table.columns)
    encrypted = [(columns[p], kind) for p, kind in kinds.items()]
    query = select(*keys, *(c for c, _ in encrypted)).execution_options(yield_per=_BATCH)
    result = await session.connection.stream(query)
    async for partition in result.partitions():
        for row in partition:
            row_key = tuple(row[: len(keys)])
            for (column, kind), value in zip(encrypted, row[len(keys) :], strict=True):
                token = _token(kind, value)
                if token is not None:
                    yield StoredToken(row_key, column, kind, value, token)
