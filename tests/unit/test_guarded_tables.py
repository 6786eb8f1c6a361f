"""Which loader guards a table: the domain's own table of the name, not another
schema's table that shares it."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table

from tenancy_fixtures.loading.registry import guarding_loader
from tenancy_fixtures.spotify import builtin_metadata


def test_the_built_in_ai_models_and_collaboration_tables_are_guarded_by_their_loaders() -> None:
    metadata = builtin_metadata()  # registers the domain

    assert ["ai_models", "collaboration", "collaboration", None] == [
        guarding_loader(name, metadata) for name in ("ai_models", "workspaces", "comments", "users")
    ]


def test_a_user_table_sharing_a_guarded_tables_name_is_not_guarded() -> None:
    """A user's ``comments`` or ``ai_models`` is no Spotify table: no domain loader takes
    its files, even with the built-in domain registered in the same process."""
    builtin_metadata()
    mine = MetaData()
    Table("comments", mine, Column("id", Integer, primary_key=True), Column("body", String))
    Table("ai_models", mine, Column("name", String, primary_key=True))

    assert [None, None] == [guarding_loader(name, mine) for name in ("comments", "ai_models")]
