"""String literals the PostgreSQL store writes into SQL text (role comments, write stamps,
server defaults in DDL) read back as the value they quote, whatever the server's
``standard_conforming_strings``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import Column, MetaData, String, Table, insert, select
from sqlalchemy.engine import make_url

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.store.postgres.privileges import literal
from tests.postgres import asyncpg_dsn

pytestmark = pytest.mark.postgres

VALUES = ["plain", "it's", "back\\slash", "\\'", "ends in \\", "\\\\''\\", "ünï\\cödé"]


@pytest.mark.parametrize("conforming", ["on", "off"])
async def test_a_literal_reads_back_as_its_value_with_standard_conforming_strings(
    postgres_url: str, conforming: str
) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        await connection.execute(f"SET standard_conforming_strings = {conforming}")
        await connection.execute("SET escape_string_warning = off")
        read = [await connection.fetchval(f"SELECT {literal(value)}") for value in VALUES]
    finally:
        await connection.close()

    assert VALUES == read


@pytest.fixture
async def nonconforming_url(postgres_url: str) -> AsyncIterator[str]:
    """A database of this test whose sessions default to
    ``standard_conforming_strings = off``; dropped afterwards."""
    name = f"tf_scs_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.execute(f'ALTER DATABASE "{name}" SET standard_conforming_strings = off')
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_a_server_default_holding_backslashes_is_kept_on_a_nonconforming_server(
    nonconforming_url: str,
) -> None:
    metadata = MetaData()
    Table(
        "paths",
        metadata,
        Column("path_id", String(8), primary_key=True),
        Column("root", String(32), server_default="C:\\tmp\\new"),
    )
    settings = Settings(database_url=nonconforming_url, actor="pytest")
    async with FixtureManager(settings, metadata=metadata) as manager:
        await manager.create_tenant("paths")
        async with manager.store.session("paths") as session:
            paths = session.metadata.tables["tenant.paths"]
            await session.connection.execute(insert(paths).values(path_id="p1"))
            root = (await session.connection.execute(select(paths.c.root))).scalar()
        [drift] = await manager.check_drift(["paths"])
        await manager.drop_tenant("paths")

    assert "C:\\tmp\\new" == root
    assert [] == drift.findings
