"""Finding Citus behind a PostgreSQL URL, and the settings the store runs it with.

Every connection starts with schema-based sharding off (``CONNECT_SETTINGS``), so the
control plane, spare bookkeeping and scratch schemas stay plain schemas on the
coordinator whatever the server's default; provisioning turns it on for its own
transaction only (:func:`distribute_new_schemas`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text

from tenancy_fixtures.errors import SettingsError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "CONNECT_SETTINGS",
    "PROPAGATE_DDL",
    "detect_citus",
    "distribute_new_schemas",
    "is_distributed_schema",
    "propagate_ddl",
    "schema_bytes",
]

#: Server settings of every connection the store opens to a Citus coordinator.
CONNECT_SETTINGS = {"citus.enable_schema_based_sharding": "off"}

_VERSION = text("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'citus'")
_IS_COORDINATOR = text("SELECT pg_catalog.citus_is_coordinator()")
_SCHEMA_BYTES = text(
    "SELECT coalesce(sum(pg_catalog.citus_total_relation_size(p.logicalrelid)), 0) "
    "FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid "
    "WHERE c.relnamespace = to_regnamespace(:schema)"
)


async def detect_citus(conn: AsyncConnection, *, wanted: str, url: str) -> str | None:
    """The Citus version when tenants are to be distributed (``wanted`` is ``citus``,
    or ``auto`` and the extension is there), else ``None``.

    Refuses ``citus`` on a database without the extension, and a Citus node that is not
    the coordinator (tenants are created and moved through the coordinator only).
    """
    if wanted == "off":
        return None
    version = (await conn.execute(_VERSION)).scalar_one_or_none()
    if version is None:
        if wanted == "citus":
            raise SettingsError(
                f"TENANCY_DISTRIBUTED=citus but the database at {url} has no citus "
                "extension: CREATE EXTENSION citus on the coordinator (and each worker), "
                "or set TENANCY_DISTRIBUTED=auto"
            )
        return None
    if not (await conn.execute(_IS_COORDINATOR)).scalar_one():
        raise SettingsError(
            f"the database at {url} is a Citus worker, not the coordinator: point "
            "TENANCY_DATABASE_URL at the coordinator"
        )
    return str(version)


async def distribute_new_schemas(conn: AsyncConnection) -> None:
    """Schemas created in the rest of this transaction become distributed schemas: each
    is placed on one worker with all of its tables (colocated)."""
    await conn.execute(text("SET LOCAL citus.enable_schema_based_sharding TO on"))


#: The setting :func:`propagate_ddl` makes.
PROPAGATE_DDL = "SET LOCAL citus.enable_ddl_propagation TO on"


async def propagate_ddl(conn: AsyncConnection) -> None:
    """DDL in the rest of this transaction reaches the tables' shards on the workers,
    whatever the session's default: a change made on the coordinator alone would leave
    the shards behind."""
    await conn.execute(text(PROPAGATE_DDL))


async def is_distributed_schema(conn: AsyncConnection, schema: str) -> bool:
    """Whether ``schema`` is a Citus distributed schema."""
    found = await conn.execute(
        text("SELECT 1 FROM pg_dist_schema WHERE schemaid = to_regnamespace(:schema)"),
        {"schema": schema},
    )
    return found.first() is not None


async def schema_bytes(conn: AsyncConnection, schema: str) -> int:
    """Bytes the shards of ``schema``'s distributed tables occupy on their workers."""
    found = await conn.execute(_SCHEMA_BYTES, {"schema": schema})
    return int(found.scalar_one())
