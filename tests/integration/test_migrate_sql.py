"""``migrate --sql`` prints a script ``psql`` and ``sqlite3`` run as they are, leaving a
tenant as ``migrate`` would; data migrations on ``sa.table()`` run on both backends."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import make_url, select

from tenancy_fixtures import FixtureManager, Settings
from tenancy_fixtures.store import migration_ledger
from tests.cleanup import drop_every_tenant
from tests.integration.test_migrations import BASE, HEAD, NOTES_V1, _history, _notes, _streams

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
