"""Bearer tokens of the HTTP service: issue, list, revoke, authenticate.

A token reads ``tfk_<id>.<secret>``: the id finds the row, the secret proves
possession. The control plane keeps only SHA-256 of the secret. A fast, unsalted
digest is enough here because the secret is 32 random bytes (256 bits) made by
:mod:`secrets`, not a password a person chose: no dictionary or brute-force search can
reach it, so the slow, salted hashes made for passwords (bcrypt, Argon2) would only add
tens of milliseconds to every request. The comparison is constant-time.

Issuing and revoking are audited (``token.create``, ``token.revoke``) with the token's
id, tenant and scope — never its secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from typing import Literal, get_args

from tenancy_fixtures.errors import ConfigError, TenantNotFoundError, TokenNotFoundError
from tenancy_fixtures.store import api_tokens, control_plane
from tenancy_fixtures.store.api_tokens import ApiToken
from tenancy_fixtures.store.base import TenantStore
from tenancy_fixtures.tenancy.audit import audited
from tenancy_fixtures.tenancy.tenants import get_tenant

__all__ = [
    "SCOPES",
    "ApiToken",
    "IssuedToken",
    "Scope",
    "allows",
    "authenticate",
    "create_token",
    "hash_secret",
    "list_tokens",
    "revoke_token",
]

#: What a token may do: ``read`` reads, ``write`` also changes (config, loads,
#: validation runs), ``admin`` also creates and drops tenants. Each includes the ones
#: before it.
Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = get_args(Scope)

_PREFIX = "tfk_"
#: The longest token name the control plane keeps.
_MAX_NAME_LENGTH = 200


class IssuedToken:
    """A token just made: its record and, this once, the bearer string to hand over."""

    def __init__(self, token: ApiToken, bearer: str) -> None:
        self.token = token
        self.bearer = bearer

    def __repr__(self) -> str:  # never the secret
        return f"IssuedToken(token_id={self.token.token_id!r}, scope={self.token.scope!r})"


def hash_secret(secret: str) -> str:
    """The hex SHA-256 of a token's secret: what the control plane stores."""
    return hashlib.sha256(secret.encode()).hexdigest()


def allows(token: ApiToken, needed: Scope) -> bool:
    """Whether ``token``'s scope includes ``needed``."""
    if token.scope not in SCOPES:
        return False
    return SCOPES.index(token.scope) >= SCOPES.index(needed)


async def create_token(
    store: TenantStore,
    *,
    actor: str,
    scope: str = "read",
    tenant_id: str | None = None,
    name: str = "",
) -> IssuedToken:
    """Issue a token with ``scope`` for ``tenant_id`` (an existing tenant) or, without
    one, for the whole fleet; audited as ``token.create``."""
    if scope not in SCOPES:
        raise ConfigError(
            f"unknown scope {scope!r}; choose one of {', '.join(SCOPES)}", key="scope"
        )
    _check_name(name)
    if tenant_id is not None:
        await get_tenant(store, tenant_id)
    await store.initialize()
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    scope_of = audited(store, actor=actor, action="token.create", tenant_id=tenant_id)
    async with scope_of as audit, store.control() as conn:
        # Checked again in the transaction that stores the token, the tenant's row locked
        # as a drop locks it: a tenant dropped since the check above left a token naming
        # no tenant, which a tenant made again under that id would then honour.
        if tenant_id is not None and not await control_plane.lock_tenant(conn, tenant_id):
            raise TenantNotFoundError(tenant_id)
        token = await api_tokens.insert_token(
            conn,
            token_id=token_id,
            secret_sha256=hash_secret(secret),
            tenant_id=tenant_id,
            scope=scope,
            name=name,
            created_by=actor,
        )
        await audit.record(conn, detail={"token_id": token_id, "scope": scope, "name": name})
    return IssuedToken(token, f"{_PREFIX}{token_id}.{secret}")


def _check_name(name: str) -> None:
    """A token's name is shown in ``token list`` and kept whole: one line (a newline
    printed a second row in the table), no longer than its column (it was cut short
    there, kept whole in the audit log)."""
    if len(name) > _MAX_NAME_LENGTH:
        raise ConfigError(
            f"token name is {len(name)} characters long: give at most {_MAX_NAME_LENGTH}",
            key="name",
        )
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise ConfigError(
            "token name must not hold control characters (NUL, newlines, tabs...)", key="name"
        )


async def list_tokens(
    store: TenantStore, *, tenant_id: str | None = None, include_revoked: bool = False
) -> list[ApiToken]:
    """Issued tokens, oldest first (live ones unless ``include_revoked``)."""
    await store.initialize()
    async with store.control(readonly=True) as conn:
        return await api_tokens.list_tokens(
            conn, tenant_id=tenant_id, include_revoked=include_revoked
        )


async def revoke_token(store: TenantStore, token_id: str, *, actor: str) -> ApiToken:
    """Revoke a live token, given its id or its bearer string; audited as
    ``token.revoke``. :class:`TokenNotFoundError` if no live token has that id."""
    token_id = _id_of(token_id)
    await store.initialize()
    async with store.control(readonly=True) as conn:
        found = await api_tokens.find_token(conn, token_id)
    if found is None or found[0].revoked:
        raise TokenNotFoundError(token_id)
    token = found[0]
    async with (
        audited(store, actor=actor, action="token.revoke", tenant_id=token.tenant_id) as audit,
        store.control() as conn,
    ):
        if not await api_tokens.revoke_token(conn, token_id):
            raise TokenNotFoundError(token_id)
        await audit.record(conn, detail={"token_id": token_id, "scope": token.scope})
    return token


def _id_of(given: str) -> str:
    """The token id in ``given``: an id, or a bearer string pasted whole from where it
    was kept (``tfk_<id>.<secret>``), whose secret an error would otherwise repeat."""
    if not given.startswith(_PREFIX):
        return given
    return given[len(_PREFIX) :].partition(".")[0]


def _parse(bearer: str) -> tuple[str, str] | None:
    if not bearer.startswith(_PREFIX) or len(bearer) > 200:
        return None
    token_id, dot, secret = bearer[len(_PREFIX) :].partition(".")
    if not dot or not secret or len(token_id) != 16:
        return None
    try:
        int(token_id, 16)
    except ValueError:
        return None
    return token_id, secret


async def authenticate(store: TenantStore, bearer: str) -> ApiToken | None:
    """The live token ``bearer`` proves, or ``None`` (unknown, malformed, revoked, or
    a wrong secret: the caller cannot tell which)."""
    parsed = _parse(bearer)
    if parsed is None:
        return None
    token_id, secret = parsed
    await store.initialize()
    async with store.control(readonly=True) as conn:
        found = await api_tokens.find_token(conn, token_id)
    if found is None:
        return None
    token, digest = found
    if not hmac.compare_digest(digest, hash_secret(secret)) or token.revoked:
        return None
    return token
