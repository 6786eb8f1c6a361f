"""The audit log as a hash chain: appending, sealing the records made before it, verifying.

Every record carries its position ``seq``, the hash of the record before it
(``prev_hash``) and its own ``entry_hash``: SHA-256 of its canonical form, compact JSON
with sorted keys of::

    seq, at (UTC, ISO 8601 with microseconds), actor, action, tenant_id, outcome,
    run_id, detail_digest, prev_hash

``detail_digest`` is SHA-256 of the detail's canonical JSON. The hash covers the digest,
not the detail, so dropping a tenant can erase a detail (which may quote personal data)
while every link still verifies: the erasure appends a tombstone (``audit.erase``), and a
record whose detail no longer matches its digest is accepted only as a minimal trail
that a later tombstone of its tenant covers.

Appending locks the one-row head table (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's
write lock serialises writers already), so concurrent writers never fork the chain.

Records made before the chain existed are not back-filled: hashing them now would vouch
for rows nobody can vouch for. The chain starts after them with an ``audit.chain_start``
record that seals them (their count, last id and a digest of their fields but the
detail, which a later drop may still erase), so any later change to them is detected too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update

from tenancy_fixtures.store.added_columns import add_missing_columns
from tenancy_fixtures.store.control_plane import (
    audit_head_table,
    audit_table,
    aware,
    minimal_trail,
    utcnow,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Row
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "CHAIN_COLUMNS",
    "GENESIS",
    "ChainBreak",
    "ChainReport",
    "append",
    "append_tombstone",
    "canonical",
    "detail_digest",
    "ensure_chain",
    "entry_hash",
    "head",
    "verify",
]

#: The ``prev_hash`` of the first record of a chain.
GENESIS = "0" * 64
#: Columns the chain added to ``audit_log`` (added in place on older deployments).
CHAIN_COLUMNS = ("seq", "detail_digest", "prev_hash", "entry_hash")
CHAIN_START = "audit.chain_start"
TOMBSTONE = "audit.erase"
#: Records read per round trip while verifying.
_PAGE = 1000


def _plain(value: Any) -> Any:
    # jsonb does not keep 1e16 a float: a whole float is written as the integer it is.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def canonical(value: Any) -> bytes:
    """Compact JSON with sorted keys, UTF-8: the bytes a hash is taken of."""
    plain = _plain(json.loads(json.dumps(value)))
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def detail_digest(detail: Mapping[str, Any]) -> str:
    """SHA-256 of a detail's canonical JSON."""
    return hashlib.sha256(canonical(dict(detail))).hexdigest()


def _at(value: datetime) -> str:
    return aware(value).astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(fields: Mapping[str, Any]) -> str:
    """The hash of one record from its chained fields (see the module docstring)."""
    document = {
        "seq": fields["seq"],
        "at": _at(fields["at"]),
        "actor": fields["actor"],
        "action": fields["action"],
        "tenant_id": fields["tenant_id"],
        "outcome": fields["outcome"],
        "run_id": fields["run_id"],
        "detail_digest": fields["detail_digest"],
        "prev_hash": fields["prev_hash"],
    }
    return hashlib.sha256(canonical(document)).hexdigest()


async def head(conn: AsyncConnection, *, lock: bool = False) -> tuple[int, str] | None:
    """The chain's last position and hash; ``None`` before the chain started."""
    query = select(audit_head_table.c.seq, audit_head_table.c.head_hash).where(
        audit_head_table.c.singleton == 1
    )
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    return None if row is None else (int(row.seq), str(row.head_hash))


async def append(
    conn: AsyncConnection,
    *,
    actor: str,
    action: str,
    tenant_id: str | None,
    outcome: str,
    run_id: str | None,
    detail: Mapping[str, Any],
) -> str:
    """Append one record linked to the head, under the head's lock; returns its hash."""
    current = await head(conn, lock=True)
    if current is None:
        await ensure_chain(conn)
        current = await head(conn, lock=True)
        assert current is not None
    fields: dict[str, Any] = {
        "seq": current[0] + 1,
        "at": utcnow(),
        "actor": actor,
        "action": action,
        "tenant_id": tenant_id,
        "outcome": outcome,
        "run_id": run_id,
        "detail_digest": detail_digest(detail),
        "prev_hash": current[1],
    }
    fields["entry_hash"] = entry_hash(fields)
    await conn.execute(insert(audit_table).values(detail=dict(detail), **fields))
    await conn.execute(
        update(audit_head_table)
        .where(audit_head_table.c.singleton == 1)
        .values(seq=fields["seq"], head_hash=fields["entry_hash"], updated_at=fields["at"])
    )
    return str(fields["entry_hash"])


async def append_tombstone(
    conn: AsyncConnection, tenant_id: str, *, erased: int, actor: str, run_id: str | None
) -> None:
    """Record in the chain that ``tenant_id``'s earlier records were reduced to the
    minimal trail (``erased`` of them just now), by ``actor`` in run ``run_id``."""
    await append(
        conn,
        actor=actor,
        action=TOMBSTONE,
        tenant_id=tenant_id,
        outcome="ok",
        run_id=run_id,
        detail={"erased": erased},
    )


def _seal(rows: list[Row[Any]]) -> str:
    """A digest of the pre-chain records' fields but their detail, in id order."""
    digest = hashlib.sha256()
    for r in rows:
        digest.update(
            canonical([r.audit_id, _at(r.at), r.actor, r.action, r.tenant_id, r.outcome, r.run_id])
        )
        digest.update(b"\n")
    return digest.hexdigest()


async def _unchained(conn: AsyncConnection) -> list[Row[Any]]:
    t = audit_table
    query = (
        select(t.c.audit_id, t.c.at, t.c.actor, t.c.action, t.c.tenant_id, t.c.outcome)
        .add_columns(t.c.run_id)
        .where(t.c.seq.is_(None))
        .order_by(t.c.audit_id)
    )
    return list((await conn.execute(query)).all())


async def ensure_chain(conn: AsyncConnection) -> None:
    """Add the chain's columns to an older ``audit_log`` and start the chain where it has
    not started: a head, and a ``audit.chain_start`` record sealing the records before.

    Call it where control-plane creation is serialised (the store's initialization).
    """
    await add_missing_columns(conn, audit_table, CHAIN_COLUMNS)
    if await head(conn) is not None:
        return
    earlier = await _unchained(conn)
    now = utcnow()
    await conn.execute(
        insert(audit_head_table).values(singleton=1, seq=0, head_hash=GENESIS, updated_at=now)
    )
    await append(
        conn,
        actor="tenancy-fixtures",
        action=CHAIN_START,
        tenant_id=None,
        outcome="ok",
        run_id=None,
        detail={
            "unchained": len(earlier),
            "through_id": earlier[-1].audit_id if earlier else 0,
            "seal": _seal(earlier),
        },
    )


@dataclass(frozen=True)
class ChainBreak:
    """The first link that does not hold: the record (by ``audit_id``; ``None`` for the
    head) and why."""

    audit_id: int | None
    seq: int | None
    reason: str

    def __str__(self) -> str:
        where = "the chain head" if self.audit_id is None else f"audit record {self.audit_id}"
        at = "" if self.seq is None else f" (position {self.seq})"
        return f"{where}{at}: {self.reason}"


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify` found: records checked, the head, and the first break if any."""

    checked: int
    unchained: int
    head_seq: int
    head_hash: str
    broken: ChainBreak | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None


async def _rows(conn: AsyncConnection) -> AsyncIterator[Row[Any]]:
    """Every audit record by id, a page at a time (memory stays flat)."""
    last = 0
    while True:
        page = (
            await conn.execute(
                select(audit_table)
                .where(audit_table.c.audit_id > last)
                .order_by(audit_table.c.audit_id)
                .limit(_PAGE)
            )
        ).all()
        for row in page:
            yield row
        if len(page) < _PAGE:
            return
        last = page[-1].audit_id


async def _tombstones(conn: AsyncConnection) -> dict[str, int]:
    """Each tenant's last tombstone position."""
    t = audit_table
    found = await conn.execute(
        select(t.c.tenant_id, t.c.seq).where(t.c.action == TOMBSTONE, t.c.seq.is_not(None))
    )
    latest: dict[str, int] = {}
    for tenant_id, seq in found:
        latest[str(tenant_id)] = max(int(seq), latest.get(str(tenant_id), 0))
    return latest


class _Walk:
    """The state of one verification walk along the chain."""

    def __init__(self, tombstones: dict[str, int], head_seq: int) -> None:
        self.tombstones = tombstones
        self.head_seq = head_seq
        self.seq = 0
        self.prev = GENESIS
        self.checked = 0
        self.unchained: list[Row[Any]] = []
        self.started: Mapping[str, Any] | None = None

    # shape: one check per way a record can be wrong, each naming it
    def step(self, row: Row[Any]) -> str | None:
        """Why ``row`` breaks the chain, or ``None``."""
        if row.seq is None:
            if self.seq:
                return "a record without a hash after the chain started (inserted?)"
            self.unchained.append(row)
            return None
        if row.seq > self.head_seq:
            return None  # appended while we were verifying
        if row.seq != self.seq + 1:
            return (
                f"expected position {self.seq + 1}, found {row.seq} "
                "(a record deleted, inserted or moved)"
            )
        if row.prev_hash != self.prev:
            return "its link does not name the record before it (a record deleted or moved)"
        if entry_hash(dict(row._mapping)) != row.entry_hash:
            return "its content no longer matches its hash (updated)"
        if detail_digest(dict(row.detail)) != row.detail_digest and not self._erased(row):
            return "its detail no longer matches its digest (updated)"
        if row.seq == 1:
            problem = self._check_seal(row)
            if problem is not None:
                return problem
        self.seq, self.prev = row.seq, row.entry_hash
        self.checked += 1
        return None

    def _erased(self, row: Row[Any]) -> bool:
        """Whether a record's detail was erased as a tenant drop does: a minimal trail
        that a later tombstone of its tenant covers."""
        detail = dict(row.detail)
        covered = self.tombstones.get(str(row.tenant_id), 0) > row.seq
        return covered and detail == minimal_trail(detail)

    def _check_seal(self, row: Row[Any]) -> str | None:
        if row.action != CHAIN_START:
            return "the chain does not begin with its start record"
        detail = dict(row.detail)
        sealed = self.unchained
        if (
            len(sealed) != detail.get("unchained")
            or (sealed and sealed[-1].audit_id != detail.get("through_id"))
            or _seal(sealed) != detail.get("seal")
        ):
            return "the records made before the chain started were changed"
        return None


async def verify(conn: AsyncConnection) -> ChainReport:
    """Walk the whole chain; the report names the first broken link, if any."""
    current = await head(conn)
    if current is None:
        return ChainReport(0, 0, 0, GENESIS, ChainBreak(None, None, "the chain never started"))
    walk = _Walk(await _tombstones(conn), current[0])
    broken: ChainBreak | None = None
    async for row in _rows(conn):
        reason = walk.step(row)
        if reason is not None:
            broken = ChainBreak(row.audit_id, row.seq, reason)
            break
    if broken is None and (walk.seq, walk.prev) != current:
        broken = ChainBreak(
            None,
            current[0],
            f"the head names position {current[0]} but the chain ends at {walk.seq} "
            "(records deleted from its end, or the head changed)",
        )
    return ChainReport(walk.checked, len(walk.unchained), current[0], current[1], broken)
