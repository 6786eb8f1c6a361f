"""The ``tokens`` check: every token of the tenant's encrypted columns decrypts with a key
known now.

With ``TENANCY_SECRET_KEY`` set, each token is tried with the tenant's data key, then
the master keys. One that neither opens is a failure (its value is lost unless the key
that made it comes back), and so is a data key the master keys no longer unwrap. Tokens
only a master key opens pass, with a note: ``keys rewrap`` moves them under the data
key, and must run before the old master key goes. Without a master key nothing can be
tried, and the check says so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tenancy_fixtures.errors import SettingsError
from tenancy_fixtures.store.column_info import encrypted_columns
from tenancy_fixtures.tenancy import data_keys
from tenancy_fixtures.tenancy.stored_tokens import opened_by, stored_tokens

if TYPE_CHECKING:
    from sqlalchemy import Table

    from tenancy_fixtures.secret_keys import SecretKey
    from tenancy_fixtures.store.base import TenantSession

__all__ = ["TOKENS_CHECK", "check_tokens"]

TOKENS_CHECK = "tokens"

#: Told a failure or a note: its detail and the table it is about.
Finding = Callable[[str, str | None], None]


async def check_tokens(
    session: TenantSession,
    tables: Sequence[Table],
    master_key: SecretKey | None,
    *,
    fail: Finding,
    note: Finding,
) -> str:
    """Try every token of ``tables``; ``fail`` each column holding tokens no key opens,
    ``note`` tokens only a master key opens. Returns the summary."""
    if not any(encrypted_columns(table) for table in tables):
        return "no encrypted columns"
    if master_key is None:
        return "not checked: TENANCY_SECRET_KEY is not set"
    try:
        cipher = await data_keys.stored_cipher(session.connection, session.tenant_id, master_key)
    except SettingsError as exc:
        fail(exc.message, None)
        return ""
    opened: Counter[str] = Counter()
    for table in tables:
        lost: Counter[str] = Counter()
        async for stored in stored_tokens(session, table):
            by = opened_by(cipher, stored.token)
            opened[by] += 1
            if by == "none":
                lost[stored.column.name] += 1
        for column, count in lost.items():
            fail(
                f"{table.name}.{column}: {count} token(s) decrypt with no key of "
                "TENANCY_SECRET_KEY (made with a key since removed, or damaged)",
                table.name,
            )
    if opened["master_key"]:
        note(
            f"{opened['master_key']} token(s) decrypt only with the master key: run "
            "`tenancy-fixtures keys rewrap` before removing the key that made them",
            None,
        )
    return f"{opened['data_key'] + opened['master_key']} token(s) decrypt"
