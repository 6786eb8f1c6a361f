"""The SQL ``migrate --sql`` captures: values inlined as literals, each statement ended,
only the catalogue's reads left out, runnable by ``sqlite3`` as it stands."""

from __future__ import annotations

import sqlite3
from types import ModuleType

from alembic import op
from sqlalchemy import create_engine, event, func, select, text

from tenancy_fixtures.migrations.operations import captured_sql
from tenancy_fixtures.migrations.scripts import Step

ROWS = [(1, "it's ?"), (2, "pg_catalog -- kept")]


def _upgrade() -> None:
    bind = op.get_bind()
    bind.exec_driver_sql("SELECT name FROM sqlite_master")
    bind.exec_driver_sql("INSERT INTO t (a, b) VALUES (?, ?)", ROWS[0])
    op.execute("INSERT INTO t (a, b) VALUES (2, 'pg_catalog -- kept');")


def test_driver_level_values_are_inlined_and_only_catalogue_reads_are_left_out() -> None:
    module = ModuleType("r1")
    module.upgrade = _upgrade  # type: ignore[attr-defined]
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (a INTEGER, b TEXT)")
        statements = captured_sql(conn, [Step("r1", None, "upgrade", module, "")])

    target = sqlite3.connect(":memory:")
    target.execute("CREATE TABLE t (a INTEGER, b TEXT)")
    target.executescript("\n".join(statements))

    assert len(statements) == 2
    assert all(s.endswith(";") and "?" not in s.split("'")[0] for s in statements)
    assert target.execute("SELECT a, b FROM t ORDER BY a").fetchall() == ROWS


def _upgrade_with_effects() -> None:
    bind = op.get_bind()
    bind.execute(text("SELECT count(*) FROM t")).scalar_one()
    op.execute("SELECT bump(1)")
    op.execute(select(func.bump(2)))


def test_selects_run_for_their_effect_are_statements_and_only_plain_reads_comments() -> None:
    """``op.execute("SELECT setval(...)")`` was printed as a comment, so the script did
    not do what the migration did; a read the migration uses stays a comment."""
    module = ModuleType("r1")
    module.upgrade = _upgrade_with_effects  # type: ignore[attr-defined]
    bumped: list[int] = []
    engine = create_engine("sqlite://")

    @event.listens_for(engine, "connect")
    def bumping(dbapi_connection: sqlite3.Connection, record: object) -> None:
        dbapi_connection.create_function("bump", 1, bumped.append)

    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (a INTEGER, b TEXT)")
        statements = captured_sql(conn, [Step("r1", None, "upgrade", module, "")])
    by_migration, bumped[:] = list(bumped), []
    target = sqlite3.connect(":memory:")
    target.create_function("bump", 1, bumped.append)
    target.execute("CREATE TABLE t (a INTEGER, b TEXT)")
    target.executescript("\n".join(statements))

    assert bumped == by_migration == [1, 2]
    assert "-- SELECT count(*) FROM t" in statements[0]
    assert statements[1:] == ["SELECT bump(1);", "SELECT bump(2) AS bump_1;"]
