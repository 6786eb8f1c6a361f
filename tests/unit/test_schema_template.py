"""The tenant schema: the committed SQL template matches the models, and its shape."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import MetaData

from tenancy_fixtures.fixtures.schema import SchemaFixture, render_schema_sql
from tenancy_fixtures.fixtures.templates import BUILTIN_TEMPLATE_DIR
from tenancy_fixtures.spotify.schema import spotify_metadata
from tenancy_fixtures.store.base import TENANT_SCHEMA
from tenancy_fixtures.store.postgres.ddl import (
    _compile_deferred_ddl,
    _compile_schema_ddl,
    deferred_constraint_ddl,
    render_schema_ddl,
)

SCHEMA_TEMPLATE = BUILTIN_TEMPLATE_DIR / "schema_template.sql"
REGENERATE = (
    "templates/schema_template.sql is out of date with tenancy_fixtures.spotify.schema; "
    "run `tenancy-fixtures schema-sql > src/tenancy_fixtures/templates/schema_template.sql` "
    "and commit the result"
)
REQUIRED_TABLES = {
    "users",
    "artists",
    "albums",
    "tracks",
    "audio_features",
    "playlists",
    "playlist_tracks",
    "listening_events",
    "ai_models",
    "workspaces",
    "workspace_members",
}
CREATE_TABLE = re.compile(r"^CREATE TABLE tenant\.(\w+) \((.*?)^\);?$", re.MULTILINE | re.DOTALL)


def created_tables(sql: str) -> dict[str, str]:
    """Table name -> body of each CREATE TABLE statement in ``sql``."""
    return {match[1]: match[2] for match in CREATE_TABLE.finditer(sql)}


class TestSchemaTemplate:
    def test_the_committed_template_matches_the_models_byte_for_byte(self) -> None:
        """render_schema_sql(spotify_metadata()) is exactly the committed schema_template.sql."""
        committed = SCHEMA_TEMPLATE.read_bytes()

        rendered = render_schema_sql(spotify_metadata()).encode("utf-8")

        assert committed == rendered, REGENERATE

    def test_rendering_twice_gives_the_same_text(self) -> None:
        """Rendering is deterministic, including from a fresh MetaData."""
        assert render_schema_sql(spotify_metadata()) == render_schema_sql(spotify_metadata())

    def test_the_template_tells_readers_how_to_regenerate_it(self) -> None:
        """The header names the command that produces the file."""
        header = render_schema_sql(spotify_metadata()).split("\n\n", 1)[0]

        assert (
            "--   tenancy-fixtures schema-sql > src/tenancy_fixtures/templates/schema_template.sql"
            in header
        )

    def test_statements_use_the_placeholder_schema_only(self) -> None:
        """Every table is created in the placeholder schema 'tenant'."""
        sql = render_schema_sql(spotify_metadata())

        assert set(created_tables(sql)) == {t.name for t in spotify_metadata().sorted_tables}
        assert "public." not in sql

    def test_the_template_ends_with_a_single_newline(self) -> None:
        """The file ends with ';' and exactly one newline, so diffs stay clean."""
        sql = render_schema_sql(spotify_metadata())

        assert sql.endswith(";\n")
        assert not sql.endswith("\n\n")


class TestSchemaShape:
    def test_the_schema_has_the_platform_tables(self) -> None:
        """The required tables are all declared."""
        tables = {t.name for t in spotify_metadata().sorted_tables}

        assert REQUIRED_TABLES <= tables

    def test_the_template_creates_the_platform_tables(self) -> None:
        """The committed SQL creates every required table."""
        tables = set(created_tables(SCHEMA_TEMPLATE.read_text(encoding="utf-8")))

        assert REQUIRED_TABLES <= tables

    @pytest.mark.parametrize("table", sorted(t.name for t in spotify_metadata().sorted_tables))
    def test_every_table_has_a_primary_key(self, table: str) -> None:
        """Each table declares a primary key, in the models and in the SQL."""
        metadata = spotify_metadata()
        body = created_tables(render_schema_sql(metadata))[table]

        assert [] != list(metadata.tables[f"{TENANT_SCHEMA}.{table}"].primary_key.columns)
        assert f"CONSTRAINT pk_{table} PRIMARY KEY" in body

    def test_every_table_is_declared_in_the_placeholder_schema(self) -> None:
        """All tables live in schema 'tenant', so schema_translate_map can rename it."""
        assert {TENANT_SCHEMA} == {t.schema for t in spotify_metadata().sorted_tables}

    def test_each_call_builds_a_fresh_metadata(self) -> None:
        """spotify_metadata() never shares a MetaData between callers."""
        first, second = spotify_metadata(), spotify_metadata()

        assert first is not second
        assert [t.name for t in first.sorted_tables] == [t.name for t in second.sorted_tables]


class TestSchemaFixture:
    def test_the_checksum_is_stable(self) -> None:
        """Two SchemaFixtures of the built-in schema have the same checksum."""
        assert (
            SchemaFixture(spotify_metadata()).checksum()
            == SchemaFixture(spotify_metadata()).checksum()
        )

    def test_the_checksum_is_the_digest_of_the_template(self) -> None:
        """The checksum is sha256 of the rendered (= committed) SQL."""
        expected = hashlib.sha256(SCHEMA_TEMPLATE.read_bytes()).hexdigest()

        assert expected == SchemaFixture(spotify_metadata()).checksum()

    def test_the_checksum_changes_with_the_schema(self) -> None:
        """A different MetaData gives a different checksum."""
        other = MetaData(schema=TENANT_SCHEMA)
        for table in list(spotify_metadata().sorted_tables)[:1]:
            table.to_metadata(other)

        assert SchemaFixture(other).checksum() != SchemaFixture(spotify_metadata()).checksum()

    def test_the_fixture_is_named_schema_and_structural(self) -> None:
        """SchemaFixture is the structural fixture called 'schema'."""
        fixture = SchemaFixture(spotify_metadata())

        assert ("schema", "structural") == (fixture.name, fixture.kind)


class TestRenderingForATenant:
    """A tenant's DDL comes from a template compiled once, its schema name put in."""

    @pytest.mark.parametrize("schema", ["acme", "tenant_0042", "user", "order", "select"])
    def test_it_is_what_sqlalchemy_compiles_for_that_schema(self, schema: str) -> None:
        metadata = spotify_metadata()

        assert _compile_schema_ddl(metadata, schema) == render_schema_ddl(metadata, schema)

    def test_a_reserved_word_schema_is_quoted(self) -> None:
        statements = render_schema_ddl(spotify_metadata(), "user")

        assert statements[0].startswith('CREATE TABLE "user".')

    @pytest.mark.parametrize("schema", ["acme", "tenant_0042", "user", "order", "select"])
    def test_the_bulk_loads_deferred_keys_are_what_sqlalchemy_compiles_for_that_schema(
        self, schema: str
    ) -> None:
        metadata = spotify_metadata()

        assert _compile_deferred_ddl(metadata, schema) == deferred_constraint_ddl(metadata, schema)
