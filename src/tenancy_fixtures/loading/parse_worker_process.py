"""What a parse worker process runs: blocks of one table's JSON Lines in, typed (or
``COPY`` text) rows and their checksum out; or any call it is sent.

A worker is a separate Python process, and its memory counts beside the loading
process's. This module therefore imports no SQLAlchemy: a table whose blocks take the
compiled path (:mod:`~tenancy_fixtures.loading.fast_rows`) arrives as a plan of plain
data with its encoders' expressions, and a worker whose every block takes that path
never imports it (about 25 MiB less per worker). The exact path, for a block the
compiled path declines, rebuilds the table from its pickle on first need.
"""

from __future__ import annotations

import pickle
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from tenancy_fixtures.errors import StorageError
from tenancy_fixtures.loading.checksums import ContentChecksum
from tenancy_fixtures.loading.copy_lines import RowEncoder, encoder_from
from tenancy_fixtures.loading.fast_rows import FastPlan, FastRows
from tenancy_fixtures.loading.worker_channel import Channel

if TYPE_CHECKING:
    from tenancy_fixtures.loading.fixture_sets import FixtureFile
    from tenancy_fixtures.loading.records import RowBuilder

__all__ = ["ParsedBlock", "TableJob", "serve"]


@dataclass(frozen=True, slots=True)
class ParsedBlock:
    """One block's rows (typed, or encoded as ``COPY`` text), their checksum, and the
    seconds each stage took."""

    rows: list[tuple[Any, ...]]
    #: The rows as ``COPY`` text when the load asked for it (``rows`` is then empty).
    payload: bytes | None
    row_count: int
    checksum_total: int
    parse_seconds: float
    validate_seconds: float
    checksum_seconds: float
    encode_seconds: float


@dataclass(frozen=True)
class TableJob:
    """The table a worker's next blocks belong to, as the loading process sends it."""

    #: ``(table, its value formats)`` pickled, unpickled only for the exact path.
    table_pickle: bytes
    max_text_length: int
    rules: bool
    #: Whether blocks go back as ``COPY`` text (where the table has an encoder).
    encode: bool
    #: The load's ``now`` and its local ``now``, which defaults and rules read.
    clock: tuple[datetime, datetime | None]
    #: The compiled path's plan, when the table has one and rows go back as ``COPY`` text.
    fast: FastPlan | None = None
    #: The compiled path's encoders' expressions: escaping, and not (see copy_text).
    fast_encoders: tuple[tuple[str, ...], tuple[str, ...]] | None = None


class _Exact:
    """The exact path for a table: its row builder, checksum and encoders."""

    def __init__(self, job: TableJob) -> None:
        # Imported here, on the first block the compiled path declines: they need
        # SQLAlchemy, which a worker on the compiled path never loads.
        from tenancy_fixtures.loading.copy_text import row_encoder
        from tenancy_fixtures.loading.records import RowBuilder
        from tenancy_fixtures.loading.table_checksums import table_checksum
        from tenancy_fixtures.loading.value_formats import FORMATS

        # The loading process's own pickle, over a socket only it and this worker hold.
        table, formats = pickle.loads(job.table_pickle)  # noqa: S301
        # The value formats its domain registered there, which this process (which
        # registered nothing) needs to check the table's columns.
        FORMATS.update({form.name: form for form in formats})
        now, local_now = job.clock
        self.builder: RowBuilder = RowBuilder(
            table,
            max_text_length=job.max_text_length,
            rules=job.rules,
            now=now,
            local_now=local_now,
        )
        self.checksum: Callable[[], ContentChecksum] = partial(table_checksum, table)
        #: Encoders of COPY text (escaping, and for blocks without a backslash not), if asked.
        self.encoders = (
            (row_encoder(table), row_encoder(table, escape=False)) if job.encode else None
        )


class _Job:
    """What a worker keeps for the table it is parsing."""

    def __init__(self, job: TableJob) -> None:
        self.job = job
        #: The compiled path and its encoders (escaping, and not), if the table has it.
        self.fast: tuple[FastRows, RowEncoder, RowEncoder] | None = None
        if job.fast is not None and job.fast_encoders is not None:
            escaping, plain = job.fast_encoders
            self.fast = (FastRows(job.fast), encoder_from(escaping), encoder_from(plain))
        self._exact: _Exact | None = None

    @property
    def exact(self) -> _Exact:
        if self._exact is None:
            try:
                self._exact = _Exact(self.job)
            except Exception as exc:
                raise StorageError(f"a parsing process could not rebuild the table: {exc}") from exc
        return self._exact


def _parse_fast(job: _Job, block: bytes) -> ParsedBlock | None:
    """The block through the compiled path, or ``None`` when it declines the block."""
    if job.fast is None:
        return None
    fast, escaping, plain = job.fast
    started = time.perf_counter()
    rows = fast.rows(block)
    if rows is None:
        return None
    parsed = time.perf_counter()
    content = ContentChecksum()  # no JSON, encrypted or datetime values on this path
    content.add(rows)
    summed = time.perf_counter()
    payload = (escaping if b"\\" in block else plain)(rows)
    return ParsedBlock(
        [],
        payload,
        len(rows),
        content.total,
        parsed - started,
        0.0,
        summed - parsed,
        time.perf_counter() - summed,
    )


def _parse_block(job: _Job, file_pickle: bytes, block: bytes, before: int) -> ParsedBlock:
    fast = _parse_fast(job, block)
    if fast is not None:
        return fast
    from tenancy_fixtures.loading.readers import json_lines_records  # the exact path's

    exact = job.exact
    file: FixtureFile = pickle.loads(file_pickle)  # noqa: S301 - the loading process's own
    started = time.perf_counter()
    records, failure = json_lines_records(file, block, before)
    parsed = time.perf_counter()
    rows = [exact.builder.build(record, path=file.relative) for record in records]
    built = time.perf_counter()
    if failure is not None:
        raise failure
    content = exact.checksum()
    content.add(rows)
    summed = time.perf_counter()
    payload = None
    if exact.encoders is not None:
        # JSON strings hold a backslash, tab or line break only as an escape.
        encode = exact.encoders[0] if b"\\" in block else exact.encoders[1]
        if encode is not None:
            payload, rows = encode(rows), []
    return ParsedBlock(
        rows,
        payload,
        len(records),
        content.total,
        parsed - started,
        built - parsed,
        summed - built,
        time.perf_counter() - summed,
    )


def _portable(error: BaseException) -> BaseException:
    """``error`` if it survives pickling, else a StorageError that says what it was."""
    try:
        pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    except Exception:
        return StorageError(f"parsing failed in a worker process: {type(error).__name__}: {error}")
    return error


def _receive(conn: Channel, inbox: queue.SimpleQueue[Any]) -> None:
    """Read messages as they come, so the loading process never blocks sending a block
    while this worker blocks sending a reply (pipes hold far less than a block)."""
    while True:
        try:
            inbox.put(conn.recv())
        except (EOFError, OSError):
            inbox.put(None)
            return
        except Exception as exc:  # read whole, but not unpickled: a call's function
            inbox.put(("unreadable", exc))


def _reply(conn: Channel, reply: Any) -> bool:
    """Send ``reply`` back (a StorageError saying why when it cannot be pickled); whether
    the loading process is still there."""
    try:
        conn.send(reply)
    except OSError:
        return False
    except Exception as exc:  # pickling fails before anything is sent
        error = StorageError(f"a parsing process could not send its result back: {exc}")
        try:
            conn.send(error)
        except OSError:
            return False
    return True


def _answer(job: _Job | BaseException, message: tuple[Any, ...]) -> Any:
    """What a call or a block message gets back (an error it raised, pickled safely)."""
    try:
        if message[0] == "unreadable":
            raise StorageError(f"a parsing process could not read what it was sent: {message[1]}")
        if message[0] == "call":
            _, function, args = message
            return function(*args)
        if isinstance(job, BaseException):
            raise job
        _, file_pickle, block, before = message
        return _parse_block(job, file_pickle, block, before)
    except Exception as exc:
        return _portable(exc)


def serve(fd: int) -> None:
    """A worker process's loop on the socket ``fd``: a table, then blocks of its
    file(s), or calls, until the loading process closes the connection. Every block
    and call gets one reply, an error if it could not even be read."""
    conn = Channel.from_fd(fd)
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    threading.Thread(target=_receive, args=(conn, inbox), daemon=True).start()
    job: _Job | BaseException = StorageError("a block arrived before its table")
    while (message := inbox.get()) is not None:
        if message[0] == "table":
            try:
                # The loading process's own pickle, over a socket only it and this
                # worker hold; unpickled here, where a failure is the load's error.
                job = _Job(pickle.loads(message[1]))  # noqa: S301
            except Exception as exc:
                job = StorageError(f"a parsing process could not rebuild the table: {exc}")
            continue
        if not _reply(conn, _answer(job, message)):
            return
