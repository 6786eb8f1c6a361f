"""JSON Lines parsed in worker processes: the CPU-bound half of a big load on more cores.

Reading, checking, typing and checksumming a record costs a few microseconds of Python,
several times what the database needs to take the row, so one core is the ceiling of
an in-process load. A big JSON Lines file is therefore cut into blocks of whole lines
(here, which also decompresses), and each block is parsed, typed and checksummed by one
of a few worker processes. Blocks go out round-robin and come back in file order, so a
row's position in the stream, which database errors report, is still its record's.

Workers are started once per process, on first need, and lent to one load at a time;
loads that find none free parse in-process. Small files, other formats and files with
records set aside (lenient loading) stay in-process too: starting and feeding workers
costs more than it saves there.
"""

from __future__ import annotations

import atexit
import os
import pickle
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Table

from tenancy_fixtures.errors import FixtureError, StorageError
from tenancy_fixtures.loading.copy_text import encoder_expressions
from tenancy_fixtures.loading.fast_plans import fast_plan
from tenancy_fixtures.loading.fixture_sets import FixtureFile
from tenancy_fixtures.loading.parse_worker_process import ParsedBlock, TableJob
from tenancy_fixtures.loading.readers import json_lines_blocks
from tenancy_fixtures.loading.rules import table_formats
from tenancy_fixtures.loading.worker_channel import Channel
from tenancy_fixtures.logs import get_logger

__all__ = [
    "MIN_PARALLEL_BYTES",
    "POOL",
    "ParsedBlock",
    "ParserPool",
    "call_in_workers",
    "jsonl_bytes",
    "parse_in_workers",
]

log = get_logger("tenancy_fixtures.parse_workers")

#: JSON Lines a table must have (uncompressed, estimated) for workers to be started:
#: starting two costs about a second of CPU, which pays back from about this size.
MIN_PARALLEL_BYTES = 64 << 20
#: What gzip is assumed to have shrunk JSON Lines by, to estimate their size.
_GZIP_RATIO = 6
#: Blocks each worker is given ahead of the one being read back.
_AHEAD = 2
#: What a worker process runs.
_ENTRY = "from tenancy_fixtures.loading.parse_worker_process import serve; serve({fd})"


def portable(table: Table) -> bool:
    """Whether a worker process can rebuild ``table``: its column types, and what its
    value formats use, must come from importable modules, not from the caller's main
    script; and no column's default is a function (it may be a closure, or count)."""
    return (
        all(type(column.type).__module__ != "__main__" for column in table.columns)
        and all(
            getattr(used, "__module__", None) != "__main__"
            for form in table_formats(table)
            for used in form.names.values()
        )
        and not any(getattr(column.default, "is_callable", False) for column in table.columns)
    )


def jsonl_bytes(files: Sequence[FixtureFile]) -> int:
    """The estimated uncompressed size of ``files`` if all are JSON Lines, else 0."""
    if not files or any(f.format != "jsonl" for f in files):
        return 0
    return sum(f.path.stat().st_size * (_GZIP_RATIO if f.compressed else 1) for f in files)


# --- the loading process ------------------------------------------------------------


class _Worker:
    """A parsing process and the connection to it.

    Started as ``python -c`` running :func:`serve` rather than through
    :mod:`multiprocessing`'s spawn, which would re-run the caller's main script in the
    worker (a script without a ``__main__`` guard would load again, and again).
    """

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        # Blocking whatever socket.setdefaulttimeout() the application chose: a worker
        # waits for blocks as long as a load takes, and the loader for big replies.
        ours.setblocking(True)
        theirs.setblocking(True)
        with theirs:
            self.process = subprocess.Popen(  # noqa: S603 - this interpreter, our module
                [sys.executable, "-c", _ENTRY.format(fd=theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
                start_new_session=True,  # a terminal's Ctrl-C goes to the loader only
            )
        self.conn = Channel(ours)
        #: Whether the worker may still hold work of a load that ended (then it is stopped).
        self.broken = False

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Close the connection (an idle worker exits on it); kill a busy one."""
        self.conn.close()
        try:
            self.process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


class ParserPool:
    """Worker processes kept for the life of this process, lent to one load at a time."""

    def __init__(self) -> None:
        self._idle: list[_Worker] = []
        self._lent = 0
        self._lock = threading.Lock()

    def borrow(self, wanted: int) -> list[_Worker]:
        """Up to ``wanted`` workers (started if need be), fewer while others are lent."""
        with self._lock:
            alive = []
            for worker in self._idle:
                if worker.alive():
                    alive.append(worker)
                else:
                    worker.conn.close()
            self._idle = alive
            free = max(0, wanted - self._lent)
            taken, self._idle = self._idle[:free], self._idle[free:]
            try:
                taken += [_Worker() for _ in range(free - len(taken))]
            except OSError as exc:  # no interpreter to start: parse in-process
                log.warning("parse_worker_not_started", error=str(exc))
            self._lent += len(taken)
            return taken

    def give_back(self, workers: list[_Worker]) -> None:
        """Return borrowed workers; broken ones are stopped."""
        with self._lock:
            self._lent -= len(workers)
            self._idle.extend(w for w in workers if not w.broken)
        for worker in workers:
            if worker.broken:
                worker.stop()

    @contextmanager
    def lend(self, wanted: int) -> Iterator[list[_Worker]]:
        """Up to ``wanted`` workers for the block (none while others hold them all)."""
        workers = self.borrow(wanted)
        try:
            yield workers
        finally:
            self.give_back(workers)

    def prestart(self, wanted: int) -> None:
        """Start workers now, so that they are ready when the big file's turn comes."""
        self.give_back(self.borrow(wanted))

    def close(self) -> None:
        """Stop the idle workers."""
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()

    @property
    def idle(self) -> int:
        return len(self._idle)


#: The process's workers, stopped when the interpreter exits.
POOL = ParserPool()
atexit.register(POOL.close)


def _died(worker: _Worker) -> StorageError:
    try:
        code = worker.process.wait(timeout=1)
    except subprocess.TimeoutExpired:
        code = None
    return StorageError(f"a parsing process ended unexpectedly (exit code {code})")


def parse_in_workers(
    workers: list[_Worker],
    files: Sequence[FixtureFile],
    table: Table,
    *,
    max_text_length: int,
    rules: bool = True,
    encode: bool = False,
    batch_size: int,
    now: datetime,
    local_now: datetime | None,
) -> Generator[ParsedBlock, None, None]:
    """Parse ``files`` (JSON Lines) with ``workers``, yielding their blocks in file order.

    The first refused record raises its error here, once the workers are drained of
    what they were given, so they can be lent again; closing the iterator early drains
    them too. A worker that dies raises a StorageError, and the workers are marked
    broken (stopped when given back). ``encode``: blocks come back as ``COPY`` text
    (where the table has an encoder).
    """
    # Pickled here: unpickling it (the format functions it names) can fail in a worker,
    # which then answers every block with the error.
    job = pickle.dumps(_table_job(table, max_text_length, rules, encode, (now, local_now)))
    dispatch = _Dispatch(
        ("block", file_pickle, block, before)
        for file in files
        for file_pickle in (pickle.dumps(file),)
        for block, before in json_lines_blocks(file, min_lines=batch_size)
    )
    for worker in workers:
        worker.broken = True
    for worker in workers:
        dispatch.send(worker, ("table", job))
    yield from _replies(workers, dispatch, FixtureError)


def _table_job(
    table: Table,
    max_text_length: int,
    rules: bool,
    encode: bool,
    clock: tuple[datetime, datetime | None],
) -> TableJob:
    """What a worker is sent of ``table``: its pickle, and where rows go back as ``COPY``
    text, the compiled path's plan and encoders (which need no SQLAlchemy there)."""
    fast = fast_plan(table, max_text_length=max_text_length, rules=rules) if encode else None
    encoders = None
    if fast is not None:
        escaping = encoder_expressions(table, timestamp_text=True)
        plain = encoder_expressions(table, escape=False, timestamp_text=True)
        if escaping is not None and plain is not None:
            encoders = (escaping, plain)
    table_pickle = pickle.dumps((table, table_formats(table)))
    fast = fast if encoders is not None else None
    return TableJob(table_pickle, max_text_length, rules, encode, clock, fast, encoders)


def call_in_workers(
    workers: list[_Worker], calls: Iterable[tuple[Callable[..., Any], tuple[Any, ...]]]
) -> Generator[Any, None, None]:
    """What ``function(*args)`` returns for each of ``calls``, run by ``workers`` a few
    calls ahead, in the order of the calls.

    The functions must be module-level functions of importable modules; they, their
    arguments and their results travel pickled. An exception a call raised is raised
    here once the workers are drained (they can be lent again), as when the iterator is
    closed early; a worker that dies raises a StorageError.
    """
    yield from _replies(workers, _Dispatch(("call", f, args) for f, args in calls), Exception)


def _replies(
    workers: list[_Worker], dispatch: _Dispatch, drained: type[BaseException]
) -> Generator[Any, None, None]:
    """The workers' replies to ``dispatch``'s tasks in order, ``_AHEAD`` tasks given to
    each worker at a time. When a reply is a ``drained`` error (and when closed early)
    the workers are drained of what they hold, so that they can be lent again; any
    other failure (a worker that died) leaves them marked broken (stopped when given
    back)."""
    for worker in workers:
        worker.broken = True
    try:
        for _ in range(_AHEAD):
            for worker in workers:
                dispatch.give(worker)
        while dispatch.given:
            worker = dispatch.given[0]
            reply = dispatch.take()
            if isinstance(reply, BaseException):
                if isinstance(reply, drained):
                    _drain(workers, dispatch)
                raise reply
            dispatch.give(worker)
            yield reply
    except GeneratorExit:
        _drain(workers, dispatch)
        raise
    for worker in workers:
        worker.broken = False


def _drain(workers: list[_Worker], dispatch: _Dispatch) -> None:
    """Take the replies the workers still owe, so that they can be lent again."""
    while dispatch.given:
        dispatch.take()
    for worker in workers:
        worker.broken = False


class _Dispatch:
    """Tasks (blocks, calls) handed to workers in turn; ``given`` holds the workers
    owing a reply, in the order the tasks were given."""

    def __init__(self, tasks: Iterator[tuple[Any, ...]]) -> None:
        self.tasks = tasks
        self.given: deque[_Worker] = deque()

    def send(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        try:
            worker.conn.send(message)
        except OSError:
            raise _died(worker) from None

    def give(self, worker: _Worker) -> None:
        """Send ``worker`` the next task, if any is left."""
        task = next(self.tasks, None)
        if task is not None:
            self.send(worker, task)
            self.given.append(worker)

    def take(self) -> Any:
        """The reply of the worker given the oldest task."""
        worker = self.given.popleft()
        try:
            return worker.conn.recv()
        except (EOFError, OSError):
            raise _died(worker) from None
