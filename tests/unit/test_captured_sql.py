"""The SQL ``migrate --sql`` captures: values inlined as literals, each statement ended,
only the catalogue's reads left out, runnable by ``sqlite3`` as it stands."""

from __future__ import annotations

import sqlite3
from types import ModuleType

from alembic import op
from sqlalchemy import create_engine

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
