"""A control plane of the test's own on either backend, and raw SQL on it behind the
library's back (the compliance tests tamper with it, so it is never the run's shared one).

On PostgreSQL a test's database is taken from the worker's spare ones when there is one:
after a test its connections are ended and every schema it made dropped, and it is kept
for the next test only if it is then as ``CREATE DATABASE`` made it (only ``public``,
empty; no extension but plpgsql, no grant, setting or default privilege); any other is
dropped. Each test made and dropped one: on the busy shared server ``CREATE DATABASE``
took ~1 s (it writes the template's every page to the WAL) and ``DROP DATABASE``
0.2-1 s. ``drop_spare_databases`` drops the spares at the end of the run (the run's database
does, in ``tests/conftest.py``).
"""

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

__all__ = ["OwnDatabase", "drop_spare_databases", "own_database"]


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


#: Emptied databases of this process for the next test, by the admin URL they came from.
_SPARE: dict[str, list[str]] = {}

_DROP_SCHEMAS = """
DO $$
DECLARE name text;
BEGIN
    FOR name IN SELECT nspname FROM pg_namespace
        WHERE nspname NOT IN ('public', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
    LOOP
        EXECUTE format('DROP SCHEMA %I CASCADE', name);
    END LOOP;
END $$
"""

#: Zero when the database is as ``CREATE DATABASE`` from template1 made it.
_CHANGES_LEFT = """
SELECT (SELECT count(*) FROM pg_namespace
        WHERE nspname NOT IN ('public', 'information_schema') AND nspname NOT LIKE 'pg\\_%')
     + (SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace)
     + (SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace)
     + (SELECT count(*) FROM pg_type WHERE typnamespace = 'public'::regnamespace)
     + (SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql')
     + (SELECT count(*) FROM pg_default_acl)
     + (SELECT count(*) FROM pg_event_trigger)
     + (SELECT count(*) FROM pg_publication)
     + (SELECT count(*) FROM pg_largeobject_metadata)
     + (SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
        WHERE d.datname = current_database())
     + (SELECT count(*) FROM pg_database WHERE datname = current_database()
        AND datacl IS NOT NULL)
     + (SELECT count(*) FROM pg_namespace WHERE nspname = 'public' AND (
            nspowner <> 'pg_database_owner'::regrole OR nspacl::text IS DISTINCT FROM
            '{pg_database_owner=UC/pg_database_owner,=U/pg_database_owner}'))
"""


def _database_url(admin_url: str, name: str) -> str:
    url = make_url(admin_url).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


async def _emptied(admin: asyncpg.Connection, url: str) -> bool:
    """End every other connection to ``url``'s database and drop the schemas made in it;
    whether it is now as new."""
    await admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = $1 AND pid <> pg_backend_pid()",
        make_url(url).database,
    )
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(_DROP_SCHEMAS)
        return 0 == int(await conn.fetchval(_CHANGES_LEFT))
    finally:
        await conn.close()


@asynccontextmanager
async def own_database(backend: str, tmp_path: Path, admin_url: str) -> AsyncIterator[OwnDatabase]:
    """A fresh SQLite data directory, or a PostgreSQL database as new (a spare one or
    one made now), emptied or dropped afterwards."""
    if backend == "sqlite":
        data = tmp_path / "own"
        yield OwnDatabase(backend, f"sqlite:///{data}", data / "tenancy.db")
        return
    spare = _SPARE.setdefault(admin_url, [])
    admin = await asyncpg.connect(asyncpg_dsn(admin_url))
    reused = bool(spare)
    name = spare.pop() if reused else f"tf_own_{uuid.uuid4().hex[:12]}"
    kept = False
    try:
        if not reused:
            await admin.execute(f'CREATE DATABASE "{name}"')
        url = _database_url(admin_url, name)
        yield OwnDatabase(backend, url, None)
        kept = await _emptied(admin, url)
    finally:
        if kept:
            spare.append(name)
        else:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def drop_spare_databases(admin_url: str) -> None:
    """Drop the databases kept for a next test that were made from ``admin_url`` (before
    that database itself goes, at the end of the run)."""
    names = _SPARE.pop(admin_url, [])
    if not names:
        return
    admin = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
