"""Reaching the test PostgreSQL server behind the library's back, as a superuser would."""

from __future__ import annotations

from sqlalchemy.engine import make_url

__all__ = ["asyncpg_dsn"]


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL (any driver) as the plain DSN ``asyncpg.connect`` takes,
    password kept."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
