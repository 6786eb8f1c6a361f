"""Citus's errors read back in the tenant's own names (no cluster needed)."""

from __future__ import annotations

from tenancy_fixtures import spotify
from tenancy_fixtures.store.citus.errors import (
    explain,
    forwarded_violation,
    shard_names,
    unshard,
)

NAMES = shard_names(spotify.builtin_metadata())


def test_shard_suffixes_are_mapped_back_to_the_tables_and_their_constraints() -> None:
    message = (
        'insert or update on table "playlists_102009" violates foreign key constraint '
        '"fk_playlists_owner_id_users_102009" (Key (owner_id)=(x) is not present in '
        'table "users_102008".)'
    )

    assert unshard(message, NAMES) == (
        'insert or update on table "playlists" violates foreign key constraint '
        '"fk_playlists_owner_id_users" (Key (owner_id)=(x) is not present in table "users".)'
    )


def test_a_constraint_a_migration_added_loses_the_shard_id_its_table_shows() -> None:
    message = 'constraint "ck_users_added_later_102008" on "users_102008" is violated'

    assert unshard(message, NAMES) == 'constraint "ck_users_added_later" on "users" is violated'


def test_numbers_that_are_not_shard_ids_are_left_alone() -> None:
    message = 'duplicate key value violates unique constraint "pk_users" (Key (user_id)=(u_2024))'

    assert unshard(message, NAMES) == message


def test_a_row_refused_on_a_worker_during_copy_is_recognised_without_its_sqlstate() -> None:
    message = 'duplicate key value violates unique constraint "pk_users_102110"'

    assert forwarded_violation("XX000", message) == (True, "pk_users_102110")
    assert forwarded_violation("XX000", "out of memory") == (False, None)
    assert forwarded_violation("42P01", message) == (False, None)


def test_citus_refusals_say_what_they_mean_for_a_tenant_schema() -> None:
    fk = explain(
        "cannot create foreign key constraint since relations are not colocated or not "
        "referencing a reference table"
    )
    elements = explain("cannot create distributed schema and table in a single statement")

    assert "its own tables only" in fk
    assert "separate statements" in elements
    assert explain("something else") == "something else"
