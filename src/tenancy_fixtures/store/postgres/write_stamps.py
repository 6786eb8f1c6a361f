"""Write stamps: telling from a row's ``xmin`` that only recorded writes touched it.

Every row version carries the id of the transaction that wrote it (``xmin``); an
``UPDATE`` or ``INSERT`` by anyone else leaves a version with another id, and a
``DELETE`` leaves fewer rows. A load records its transaction's 64-bit id beside the
content checksum it wrote (``txid_current()``); validation then counts, in the server,
the rows of each table whose ``xmin`` is not among the recorded ids. None and as many
rows as the recorded writes leave means the table holds what they wrote, so its content
checksum is theirs: no row has to be read into Python to recompute it.

Transaction ids wrap around after 2^32; a recorded id older than 2^31 transactions is
not used (PostgreSQL has frozen every row by then, and its 32-bit id may be reused).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy_fixtures.store.postgres.privileges import quote

__all__ = ["count_unstamped", "current_stamp"]

#: How far back a 32-bit ``xmin`` still names one transaction only.
_HORIZON = 2**31
_XID_BITS = 2**32 - 1


async def current_stamp(conn: AsyncConnection) -> int:
    """The 64-bit id of ``conn``'s transaction (assigned now if it has none yet)."""
    return int((await conn.execute(text("SELECT txid_current()"))).scalar_one())


async def count_unstamped(
    conn: AsyncConnection, schema: str, stamps: Mapping[str, Collection[int]]
) -> dict[str, tuple[int, int]]:
    """For each table of ``schema`` named in ``stamps``: its rows, and how many of them
    were last written by a transaction not among its stamps (one statement)."""
    if not stamps:
        return {}
    oldest = int(
        (
            await conn.execute(text("SELECT txid_snapshot_xmin(txid_current_snapshot())"))
        ).scalar_one()
    )
    names = sorted(stamps)
    parts = []
    for position, name in enumerate(names):
        usable = sorted({s & _XID_BITS for s in stamps[name] if oldest - s < _HORIZON})
        xids = "{" + ",".join(str(int(x)) for x in usable) + "}"
        parts.append(
            f"SELECT {position}, count(*), "
            f"count(*) FILTER (WHERE NOT (xmin = ANY(CAST('{xids}' AS xid[])))) "
            f"FROM {quote(schema)}.{quote(name)}"
        )
    rows = (await conn.execute(text(" UNION ALL ".join(parts)))).all()
    return {names[int(r[0])]: (int(r[1]), int(r[2])) for r in rows}
