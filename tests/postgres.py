"""Reaching the test PostgreSQL server behind the library's back, as a superuser would."""

from __future__ import annotations

import asyncpg
from sqlalchemy.engine import make_url

__all__ = ["asyncpg_dsn", "role_exists"]


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL (any driver) as the plain DSN ``asyncpg.connect`` takes,
    password kept."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def role_exists(connection: asyncpg.Connection, role: str) -> bool:
    """Whether the cluster has a role of that name (roles outlive every database)."""
    return bool(await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role))
