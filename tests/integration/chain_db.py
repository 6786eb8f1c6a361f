"""A control plane of the test's own on either backend, and raw SQL on it behind the
library's back (the compliance tests tamper with it, so it is never the run's shared one)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from tenancy_fixtures import FixtureManager, Settings
from tests.postgres import asyncpg_dsn

__all__ = ["OwnDatabase", "own_database"]


class OwnDatabase:
    """A database made for one test: its URL, and raw SQL as its superuser would run it."""

    def __init__(self, backend: str, url: str, control_file: Path | None) -> None:
        self.backend = backend
        self.url = url
        self.control_file = control_file

    def settings(self, **overrides: Any) -> Settings:
        return Settings(database_url=self.url, actor="pytest", **overrides)

    def manager(self, **overrides: Any) -> FixtureManager:
        return FixtureManager(self.settings(**overrides))

    async def sql(self, statement: str, *, bypass_guard: bool = True) -> list[tuple[Any, ...]]:
        """Run one statement on the control plane with a driver of its own. On PostgreSQL
        ``bypass_guard`` skips triggers, as a superuser can; ``?`` marks no parameters."""
        if self.control_file is not None:
            with sqlite3.connect(self.control_file) as conn:
                rows = conn.execute(statement.replace("tenancy.", "")).fetchall()
            return [tuple(r) for r in rows]
        conn = await asyncpg.connect(asyncpg_dsn(self.url))
        try:
            if bypass_guard:
                await conn.execute("SET session_replication_role = replica")
            return [tuple(r) for r in await conn.fetch(statement)]
        finally:
            await conn.close()


@asynccontextmanager
async def own_database(backend: str, tmp_path: Path, admin_url: str) -> AsyncIterator[OwnDatabase]:
    """A fresh SQLite data directory, or a fresh PostgreSQL database dropped afterwards."""
    if backend == "sqlite":
        data = tmp_path / "own"
        yield OwnDatabase(backend, f"sqlite:///{data}", data / "tenancy.db")
        return
    name = f"tf_own_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = make_url(admin_url).set(drivername="postgresql+asyncpg", database=name)
        yield OwnDatabase(backend, url.render_as_string(hide_password=False), None)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
