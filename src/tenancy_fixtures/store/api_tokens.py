"""The service's bearer tokens in the control plane: issued, listed, found, revoked.

Rows hold a SHA-256 digest of each token's secret, never the secret (see
:mod:`tenancy_fixtures.tenancy.tokens` for why a fast digest suffices).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import insert, select, update

from tenancy_fixtures.store.control_plane import api_tokens_table, aware, utcnow

if TYPE_CHECKING:
    from sqlalchemy.engine import Row
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["ApiToken", "find_token", "insert_token", "list_tokens", "revoke_token"]


@dataclass(frozen=True)
class ApiToken:
    """One bearer token as the control plane knows it (without its secret).

    ``tenant_id`` ``None``: a fleet token; otherwise the token sees that tenant only.
    ``scope``: ``read``, ``write`` or ``admin``.
    """

    token_id: str
    tenant_id: str | None
    scope: str
    name: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        """Whether the token was revoked."""
        return self.revoked_at is not None


def _token(row: Row[tuple[object, ...]]) -> ApiToken:
    values = row._mapping
    revoked = values["revoked_at"]
    return ApiToken(
        str(values["token_id"]),
        None if values["tenant_id"] is None else str(values["tenant_id"]),
        str(values["scope"]),
        str(values["name"]),
        aware(values["created_at"]),
        str(values["created_by"]),
        aware(revoked) if isinstance(revoked, datetime) else None,
    )


async def insert_token(
    conn: AsyncConnection,
    *,
    token_id: str,
    secret_sha256: str,
    tenant_id: str | None,
    scope: str,
    name: str,
    created_by: str,
) -> ApiToken:
    """Store a new token by its id and the digest of its secret."""
    now = utcnow()
    await conn.execute(
        insert(api_tokens_table).values(
            token_id=token_id,
            secret_sha256=secret_sha256,
            tenant_id=tenant_id,
            scope=scope,
            name=name,
            created_at=now,
            created_by=created_by,
        )
    )
    return ApiToken(token_id, tenant_id, scope, name, now, created_by)


async def find_token(conn: AsyncConnection, token_id: str) -> tuple[ApiToken, str] | None:
    """The token ``token_id`` with the digest of its secret, or ``None``."""
    row = (
        await conn.execute(select(api_tokens_table).where(api_tokens_table.c.token_id == token_id))
    ).first()
    if row is None:
        return None
    return _token(row), str(row.secret_sha256)


async def list_tokens(
    conn: AsyncConnection, *, tenant_id: str | None = None, include_revoked: bool = False
) -> list[ApiToken]:
    """Tokens, oldest first: of ``tenant_id`` only where given, revoked ones on request."""
    t = api_tokens_table
    query = select(t).order_by(t.c.created_at, t.c.token_id)
    if tenant_id is not None:
        query = query.where(t.c.tenant_id == tenant_id)
    if not include_revoked:
        query = query.where(t.c.revoked_at.is_(None))
    return [_token(row) for row in (await conn.execute(query)).all()]


async def revoke_token(conn: AsyncConnection, token_id: str) -> bool:
    """Mark ``token_id`` revoked (kept for the record); whether it was live."""
    t = api_tokens_table
    done = await conn.execute(
        update(t)
        .where(t.c.token_id == token_id, t.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(done.rowcount)
