"""Setting up the control plane on PostgreSQL, creating only what is missing.

Every command starts here. Looking first and creating only what is missing means a
database user that may only read (``CONNECT``, ``USAGE`` on the schemas, ``SELECT`` on
the tables) can run ``list``, ``show``, ``audit`` and ``validate-data``: nothing is
created, so nothing needs ``CREATE``. Where something is missing and the user may not
create it, the error says what is missing and which privilege on what would allow it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.schema import CreateSchema

from tenancy_fixtures.errors import PermissionDeniedError
from tenancy_fixtures.logs import get_logger
from tenancy_fixtures.store import audit_chain, control_plane
from tenancy_fixtures.store.added_columns import add_later_columns
from tenancy_fixtures.store.control_plane import (
    CONTROL_SCHEMA,
    LATER_COLUMNS,
    audit_table,
    control_metadata,
)
from tenancy_fixtures.store.postgres.audit_guard import GUARD_TRIGGER, install_audit_guard
from tenancy_fixtures.store.postgres.privileges import is_insufficient_privilege
from tenancy_fixtures.store.postgres.sqlstate import pg_error, sqlstate

__all__ = ["Identity", "ensure_control_plane"]

log = get_logger("tenancy_fixtures.store.postgres")

#: How long setting up waits for a lock on a control-plane table before it gives the
#: lock up and tries again (after :data:`_BUSY_PAUSE_SECONDS`).
_LOCK_WAIT = "500ms"
_BUSY_PAUSE_SECONDS = 1.0
_LOCK_NOT_AVAILABLE = "55P03"


@dataclass(frozen=True)
class Identity:
    """Who the store is connected as, and where; ``absent``: the ``table.column`` of
    later columns the control plane lacks and this user may not add."""

    user: str
    database: str
    absent: frozenset[str] = frozenset()


async def ensure_control_plane(engine: AsyncEngine, *, lock_key: int) -> Identity:
    """Create the ``tenancy`` schema and its tables where missing; returns who we are.

    When something is missing, creating it is serialised across processes by an
    advisory lock; when nothing is, no lock is taken and nothing is written. A user who
    may only read, and so may not add the columns a later version added
    (:data:`LATER_COLUMNS`), works without them: the identity names them, and the
    queries leave them out. One who writes waits for the owner to add them.
    """
    row = await _look(engine)
    identity = Identity(str(row[0]), str(row[1]))
    schema_exists, missing, absent = bool(row[2]), list(row[3]), frozenset(row[4])
    guarded = bool(row[5])
    if schema_exists and not missing and not absent and guarded and await _set_up(engine):
        return identity
    try:
        for attempt in itertools.count():
            busy = await _create_missing(
                engine, lock_key, schema_exists=schema_exists, guarded=guarded
            )
            if busy is None:
                break
            if attempt == 0:  # once: a long load keeps it waiting
                log.warning("control_plane_busy", reason=busy, retry_every=_BUSY_PAUSE_SECONDS)
            await asyncio.sleep(_BUSY_PAUSE_SECONDS)
    except DBAPIError as exc:
        if not is_insufficient_privilege(exc):
            raise
        readonly = not row[6]
        if (
            readonly
            and schema_exists
            and not missing
            and guarded
            and absent <= _optional_columns()
            and await _set_up(engine)
        ):
            log.warning("control_plane_columns_missing", missing=sorted(absent), user=identity.user)
            return Identity(identity.user, identity.database, absent)
        raise _refused(identity, schema_exists, missing) from exc
    return identity


async def _create_missing(
    engine: AsyncEngine, lock_key: int, *, schema_exists: bool, guarded: bool
) -> str | None:
    """One attempt at creating what is missing; why not, when a table it alters was
    locked (by a load, until it commits) for longer than :data:`_LOCK_WAIT`.

    Waiting in the lock queue would hold up every other session that uses the table
    behind it, so it gives up and tries again later.
    """
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key})
            await conn.execute(text(f"SET LOCAL lock_timeout = '{_LOCK_WAIT}'"))
            if not schema_exists:
                # Only then: PostgreSQL checks CREATE on the database before it sees that
                # the schema exists, and a user allowed to add tables may lack it.
                await conn.execute(CreateSchema(CONTROL_SCHEMA, if_not_exists=True))
            await conn.run_sync(control_metadata.create_all, checkfirst=True)
            await control_plane.ensure_plane_id(conn)
            await add_later_columns(conn)
            await audit_chain.ensure_chain(conn)
            if not guarded:  # replacing it takes ownership of the table: only when missing
                await install_audit_guard(conn)
    except DBAPIError as exc:
        if sqlstate(exc) != _LOCK_NOT_AVAILABLE:
            raise
        return str(pg_error(exc) or exc)
    return None


async def _set_up(engine: AsyncEngine) -> bool:
    """Whether the control plane has its id and its audit chain's head."""
    async with engine.connect() as conn:
        return (
            await control_plane.plane_id(conn) is not None
            and await audit_chain.head(conn) is not None
        )


async def _look(engine: AsyncEngine) -> tuple[Any, ...]:
    """Who we are, and what of the control plane is there: whether its schema exists,
    the tables it lacks, the columns added since that it lacks, the audit guard, and
    whether we may record table writes."""
    tables = [t.name for t in control_metadata.sorted_tables]
    async with engine.begin() as conn:
        return tuple(
            (
                await conn.execute(
                    text(
                        "SELECT current_user, current_database(), "
                        "to_regnamespace(:schema) IS NOT NULL, "
                        "ARRAY(SELECT t FROM unnest(CAST(:tables AS text[])) t "
                        "      WHERE to_regclass(quote_ident(:schema) || '.' || quote_ident(t))"
                        "            IS NULL), "
                        # Columns added to older deployments that it lacks (the audit
                        # chain's among them; from the catalog: planning the
                        # information_schema view costs a new backend ~10 ms), and the
                        # audit chain's guard.
                        "ARRAY(SELECT c FROM unnest(CAST(:columns AS text[])) c "
                        "      WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a "
                        "      WHERE a.attrelid = to_regclass(quote_ident(:schema) || '.' "
                        "            || quote_ident(split_part(c, '.', 1))) "
                        "        AND a.attname = split_part(c, '.', 2) "
                        "        AND a.attnum > 0 AND NOT a.attisdropped)), "
                        "EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = :trigger AND tgrelid = "
                        "        to_regclass(quote_ident(:schema) || '.audit_log')), "
                        # Whether this user records table writes (then it may not do
                        # without a column they have).
                        "COALESCE(has_any_column_privilege(to_regclass(quote_ident(:schema) "
                        "         || '.table_checksums'), 'INSERT'), false)"
                    ),
                    {
                        "schema": CONTROL_SCHEMA,
                        "tables": tables,
                        "columns": _later_columns(),
                        "trigger": GUARD_TRIGGER,
                    },
                )
            ).one()
        )


def _later_columns() -> list[str]:
    """``table.column`` for every column an older deployment may lack."""
    return _qualified({**LATER_COLUMNS, audit_table: audit_chain.CHAIN_COLUMNS})


def _optional_columns() -> frozenset[str]:
    """``table.column`` of each later column the queries can do without (not the
    audit chain's)."""
    return frozenset(_qualified(LATER_COLUMNS))


def _qualified(columns: Mapping[Table, Sequence[str]]) -> list[str]:
    return [f"{table.name}.{name}" for table, names in columns.items() for name in names]


def _refused(identity: Identity, schema_exists: bool, missing: list[str]) -> PermissionDeniedError:
    if not schema_exists:
        what, privilege, on = (
            f"the control-plane schema '{CONTROL_SCHEMA}' does not exist",
            "CREATE",
            f"database '{identity.database}'",
        )
    elif missing:
        what, privilege, on = (
            f"the control plane lacks table(s) {', '.join(missing)}",
            "CREATE",
            f"schema '{CONTROL_SCHEMA}'",
        )
    else:
        what, privilege, on = (
            "the control plane is not fully set up (its id, columns added since it was "
            "made, or the audit chain's head or append-only trigger)",
            "ownership",
            f"the tables of schema '{CONTROL_SCHEMA}'",
        )
    return PermissionDeniedError(
        f"permission denied: {what}, and user '{identity.user}' may not create it: that "
        f"takes {privilege} on {on} (or run any command once as a user who has it)",
        privilege=privilege,
        on=on,
        user=identity.user,
    )
