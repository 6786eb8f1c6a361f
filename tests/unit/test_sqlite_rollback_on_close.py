"""Closing a SQLite connection while a cursor still holds a statement: a plain
``sqlite3`` connection stays locked as a zombie; ours lets writers in."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tenancy_fixtures.store.sqlite.closing import RollbackOnClose


def _locked(path: Path) -> bool:
    probe = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    try:
        probe.execute("BEGIN EXCLUSIVE")
        probe.execute("ROLLBACK")
    except sqlite3.OperationalError:
        return True
    finally:
        probe.close()
    return False


def _with_plays(path: Path, factory: type[sqlite3.Connection]) -> sqlite3.Connection:
    """A connection on a new file whose table ``plays`` holds 50 rows (autocommit)."""
    connection = sqlite3.connect(path, isolation_level=None, factory=factory)
    connection.execute("CREATE TABLE plays (n INTEGER)")
    connection.executemany("INSERT INTO plays VALUES (?)", [(n,) for n in range(50)])
    return connection


#: A plain connection stays locked until the cursor is freed; ours does not.
FACTORIES = pytest.mark.parametrize(
    ("factory", "locked"), [(sqlite3.Connection, True), (RollbackOnClose, False)]
)


@FACTORIES
def test_closing_with_a_statement_in_flight_releases_the_write_lock_only_when_rolled_back(
    tmp_path: Path, factory: type[sqlite3.Connection], locked: bool
) -> None:
    path = tmp_path / "tenant.db"
    connection = _with_plays(path, factory)
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("INSERT INTO plays VALUES (50)")
    in_flight = connection.execute("SELECT n FROM plays")
    assert in_flight.fetchone() is not None

    connection.close()

    assert locked == _locked(path)
    del in_flight
    assert not _locked(path)


@FACTORIES
def test_closing_with_a_read_in_flight_outside_a_transaction_releases_its_read_lock(
    tmp_path: Path, factory: type[sqlite3.Connection], locked: bool
) -> None:
    path = tmp_path / "tenant.db"
    connection = _with_plays(path, factory)
    in_flight = connection.cursor().execute("SELECT n FROM plays")
    assert in_flight.fetchone() is not None
    assert not connection.in_transaction

    connection.close()

    assert locked == _locked(path)
    del in_flight
    assert not _locked(path)


def test_closing_twice_does_nothing_the_second_time(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "tenant.db", factory=RollbackOnClose)
    connection.close()
    connection.close()
