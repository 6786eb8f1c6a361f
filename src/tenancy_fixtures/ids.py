"""Tenant ids: the one validator that stands between untrusted input and storage names.

A tenant id becomes a PostgreSQL schema name, a SQLite file name, a role name and a
cache key, so every path that turns an id into any of those calls
:func:`validate_tenant_id` first. The rule is deliberately narrow: a lowercase ASCII
letter, then lowercase letters, digits or underscores, at most
:data:`MAX_TENANT_ID_LENGTH` characters, and not a name PostgreSQL or this project
reserves.
"""

from __future__ import annotations

import re

from tenancy_fixtures.errors import InvalidTenantIdError

__all__ = [
    "MAX_TENANT_ID_LENGTH",
    "RESERVED_TENANT_IDS",
    "is_valid_tenant_id",
    "validate_tenant_id",
]

#: Leaves room under PostgreSQL's 63-byte identifier limit for role suffixes.
MAX_TENANT_ID_LENGTH = 48

#: Names a tenant may not take, on top of anything starting with ``pg_``.
RESERVED_TENANT_IDS = frozenset(
    {
        "public",
        "information_schema",
        "tenancy",
        "tenant",
        "main",
        "temp",
        "postgres",
        "template0",
        "template1",
        "default",
        "user",
        "current_user",
        "session_user",
        "none",
        "null",
    }
)

#: Prefixes a tenant id may not start with: PostgreSQL's, and the schema pool's.
RESERVED_PREFIXES = ("pg_", "tf_pool_")

_PATTERN = re.compile(r"[a-z][a-z0-9_]*")


def validate_tenant_id(tenant_id: object) -> str:
    """Return ``tenant_id`` unchanged if it is safe to use as a storage name.

    Raises :class:`InvalidTenantIdError` naming the rule broken otherwise.
    """
    if not isinstance(tenant_id, str):
        raise InvalidTenantIdError(tenant_id, f"must be a string, not {type(tenant_id).__name__}")
    if not tenant_id:
        raise InvalidTenantIdError(tenant_id, "must not be empty")
    if len(tenant_id) > MAX_TENANT_ID_LENGTH:
        raise InvalidTenantIdError(
            tenant_id, f"must be at most {MAX_TENANT_ID_LENGTH} characters, not {len(tenant_id)}"
        )
    if not tenant_id.isascii() or _PATTERN.fullmatch(tenant_id) is None:
        raise InvalidTenantIdError(
            tenant_id,
            "must start with a lowercase letter and hold only lowercase letters, digits and '_'",
        )
    if tenant_id in RESERVED_TENANT_IDS or tenant_id.startswith(RESERVED_PREFIXES):
        raise InvalidTenantIdError(tenant_id, "is a reserved name")
    return tenant_id


def is_valid_tenant_id(tenant_id: object) -> bool:
    """Whether :func:`validate_tenant_id` would accept ``tenant_id``."""
    try:
        validate_tenant_id(tenant_id)
    except InvalidTenantIdError:
        return False
    return True
