"""``migrate --sql`` prints a script ``psql`` and ``sqlite3`` run as they are, leaving a
tenant as ``migrate`` would; data migrations on ``sa.table()`` run on both backends."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import Column, ForeignKey, Index, MetaData, String, Table, make_url, select

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.store import migration_ledger
from tests.cleanup import drop_every_tenant
from tests.integration.test_migrations import BASE, HEAD, NOTES_V1, _history, _notes, _streams

#: Who owns each relation of a schema, and whether a role may write into its tables.
_OWNERS = """
    SELECT c.relname, c.relkind::text, pg_catalog.pg_get_userbyid(c.relowner),
           c.relkind <> 'r' OR pg_catalog.has_table_privilege($2, c.oid, 'INSERT')
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1 ORDER BY c.relname
"""

NOTES_SEEDED = '''"""Seed notes through lightweight tables, as Alembic's bulk_insert examples do.

Revision ID: n2
Revises: n1
"""

import sqlalchemy as sa
from alembic import op

revision = "n2"
down_revision = "n1"


def upgrade() -> None:
    notes = sa.table("notes", sa.column("note_id", sa.String), sa.column("body"))
    op.bulk_insert(
        notes, [{"note_id": "n-1", "body": "it's seeded"}, {"note_id": "n-2", "body": "?"}]
    )
    op.execute(notes.update().where(notes.c.note_id == "n-2").values(body="$1 -- second"))


def downgrade() -> None:
    notes = sa.table("notes", sa.column("note_id"))
    op.execute(notes.delete().where(notes.c.note_id.in_(["n-1", "n-2"])))
'''

NOTE_TAGS = '''"""Tags on notes.

Revision ID: n2
Revises: n1
"""

import sqlalchemy as sa
from alembic import op

revision = "n2"
down_revision = "n1"


def upgrade() -> None:
    op.create_table(
        "tags",
        sa.Column("tag", sa.String(32), nullable=False),
        sa.Column("note_id", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(["note_id"], ["notes.note_id"], name="fk_tags_note"),
        sa.PrimaryKeyConstraint("tag", name="pk_tags"),
    )
    op.create_index("ix_tags_note_id", "tags", ["note_id"])


def downgrade() -> None:
    op.drop_index("ix_tags_note_id", table_name="tags")
    op.drop_table("tags")
'''


def _tagged_notes() -> MetaData:
    """The schema ``NOTES_V1`` and ``NOTE_TAGS`` make."""
    md = _notes(1)
    tags = Table(
        "tags",
        md,
        Column("tag", String(32), primary_key=True),
        Column(
            "note_id", String(32), ForeignKey("notes.note_id", name="fk_tags_note"), nullable=False
        ),
    )
    tags.primary_key.name = "pk_tags"
    Index("ix_tags_note_id", tags.c.note_id)
    return md


def _run_script(manager: FixtureManager, tenant_id: str, script: str, tmp_path: Path) -> None:
    """Runs ``script`` as a DBA would: ``psql`` in one transaction, or ``sqlite3``."""
    location = manager.store.storage_name(tenant_id)
    if manager.store.backend == "sqlite":
        db = sqlite3.connect(location)
        try:
            db.executescript(f"BEGIN;\n{script}\nCOMMIT;")
        finally:
            db.close()
        return
    path = tmp_path / f"{tenant_id}.sql"
    path.write_text(script)
    url = make_url(manager.settings.database_url)
    command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", str(path)]
    command += ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432)]
    command += ["-U", url.username or "postgres", "-d", str(url.database)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


async def _script(manager: FixtureManager, tenant_id: str) -> str:
    [shown] = (await manager.migrate([tenant_id], sql=True)).results
    assert shown.outcome == "planned"
    return "\n".join(shown.sql)


async def _record(manager: FixtureManager, tenant_id: str, revision: str) -> None:
    async with manager.store.control() as conn:
        await migration_ledger.set_revision(conn, tenant_id, revision)


async def test_the_sql_of_a_migration_with_a_backfill_runs_in_the_database_shell(
    manager: FixtureManager, tmp_path: Path
) -> None:
    """The built-in history from its base to the head, with its batched backfill, as a
    script: values inlined, statements ended, the migration's own reads commented."""
    for tenant_id in ("by_script", "by_migrate"):
        await manager.create_tenant(tenant_id)
        await manager.load_fixtures(tenant_id)
    await manager.migrate(to=BASE)

    script = await _script(manager, "by_script")
    _run_script(manager, "by_script", script, tmp_path)
    await _record(manager, "by_script", HEAD)
    await manager.migrate(["by_migrate"])

    assert "parameters" not in script
    assert "-- SELECT" in script
    assert all(r.ok for r in await manager.check_drift(["by_script", "by_migrate"]))
    recorded, expected = await _streams(manager, "by_script")
    assert recorded == expected > 0
    assert await _streams(manager, "by_migrate") == (recorded, expected)


async def test_a_data_migration_on_lightweight_tables_runs_and_prints_on_both_backends(
    settings: Settings, tmp_path: Path
) -> None:
    one, two = _history(tmp_path, NOTES_V1), _history(tmp_path, NOTES_V1, NOTES_SEEDED)
    async with FixtureManager(settings, metadata=_notes(1), migrations=one) as old:
        await drop_every_tenant(old)
        await old.create_tenant("seeded")
        await old.create_tenant("seeded_by_script")
    newer = FixtureManager(settings.model_copy(update={"migrations": str(two)}), metadata=_notes(1))
    try:
        report = await newer.migrate(["seeded"])
        script = await _script(newer, "seeded_by_script")
        _run_script(newer, "seeded_by_script", script, tmp_path)

        assert [r.outcome for r in report.results] == ["migrated"], report.results
        expected = [("n-1", "it's seeded"), ("n-2", "$1 -- second")]
        for tenant_id in ("seeded", "seeded_by_script"):
            async with newer.store.session(tenant_id, readonly=True) as session:
                notes = session.metadata.tables["tenant.notes"]
                found = await session.connection.execute(select(notes).order_by(notes.c.note_id))
                assert [tuple(row) for row in found] == expected, script
    finally:
        await drop_every_tenant(newer)
        await newer.aclose()


@pytest.mark.postgres
async def test_the_sql_run_by_a_superuser_leaves_what_it_creates_to_the_tenant_owner_role(
    postgres_url: str,
    tmp_path: Path,
    tenant_ids: Callable[[str], str],
    admin: asyncpg.Connection,
) -> None:
    """With tenant roles the script starts with the session settings of a migration
    (the schema owner's role, a ``search_path`` of ``pg_catalog`` alone): a table it
    creates, run by ``psql`` as a superuser, is the tenant owner role's, as after
    ``migrate``, and the tenant loads into it."""
    settings = Settings(database_url=postgres_url, actor="pytest", tenant_roles=True)
    history = _history(tmp_path, NOTES_V1, NOTE_TAGS)
    source = tmp_path / "notes_set"
    source.mkdir()
    (source / "notes.jsonl").write_text('{"note_id": "n-1", "body": "hello"}\n')
    (source / "tags.jsonl").write_text('{"tag": "greeting", "note_id": "n-1"}\n')
    by_script, by_migrate = tenant_ids("by_script"), tenant_ids("by_migrate")
    manager = FixtureManager(settings, metadata=_tagged_notes(), migrations=history)
    try:
        for tenant_id in (by_script, by_migrate):
            await manager.create_tenant(tenant_id)
        await manager.migrate(to="n1")

        script = await _script(manager, by_script)
        _run_script(manager, by_script, script, tmp_path)
        await _record(manager, by_script, "n2")
        await manager.migrate([by_migrate])

        found = {}
        for tenant_id in (by_script, by_migrate):
            owner = manager.store.owner_role(tenant_id)
            rows = await admin.fetch(_OWNERS, tenant_id, manager.store.tenant_role(tenant_id))
            found[tenant_id] = [(r[0], r[1], r[2] == owner, r[3]) for r in rows]
        assert found[by_script] == found[by_migrate]
        assert {("tags", "r", True, True), ("ix_tags_note_id", "i", True, True)} <= set(
            found[by_script]
        )
        assert all(r.ok for r in await manager.check_drift([by_script, by_migrate]))
        for tenant_id in (by_script, by_migrate):
            await manager.load_fixtures(tenant_id, source)
            assert (await manager.validate_tenant(tenant_id)).row_counts == {"notes": 1, "tags": 1}
        owner = manager.store.owner_role(by_script)
        setup = ["SET LOCAL search_path TO pg_catalog;", f'SET LOCAL ROLE "{owner}";']
        assert setup == script.splitlines()[:2]
    finally:
        await drop_every_tenant(manager)
        await manager.aclose()


NOTE_NUMBERS = '''"""Notes numbered from a sequence that starts past the numbers used elsewhere.

Revision ID: n2
Revises: n1
"""

import sqlalchemy as sa
from alembic import op

revision = "n2"
down_revision = "n1"


def upgrade() -> None:
    numbers = sa.Sequence("note_numbers")
    op.execute(sa.schema.CreateSequence(numbers))
    schema = op.get_bind().get_execution_options()["schema_translate_map"][None]
    op.execute(f"SELECT setval('\\"{schema}\\".note_numbers', 41)")
    number = op.get_bind().execute(sa.select(numbers.next_value())).scalar_one()
    notes = sa.table("notes", sa.column("note_id"), sa.column("body"))
    op.execute(notes.insert().values(note_id=f"n-{number}", body="numbered"))


def downgrade() -> None:
    op.execute(sa.schema.DropSequence(sa.Sequence("note_numbers")))
'''


@pytest.mark.postgres
async def test_the_sql_of_selects_that_set_a_sequence_runs_them_as_migrate_does(
    postgres_url: str, tmp_path: Path, tenant_ids: Callable[[str], str], admin: asyncpg.Connection
) -> None:
    """``op.execute("SELECT setval(...)")`` was printed as a comment (a read), so the
    script, run by ``psql``, left the sequence where it started."""
    settings = Settings(database_url=postgres_url, actor="pytest")
    one, two = _history(tmp_path, NOTES_V1), _history(tmp_path, NOTES_V1, NOTE_NUMBERS)
    by_script, by_migrate = tenant_ids("numbered_by_script"), tenant_ids("numbered_by_migrate")
    async with FixtureManager(settings, metadata=_notes(1), migrations=one) as old:
        for tenant_id in (by_script, by_migrate):
            await old.create_tenant(tenant_id)
    manager = FixtureManager(settings, metadata=_notes(1), migrations=two)
    try:
        script = await _script(manager, by_script)
        _run_script(manager, by_script, script, tmp_path)
        await manager.migrate([by_migrate])

        found = {}
        for tenant_id in (by_script, by_migrate):
            schema = manager.store.storage_name(tenant_id)
            sequence = await admin.fetchrow(
                f'SELECT last_value, is_called FROM "{schema}".note_numbers'
            )
            notes = await admin.fetch(f'SELECT note_id, body FROM "{schema}".notes')
            found[tenant_id] = (tuple(sequence or ()), [tuple(r) for r in notes])
        assert found[by_script] == found[by_migrate] == ((42, True), [("n-42", "numbered")]), script
    finally:
        await drop_every_tenant(manager)
        await manager.aclose()
