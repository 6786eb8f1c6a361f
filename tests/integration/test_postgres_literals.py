"""String literals the PostgreSQL store writes into SQL text (role comments, write stamps)
read back as the value they quote, whatever the server's ``standard_conforming_strings``."""

from __future__ import annotations

import asyncpg
import pytest

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
