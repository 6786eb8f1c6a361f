"""The audit log as a hash chain: appending, sealing the records made before it, verifying.

Every record carries its position ``seq``, the hash of the record before it
(``prev_hash``) and its own ``entry_hash``: SHA-256 of its canonical form, compact JSON
with sorted keys of::

    seq, at (UTC, ISO 8601 with microseconds), actor, action, tenant_id, outcome,
    run_id, detail_digest, prev_hash

``detail_digest`` is SHA-256 of the detail's canonical JSON. The hash covers the digest,
not the detail, so dropping a tenant can erase a detail (which may quote personal data)
while every link still verifies: the erasure appends a tombstone (``audit.erase``) naming
the positions it erased, and a record whose detail no longer matches its digest is
accepted only as a minimal trail that a later tombstone of its tenant names. Tombstones
written before they named positions (``{"erased": n}`` alone) each cover at most ``n``
erased records of their tenant before them. Tombstones themselves are never erased.

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
from bisect import bisect_right
from collections.abc import AsyncIterator, Iterable, Mapping
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
    "TOMBSTONE",
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
    conn: AsyncConnection,
    tenant_id: str,
    *,
    erased: int,
    positions: Iterable[int],
    actor: str,
    run_id: str | None,
) -> None:
    """Record in the chain that ``tenant_id``'s records at ``positions`` were reduced to
    the minimal trail (``erased`` records in all, those made before the chain included),
    by ``actor`` in run ``run_id``. Naming the positions lets verify tell these records
    from ones erased behind the chain's back."""
    await append(
        conn,
        actor=actor,
        action=TOMBSTONE,
        tenant_id=tenant_id,
        outcome="ok",
        run_id=run_id,
        detail={"erased": erased, "positions": _runs(positions)},
    )


def _runs(positions: Iterable[int]) -> list[list[int]]:
    """Positions as ``[first, last]`` runs of consecutive ones: a drop's erasure of a
    tenant's whole trail stays short."""
    runs: list[list[int]] = []
    for seq in sorted(set(positions)):
        if runs and runs[-1][1] == seq - 1:
            runs[-1][1] = seq
        else:
            runs.append([seq, seq])
    return runs


def _named(detail: Mapping[str, Any]) -> list[tuple[int, int]] | None:
    """The runs a tombstone's detail names; ``None`` for one written before tombstones
    named positions (or not in the form :func:`_runs` writes)."""
    runs = detail.get("positions")
    if not isinstance(runs, list):
        return None
    named: list[tuple[int, int]] = []
    for run in runs:
        if not (isinstance(run, list) and len(run) == 2 and all(type(v) is int for v in run)):
            return None
        named.append((run[0], run[1]))
    return sorted(named)


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


async def _rows(conn: AsyncConnection, after: int) -> AsyncIterator[Row[Any]]:
    """The audit records with an id above ``after``, by id, a page at a time (memory
    stays flat)."""
    while True:
        page = (
            await conn.execute(
                select(audit_table)
                .where(audit_table.c.audit_id > after)
                .order_by(audit_table.c.audit_id)
                .limit(_PAGE)
            )
        ).all()
        for row in page:
            yield row
        if len(page) < _PAGE:
            return
        after = page[-1].audit_id


def _covers(runs: list[tuple[int, int]], seq: int) -> bool:
    """Whether one of the sorted ``[first, last]`` runs holds ``seq``."""
    at = bisect_right(runs, seq, key=lambda run: run[0]) - 1
    return at >= 0 and runs[at][0] <= seq <= runs[at][1]


class _Erasures:
    """The erased details met on a walk, and the tombstones that cover them.

    A record erased as a drop does (its detail a minimal trail that no longer matches
    its digest) waits until a later tombstone of its tenant names its position. A
    tombstone from before tombstones named positions (``{"erased": n}``) is a credit of
    ``n`` records before it, spent once the walk is over, when the tombstones naming
    positions have taken theirs. Memory grows with the erased records waiting, not the log.
    """

    def __init__(self) -> None:
        #: Per tenant, the erased records no tombstone has named yet: position -> id.
        self.waiting: dict[str | None, dict[int, int]] = {}
        #: Per tenant, the count-only tombstones: [position, records left to cover].
        self.credits: dict[str, list[list[int]]] = {}
        #: Per tenant, how many erased records the walk met (bounds a lost count).
        self.met: dict[str | None, int] = {}

    def erased(self, row: Row[Any], earlier: int) -> None:
        """Note an erased record; ``earlier``: how many records came before the chain."""
        self.waiting.setdefault(row.tenant_id, {})[int(row.seq)] = int(row.audit_id)
        self.met[row.tenant_id] = self.met.get(row.tenant_id, 0) + 1
        if row.action == TOMBSTONE and row.tenant_id is not None:
            # A tombstone an older drop erased: its count, recovered from its digest.
            bound = self.met[row.tenant_id] + earlier
            for n in range(bound + 1):
                if detail_digest({"erased": n}) == row.detail_digest:
                    self.credits.setdefault(row.tenant_id, []).append([int(row.seq), n])
                    return

    def tombstone(self, row: Row[Any], detail: Mapping[str, Any]) -> None:
        """Let an intact tombstone cover the records it names (or its count of them)."""
        tenant = row.tenant_id
        if tenant is None:
            return
        runs = _named(detail)
        if runs is not None:
            waiting = self.waiting.get(tenant, {})
            for seq in [s for s in waiting if _covers(runs, s)]:
                del waiting[seq]
            return
        count = detail.get("erased")
        if type(count) is int and count > 0:
            self.credits.setdefault(tenant, []).append([int(row.seq), count])

    def uncovered(self) -> tuple[int, int] | None:
        """The first erased record (id, position) no tombstone covers, if any."""
        first: tuple[int, int] | None = None
        for tenant, waiting in self.waiting.items():
            credits = self.credits.get(tenant, []) if tenant is not None else []
            starts = [c[0] for c in credits]
            # Oldest record first, each to the oldest credit after it that has any left:
            # a later record can use fewer credits, so this covers all that can be.
            spent = 0
            for seq in sorted(waiting):
                spent = max(spent, bisect_right(starts, seq))
                while spent < len(credits) and credits[spent][1] == 0:
                    spent += 1
                if spent == len(credits):  # no credit left for it, nor for any after it
                    if first is None or seq < first[1]:
                        first = (waiting[seq], seq)
                    break
                credits[spent][1] -= 1
        return first


class _Walk:
    """The state of one verification walk along the chain."""

    def __init__(self) -> None:
        self.seq = 0
        self.prev = GENESIS
        self.checked = 0
        self.unchained: list[Row[Any]] = []
        self.erasures = _Erasures()

    # shape: one check per way a record can be wrong, each naming it
    def step(self, row: Row[Any]) -> str | None:
        """Why ``row`` breaks the chain, or ``None``."""
        if row.seq is None:
            if self.seq:
                return "a record without a hash after the chain started (inserted?)"
            self.unchained.append(row)
            return None
        if row.seq != self.seq + 1:
            return (
                f"expected position {self.seq + 1}, found {row.seq} "
                "(a record deleted, inserted or moved)"
            )
        if row.prev_hash != self.prev:
            return "its link does not name the record before it (a record deleted or moved)"
        if entry_hash(dict(row._mapping)) != row.entry_hash:
            return "its content no longer matches its hash (updated)"
        if not isinstance(row.detail, Mapping):  # every detail is written as an object
            return "its detail is no JSON object, and no longer matches its digest (updated)"
        detail = dict(row.detail)
        if detail_digest(detail) == row.detail_digest:
            if row.action == TOMBSTONE:
                self.erasures.tombstone(row, detail)
        elif detail == minimal_trail(detail):
            self.erasures.erased(row, len(self.unchained))
        else:
            return "its detail no longer matches its digest (updated)"
        if row.seq == 1:
            problem = self._check_seal(row)
            if problem is not None:
                return problem
        self.seq, self.prev = row.seq, row.entry_hash
        self.checked += 1
        return None

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


async def _walk_all(
    conn: AsyncConnection, walk: _Walk, current: tuple[int, str]
) -> tuple[ChainBreak | None, tuple[int, str]]:
    """Walk every record, and the head it ends at. Records appended while the walk ran
    are walked too: when it runs out of records before the head, it reads on."""
    after = 0
    while True:
        moved = False
        async for row in _rows(conn, after):
            reason = walk.step(row)
            if reason is not None:
                return ChainBreak(row.audit_id, row.seq, reason), current
            after, moved = row.audit_id, True
        current = await head(conn) or current
        if not moved or walk.seq >= current[0]:
            return None, current


async def _at_position(conn: AsyncConnection, seq: int) -> int | None:
    found = await conn.execute(
        select(audit_table.c.audit_id)
        .where(audit_table.c.seq == seq)
        .order_by(audit_table.c.audit_id)
        .limit(1)
    )
    audit_id = found.scalar()
    return None if audit_id is None else int(audit_id)


async def _ends(conn: AsyncConnection, walk: _Walk, current: tuple[int, str]) -> ChainBreak | None:
    """Whether the chain ends at the head, and every erased detail is covered."""
    if walk.seq > current[0]:
        return ChainBreak(
            await _at_position(conn, current[0] + 1),
            current[0] + 1,
            f"a record past the chain head (position {current[0]}): inserted?",
        )
    if (walk.seq, walk.prev) != current:
        return ChainBreak(
            None,
            current[0],
            f"the head names position {current[0]} but the chain ends at {walk.seq} "
            "(records deleted from its end, or the head changed)",
        )
    uncovered = walk.erasures.uncovered()
    if uncovered is not None:
        return ChainBreak(
            *uncovered,
            f"its detail was erased but no {TOMBSTONE} record of its tenant names it "
            "(erased behind the chain's back?)",
        )
    return None


async def verify(conn: AsyncConnection) -> ChainReport:
    """Walk the whole chain, up to the head as it is when the walk ends (records appended
    meanwhile are walked, not skipped); the report names the first broken link, if any."""
    current = await head(conn)
    if current is None:
        return ChainReport(0, 0, 0, GENESIS, ChainBreak(None, None, "the chain never started"))
    walk = _Walk()
    broken, current = await _walk_all(conn, walk, current)
    if broken is None:
        broken = await _ends(conn, walk, current)
    return ChainReport(walk.checked, len(walk.unchained), current[0], current[1], broken)
